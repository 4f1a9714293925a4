"""The throwaway PostgreSQL's lookup says what to install when the programs are missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local.postgres import INSTALL, PostgresMissing, bindir


def test_missing_programs_name_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_config, no initdb
    with pytest.raises(PostgresMissing) as caught:
        bindir(str(tmp_path / "*" / "bin"))
    assert str(caught.value) == f"PostgreSQL's initdb and pg_ctl are not installed: {INSTALL}"
    assert INSTALL == "apt-get install postgresql"


def test_the_newest_debian_version_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    for version in ("9", "15", "13"):
        folder = tmp_path / version / "bin"
        folder.mkdir(parents=True)
        for name in ("initdb", "pg_ctl"):
            (folder / name).touch()
    assert bindir(str(tmp_path / "*" / "bin")) == tmp_path / "15" / "bin"
