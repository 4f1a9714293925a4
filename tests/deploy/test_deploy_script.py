"""deploy.sh: its dry run prints the fly commands; with a fake fly it is idempotent."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.deploy.image import DEPLOY_SH, ROOT
from tests.helpers.system import program

LABEL = "deployment-test"
IMAGE = f"registry.fly.io/lightcone-core:{LABEL}"
BASE_ENV = {"PATH": "/usr/bin:/bin", "IMAGE_LABEL": LABEL}

FIRST_DEPLOY = [
    "fly auth whoami",
    "fly status --app lightcone-core",
    "fly apps create lightcone-core --org personal",
    "fly status --app lightcone-edge",
    "fly apps create lightcone-edge --org personal",
    "fly volumes list --app lightcone-core",
    "fly volumes create lightcone_data --app lightcone-core --region iad --size 1 --yes",
    "fly secrets list --app lightcone-core",
    "fly secrets list --app lightcone-edge",
    "fly secrets import --app lightcone-core --stage",
    "fly secrets import --app lightcone-edge --stage",
    "fly deploy . --config deploy/fly/fly.core.toml --app lightcone-core"
    " --dockerfile deploy/fly/Dockerfile --ignorefile deploy/fly/.dockerignore"
    f" --image-label {LABEL} --ha=false --no-public-ips",
    "fly deploy . --config deploy/fly/fly.edge.toml --app lightcone-edge"
    f" --image {IMAGE} --ha=false"
    " --env LIGHTCONE_CORE_URL=http://lightcone-core.internal:8081"
    " --env LIGHTCONE_CORE_APP=lightcone-core"
    " --env LIGHTCONE_MESH_PEERS=iad,lhr,nrt,syd"
    " --env LIGHTCONE_MESH_PEER_URL=ws://{region}.lightcone-edge.internal:8090/mesh",
    "fly scale count 4 --app lightcone-edge --region iad,lhr,nrt,syd --max-per-region 1 --yes",
]

FAKE_FLY = r"""#!/usr/bin/env bash
# A stand-in for flyctl: logs each call, and answers checks from $FAKE_STATE.
echo "fly $*" >> "$FAKE_LOG"
case "$1 $2" in
  "status --app") [[ $FAKE_STATE == existing ]]; exit $? ;;
  "volumes list")
    echo "ID STATE NAME"
    [[ $FAKE_STATE == fresh ]] || echo "vol_1 created lightcone_data" ;;
  "secrets list")
    echo "NAME DIGEST"
    case "$FAKE_STATE:$4" in
      existing:lightcone-core) echo "LIGHTCONE_LINK_TOKEN a1"; echo "LIGHTCONE_ADMIN_TOKEN b2" ;;
      existing:lightcone-edge | half:lightcone-core) echo "LIGHTCONE_LINK_TOKEN a1" ;;
    esac ;;
  "secrets import") sed 's/^/  stdin: /' >> "$FAKE_LOG" ;;
