"""The notice board, registered through the seam: one line per app, nothing else outside it.

A real core and a real edge run in this process as uvicorn servers on ephemeral loopback
ports (``shared.server``, as ``lightcone core`` / ``lightcone edge`` run them), with a real
SQLite store in a tmp dir and a real link through a :class:`~deploy.local.latency.LatencyProxy`
the tests cut and heal; clients speak real HTTP and websockets. Every server is stopped at the
end of its test.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from core_region.app import FEATURES as CORE_FEATURES, create_app as create_core
from core_region.settings import CoreSettings
from deploy.local.latency import LatencyProxy
from edge_node.app import FEATURES as EDGE_FEATURES, create_app as create_edge
from edge_node.settings import EdgeSettings
from shared.errors import LightconeError
from shared.protocol import (
    PROTOCOL_VERSION,
    SUBPROTOCOL_JSON,
    Flags,
    Heartbeat,
    Hello,
    Message,
    RequestId,
    Snapshot,
    decode,
    encode,
)
from shared.server import GOING_AWAY_S, Server, bind, uvicorn_config
from tests.extending import notices
from tests.extending.notices import (
    MAX_NOTICE_CHARS,
    MAX_NOTICES,
    Board,
    NoticeBoard,
    Notices,
    NoticesCore,
    NoticesEdge,
    NoticesReads,
    NoticesState,
)
from tests.helpers.nodes import ADMIN_TOKEN, LINK_TOKEN, SMALL_CORPUS
from tests.helpers.waiting import eventually
from tests.test_docs import _literal_codes

DOCS = Path(__file__).resolve().parents[2] / "docs" / "extending.md"

HEARTBEAT_S, LINK_TIMEOUT_S = 0.2, 1.0
"""A link that notices a cut within a second (as tests.helpers.nodes.FAST_LINK)."""

WAIT_S = 15.0
"""Deadline of every wait for a condition (a busy machine is slow, never this slow)."""

# --- the pure core ---------------------------------------------------------------------------


def _refused(call: Any) -> str:
    with pytest.raises(LightconeError) as info:
        call()
    return info.value.code


def test_the_board_checks_every_bound_before_a_version_is_taken() -> None:
    board = Board()
    board.check_put("a", "hello")
    board.put("a", "hello", 7)
    assert (board.version, board.items()[0].text) == (7, "hello")
    assert _refused(lambda: board.check_put("", "x")) == "bad_id"
    assert _refused(lambda: board.check_put("b" * 129, "x")) == "bad_id"
    assert _refused(lambda: board.check_put("b", " ")) == "bad_notice"
    assert _refused(lambda: board.check_put("b", "x" * (MAX_NOTICE_CHARS + 1))) == "notice_too_long"
    assert _refused(lambda: board.check_put("b", "\u202e")) == "bad_text"
    assert _refused(lambda: board.check_remove("zz")) == "unknown_notice"
    for i in range(MAX_NOTICES - 1):
        board.put(f"n{i}", "x", 8 + i)
    assert _refused(lambda: board.check_put("new", "x")) == "board_full"
    board.check_put("a", "replacing one is fine when full")
    board.remove("a", 99)
    board.check_put("new", "x")
    assert board.version == 99


# --- a real core and edge in this process ----------------------------------------------------


@dataclass
class Served:
    app: Starlette
    server: Server
    task: asyncio.Task[None]
    url: str

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def serve(app: Starlette, ws_max_size: int) -> Served:
    """``app`` under uvicorn as the CLI serves it, on an ephemeral loopback port."""
    sockets = bind("127.0.0.1", 0)
    server = Server(uvicorn_config(app, ws_max_size=ws_max_size), app, GOING_AWAY_S)
    task = asyncio.create_task(server.serve(sockets=sockets))

    async def started() -> bool:
        if task.done():
            task.result()  # a server that failed to start says why
        return server.started

    await eventually(started, WAIT_S, "the server started")
    return Served(app, server, task, f"http://127.0.0.1:{sockets[0].getsockname()[1]}")


@dataclass
class Cluster:
    core: Served
    edge: Served
    proxy: LatencyProxy
    admin: httpx.AsyncClient
    http: httpx.AsyncClient

    async def board(self) -> dict[str, Any]:
        answer = await self.http.get(f"{self.edge.url}/notices")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def edge_status(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.http.get(f"{self.edge.url}/status")).json()
        return body

    async def core_status(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.admin.get("/admin/status")).json()
        return body

    async def post(self, notice_id: str, text: str) -> int:
        answer = await self.admin.put(f"/admin/notices/{notice_id}", json={"text": text})
        assert answer.status_code == 200, answer.text
        version: int = answer.json()["version"]
        return version

    async def flag(self, feature: str, level: str) -> None:
        answer = await self.admin.put(f"/admin/flags/{feature}", json={"level": level})
        assert answer.status_code == 200, answer.text

    async def until_board(self, version: int) -> dict[str, Any]:
        async def at_version() -> dict[str, Any] | None:
            board = await self.board()
            return board if board["version"] == version else None

        return await eventually(at_version, WAIT_S, f"the edge serves the board at v{version}")

    async def until_link(self, state: str) -> None:
        async def there() -> bool:
            return bool((await self.edge_status())["link"] == state)

        await eventually(there, WAIT_S, f"the edge's link is {state}")

    async def snapshots_loaded(self) -> float:
        text = (await self.http.get(f"{self.edge.url}/metrics/")).text
        found = re.search(r"^lightcone_snapshots_loaded_total (\S+)$", text, re.MULTILINE)
        assert found is not None
        return float(found.group(1))


@pytest.fixture
async def cluster(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Cluster]:
    """A core and an edge with the notice board; no node logs an error while they run."""
    core_settings = CoreSettings(
        data_dir=tmp_path / "core-data",
        corpus=SMALL_CORPUS,
        admin_token=ADMIN_TOKEN,
        link_token=LINK_TOKEN,
        heartbeat_s=HEARTBEAT_S,
        link_timeout_s=LINK_TIMEOUT_S,
    )
    core_settings.data_dir.mkdir()
    core = await serve(
        create_core(core_settings, features=(*CORE_FEATURES, NoticesCore)),
        core_settings.max_link_message_bytes,
    )
    proxy = LatencyProxy("127.0.0.1", int(core.url.rsplit(":", 1)[1]), name="link")
    await proxy.start()
    edge_settings = EdgeSettings(
        core_url=f"http://127.0.0.1:{proxy.port}",
        region="syd",
        link_token=LINK_TOKEN,
        reconnect_max_s=0.3,
        heartbeat_s=HEARTBEAT_S,
        link_timeout_s=LINK_TIMEOUT_S,
    )
    edge = await serve(
        create_edge(edge_settings, features=(*EDGE_FEATURES, NoticesEdge)),
        edge_settings.max_frame_bytes,
    )
    admin = httpx.AsyncClient(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    http = httpx.AsyncClient()
    running = Cluster(core, edge, proxy, admin, http)
    try:

        async def ready() -> bool:
            return (await http.get(f"{edge.url}/readyz")).status_code == 200

        await eventually(ready, WAIT_S, "the edge is ready")
        await running.until_link("up")
        yield running
    finally:
        await http.aclose()
        await admin.aclose()
        await edge.stop()
        proxy.heal()
        await proxy.close()
        await core.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def ws_board(cluster: Cluster, request_id: RequestId) -> dict[str, Any]:
    """The board through a real client websocket (JSON codec): ``notices`` → ``notice_board``."""
    ws_url = cluster.edge.url.replace("http", "ws", 1) + "/ws"
    async with connect(ws_url, subprotocols=[Subprotocol(SUBPROTOCOL_JSON)]) as ws:
        await ws.send(json.dumps({"type": "notices", "id": request_id}))
        async with asyncio.timeout(WAIT_S):
            answer: dict[str, Any] = json.loads(await ws.recv())
    return answer


async def test_a_notice_posted_on_the_core_reaches_the_edge(cluster: Cluster) -> None:
    empty = await cluster.board()
    assert (empty["notices"], empty["version"], empty["mode"]) == ([], -1, "tolerant")
    version = await cluster.post("maintenance", "Read-only from 02:00 UTC")
    board = await cluster.until_board(version)
    assert board["notices"] == [{"id": "maintenance", "text": "Read-only from 02:00 UTC"}]
    assert (board["stale"], board["region"]) == (False, "syd")
    answer = await ws_board(cluster, 7)
    assert answer["type"] == "notice_board"
    assert (answer["id"], answer["version"], answer["notices"]) == (7, version, board["notices"])

    async def reads_reported() -> bool:  # edge → core: the edge's total of answers
        reads = (await cluster.edge_status())["notices"]["reads"]
        return bool(reads > 1 and (await cluster.core_status())["notices"]["reads"] == reads)

    await eventually(reads_reported, WAIT_S, "the core has the edge's count of answers")

    removed = await cluster.admin.delete("/admin/notices/maintenance")
    assert removed.json() == {"id": "maintenance", "status": "removed", "version": version + 1}
    assert (await cluster.until_board(version + 1))["notices"] == []
    # Every route of the feature is in the edge's and the core's OpenAPI documents.
    edge_doc = (await cluster.http.get(f"{cluster.edge.url}/openapi.json")).json()
    core_doc = (await cluster.http.get(f"{cluster.core.url}/openapi.json")).json()
    assert "/notices" in edge_doc["paths"]
    assert set(core_doc["paths"]["/admin/notices/{id}"]) == {"put", "delete"}


async def test_bad_writes_get_clear_errors_and_take_no_version(cluster: Cluster) -> None:
    before = (await cluster.core_status())["version"]
    bad = [
        ("/admin/notices/a", {"text": ""}, 400, "bad_notice"),
        ("/admin/notices/a", {"text": "x" * (MAX_NOTICE_CHARS + 1)}, 400, "notice_too_long"),
        ("/admin/notices/a", {"words": "x"}, 400, "bad_field"),
        ("/admin/notices/" + "i" * 129, {"text": "x"}, 400, "bad_id"),
    ]
    for path, body, status, code in bad:
        answer = await cluster.admin.put(path, json=body)
        assert (answer.status_code, answer.json()["error"]) == (status, code), path
    gone = await cluster.admin.delete("/admin/notices/nothing")
    assert (gone.status_code, gone.json()["error"]) == (404, "unknown_notice")
    assert (await cluster.core_status())["version"] == before
    unauthorized = await cluster.http.put(f"{cluster.core.url}/admin/notices/a", json={"text": "x"})
    assert unauthorized.status_code == 401
    async with connect(cluster.edge.url.replace("http", "ws", 1) + "/ws") as ws:
        await ws.send(encode(NoticesState(3, [])))  # a link message, from a client
        refused = decode(await ws.recv(decode=False))
    assert getattr(refused, "code", None) == "unexpected_type"


async def test_the_board_has_a_version_of_its_own(cluster: Cluster) -> None:
    board_v = await cluster.post("welcome", "Hello")
    term = await cluster.admin.put("/admin/terms/zanzibar", json={"weight": 10**9})
    suggest_v: int = term.json()["version"]
    assert suggest_v > board_v  # one global sequence

    # A suggestion write moves the global version, not the board's.
    status = await cluster.core_status()
    assert status["version"] == suggest_v
    assert status["features"]["notices"]["version"] == board_v
    assert status["features"]["suggest"]["version"] == suggest_v

    async def edge_holds_both() -> dict[str, Any] | None:
        features = (await cluster.edge_status())["features"]
        held = (features["suggest"]["version"], features["notices"]["version"])
        return features if held == (suggest_v, board_v) else None

    features = await eventually(edge_holds_both, WAIT_S, "the edge holds both versions")
    assert not features["notices"]["stale"] and not features["suggest"]["stale"]
    assert (await cluster.board())["version"] == board_v

    # A board write does not make suggestions stale: a read that must see it is served by
    # the suggestion index as it is (it already reflects that version), at once.
    board_v2 = await cluster.post("welcome", "Hello again")
    await cluster.until_board(board_v2)
    read = await cluster.http.get(
        f"{cluster.edge.url}/suggest", params={"q": "zanz", "min_version": board_v2}
    )
    assert read.status_code == 200, read.text
    assert (read.json()["version"], read.json()["stale"]) == (suggest_v, False)

    # The edge's heartbeats carry a version per feature (the core shows what each edge holds).
    async def core_sees_edge() -> bool:
        edges = (await cluster.core_status())["edges"]
        return [e["versions"] for e in edges] == [{"suggest": suggest_v, "notices": board_v2}]

    await eventually(core_sees_edge, WAIT_S, "the core sees the edge's versions")


async def test_a_new_link_catches_up_only_the_features_it_lacks(cluster: Cluster) -> None:
    """A second edge, spoken by hand on a real link: holding the suggestion head but no
    board, it gets the board and no snapshot; the core's heartbeats name both versions."""
    board_v = await cluster.post("welcome", "Hello")
    suggest_v = (await cluster.core_status())["features"]["suggest"]["version"]
    link_url = cluster.core.url.replace("http", "ws", 1) + "/link"
    auth = {"Authorization": f"Bearer {LINK_TOKEN}"}
    epoch = (await cluster.core_status())["epoch"]
    versions = {"suggest": suggest_v, "notices": -1}
    hello = Hello("hand", "hand-0001", suggest_v, epoch, PROTOCOL_VERSION, versions)
    received: list[Message] = []
    async with connect(link_url, additional_headers=auth, max_size=None) as ws:
        await ws.send(encode(hello))
        async with asyncio.timeout(WAIT_S):
            while not received or not isinstance(received[-1], Heartbeat):
                received.append(decode(await ws.recv(decode=False), strict=False))

        await ws.send(encode(NoticesReads(1000)))

        async def counted(edges: int, hand_reads: int) -> bool:
            status = (await cluster.core_status())["notices"]
            reads = (await cluster.edge_status())["notices"]["reads"]
            return bool(status["linked_edges"] == edges and status["reads"] == reads + hand_reads)

        await eventually(lambda: counted(2, 1000), WAIT_S, "the core counts the hand link")
    await eventually(lambda: counted(1, 0), WAIT_S, "the core forgets the hand link")
    kinds = [type(m) for m in received]
    assert kinds == [NoticesState, Flags, Heartbeat]  # no snapshot: it held the head
    state = received[0]
    assert isinstance(state, NoticesState) and state.version == board_v
    heartbeat = received[-1]
    assert isinstance(heartbeat, Heartbeat)
    assert heartbeat.versions == {"suggest": suggest_v, "notices": board_v}
    assert not any(isinstance(m, Snapshot) for m in received)


