"""The core app in process (Starlette TestClient): admin API, health, metrics, seeding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from core_region.app import create_app
from core_region.settings import CoreSettings
from shared.config import ConfigError, from_environ
from shared.protocol import DEFAULT_MAX_AGE_MS
from tests.helpers.nodes import SMALL_CORPUS

TOKEN = "admin-secret"


def settings(tmp_path: Path, **overrides: object) -> CoreSettings:
    env = {"LIGHTCONE_ADMIN_TOKEN": TOKEN, "LIGHTCONE_LINK_TOKEN": "link-secret"}
    base: dict[str, object] = {"data_dir": tmp_path, "corpus": SMALL_CORPUS}
    return from_environ(CoreSettings, env, **{**base, **overrides})


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path))) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def test_health_ready_and_metrics(client: TestClient) -> None:
    """/healthz and /readyz answer once started; /metrics exposes the core's gauges."""
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    metrics = client.get("/metrics/").text
    assert "lightcone_published_version" in metrics
    assert "lightcone_snapshot_bytes" in metrics


def test_status_reports_versions_terms_and_flags(client: TestClient) -> None:
    """/admin/status shows versions, counts and flags."""
    status = client.get("/admin/status").json()
    assert status["served_terms"] == status["stored_terms"] == 300
    assert status["version"] == status["published"] == status["snapshot_version"] == 1
    assert status["flags"]["suggest"] == {
        "level": "tolerant",
        "params": {},
        "max_age_ms": None,
        "stale_ok": True,
        "mode": "tolerant",
    }
    assert status["edges"] == []


def test_upsert_then_delete_advances_the_version(client: TestClient) -> None:
    """Each admin write returns the version it produced; a takedown stops serving the term."""
    put = client.put("/admin/terms/Néo Town", json={"weight": 42})
    assert put.status_code == 200
    assert put.json() == {"term": "Néo Town", "key": "neotown", "weight": 42, "version": 2}
    assert client.get("/admin/terms/neo town").json()["weight"] == 42
    gone = client.delete("/admin/terms/NEO TOWN")
    assert gone.json() == {
        "term": "NEO TOWN",
        "key": "neotown",
        "status": "taken_down",
        "version": 3,
    }
    assert client.get("/admin/terms/neo town").status_code == 404