esac
exit 0
"""


def _run(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEPLOY_SH), *args],
        capture_output=True,
        text=True,
        env={**BASE_ENV, **env},
        cwd="/",
        timeout=30,
    )


def _commands(stdout: str) -> list[str]:
    """The fly commands a dry run prints, as the shell would pass them (its quoting undone)."""
    return [" ".join(shlex.split(line)) for line in stdout.splitlines() if line.startswith("fly ")]


def test_dry_run_prints_the_first_deploy_without_fly() -> None:
    """No fly on PATH: the dry run still prints every command of a first deploy, in order."""
    assert shutil.which("fly", path=BASE_ENV["PATH"]) is None
    result = _run(["--dry-run"], {})
    assert result.returncode == 0, result.stderr
    assert _commands(result.stdout) == FIRST_DEPLOY
    assert "<secret>" in result.stdout and "TOKEN=" not in result.stdout.replace("=<secret>", "")


def test_dry_run_with_an_image_deploys_it_to_both_apps() -> None:
    """--image REF (a rollback) builds nothing and deploys REF to the core and the edges."""
    ref = "registry.fly.io/lightcone-core:deployment-20260101T000000Z"
    result = _run(["--dry-run", "--image", ref], {"EDGE_REGIONS": "lhr,syd"})
    assert result.returncode == 0, result.stderr
    deploys = [c for c in _commands(result.stdout) if c.startswith("fly deploy")]
    assert len(deploys) == 2 and all(f"--image {ref} " in c for c in deploys)
    assert not [c for c in deploys if "--dockerfile" in c]
    assert _commands(result.stdout)[-1] == (
        "fly scale count 2 --app lightcone-edge --region lhr,syd --max-per-region 1 --yes"
    )


def test_bad_input_is_refused_before_any_fly_command() -> None:
    """A bad app name, region list or argument stops the script with a message."""
    for args, env, message in [
        (["--dry-run"], {"CORE_APP": "Bad_Name"}, "invalid app name"),
        (["--dry-run"], {"EDGE_REGIONS": "lhr;syd"}, "EDGE_REGIONS"),
        (["--dry-run", "--frobnicate"], {}, "unknown argument"),
    ]:
        result = _run(args, env)
        assert result.returncode != 0 and message in result.stderr
        assert _commands(result.stdout) == []


def _fake_run(
    tmp: Path, state: str, argv: tuple[str, ...] = (), **env: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "fly"
    fake.write_text(FAKE_FLY)
    fake.chmod(0o755)
    log = tmp / f"fly-{state}.log"
    log.write_text("")
    path = f"{bin_dir}{os.pathsep}{BASE_ENV['PATH']}"
    result = _run([*argv], {"PATH": path, "FAKE_LOG": str(log), "FAKE_STATE": state, **env})
    return result, log.read_text()


def test_first_real_run_creates_everything_with_one_link_token(tmp_path: Path) -> None:
    """On a fresh org it runs the dry run's commands; both apps get the same new link token."""
    result, log = _fake_run(tmp_path, "fresh")
    assert result.returncode == 0, result.stderr
    assert [line for line in log.splitlines() if line.startswith("fly ")] == FIRST_DEPLOY
    links = re.findall(r"stdin: LIGHTCONE_LINK_TOKEN=(\w+)", log)
    assert len(links) == 2 and links[0] == links[1] and len(links[0]) == 64
    (admin,) = re.findall(r"stdin: LIGHTCONE_ADMIN_TOKEN=(\w+)", log)
    assert f"new admin token (store it, it is not shown again): {admin}" in result.stderr
    assert admin not in result.stdout and links[0] not in result.stderr


def test_second_run_keeps_apps_volume_and_secrets(tmp_path: Path) -> None:
    """When everything exists, only deploys and the scale run: nothing created, no new token."""
    result, log = _fake_run(tmp_path, "existing")
    assert result.returncode == 0, result.stderr
    calls = [line for line in log.splitlines() if line.startswith("fly ")]
    assert not [c for c in calls if " create " in c or "secrets import" in c]
    assert [c for c in calls if c.startswith(("fly deploy", "fly scale"))] == FIRST_DEPLOY[-3:]


def test_given_link_token_is_set_on_both_apps(tmp_path: Path) -> None:
    """LIGHTCONE_LINK_TOKEN given: staged on both apps, even when they already have one."""
    result, log = _fake_run(tmp_path, "existing", LIGHTCONE_LINK_TOKEN="s3cret")
    assert result.returncode == 0, result.stderr
    assert log.count("stdin: LIGHTCONE_LINK_TOKEN=s3cret") == 2
    assert "s3cret" not in result.stdout + result.stderr


def test_a_given_store_url_is_a_core_secret_never_printed(tmp_path: Path) -> None:
    """LIGHTCONE_STORE given (a managed PostgreSQL): staged on the core app only."""
    url = "postgresql://lightcone:pw-s3cret@db.internal:5432/lightcone"
    result, log = _fake_run(tmp_path, "existing", LIGHTCONE_STORE=url)
    assert result.returncode == 0, result.stderr
    assert log.count(f"stdin: LIGHTCONE_STORE={url}") == 1
    assert "pw-s3cret" not in result.stdout + result.stderr


