"""Who may do what (issue 9, findings 10 and 11), against real processes.

Each test first makes the attack of the finding, then checks the promise: a cross-site page
gets no websocket; a join needs a token for its room, name and session when room auth is
on; a wrong link token gets no websocket at all; the demo's control API obeys only its own
pages and holders of its capability; its status file is private. The nodes keep serving.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from shared import roomtoken
from shared.protocol import Error, Join, Message, Presence, Suggest, Suggestions, decode, encode
from tests.e2e.test_up import start_up, until_ready
from tests.helpers.clients import ws_url
from tests.helpers.nodes import LINK_TOKEN, Node, admin, start_core, start_edge

pytestmark = pytest.mark.e2e

SECRET = "hostile-room-secret-" + "k" * 32
ROOM_AUTH = {"LIGHTCONE_ROOM_SECRET": SECRET, "LIGHTCONE_ROOM_AUTH": "token"}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    """A core and an edge with room tokens on."""
    tmp = tmp_path_factory.mktemp("authz")
    core = start_core(tmp, env={"LIGHTCONE_ROOM_SECRET": SECRET})
    try:
        edge = start_edge(tmp, core.url, "syd", env=ROOM_AUTH)
        try:
            yield core, edge
        finally:
            edge.stop()
    finally:
        core.stop()
    for node in (core, edge):
        assert not node.errors(), node.errors()


async def ask(url: str, message: Message, **options: Any) -> Message:
    async with connect(url, **options) as ws:
        await ws.send(encode(message))
        return decode(await ws.recv(decode=False))


async def test_a_cross_site_page_gets_no_websocket(nodes: tuple[Node, Node]) -> None:
    _, edge = nodes
    with pytest.raises(InvalidStatus) as refused:
        await ask(ws_url(edge), Suggest(1, "syd"), origin=Origin("https://evil.example"))
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body or b"")["error"] == "origin_not_allowed"
    # Not a browser (no Origin), and the edge's own page: served.
    answer = await ask(ws_url(edge), Suggest(2, "syd"))
    assert isinstance(answer, Suggestions) and answer.items
    own = await ask(ws_url(edge), Suggest(3, "syd"), origin=Origin(edge.url))
    assert isinstance(own, Suggestions)
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{edge.url}/metrics/")).text
    assert "lightcone_ws_origin_refused_total 1.0" in metrics


async def test_joins_need_a_token_for_their_room_name_and_session(
    nodes: tuple[Node, Node],
) -> None:
    core, edge = nodes
    with admin(core) as client:
        body = {"room": "vip", "name": "Ada", "session": "ada-session"}
        minted = client.post("/admin/room-tokens", json=body).json()
    good = minted["token"]
    expired = roomtoken.mint(
        SECRET, room="vip", name="Ada", session="ada-session", ttl_s=60, now=time.time() - 3600
    )
    forged = roomtoken.mint("f" * 32, room="vip", name="Ada", session="ada-session")
    attacks = [
        (Join("vip", "Ada", "#ff0000", "ada-session"), "unauthorized"),
        (Join("vip", "Ada", "#ff0000", "ada-session", "x.y.z"), "bad_token"),
        (Join("vip", "Ada", "#ff0000", "ada-session", forged), "bad_token"),
        (Join("vip", "Ada", "#ff0000", "ada-session", expired), "token_expired"),
        (Join("vip", "Eve", "#ff0000", "ada-session", good), "bad_token"),  # another name
        (Join("vip", "Ada", "#ff0000", "eve-session", good), "bad_token"),  # another session
        (Join("lobby", "Ada", "#ff0000", "ada-session", good), "bad_token"),  # another room
    ]
    for join, code in attacks:
        answer = await ask(ws_url(edge), join)
        assert isinstance(answer, Error) and answer.code == code, (join, answer)
    # The rightful member gets in, and is alone: no refused join left a member behind.
    answer = await ask(ws_url(edge), Join("vip", "Ada", "#ff0000", "ada-session", good))
    assert isinstance(answer, Presence)
    assert [m.name for m in answer.members] == ["Ada"]


async def test_a_wrong_link_token_gets_no_websocket(nodes: tuple[Node, Node]) -> None:
    core, _ = nodes
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(core, "/link"), additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401


def test_an_edge_with_a_wrong_link_token_says_so(nodes: tuple[Node, Node], tmp_path: Path) -> None:
    """It logs a clear error and keeps retrying; the core keeps serving."""
    core, _ = nodes
    args = ["edge", "--port", "0", "--region", "lhr", "--core-url", core.url]
    env = {"LIGHTCONE_LINK_TOKEN": "not-" + LINK_TOKEN, "LIGHTCONE_RECONNECT_MAX_S": "0.2"}
    impostor = Node(args, env, tmp_path / "impostor.log")
    try:
        impostor.wait_for(r"the core refused the link token \(HTTP 401\)", 30)
    finally:
        impostor.stop()
    assert httpx.get(f"{core.url}/readyz").status_code == 200


async def test_the_demo_control_api_obeys_only_its_own_pages(tmp_path: Path) -> None:
    status_file = tmp_path / "status.json"
    process = await start_up(tmp_path, "--edges", "syd", "--users", "syd")
    assert process.stdout is not None
    try:
        await until_ready(process.stdout)
        # The status file holds the admin token and the capability: this user only.
        assert stat.S_IMODE(os.stat(status_file).st_mode) == 0o600
        topology: dict[str, Any] = json.loads(status_file.read_text())
        control = topology["control_url"]
        page = next(e for e in topology["entries"] if e["kind"] == "edge")["url"]
        bare = control.split("/c/")[0]
        async with httpx.AsyncClient(timeout=10) as client:
            # A page that guessed the port but not the capability.
            assert (await client.post(f"{bare}/partition/syd")).status_code == 404
            assert (await client.get(f"{bare}/c/guess/topology")).status_code == 404
            # DNS rebinding: the right address and path, under the attacker's name.
            rebound = await client.post(
                f"{control}/partition/syd", headers={"Host": "rebind.evil.example"}
            )
            assert rebound.status_code == 403 and rebound.json()["error"] == "bad_host"
            # A cross-site POST (a form or no-cors fetch) from another site.
            cross = await client.post(
                f"{control}/partition/syd", headers={"Origin": "https://evil.example"}
            )
            assert cross.status_code == 403 and cross.json()["error"] == "origin_not_allowed"
            state = (await client.get(f"{control}/topology")).json()
            assert not any(state["partitions"].values()), "an attack cut a link"
            # The demo's own page: a room token through the control API, and it joins.
            token = await client.post(
                f"{control}/room-token",
                json={"room": "demo", "name": "Page", "session": "page-session"},
                headers={"Origin": page},
            )
            assert token.status_code == 200
            assert token.headers["access-control-allow-origin"] == page
        entry = page.replace("http://", "ws://") + "/ws"
        join = Join("demo", "Page", "#00aa00", "page-session", token.json()["token"])
        assert isinstance(await ask(entry, join, origin=Origin(page)), Presence)
        # Room tokens are on in the demo: no token, no join.
        tokenless = await ask(entry, Join("demo", "Page", "#00aa00", "page-session"))
        assert isinstance(tokenless, Error) and tokenless.code == "unauthorized"
        # lightcone partition/heal still find the API through the status file.
        for verb in ("partition", "heal"):
            cli = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shared.cli", verb, "syd", "--status-file", str(status_file),
                stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            assert await cli.wait() == 0, verb
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            await process.stdout.read()
            code = await process.wait()
    assert code == 0
