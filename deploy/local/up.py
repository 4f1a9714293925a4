"""``lightcone up``: core nodes and edges on this machine, with simulated geography.

Every node is a real process running the same ``lightcone core`` / ``lightcone edge``
command Fly.io runs, on an ephemeral loopback port. Distance lives in latency proxies
(:mod:`deploy.local.latency`): each edge reaches each core node through one with the measured
one-way delay between their regions, and for each user city there are two entries — one to its
nearest edge, one to the *central* node (the edge in the core's region) — each delayed by
that user's RTT to the target (:func:`deploy.local.geography.user_rtt_ms`). One browser can feel
both.

Start-up shows progress until every node is ready; Ctrl-C (or SIGTERM) stops everything it
started; a node that crashes is reported and the exit code says so (1). A control API
(:mod:`deploy.local.control`) cuts and heals edge links for ``lightcone partition`` and the page,
and stops, crashes and starts core nodes for ``lightcone core-node`` and the page (a node
stopped that way is no crash: :mod:`deploy.local.cores`).

The store (``--store``): ``sqlite`` (the default) is a SQLite file under the data dir;
``postgres`` starts a throwaway PostgreSQL cluster (:mod:`deploy.local.postgres`) before the
core and stops and removes it after every node has stopped; a ``postgresql://`` URL is given to
the core as it is (through its environment, so the password is not in any process list). The
status file and the control API's topology name the store, never its password.

Core nodes (``--cores N``, 1 to :data:`~deploy.local.cores.MAX_CORES`): N ``lightcone core``
processes in the core's region, ``core-1`` ... ``core-N``, on one store with one broker. More
than one needs a shared store (``--store sqlite`` is refused) and a broker: ``--broker URL``,
else a throwaway ``redis-server`` (:mod:`deploy.local.redis`) started before the nodes and
removed after them. Every edge gets every node's URL (``--core-url a,b``), each through a
latency proxy of its own, in an order rotated per edge so that the edges spread over the
nodes; it fails over between them.

Secrets: fresh random link, admin and room tokens on every run, and the control API's
capability; the status file that holds them is readable by this user only (0600).

The edge mesh (on by default; ``--no-mesh`` turns it off): every pair of edges gets its own
leg, a latency proxy with the measured one-way delay between their two regions, from the edge
whose region sorts first (it dials, :func:`shared.protocol.dials`) to the other's mesh
listener. Each leg is held (cut) until the edge behind it listens, so a dial waits rather than
fails. ``lightcone partition`` cuts an edge's links to the core only: its mesh legs stay, as in
a real partition of one region from the core's; the control API cuts and heals an edge's legs
separately (``POST /mesh-partition/{region}``, ``POST /mesh-heal/{region}``).

Room tokens are on by default (``--room-auth token``): the demo runs the way a deployment
should, and the page shows the whole path (it asks the control API for a token, which asks the
core's admin API, and joins with it). ``--room-auth off`` lets any client join any room, for
hand-made clients and the load generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from core_region.db import is_postgres
from core_region.db.postgres import redacted
from deploy.local import geography, pop, redis
from deploy.local.control import DemoState, create_control_app, embedded
from deploy.local.cores import MAX_CORES, READY, START_TIMEOUT_S, CoreNodes, label, say
from deploy.local.latency import LatencyProxy
from deploy.local.postgres import PostgresMissing, running
from deploy.local.redis import RedisMissing
from deploy.local.supervisor import Child, ChildFailed, Supervisor
from shared.protocol import MESH_PATH, dials

DEFAULT_CORE = "iad"
DEFAULT_EDGES = ("iad", "lhr", "syd", "sin")
ROOM_AUTH = ("token", "off")
STORES = ("sqlite", "postgres")
"""``--store`` by name; any other value must be a ``postgresql://`` URL."""
BROKER_SCHEMES = ("redis://", "rediss://", "unix://")
"""What ``--broker`` may be (as ``LIGHTCONE_BROKER``)."""
MESH_LISTENING = r"mesh listening on ws://\S+:(\d+)/mesh"
"""The edge's log line once its mesh listener is up (the port is the group)."""
MISSING_EXIT_CODE = 3
"""Exit code when a program the demo needs is not installed (as for missing Python extras)."""


