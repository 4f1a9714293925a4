"""The fly.toml files and the Dockerfile agree with the app: ports, paths, commands, env."""

from __future__ import annotations

import ast
import json
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from core_region.settings import CoreSettings
from core_region.suggest.corpus import default_path
from edge_node.replay import core_app_of
from edge_node.settings import EdgeSettings
from shared.config import from_environ
from shared.server import GOING_AWAY_S, GRACEFUL_SHUTDOWN_S
from tests.deploy.conftest import Running, start_edge
from tests.deploy.image import (
    DOCKERFILE,
    FLY,
    ROOT,
    command,
    dockerfile,
    fly_toml,
    runtime_env,
)

pytestmark = pytest.mark.e2e

KINDS = ("core", "edge")
SETTINGS: dict[str, type[CoreSettings] | type[EdgeSettings]] = {
    "core": CoreSettings,
    "edge": EdgeSettings,
}


@pytest.fixture(scope="module")
def image_edge(tmp_path_factory: pytest.TempPathFactory, image_core: Running) -> Iterator[Running]:
    edge = start_edge(tmp_path_factory.mktemp("image-edge"), image_core, "lhr")
    try:
        yield edge
    finally:
        edge.node.stop()
    assert not edge.node.errors(), f"the edge logged errors: {edge.node.errors()}"


def _settings(kind: str) -> CoreSettings | EdgeSettings:
    return from_environ(SETTINGS[kind], runtime_env(kind))


def _paths(toml: dict[str, Any]) -> list[tuple[int, str]]:
    """Every (port, path) Fly.io will request: service checks, top-level checks, metrics."""
    port = toml["http_service"]["internal_port"]
    found = [(port, c["path"]) for c in toml["http_service"]["checks"]]
    found += [(c["port"], c["path"]) for c in toml.get("checks", {}).values()]
    found.append((toml["metrics"]["port"], toml["metrics"]["path"]))
    return found


@pytest.mark.parametrize("kind", KINDS)
def test_ports_match_the_settings(kind: str) -> None:
    """internal_port, check ports and the metrics port are the port the app listens on."""
    toml = fly_toml(kind)
    port = _settings(kind).port
    assert toml["http_service"]["internal_port"] == port
    assert {p for p, _ in _paths(toml)} == {port}
    assert kind in command(kind) and str(port) not in command(kind)  # the default, not a flag


@pytest.mark.parametrize("kind", KINDS)
def test_checks_and_metrics_paths_are_served(
    kind: str, image_core: Running, image_edge: Running
) -> None:
    """Fly's checks get 2xx on their paths without following redirects; metrics are Prometheus."""
    node = image_core if kind == "core" else image_edge
    toml = fly_toml(kind)
    routing = [c["path"] for c in toml["http_service"]["checks"]]
    assert routing == ["/readyz"], "service checks gate routing: they must mean ready"
    with httpx.Client(base_url=node.url, follow_redirects=False) as client:
        for _, path in _paths(toml):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
        metrics = client.get(toml["metrics"]["path"])
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "# TYPE " in metrics.text