@pytest.mark.parametrize("versions", [{"suggest": None}, {}], ids=["without-board", "legacy"])
async def test_an_edge_without_the_board_hears_nothing_of_it(
    cluster: Cluster, versions: dict[str, None]
) -> None:
    """Deploying a feature on the core first: an edge that does not name it in ``hello``
    (built without it, or from before per-feature versions) gets none of its frames, at the
    link's start or when it changes; it still gets its suggestions."""
    suggest_v = (await cluster.core_status())["features"]["suggest"]["version"]
    epoch = (await cluster.core_status())["epoch"]
    link_url = cluster.core.url.replace("http", "ws", 1) + "/link"
    auth = {"Authorization": f"Bearer {LINK_TOKEN}"}
    held = {name: suggest_v for name in versions}
    hello = Hello("hand", "hand-0002", suggest_v, epoch, PROTOCOL_VERSION, held)
    received: list[Message] = []
    async with connect(link_url, additional_headers=auth, max_size=None) as ws:
        await ws.send(encode(hello))

        async def heartbeats(count: int) -> None:
            seen = 0
            async with asyncio.timeout(WAIT_S):
                while seen < count:
                    received.append(decode(await ws.recv(decode=False), strict=False))
                    seen += isinstance(received[-1], Heartbeat)

        await heartbeats(1)
        await cluster.post("later", "Posted while the hand link is up")
        await heartbeats(2)  # a heartbeat after the publication: the board went out by then
    assert not any(isinstance(m, NoticesState) for m in received)
    assert isinstance(received[0], Flags)  # first: no snapshot (it held the head), no board


