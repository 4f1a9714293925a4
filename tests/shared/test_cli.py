"""The ``lightcone`` command: each sub-command imports only what it needs, and help is text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import COMMANDS, MISSING_MODULES_EXIT, main, plain_text

ROOT = Path(__file__).resolve().parents[2]
LOAD_EXTRA = ("locust", "matplotlib", "numpy")
INSTALL = "pip install 'lightcone[load]'"


def run_without(blocked: tuple[str, ...], *argv: str) -> subprocess.CompletedProcess[str]:
    """``lightcone argv`` in a fresh interpreter where the ``blocked`` modules cannot be
    imported (as if not installed: importing one raises ModuleNotFoundError)."""
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "from shared.cli import main\n"
        f"sys.exit(main({list(argv)!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit:
        main([*argv, "--help"])
    assert exit.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_reads_as_plain_text(capsys: pytest.CaptureFixture[str], command: str) -> None:
    """``lightcone --help`` and each command's help carry no reST markup."""
    text = help_of(capsys, *([command] if command else []))
    assert f"usage: lightcone {command}".rstrip() in text
    for markup in ("``", ":mod:", ":class:", ":func:", ":data:"):
        assert markup not in text, (markup, text)


def test_the_command_list_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """Listing the commands imports none of them, and shows each one's help."""
    text = " ".join(help_of(capsys).split())  # argparse wraps to the terminal's width
    for name, command in COMMANDS.items():
        assert name in text and command.help in text


@pytest.mark.parametrize("command", ["core", "edge"])
def test_node_commands_need_neither_load_nor_deploy(command: str) -> None:
    """The image ships neither ``load/`` nor ``deploy/``: the nodes' commands parse without
    them, and ``lightcone --help`` still lists every command."""
    result = run_without(("load", "deploy"), command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: lightcone {command}" in result.stdout
    listing = run_without(("load", "deploy"), "--help")
    assert listing.returncode == 0, listing.stderr
    assert "bench" in listing.stdout and "up" in listing.stdout


@pytest.mark.parametrize(
    ("blocked", "argv"),
    [
        (LOAD_EXTRA, ("bench",)),
        (LOAD_EXTRA, ("bench", "--quick")),
        (("numpy",), ("bench", "--help")),
        (("load",), ("bench",)),
    ],
)
def test_bench_without_the_load_extra_says_how_to_install_it(
    blocked: tuple[str, ...], argv: tuple[str, ...]
) -> None:
    """No traceback: the missing modules, the install command, a non-zero exit."""
    result = run_without(blocked, *argv)
    assert result.returncode == MISSING_MODULES_EXIT, result.stderr
    assert INSTALL in result.stderr
    assert blocked[0] in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("command", "argument"),
    [("up", "lhr"), ("partition", "lhr"), ("heal", "lhr"), ("core-node", "list")],
)
def test_demo_commands_without_deploy_say_so(command: str, argument: str) -> None:
    """In the nodes' image (no deploy/), the demo's commands explain instead of crashing."""
    result = run_without(("deploy",), command, argument)
    assert result.returncode == MISSING_MODULES_EXIT, result.stderr
    assert "needs deploy" in result.stderr and "pip install -e ." in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """The full parse reports it, listing the commands."""
    with pytest.raises(SystemExit) as exit:
        main(["nope"])
    assert exit.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_plain_text_unmarks_rest() -> None:
    doc = "``lightcone up`` runs :class:`~deploy.local.up.Demo`, a *central* node; 2*3*4."
    assert plain_text(doc) == "lightcone up runs deploy.local.up.Demo, a central node; 2*3*4."