def test_a_term_carries_other_names_through_the_admin_api(client: TestClient) -> None:
    """``names`` sets a term's other names (through the door, tidied, deduplicated); left out,
    they are kept; ``[]`` clears them."""
    put = client.put("/admin/terms/Mumbai", json={"weight": 9, "names": ["Bombay", " Bombay "]})
    assert put.status_code == 200, put.text
    assert put.json()["names"] == ["Bombay"]
    assert client.get("/admin/terms/mumbai").json()["names"] == ["Bombay"]
    assert "names" not in client.put("/admin/terms/Mumbai", json={"weight": 10}).json()
    assert client.get("/admin/terms/mumbai").json()["names"] == ["Bombay"]
    client.put("/admin/terms/Mumbai", json={"weight": 10, "names": []})
    assert client.get("/admin/terms/mumbai").json()["names"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("PUT", "/admin/terms/x", {"weight": 1, "names": "Bombay"}, 400, "bad_name"),
        ("PUT", "/admin/terms/x", {"weight": 1, "names": [1]}, 400, "bad_name"),
        ("PUT", "/admin/terms/x", {"weight": 1, "names": ["a" * 101]}, 400, "bad_name"),
        ("PUT", "/admin/terms/x", {"weight": 1, "names": ["a\u2028b"]}, 400, "bad_text"),
        ("PUT", "/admin/terms/x", {"weight": 1, "names": ["n"] * 33}, 400, "too_many_names"),
        ("PUT", "/admin/terms/x", {"weight": 0}, 400, "bad_weight"),
        ("PUT", "/admin/terms/x", {"weight": 1.5}, 400, "bad_weight"),
        ("PUT", "/admin/terms/x", {"weight": True}, 400, "bad_weight"),
        ("PUT", "/admin/terms/x", {"weight": 2**60}, 400, "bad_weight"),
        ("PUT", "/admin/terms/x", {}, 400, "bad_weight"),
        ("PUT", "/admin/terms/%CC%81", {"weight": 1}, 400, "bad_term"),
        ("PUT", "/admin/terms/" + "a" * 101, {"weight": 1}, 400, "bad_term"),
        ("PUT", "/admin/terms/a%00b", {"weight": 1}, 400, "bad_text"),
        ("GET", "/admin/terms/%E2%80%AEnodnol", None, 400, "bad_text"),
        ("PUT", "/admin/terms/" + "%EF%B7%BA" * 12, {"weight": 1}, 400, "key_too_long"),
        ("PUT", "/admin/flags/suggest", {"stale_ok": "no"}, 400, "bad_flag"),
        ("PUT", "/admin/flags/suggest", {}, 400, "bad_flag"),
        ("PUT", "/admin/flags/suggest", {"level": "eventual"}, 400, "bad_flag"),
        ("PUT", "/admin/flags/suggest", {"level": 1}, 400, "bad_flag"),
        ("PUT", "/admin/flags/suggest", {"level": "strict", "stale_ok": False}, 400, "bad_flag"),
        ("PUT", "/admin/flags/typing", {"stale_ok": True}, 404, "not_found"),
        ("PUT", "/admin/flags/cursors", {"level": "bounded"}, 400, "bad_flag"),
        ("PUT", "/admin/flags/cursors", {"level": "session"}, 400, "bad_flag"),
        (
            "PUT",
            "/admin/flags/suggest",
            {"level": "bounded", "max_age_ms": 0},
            400,
            "bad_max_age_ms",
        ),
        (
            "PUT",
            "/admin/flags/suggest",
            {"level": "bounded", "max_age_ms": 60001},
            400,
            "bad_max_age_ms",
        ),
        (
            "PUT",
            "/admin/flags/suggest",
            {"level": "bounded", "max_age_ms": "9"},
            400,
            "bad_max_age_ms",
        ),
        (
            "PUT",
            "/admin/flags/suggest",
            {"level": "bounded", "max_age_ms": True},
            400,
            "bad_max_age_ms",
        ),
        (
            "PUT",
            "/admin/flags/suggest",
            {"level": "session", "max_age_ms": 900},
            400,
            "bad_max_age_ms",
        ),
        (
            "PUT",
            "/admin/flags/suggest",
            {"stale_ok": True, "max_age_ms": 900},
            400,
            "bad_max_age_ms",
        ),
        ("PUT", "/admin/flags/suggest", {"max_age_ms": 900}, 400, "bad_flag"),
        ("GET", "/admin/terms/nowhere", None, 404, "unknown_term"),
        ("GET", "/admin/nothing", None, 404, "not_found"),
    ],
)
def test_admin_refuses_bad_input(
    client: TestClient, method: str, path: str, body: object, status: int, code: str
) -> None:
    """Bad admin requests get their status and a JSON error code."""
    response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code


def test_admin_body_must_be_small_json(client: TestClient) -> None:
    """Bodies that are not JSON objects, or are over 4 KiB, are refused."""
    assert client.put("/admin/terms/x", content=b"[1]").json()["error"] == "bad_json"
    big = client.put("/admin/terms/x", content=b"{" + b" " * 5000 + b"}")
    assert big.status_code == 413


@pytest.mark.parametrize("path", ["/admin/terms/x", "/admin/flags/suggest"])
def test_deeply_nested_admin_bodies_are_bad_json_not_500(client: TestClient, path: str) -> None:
    """Nesting deeper than the JSON parser recurses is a 400 with a JSON body."""
    for depth in (20, 2000):
        response = client.put(path, content=b'{"weight": ' + b"[" * depth + b"]" * depth + b"}")
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_json"
    surrogate = client.put(path, content=b'{"weight": 1, "stale_ok": true, "x": "\\udfff"}')
    assert (surrogate.status_code, surrogate.json()["error"]) == (400, "bad_text")
    assert client.get("/healthz").status_code == 200


