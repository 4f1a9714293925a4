"""The deploy files as data, and processes started the way the image starts them on Fly.io.

There is no docker engine here, so "as the image starts it" means: the command of the app's
``[processes]`` entry in its fly.toml (``lightcone core`` / ``lightcone edge``), run as
``python -m shared.cli`` (what the ``lightcone`` script calls), with the Dockerfile's ``ENV``
and the fly.toml ``[env]``, plus what Fly.io sets (``FLY_REGION``, ``PRIMARY_REGION``,
``FLY_APP_NAME``) and the secrets. Only what must differ here is overridden: an ephemeral
``LIGHTCONE_PORT``, the data directory, and the core's URL for an edge.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.nodes import ADMIN_TOKEN, LINK_TOKEN, Node

ROOT = Path(__file__).resolve().parents[2]
FLY = ROOT / "deploy" / "fly"
DOCKERFILE = FLY / "Dockerfile"
DEPLOY_SH = FLY / "deploy.sh"
_LISTENING = re.compile(r"listening on http://\S+:(\d+)")


def fly_toml(kind: str) -> dict[str, Any]:
    """``deploy/fly/fly.<kind>.toml``, parsed."""
    with (FLY / f"fly.{kind}.toml").open("rb") as f:
        return tomllib.load(f)


@dataclass
class Stage:
    """One ``FROM`` stage of the Dockerfile."""

    base: str
    env: dict[str, str] = field(default_factory=dict)
    copies: list[list[str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    user: str | None = None
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None


def dockerfile() -> list[Stage]:
    """The Dockerfile's stages (the instructions these tests look at)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "FROM":
            stages.append(Stage(base=rest.split()[0]))
        elif word == "ENV":
            stages[-1].env.update(dict(item.split("=", 1) for item in shlex.split(rest)))
        elif word == "COPY":
            stages[-1].copies.append(shlex.split(rest))
        elif word == "RUN":
            stages[-1].runs.append(rest)
        elif word == "USER":
            stages[-1].user = rest
        elif word in ("CMD", "ENTRYPOINT"):
            value = json.loads(rest)
            assert isinstance(value, list), f"{word} must be in exec form, got {rest}"
            setattr(stages[-1], word.lower(), [str(v) for v in value])
    return stages


def command(kind: str) -> list[str]:
    """The start command of the ``kind`` app: its ``[processes] app`` entry."""
    return shlex.split(fly_toml(kind)["processes"]["app"])


def runtime_env(kind: str) -> dict[str, str]:
    """The environment the image and fly.toml give the process (PATH aside)."""
    env = {k: v for k, v in dockerfile()[-1].env.items() if k != "PATH"}
    return {**env, **fly_toml(kind).get("env", {})}


def fly_env(kind: str, region: str) -> dict[str, str]:
    """What Fly.io sets on a Machine of the ``kind`` app running in ``region``."""
    toml = fly_toml(kind)
    return {
        "FLY_REGION": region,
        "PRIMARY_REGION": toml["primary_region"],
        "FLY_APP_NAME": toml["app"],
        "FLY_MACHINE_ID": f"{kind}-{region}-test",
    }


def start_as_image(
    kind: str, tmp: Path, region: str, overrides: Mapping[str, str], *, log_name: str = ""
) -> Node:
    """Start the ``kind`` app as its Machine would run it (module docstring)."""
    argv = command(kind)
    assert argv[0] == "lightcone", argv
    secrets = {"LIGHTCONE_LINK_TOKEN": LINK_TOKEN}
    if kind == "core":
        secrets["LIGHTCONE_ADMIN_TOKEN"] = ADMIN_TOKEN
    env = {
        **runtime_env(kind),
        **fly_env(kind, region),
        **secrets,
        "LIGHTCONE_PORT": "0",
        **overrides,
    }
    return Node(argv[1:], env, tmp / f"{log_name or kind + '-' + region}.log")


def port_of(node: Node) -> int:
    """The port the node listens on (from its "listening on" log line)."""
    return int(node.wait_for(_LISTENING, 5).group(1))
