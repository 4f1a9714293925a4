"""The mesh's pure state: the peers setting, the dial rule, who may link, who is ready."""

from __future__ import annotations

import pytest

from edge_node.mesh.peers import (
    ADMITTED,
    FULL,
    MAX_PEER_FRAMES,
    SAME_REGION,
    WRONG_DIALER,
    MeshTable,
    parse_peers,
)
from edge_node.settings import EdgeSettings
from shared.config import ConfigError, from_environ
from shared.protocol import dials


def test_peers_parse_with_urls_or_a_template_and_skip_the_own_region() -> None:
    text = "ams=ws://10.0.0.1:8090/mesh, sin , syd"
    template = "ws://{region}.app.internal:8090/mesh"
    assert parse_peers(text, "syd", template) == {
        "ams": "ws://10.0.0.1:8090/mesh",
        "sin": "ws://sin.app.internal:8090/mesh",
    }
    assert parse_peers("", "syd") == {}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("sin", "no URL"),
        ("=ws://h:1/mesh", "no region"),
        ("sin=ws://a:1/mesh,sin=ws://b:1/mesh", "twice"),
        ("sin=http://a:1/mesh", "not ws://"),
    ],
)
def test_a_peers_setting_that_does_not_parse_says_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_peers(text, "syd")


def test_of_each_pair_exactly_one_dials() -> None:
    regions = ["ams", "iad", "sin", "syd"]
    for a in regions:
        for b in regions:
            if a != b:
                assert dials(a, b) != dials(b, a)
    table = MeshTable("iad", {r: f"ws://{r}/mesh" for r in regions if r != "iad"}, max_peers=8)
    assert sorted(table.dialed()) == ["sin", "syd"]


def test_admission_follows_the_dial_rule_and_the_link_budget() -> None:
    table = MeshTable("iad", {}, max_peers=2)
    assert table.admit("iad") == SAME_REGION
    assert table.admit("sin") == WRONG_DIALER  # iad dials sin, not the other way
    assert table.admit("ams") == ADMITTED
    table.opened("ams", "ams-1", 0.0)
    table.opened("fra", "fra-1", 0.0)
    assert table.admit("cdg") == FULL
    assert table.admit("ams") == ADMITTED  # a newer link of a region it has replaces it


def test_beyond_the_budget_an_edge_dials_only_its_first_peers() -> None:
    peers = {f"r{n:02}": f"ws://r{n:02}/mesh" for n in range(20)}
    assert list(MeshTable("a", peers, max_peers=16).dialed()) == sorted(peers)[:16]


def test_a_link_is_ready_only_while_heard_both_ways_with_room_in_its_queue() -> None:
    table = MeshTable("iad", {}, max_peers=4)
    link = table.opened("sin", "sin-1", 10.0)
    assert table.ready(10.5, 1.0, {}) == {"sin"}
    assert table.ready(11.2, 1.0, {}) == frozenset()  # unheard for over a heartbeat
    link.beat(200, 11.3)
    assert table.ready(11.4, 1.0, {}) == {"sin"}  # heard again: back on the mesh
    link.beat(1500, 11.5)  # the peer has not heard this edge for 1.5 s: a one-way cut
    assert table.ready(11.6, 1.0, {}) == frozenset()
    link.beat(0, 11.7)
    assert table.ready(11.8, 1.0, {"sin": MAX_PEER_FRAMES // 2 + 1}) == frozenset()
    assert table.view(11.8, 1.0, {})["sin"] == {"state": "up", "dials": True, "heard_ms": 100}


def test_an_old_link_closing_does_not_close_its_replacement() -> None:
    table = MeshTable("syd", {}, max_peers=4)
    old = table.opened("ams", "ams-1", 0.0)
    new = table.opened("ams", "ams-2", 1.0)
    assert table.closed(old) is False and table.links["ams"] is new
    assert table.closed(new) is True and table.links == {}
    assert table.view(2.0, 1.0, {}) == {}


def test_a_bad_mesh_setting_stops_the_edge_with_the_variable_named() -> None:
    base = {"LIGHTCONE_CORE_URL": "http://127.0.0.1:8081", "LIGHTCONE_REGION": "syd"}
    with pytest.raises(ConfigError, match="LIGHTCONE_MESH_PEER_URL is empty"):
        from_environ(EdgeSettings, {**base, "LIGHTCONE_MESH_PEERS": "sin"})
    with pytest.raises(ConfigError, match="LIGHTCONE_MESH_PORT"):
        from_environ(EdgeSettings, {**base, "LIGHTCONE_MESH_PORT": "70000"})
    off = from_environ(
        EdgeSettings, {**base, "LIGHTCONE_MESH": "false", "LIGHTCONE_MESH_PORT": "0"}
    )
    assert not off.mesh_on
    assert not from_environ(EdgeSettings, base).mesh_on  # no listener, no peer: no mesh