@pytest.mark.parametrize("kind", KINDS)
def test_start_command_is_the_cli_the_tests_run(kind: str) -> None:
    """`lightcone <kind>` parses, and `lightcone` is the shared.cli the test nodes run."""
    argv = command(kind)
    assert argv == ["lightcone", kind]
    with (ROOT / "pyproject.toml").open("rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts["lightcone"] == "shared.cli:main"
    out = subprocess.run(
        [sys.executable, "-m", "shared.cli", *argv[1:], "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert f"usage: lightcone {kind}" in out.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_runtime_settings(kind: str) -> None:
    """Both stacks, graceful SIGTERM in time, no FLY_ names in [env], Fly-region fallback."""
    toml = fly_toml(kind)
    env = runtime_env(kind)
    assert env["LIGHTCONE_HOST"] in ("", "::")
    assert "LIGHTCONE_REGION" not in env, "the region must come from FLY_REGION"
    assert not [k for k in toml.get("env", {}) if k.startswith("FLY_")]
    assert toml["kill_signal"] == "SIGTERM"
    assert toml["kill_timeout"] > GOING_AWAY_S + GRACEFUL_SHUTDOWN_S + 1
    assert toml["http_service"]["concurrency"]["type"] == "connections"
    limits = toml["http_service"]["concurrency"]
    assert 0 < limits["soft_limit"] < limits["hard_limit"]
    assert toml["http_service"]["auto_stop_machines"] == "off"


def test_core_keeps_sqlite_on_its_volume() -> None:
    """The data dir is the mount, and deploy.sh creates that volume in the primary region."""
    toml = fly_toml("core")
    (mount,) = toml["mounts"]
    settings = _settings("core")
    assert isinstance(settings, CoreSettings)
    assert str(settings.data_dir) == mount["destination"]
    dry = subprocess.run(
        ["bash", str(FLY / "deploy.sh"), "--dry-run"], capture_output=True, text=True, check=True
    ).stdout
    region = toml["primary_region"]
    assert f"fly volumes create {mount['source']} --app {toml['app']} --region {region}" in dry


def test_edge_finds_the_core_on_the_private_network() -> None:
    """The edge's core URL is <core app>.internal on the core's port; same primary region."""
    core, edge = fly_toml("core"), fly_toml("edge")
    url = f"http://{core['app']}.internal:{core['http_service']['internal_port']}"
    assert edge["env"]["LIGHTCONE_CORE_URL"] == url
    assert edge["env"]["LIGHTCONE_CORE_APP"] == core["app"] == core_app_of(url)
    assert edge["primary_region"] == core["primary_region"]
    assert "mounts" not in edge


def test_the_edge_mesh_listens_on_the_private_network_only() -> None:
    """The mesh listener is bound to 6PN on a port no service exposes, and each peer's URL is
    its region's name on 6PN, on that port (deploy.sh sets it per app)."""
    edge = fly_toml("edge")
    settings = _settings("edge")
    assert isinstance(settings, EdgeSettings)
    assert settings.mesh_host == "fly-local-6pn" and settings.mesh_on
    exposed = {edge["http_service"]["internal_port"]} | {
        s["internal_port"] for s in edge.get("services", [])
    }
    assert settings.mesh_port is not None and settings.mesh_port not in exposed
    dry = subprocess.run(
        ["bash", str(FLY / "deploy.sh"), "--dry-run"], capture_output=True, text=True, check=True
    ).stdout
    url = f"ws://{{region}}.{edge['app']}.internal:{settings.mesh_port}/mesh"
    assert f"--env LIGHTCONE_MESH_PEER_URL={url}" in " ".join(shlex.split(dry))
    peers = from_environ(
        EdgeSettings,
        {
            **runtime_env("edge"),
            "LIGHTCONE_MESH_PEERS": "iad,syd",
            "LIGHTCONE_MESH_PEER_URL": url,
            "FLY_REGION": "iad",
        },
    ).mesh_peer_map()
    assert peers == {"syd": f"ws://syd.{edge['app']}.internal:{settings.mesh_port}/mesh"}


def test_dockerfile_builds_a_slim_non_root_runtime_image() -> None:
    """python:3.11-slim, `pip install .` without extras, non-root user, exec-form CMD."""
    stages = dockerfile()
    assert {s.base.split(" ")[0] for s in stages} == {"python:3.11-slim"}
    installs = [r for s in stages for r in s.runs if "pip install" in r]
    assert installs and all(r.rstrip().endswith("pip install .") for r in installs), installs
    final = stages[-1]
    assert final.user is not None and final.user.split(":")[0] not in ("root", "0")
    assert final.entrypoint is None, "fly.toml process commands replace CMD only"
    assert final.cmd is not None and final.cmd[0] == "lightcone"


def _imports(modules: tuple[str, ...]) -> dict[str, str]:
    """Module -> file, of everything importing ``modules`` loads (stdlib aside)."""
    code = (
        f"import sys, json, {', '.join(modules)}\n"
        "print(json.dumps({n: m.__file__ for n, m in list(sys.modules.items())\n"
        "    if getattr(m, '__file__', None) and n.split('.')[0] not in sys.stdlib_module_names}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    loaded: dict[str, str] = json.loads(out.stdout)
    return loaded


def _runtime_distributions() -> set[str]:
    """What `pip install .` installs: [project].dependencies and theirs, recursively."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        todo = [Requirement(r) for r in tomllib.load(f)["project"]["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        for raw in metadata.requires(req.name) or []:
            sub = Requirement(raw)
            envs = [{"extra": e} for e in req.extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                todo.append(sub)
    return seen


PROCESSES = ("shared.cli", "core_region.app", "edge_node.app")


def test_image_holds_the_first_party_code_the_processes_import() -> None:
    """Every first-party package the core and the edge import is copied, and not ignored."""
    sources = [src for c in dockerfile()[0].copies for src in c[:-1] if not src.startswith("-")]
    copied = {Path(src).name for src in sources}
    ours = {
        name.split(".")[0]
        for name, file in _imports(PROCESSES).items()
        if Path(file).resolve().is_relative_to(ROOT) and "site-packages" not in file
    }
    assert ours and ours <= copied, f"missing from the image: {ours - copied}"
    ignore = (FLY / ".dockerignore").read_text().splitlines()
    for name in copied:
        assert f"!{name}" in ignore or f"!{name}/" in ignore, f"{name} is not in the context"


def test_the_processes_import_neither_load_nor_the_local_deployment() -> None:
    """The image ships neither ``load/`` nor ``deploy/``: no node imports them, and the CLI
    imports them only for the commands that need them (tests/shared/test_cli.py)."""
    loaded = _imports(PROCESSES)
    assert not [name for name in loaded if name.split(".")[0] in ("load", "deploy")]
    copied = {Path(src).name for c in dockerfile()[0].copies for src in c[:-1]}
    assert not copied & {"load", "deploy"}, copied


def _imported_by(files: list[Path]) -> dict[str, Path]:
    """Top-level module -> first file among ``files`` whose code imports it (anywhere)."""
    found: dict[str, Path] = {}
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], file)
    return found


def test_runtime_dependencies_cover_what_the_processes_import() -> None:
    """`pip install .` (no extras) installs every third-party package our modules import."""
    loaded = _imports(PROCESSES)
    ours = {
        Path(file)
        for file in loaded.values()
        if Path(file).resolve().is_relative_to(ROOT) and "site-packages" not in file
    }
    owners = metadata.packages_distributions()
    runtime = _runtime_distributions()
    missing = sorted(
        f"{name} (imported by {file.relative_to(ROOT)})"
        for name, file in _imported_by(sorted(ours)).items()
        if name not in sys.stdlib_module_names
        and not (ROOT / name).is_dir()
        and not {canonicalize_name(d) for d in owners.get(name, [name])} & runtime
    )
    assert not missing, f"the image would lack (not in [project].dependencies): {missing}"


def test_default_corpus_is_package_data() -> None:
    """The shipped corpus sits in core_region and pyproject installs it with the package."""
    path = default_path()
    assert path.is_file() and path.parent.parent.name == "core_region"
    with (ROOT / "pyproject.toml").open("rb") as f:
        data = tomllib.load(f)["tool"]["setuptools"]["package-data"]["core_region"]
    assert any(path.match(f"core_region/{pattern}") for pattern in data), data


def test_dockerfile_is_plain_text_we_parse() -> None:
    """No instruction we do not understand hides a command (ARG, SHELL, ONBUILD...)."""
    words = {
        line.split()[0].upper()
        for line in DOCKERFILE.read_text().splitlines()
        if line.strip() and not line.startswith((" ", "#"))
    }
    assert words <= {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "EXPOSE", "CMD"}