def test_a_flag_is_a_level_and_stale_ok_is_its_shorthand(client: TestClient) -> None:
    """Level-shaped flags: ``{"level": ...}`` sets it, ``{"stale_ok": ...}`` too (tolerant or
    strict), and every answer shows level, params, stale_ok and mode."""
    none: dict[str, object] = {"params": {}, "max_age_ms": None}
    strict = {"level": "strict", **none, "stale_ok": False, "mode": "strict"}
    tolerant = {"level": "tolerant", **none, "stale_ok": True, "mode": "tolerant"}
    assert client.put("/admin/flags/cursors", json={"level": "strict"}).json() == {
        "feature": "cursors",
        **strict,
    }
    assert client.get("/admin/flags").json()["cursors"] == strict
    assert client.put("/admin/flags/cursors", json={"stale_ok": True}).json()["level"] == "tolerant"
    status = client.get("/admin/status").json()
    assert status["flags"]["cursors"] == tolerant
    assert status["features"]["cursors"] == tolerant  # no data: no version
    assert status["features"]["suggest"]["version"] == status["published"]


def test_levels_bounded_and_session_with_their_bound(client: TestClient) -> None:
    """Bounded takes max_age_ms (else the core's default, LIGHTCONE_BOUNDED_MAX_AGE_MS);
    GET shows level, max_age_ms (null unless bounded) and stale_ok (false only for strict);
    cursors support strict and tolerant only, and say so."""
    put = client.put("/admin/flags/suggest", json={"level": "bounded", "max_age_ms": 1500})
    assert put.json() == {
        "feature": "suggest",
        "level": "bounded",
        "params": {"max_age_ms": 1500},
        "max_age_ms": 1500,
        "stale_ok": True,
        "mode": "bounded",
    }
    assert client.get("/admin/flags").json()["suggest"]["max_age_ms"] == 1500
    default = client.put("/admin/flags/suggest", json={"level": "bounded"}).json()
    assert default["max_age_ms"] == DEFAULT_MAX_AGE_MS
    session = client.put("/admin/flags/suggest", json={"level": "session"}).json()
    assert (session["level"], session["max_age_ms"], session["stale_ok"]) == ("session", None, True)
    assert client.put("/admin/flags/suggest", json={"stale_ok": False}).json()["level"] == "strict"
    refused = client.put("/admin/flags/cursors", json={"level": "bounded", "max_age_ms": 900})
    assert refused.status_code == 400
    assert (
        refused.json()["message"] == "'cursors' supports the levels strict, tolerant, not 'bounded'"
    )
    client.put("/admin/flags/suggest", json={"stale_ok": True})


def test_a_bounded_flag_keeps_its_bound_across_restarts(tmp_path: Path) -> None:
    with TestClient(create_app(settings(tmp_path))) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        client.put("/admin/flags/suggest", json={"level": "bounded", "max_age_ms": 4321})
    with TestClient(create_app(settings(tmp_path, bounded_max_age_ms=100))) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        assert client.get("/admin/flags").json()["suggest"]["max_age_ms"] == 4321


def test_flags_persist_across_restarts(tmp_path: Path) -> None:
    """A flag set through the API outlives the process; env defaults only fill the gaps."""
    with TestClient(create_app(settings(tmp_path))) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        client.put("/admin/flags/suggest", json={"stale_ok": False})
    again = settings(tmp_path, suggest_stale_ok=True)
    with TestClient(create_app(again)) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        flags = client.get("/admin/flags").json()
    assert flags["suggest"]["mode"] == "strict"
    assert flags["cursors"]["mode"] == "tolerant"


def test_a_different_corpus_on_a_seeded_database_is_refused(tmp_path: Path) -> None:
    """Starting on a seeded data dir with another --corpus fails with a clear message."""
    with TestClient(create_app(settings(tmp_path))):
        pass
    other = tmp_path / "other.tsv"
    other.write_text("Elsewhere\t5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="fresh --data-dir"):
        with TestClient(create_app(settings(tmp_path, corpus=other))):
            pass


def test_tokens_are_required_off_loopback(tmp_path: Path) -> None:
    """Without tokens, a core bound to a public address refuses to start."""
    public = from_environ(CoreSettings, {}, data_dir=tmp_path, host="0.0.0.0")
    with pytest.raises(ConfigError, match="LIGHTCONE_LINK_TOKEN"):
        create_app(public)


@pytest.mark.parametrize("bound", ["0", "60001", "-1"])
def test_a_default_bound_out_of_range_is_refused_at_start(tmp_path: Path, bound: str) -> None:
    with pytest.raises(ConfigError, match="LIGHTCONE_BOUNDED_MAX_AGE_MS"):
        from_environ(CoreSettings, {"LIGHTCONE_BOUNDED_MAX_AGE_MS": bound}, data_dir=tmp_path)