@dataclass(frozen=True)
class UpOptions:
    core: str = DEFAULT_CORE
    edges: tuple[str, ...] = DEFAULT_EDGES
    users: tuple[str, ...] = ()
    """User cities (region codes); default: the edges' regions."""
    data_dir: Path = Path("lightcone-data") / "demo"
    status_file: Path | None = None
    access_rtt_ms: float = geography.ACCESS_RTT_MS
    jitter: bool = False
    mesh: bool = True
    """A mesh leg per pair of edges (module doc); False: every edge runs LIGHTCONE_MESH=false."""
    edge_env: dict[str, str] = field(default_factory=dict)
    room_auth: str = "token"
    """``token``: joins need a room token (the page gets one through the control API)."""
    store: str = "sqlite"
    """``sqlite``, ``postgres`` (a throwaway cluster) or a ``postgresql://`` URL."""
    cores: int = 1
    """Core nodes, 1 to :data:`~deploy.local.cores.MAX_CORES`; more than one needs a shared
    store and a broker."""
    broker: str = ""
    """``redis://`` URL of the core nodes' broker; empty: a throwaway ``redis-server`` when
    there are several nodes, none for one."""
    pop: bool = False
    """One nginx PoP (:mod:`deploy.local.pop`) in front of each user city's nearest edge."""

    def checked(self) -> UpOptions:
        """Regions validated; the core's region always has an edge (the central baseline).

        Raises:
            ValueError: an unknown region code or room-auth mode, a store or broker that is
                not one, or a number of core nodes out of range or on SQLite.
        """
        if self.room_auth not in ROOM_AUTH:
            raise ValueError(f"--room-auth must be one of {', '.join(ROOM_AUTH)}")
        if self.store not in STORES and not is_postgres(self.store):
            raise ValueError("--store must be sqlite, postgres or a postgresql:// URL")
        if not 1 <= self.cores <= MAX_CORES:
            raise ValueError(f"--cores must be 1 to {MAX_CORES}")
        if self.cores > 1 and self.store == "sqlite":
            raise ValueError(
                f"--cores {self.cores} needs a store the nodes share: --store postgres "
                "(a throwaway PostgreSQL) or a postgresql:// URL; SQLite is one node's file"
            )
        if self.broker and not self.broker.startswith(BROKER_SCHEMES):
            raise ValueError("--broker must be a redis://, rediss:// or unix:// URL")
        for code in (self.core, *self.edges, *self.users):
            geography.region(code)
        edges = self.edges if self.core in self.edges else (self.core, *self.edges)
        return UpOptions(
            self.core,
            edges,
            self.users or edges,
            self.data_dir,
            self.status_file,
            self.access_rtt_ms,
            self.jitter,
            self.mesh,
            self.edge_env,
            self.room_auth,
            self.store,
            self.cores,
            self.broker,
            self.pop,
        )