async def test_the_flag_flips_at_run_time_and_the_answer_says_which(cluster: Cluster) -> None:
    version = await cluster.post("a", "first")
    await cluster.until_board(version)
    await cluster.flag("notices", "strict")

    async def strict() -> bool:
        return bool((await cluster.board())["mode"] == "strict")

    await eventually(strict, WAIT_S, "the edge answers in strict mode")
    answer = await ws_board(cluster, "s1")
    assert (answer["mode"], answer["version"]) == ("strict", version)
    flags = (await cluster.edge_status())["flags"]
    assert (flags["notices"]["mode"], flags["suggest"]["mode"]) == ("strict", "tolerant")
    # Strict reads see a write at once: no waiting for the push, the read syncs first.
    newer = await cluster.post("b", "second")
    assert (await cluster.board())["version"] == newer

    await cluster.flag("notices", "tolerant")

    async def tolerant() -> bool:
        return bool((await cluster.board())["mode"] == "tolerant")

    await eventually(tolerant, WAIT_S, "the edge answers in tolerant mode again")


async def test_with_the_link_down_the_board_is_served_stale_and_strict_fails_fast(
    cluster: Cluster,
) -> None:
    first = await cluster.post("a", "before the cut")
    await cluster.until_board(first)
    snapshots = await cluster.snapshots_loaded()
    received = (await cluster.edge_status())["notices"]["boards_received"]

    cluster.proxy.cut()
    await cluster.until_link("down")
    board = await cluster.board()  # tolerant: from the edge's copy, marked stale
    assert (board["version"], board["stale"], board["mode"]) == (first, True, "tolerant")
    assert board["notices"] == [{"id": "a", "text": "before the cut"}]
    assert (await cluster.edge_status())["notices"]["link"] == "down"

    async def linked(count: int) -> bool:
        return bool((await cluster.core_status())["notices"]["linked_edges"] == count)

    await eventually(lambda: linked(0), WAIT_S, "the core sees the edge gone")
    # Meanwhile, on the core: the board changes and the flag turns strict.
    second = await cluster.post("b", "during the cut")
    await cluster.flag("notices", "strict")

    cluster.proxy.heal()
    await cluster.until_board(second)  # the catch-up frames come first, then the flags

    async def caught_up() -> dict[str, Any] | None:
        board = await cluster.board()
        return board if board["mode"] == "strict" else None

    board = await eventually(caught_up, WAIT_S, "the edge has the flag set during the cut")
    assert (board["version"], board["stale"]) == (second, False)
    await eventually(lambda: linked(1), WAIT_S, "the core counts the edge again")
    # It caught up only what it lacked: one board, no suggestion snapshot.
    status = await cluster.edge_status()
    assert status["notices"]["boards_received"] == received + 1
    assert await cluster.snapshots_loaded() == snapshots

    cluster.proxy.cut()
    await cluster.until_link("down")
    started = time.monotonic()
    failed = await cluster.http.get(f"{cluster.edge.url}/notices")
    took = time.monotonic() - started
    assert (failed.status_code, failed.json()["error"]) == (503, "core_unreachable")
    # At once: it did not wait out the strict timeout (1.5 s) for a link that is down.
    assert took < cluster.edge.app.state.settings.strict_timeout_ms / 1000
    answer = await ws_board(cluster, 9)
    assert (answer["type"], answer["id"], answer["code"]) == ("error", 9, "core_unreachable")

    cluster.proxy.heal()
    await cluster.until_link("up")
    await eventually(lambda: linked(1), WAIT_S, "the core counts the edge again")
    # Nothing changed meanwhile: the new link sends no board at all.
    status = await cluster.edge_status()
    assert status["notices"]["boards_received"] == received + 1
    assert (await cluster.board())["version"] == second


def test_the_worked_example_documents_its_messages_and_codes() -> None:
    """What tests/test_docs.py asks of the project's own, asked of this feature's page: a
    JSON example of each of its messages, and each error code its source raises."""
    text = DOCS.read_text(encoding="utf-8")
    for cls in (Notices, NoticeBoard, NoticesState, NoticesReads):
        assert re.search(rf'"type"\s*:\s*"{cls.TYPE}"', text), cls.TYPE
    codes: set[str] = set()
    for path in sorted(Path(notices.__file__).parent.glob("*.py")):
        codes |= _literal_codes(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    assert {"board_full", "unknown_notice", "bad_field"} <= codes
    assert sorted(c for c in codes if f"`{c}`" not in text) == []