def test_half_set_link_token_stops_before_deploying(tmp_path: Path) -> None:
    """Only one app has a link token (its value cannot be read back): stop and say so."""
    result, log = _fake_run(tmp_path, "half")
    assert result.returncode != 0
    assert "only one app has LIGHTCONE_LINK_TOKEN" in result.stderr
    assert "fly deploy" not in log


def test_deploy_script_is_shellcheck_clean() -> None:
    """shellcheck finds nothing to report in deploy.sh."""
    shellcheck = program("shellcheck")
    result = subprocess.run([shellcheck, str(DEPLOY_SH)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout


SCALE_CORE = "fly scale count 2 --app lightcone-core --region iad --yes"
STORE = "postgresql://lightcone:pw-s3cret@lightcone-core-db.internal:5432/lightcone"
BROKER = "redis://default:rd-s3cret@fly-lightcone-core-broker.upstash.io:6379"


def test_dry_run_prints_the_scale_out_to_two_core_machines() -> None:
    """--core-count 2 with a store and a broker: both staged as core secrets (never printed),
    and the core scaled to two Machines in the primary region after its deploy."""
    result = _run(
        ["--dry-run", "--core-count", "2"], {"LIGHTCONE_STORE": STORE, "LIGHTCONE_BROKER": BROKER}
    )
    assert result.returncode == 0, result.stderr
    core_deploy = FIRST_DEPLOY.index(next(c for c in FIRST_DEPLOY if "fly.core.toml" in c))
    expected = [*FIRST_DEPLOY[: core_deploy + 1], SCALE_CORE, *FIRST_DEPLOY[core_deploy + 1 :]]
    assert _commands(result.stdout) == expected
    assert "#   stdin: LIGHTCONE_STORE=<secret>" in result.stdout
    assert "#   stdin: LIGHTCONE_BROKER=<secret>" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr
    assert "# needs" not in result.stdout


def test_dry_run_says_how_to_make_the_store_and_the_broker() -> None:
    """Without them, the dry run of a scale-out names the fly commands that make each."""
    result = _run(["--dry-run", "--core-count", "2"], {})
    assert result.returncode == 0, result.stderr
    needs = [line for line in result.stdout.splitlines() if line.startswith("# needs")]
    assert len(needs) == 2
    assert "fly mpg create" in needs[0] and "--variable-name LIGHTCONE_STORE" in needs[0]
    assert "fly redis create --name lightcone-core-broker" in needs[1]
    assert SCALE_CORE in _commands(result.stdout)


def test_a_real_scale_out_without_a_broker_stops_before_deploying(tmp_path: Path) -> None:
    result, log = _fake_run(tmp_path, "existing", ("--core-count", "2"), LIGHTCONE_STORE=STORE)
    assert result.returncode != 0
    assert "--core-count 2 needs a broker: set LIGHTCONE_BROKER" in result.stderr
    assert "fly deploy" not in log and "secrets import" not in log
    assert "s3cret" not in result.stdout + result.stderr


def test_a_real_scale_out_stages_the_broker_and_scales_the_core(tmp_path: Path) -> None:
    result, log = _fake_run(
        tmp_path, "existing", ("--core-count", "2"), LIGHTCONE_STORE=STORE, LIGHTCONE_BROKER=BROKER
    )
    assert result.returncode == 0, result.stderr
    assert log.count(f"stdin: LIGHTCONE_BROKER={BROKER}") == 1
    assert SCALE_CORE in log.splitlines()
    assert "s3cret" not in result.stdout + result.stderr


def test_a_bad_core_count_is_refused_before_any_fly_command() -> None:
    for value in ("0", "11", "two", "-1"):
        result = _run(["--dry-run", "--core-count", value], {})
        assert result.returncode == 2, value
        assert "--core-count needs a number from 1 to 10" in result.stderr
        assert _commands(result.stdout) == []
    result = _run(["--dry-run", "--core-count"], {})
    assert result.returncode == 2 and _commands(result.stdout) == []
