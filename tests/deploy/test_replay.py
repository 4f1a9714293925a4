"""Admin requests at an edge: ``fly-replay`` to the core app outside the primary region only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from edge_node.replay import FlySettings, admin_routes, core_app_of, replay_target
from tests.deploy.conftest import Running, start_edge
from tests.deploy.image import fly_toml

CORE_URL = "http://lightcone-core.internal:8081"
AWAY = FlySettings(fly_region="lhr", primary_region="iad", app_name="lightcone-edge")


def test_replays_only_away_from_the_primary_region() -> None:
    """Different regions replay to the core app; same region, or off Fly, do not."""
    assert replay_target(AWAY, CORE_URL) == "app=lightcone-core"
    home = FlySettings(fly_region="iad", primary_region="iad", app_name="lightcone-edge")
    assert replay_target(home, CORE_URL) is None
    assert replay_target(FlySettings(), CORE_URL) is None
    assert replay_target(FlySettings(fly_region="lhr"), CORE_URL) is None


def test_replay_target_names_the_core_app() -> None:
    """LIGHTCONE_CORE_APP wins; else the app of a .internal URL; never this app itself."""
    named = FlySettings(fly_region="lhr", primary_region="iad", core_app="other-core")
    assert replay_target(named, CORE_URL) == "app=other-core"
    assert replay_target(AWAY, "http://127.0.0.1:8081") is None
    loop = FlySettings(fly_region="lhr", primary_region="iad", app_name="lightcone-core")
    assert replay_target(loop, CORE_URL) is None
    assert core_app_of("http://iad.lightcone-core.internal:8081") == "lightcone-core"
    assert core_app_of("http://top1.nearest.of.x.internal") == "x"
    assert core_app_of("http://lightcone-core.fly.dev") is None
    assert core_app_of("http://internal") is None


def test_settings_come_from_the_fly_environment() -> None:
    """FLY_REGION, PRIMARY_REGION, FLY_APP_NAME and LIGHTCONE_CORE_APP are read; "" is unset."""
    env = {"FLY_REGION": "syd", "PRIMARY_REGION": "iad", "FLY_APP_NAME": "e"}
    fly = FlySettings.read({**env, "LIGHTCONE_CORE_APP": ""})
    assert fly == FlySettings(fly_region="syd", primary_region="iad", app_name="e")


def test_every_method_and_path_under_admin_is_answered() -> None:
    """Any method on /admin and below gets the replay; other paths are not taken."""
    app = Starlette(routes=admin_routes(CORE_URL, AWAY))
    with TestClient(app) as client:
        for method, path in [
            ("PUT", "/admin/terms/New%20York"),
            ("DELETE", "/admin/terms/x"),
            ("POST", "/admin"),
            ("PATCH", "/admin/flags/suggest"),
            ("GET", "/admin/"),
            ("OPTIONS", "/admin/status"),
        ]:
            response = client.request(method, path)
            assert response.status_code == 409, (method, path)
            assert response.headers["fly-replay"] == "app=lightcone-core"
        assert client.get("/administrator").status_code == 404


# --- live edges, started as the image starts them -------------------------------------


@pytest.fixture(scope="module")
def edges(
    tmp_path_factory: pytest.TempPathFactory, image_core: Running
) -> Iterator[dict[str, Running]]:
    tmp: Path = tmp_path_factory.mktemp("replay")
    primary = fly_toml("edge")["primary_region"]
    started: dict[str, Running] = {}
    try:
        for region in ("lhr", primary):
            started[region] = start_edge(tmp, image_core, region)
        yield started
    finally:
        for edge in started.values():
            edge.node.stop()
    for edge in started.values():
        assert not edge.node.errors(), f"edge logged errors: {edge.node.errors()}"


@pytest.mark.e2e
def test_admin_write_at_a_remote_edge_is_replayed_to_the_core(edges: dict[str, Running]) -> None:
    """FLY_REGION=lhr, PRIMARY_REGION=iad: 409 with fly-replay: app=<core app>, body untouched."""
    core_app = fly_toml("core")["app"]
    with httpx.Client(base_url=edges["lhr"].url) as client:
        response = client.put("/admin/terms/Gotham", json={"weight": 5})
        assert response.status_code == 409
        assert response.headers["fly-replay"] == f"app={core_app}"
        assert response.json()["error"] == "replayed"
        assert client.get("/admin/status").headers["fly-replay"] == f"app={core_app}"
        suggest = client.get("/suggest", params={"q": "lon"}).json()
    assert suggest["region"] == "lhr", "FLY_REGION is the region answers report"


@pytest.mark.e2e
def test_admin_write_at_the_primary_region_edge_is_not_replayed(
    edges: dict[str, Running],
) -> None:
    """FLY_REGION == PRIMARY_REGION: 404 admin_on_core, and no fly-replay header."""
    primary = fly_toml("edge")["primary_region"]
    with httpx.Client(base_url=edges[primary].url) as client:
        response = client.put("/admin/terms/Gotham", json={"weight": 5})
    assert response.status_code == 404
    assert "fly-replay" not in response.headers
    assert response.json()["error"] == "admin_on_core"


@pytest.mark.e2e
async def test_admin_websocket_upgrade_is_denied_not_accepted(edges: dict[str, Running]) -> None:
    """An upgrade on /admin is refused before accept: with fly-replay away, without at home."""
    core_app = fly_toml("core")["app"]
    primary = fly_toml("edge")["primary_region"]
    for region, status, replay in [("lhr", 409, f"app={core_app}"), (primary, 404, None)]:
        url = f"ws://127.0.0.1:{edges[region].port}/admin/stream"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, open_timeout=5):
                pass
        assert refused.value.response.status_code == status
        assert refused.value.response.headers.get("fly-replay") == replay


@pytest.mark.e2e
def test_metrics_report_the_fly_region(edges: dict[str, Running]) -> None:
    """The edge's identity metric carries FLY_REGION (Fly adds the same region label)."""
    with httpx.Client() as client:
        text = client.get(f"{edges['lhr'].url}/metrics/").text
    assert 'lightcone_edge_info{region="lhr"} 1.0' in text