def up(options: UpOptions) -> int:
    """Run the demo until interrupted; returns the process exit code."""
    try:
        options = options.checked()
    except ValueError as exc:
        say(f"lightcone up: {exc}")
        return 2
    # uvloop's timers fire within ±0.5 ms; the default loop's were 0.3-2 ms late, which
    # showed up as extra delay on every simulated leg (docs/bench/report.md).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(Demo(options).run())


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable and writable by this user only (0600).

    The file is created 0600 before any byte is written (``mkstemp``) and renamed into place,
    so it is never readable by others, not even for a moment, and never half-written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Demo:
    def __init__(self, options: UpOptions) -> None:
        self.options = options
        self.status_file = options.status_file or options.data_dir / "status.json"
        self.supervisor = Supervisor(options.data_dir / "logs")
        self.cores = CoreNodes(self.supervisor, self._write_status)
        self.topology: dict[str, Any] = {}
        self.proxies: list[LatencyProxy] = []
        self.stop = asyncio.Event()
        self.link_token = secrets.token_urlsafe(16)
        self.admin_token = secrets.token_urlsafe(16)
        self.room_secret = secrets.token_urlsafe(32)
        self.resources = contextlib.ExitStack()
        """What outlives the nodes and is closed after them: the throwaway PostgreSQL and
        Redis."""

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        o = self.options
        cores = f"{o.cores} core nodes" if o.cores > 1 else "core"
        say(
            f"lightcone up: {cores} {o.core}, edges {' '.join(o.edges)}, "
            f"users {' '.join(o.users)}, store {self._store_name()} "
            f"(logs in {self.supervisor.log_dir})"
        )
        self.supervisor.__enter__()
        try:
            return await self._run()
        except ChildFailed as exc:
            say(f"lightcone up: {exc}")
            return 1
        except PostgresMissing as exc:
            say(f"lightcone up: --store postgres needs PostgreSQL: {exc}")
            return MISSING_EXIT_CODE
        except RedisMissing as exc:
            say(f"lightcone up: --cores {o.cores} needs a broker (or --broker URL): {exc}")
            return MISSING_EXIT_CODE
        except pop.NginxMissing as exc:
            say(f"lightcone up: --pop needs nginx: {exc}")
            return MISSING_EXIT_CODE
        finally:
            self.status_file.unlink(missing_ok=True)
            for proxy in self.proxies:
                await proxy.close()
            await asyncio.to_thread(self.supervisor.stop_all)
            await asyncio.to_thread(self.resources.close)
            say("lightcone up: stopped")

    def _store_name(self) -> str:
        store = self.options.store
        return redacted(store) if is_postgres(store) else store

    async def _store(self) -> tuple[dict[str, str], dict[str, Any]]:
        """The core's store: its environment and its description for the topology.

        Raises:
            PostgresMissing: ``--store postgres`` and PostgreSQL is not installed.
            ChildFailed: the throwaway cluster did not start.
        """
        o = self.options
        if o.store == "sqlite":
            # Empty, not absent: a LIGHTCONE_STORE in the caller's environment must not win.
            where = str(o.data_dir / "core" / "lightcone.db")
            return {"LIGHTCONE_STORE": ""}, {"engine": "sqlite", "where": where}
        if o.store != "postgres":
            return {"LIGHTCONE_STORE": o.store}, {"engine": "postgres", "where": redacted(o.store)}
        started = time.monotonic()
        try:
            cluster = await asyncio.to_thread(self.resources.enter_context, running(o.data_dir))
            url = await asyncio.to_thread(cluster.create_database, "lightcone")
        except PostgresMissing:
            raise
        except RuntimeError as exc:
            raise ChildFailed(f"the throwaway PostgreSQL did not start: {exc}") from exc
        took = time.monotonic() - started
        say(f"[store] postgres  ready in {took:4.1f} s  {url} (throwaway, in {cluster.folder})")
        description = {
            "engine": "postgres",
            "where": url,
            "throwaway": True,
            "folder": str(cluster.folder),
            "pid": cluster.pid,
        }
        return {"LIGHTCONE_STORE": url}, description

    async def _broker(self) -> tuple[dict[str, str], dict[str, Any] | None]:
        """The core nodes' broker: their environment and its description for the topology
        (``None``: no broker, one node on its own).

        Raises:
            RedisMissing: a throwaway one is needed and ``redis-server`` is not installed.
            ChildFailed: the throwaway one did not start.
        """
        o = self.options
        if o.broker:
            return {"LIGHTCONE_BROKER": o.broker}, {"where": redacted(o.broker)}
        if o.cores == 1:
            # Empty, not absent: a LIGHTCONE_BROKER in the caller's environment must not win.
            return {"LIGHTCONE_BROKER": ""}, None
        started = time.monotonic()
        try:
            server = await asyncio.to_thread(
                self.resources.enter_context, redis.running(o.data_dir)
            )
        except RuntimeError as exc:
            if isinstance(exc, RedisMissing):
                raise
            raise ChildFailed(f"the throwaway redis-server did not start: {exc}") from exc
        took = time.monotonic() - started
        say(f"[broker] redis  ready in {took:4.1f} s  {server.url} (throwaway, in {server.folder})")
        description = {
            "where": server.url,
            "throwaway": True,
            "folder": str(server.folder),
            "pid": server.pid,
        }
        return {"LIGHTCONE_BROKER": server.url}, description

    async def _run(self) -> int:
        o = self.options
        total = o.cores + len(o.edges)
        tokens = {
            "LIGHTCONE_LINK_TOKEN": self.link_token,
            "LIGHTCONE_ADMIN_TOKEN": self.admin_token,
            "LIGHTCONE_ROOM_SECRET": self.room_secret,
            "LIGHTCONE_ROOM_AUTH": o.room_auth,
        }
        if o.cores > 1 and not o.broker:
            redis.program()  # missing: say so before starting anything
        if o.pop:
            pop.program()
        store_env, store = await self._store()
        broker_env, broker = await self._broker()
        for n in range(1, o.cores + 1):
            name = label(n)
            folder = o.data_dir / ("core" if o.cores == 1 else name)
            child = await self._start(
                n,
                total,
                name,
                o.core,
                ["core", "--port", "0", "--data-dir", str(folder)],
                # Every demo user is 127.0.0.1, one source: a logged search is suggested at
                # once.
                {
                    **tokens,
                    **store_env,
                    **broker_env,
                    "LIGHTCONE_REGION": o.core,
                    "LIGHTCONE_MIN_SOURCES": "1",
                },
                READY,
            )
            self.cores.add(name, o.core, child.url, child)
        state = DemoState(self.cores, self.admin_token)
        server, sock = embedded(create_control_app(state))
        control = asyncio.create_task(server.serve(sockets=[sock]))
        control_url = f"http://127.0.0.1:{sock.getsockname()[1]}{state.prefix}"
        edges: dict[str, Child] = {}
        core_links: dict[str, dict[str, str]] = {}
        legs = await self._legs() if o.mesh else {}
        state.legs = {r: [p for pair, p in legs.items() if r in pair] for r in o.edges}
        nodes = list(self.cores.nodes.values())
        for n, region in enumerate(o.edges):
            # Rotated per edge: edges spread over the core nodes (each dials its first).
            ordered = nodes[n % len(nodes) :] + nodes[: n % len(nodes)]
            rtt = geography.link(region, o.core)
            proxies = [await self._proxy(c.url, rtt, f"link-{region}-{c.name}") for c in ordered]
            state.links[region] = proxies
            core_links[region] = {
                c.name: f"http://127.0.0.1:{p.port}" for c, p in zip(ordered, proxies, strict=True)
            }
            env = {
                **tokens,
                **self._mesh_env(region, legs),
                **o.edge_env,
                "LIGHTCONE_DEMO_CONTROL_URL": control_url,
            }
            edges[region] = await self._start(
                o.cores + n + 1,
                total,
                "edge",
                region,
                [
                    "edge",
                    "--port",
                    "0",
                    "--region",
                    region,
                    "--core-url",
                    ",".join(core_links[region].values()),
                ],
                env,
                "loaded snapshot",
            )
            if o.mesh:
                self._listening(region, edges[region], legs)
        entries = await self._entries(edges)
        if o.pop:
            await self._pops(entries)
        self.topology = self._topology(edges, core_links, entries, control_url, store, broker)
        self.topology["mesh"] = self._mesh_view(legs)
        state.topology = self.topology
        self._write_status()
        self._show(self.topology)
        try:
            crashed = await self._wait()
        finally:
            server.should_exit = True
            await control
            await state.close()
        if crashed is not None:
            say(
                f"lightcone up: {crashed.name} exited with {crashed.process.returncode}; "
                "stopping the others"
            )
            say("".join(crashed.lines[-10:]).rstrip())
            return 1
        say("lightcone up: stopping")
        return 0

    async def _start(
        self,
        n: int,
        total: int,
        kind: str,
        region: str,
        args: list[str],
        env: dict[str, str],
        ready: str,
    ) -> Child:
        """Start a node: an edge (``kind`` ``edge``, named ``edge-<region>``) or a core node
        (``kind`` its label, e.g. ``core-1``, and so named)."""
        started = time.monotonic()
        name = f"{kind}-{region}" if kind == "edge" else kind
        child = await asyncio.to_thread(
            self.supervisor.start, name, args, env, ready, START_TIMEOUT_S
        )
        took = time.monotonic() - started
        say(f"[{n}/{total}] {kind:<6} {region:>4}  ready in {took:4.1f} s  {child.url}")
        return child

    async def _proxy(self, target_url: str, rtt: geography.Link, name: str) -> LatencyProxy:
        host, port = target_url.removeprefix("http://").rsplit(":", 1)
        jitter_s = max(0.0, rtt.p95_ms - rtt.p50_ms) / 2000 if self.options.jitter else 0.0
        one_way_s = rtt.p50_ms / 2000
        proxy = LatencyProxy(
            host,
            int(port),
            up_delay_s=one_way_s,
            down_delay_s=one_way_s,
            jitter_s=jitter_s,
            name=name,
        )
        await proxy.start()
        self.proxies.append(proxy)
        return proxy

    async def _legs(self) -> dict[tuple[str, str], LatencyProxy]:
        """A mesh leg per pair of edges, ``(dialer, listener)``: a latency proxy with their
        regions' measured RTT, held until the listener's port is known (:meth:`_listening`)."""
        legs: dict[tuple[str, str], LatencyProxy] = {}
        edges = self.options.edges
        for a in edges:
            for b in edges:
                if a != b and dials(a, b):
                    # The target is set once b listens; until then the leg holds the dial.
                    proxy = await self._proxy(
                        "http://127.0.0.1:0", geography.link(a, b), f"mesh-{a}-{b}"
                    )
                    proxy.cut()
                    legs[(a, b)] = proxy
        return legs

    def _mesh_env(self, region: str, legs: dict[tuple[str, str], LatencyProxy]) -> dict[str, str]:
        """An edge's mesh settings: a listener, and the legs to the peers it dials."""
        if not self.options.mesh:
            return {"LIGHTCONE_MESH": "false"}
        peers = [
            f"{b}=ws://127.0.0.1:{proxy.port}{MESH_PATH}"
            for (a, b), proxy in sorted(legs.items())
            if a == region
        ]
        return {
            "LIGHTCONE_MESH": "true",
            "LIGHTCONE_MESH_PORT": "0",
            "LIGHTCONE_MESH_HOST": "127.0.0.1",
            "LIGHTCONE_MESH_PEERS": ",".join(peers),
        }

    def _listening(
        self, region: str, edge: Child, legs: dict[tuple[str, str], LatencyProxy]
    ) -> None:
        """``region``'s edge is up: point the legs to its mesh listener and let them flow."""
        port = int(edge.wait_for(MESH_LISTENING, START_TIMEOUT_S).group(1))
        for (_, b), proxy in legs.items():
            if b == region:
                proxy.target = ("127.0.0.1", port)
                proxy.heal()

    def _mesh_view(self, legs: dict[tuple[str, str], LatencyProxy]) -> list[dict[str, Any]]:
        """The status file's ``mesh``: each leg, its dialer ``a``, listener ``b``, the URL
        ``a`` dials, the simulated RTT and the fiber floor's."""
        return [
            {
                "a": a,
                "b": b,
                "url": f"ws://127.0.0.1:{proxy.port}{MESH_PATH}",
                "rtt_ms": geography.link(a, b).p50_ms,
                "fiber_floor_ms": round(geography.fiber_floor_ms(a, b), 1),
            }
            for (a, b), proxy in sorted(legs.items())
        ]

    async def _entries(self, edges: dict[str, Child]) -> list[dict[str, Any]]:
        o = self.options
        entries = []
        for user in o.users:
            near = geography.nearest(user, list(edges))
            for kind, target in (("edge", near), ("central", o.core)):
                rtt_ms = geography.user_rtt_ms(user, target, o.access_rtt_ms)
                proxy = await self._proxy(
                    edges[target].url, geography.Link(rtt_ms, rtt_ms, True), f"{user}->{target}"
                )
                entries.append(
                    {
                        "user_city": geography.region(user).city,
                        "user_region": user,
                        "target_region": target,
                        "kind": kind,
                        "url": f"http://127.0.0.1:{proxy.port}",
                        "rtt_ms": round(rtt_ms, 1),
                        "fiber_floor_ms": round(geography.fiber_floor_ms(user, target), 1),
                    }
                )
        return entries

    async def _pops(self, entries: list[dict[str, Any]]) -> None:
        """A PoP in front of each user city's entry to its nearest edge: the entry gains
        ``pop_url`` (the PoP is with the user: no delay between them).

        Raises:
            ChildFailed: a PoP did not start.
        """
        for entry in entries:
            if entry["kind"] != "edge":
                continue
            started = time.monotonic()
            name = f"pop-{entry['user_region']}"
            try:
                server = await asyncio.to_thread(
                    self.resources.enter_context,
                    pop.running(entry["url"], self.options.data_dir / "pops", name),
                )
            except RuntimeError as exc:
                if isinstance(exc, pop.NginxMissing):
                    raise
                raise ChildFailed(f"the PoP of {entry['user_city']} did not start: {exc}") from exc
            entry["pop_url"] = server.url
            took = time.monotonic() - started
            say(
                f"[pop] nginx {entry['user_region']:>4}  ready in {took:4.1f} s  {server.url} "
                f"-> {entry['target_region']} (pid {server.pid}, in {server.folder})"
            )

    def _topology(
        self,
        edges: dict[str, Child],
        core_links: dict[str, dict[str, str]],
        entries: list[dict[str, Any]],
        control_url: str,
        store: dict[str, Any],
        broker: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The status file's content. An edge's ``core_links`` maps each core node to the
        URL the edge has for it (its ``/status`` ``core`` is one of them); ``link_url`` is
        the first, the node it dials first."""
        o = self.options
        nodes = [
            {
                "kind": "edge",
                "region": r,
                "url": c.url,
                "pid": c.pid,
                "link_url": next(iter(core_links[r].values())),
                "core_links": core_links[r],
                "link_rtt_ms": geography.link(r, o.core).p50_ms,
            }
            for r, c in edges.items()
        ]
        return {
            "core_region": o.core,
            "control_url": control_url,
            "admin_token": self.admin_token,
            "room_auth": o.room_auth,
            "store": store,
            "broker": broker,
            "nodes": [*self.cores.views(), *nodes],
            "entries": entries,
        }

    def _write_status(self) -> None:
        """(Re)write the status file with the core nodes' states and processes as they are
        now (once every node is up, and after each stop or start of a core node)."""
        if not self.topology:
            return
        edges = [n for n in self.topology["nodes"] if n["kind"] != "core"]
        self.topology["nodes"] = [*self.cores.views(), *edges]
        write_private(self.status_file, json.dumps(self.topology, indent=2) + "\n")

    def _show(self, topology: dict[str, Any]) -> None:
        say("")
        say(f"{'user in':<28} {'target':<14} {'fiber floor':>11} {'simulated RTT':>13}  url")
        for e in topology["entries"]:
            target = f"{e['target_region']} ({e['kind']})"
            say(
                f"{e['user_city']:<28} {target:<14} {e['fiber_floor_ms']:>8.1f} ms "
                f"{e['rtt_ms']:>10.1f} ms  {e['url']}"
            )
        say("")
        entries = topology["entries"]
        far = max(entries, key=lambda e: (e["kind"] == "central", e["rtt_ms"]))
        near = next(
            e for e in entries if e["user_region"] == far["user_region"] and e["kind"] == "edge"
        )
        say(f"Open the demo page as a user in {near['user_city']}: {near['url']}/")
        say(f"Try: curl '{near['url']}/suggest?q=sao+pa'   (nearest edge)")
        if "pop_url" in near:
            say(f"     curl -i '{near['pop_url']}/suggest?q=sao+pa'   (its PoP: X-Cache-Status)")
        say(f"     curl '{far['url']}/suggest?q=sao+pa'   (central)")
        say(
            f"     lightcone partition {near['target_region']}   /   "
            f"lightcone heal {near['target_region']}"
        )
        if self.options.cores > 1:
            last = label(self.options.cores)
            say(
                f"     lightcone core-node stop {last} [--kill]   /   "
                f"lightcone core-node start {last}   /   lightcone core-node list"
            )
        say("Ctrl-C stops everything.")

    async def _wait(self) -> Child | None:
        """Until Ctrl-C/SIGTERM (``None``) or until a child exits by itself (returned; a
        core node stopped from the control API is no crash)."""
        while not self.stop.is_set():
            crashed = self.supervisor.crashed()
            if crashed is not None:
                return crashed
            try:
                async with asyncio.timeout(0.2):
                    await self.stop.wait()
            except TimeoutError:
                pass
        return None
