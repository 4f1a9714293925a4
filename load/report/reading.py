"""The prose of ``report.md``: what the numbers say ("Reading the numbers"), from the numbers,
and how they were taken ("Method")."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from load.report.data import KINDS, Bench, Check, City, fmt, percentiles

SUGGEST = ("suggest_http", "suggest_ws")


def span(values: Iterable[float], spec: str = "+.1f") -> str:
    """``"+1.9…+2.6"`` (or one value, or ``"—"``) of the values that are numbers."""
    found = sorted(v for v in values if not math.isnan(v))
    if not found:
        return "—"
    if f"{found[0]:{spec}}" == f"{found[-1]:{spec}}":
        return f"{found[0]:{spec}}"
    return f"{found[0]:{spec}}…{found[-1]:{spec}}"


def interpretation(b: Bench, found: list[Check]) -> list[str]:
    """What the numbers say, from the numbers; where an expectation is off, what explains it."""
    far = {code: c for code, c in b.cities.items() if c.far}
    lines = ["### Reading the numbers", ""]
    lines += _overhead(b, far) + _calibration(b)
    if far:
        lines += _strict_suggestions(b, far)
    lines += _tick(b)
    if far:
        lines += _strict_cursors(b, far)
    lines += _levels(b, far) + _ryw(b) + _pop(b) + _device(b) + _cut(b)
    lines += _cross_cities(b) + _coalescing(b) + _noise(b) + _off(found)
    return lines + [""]


def _overhead(b: Bench, far: dict[str, City]) -> list[str]:
    edge_over = [
        b.p50(k, code, "edge", "tolerant") - c.edge_rtt
        for code, c in b.cities.items()
        for k in SUGGEST
    ]
    central_over = [
        b.p50(k, code, "central", "tolerant") - c.central_rtt
        for code, c in far.items()
        for k in SUGGEST
    ]
    return [
        f"- **What the stack adds to physics.** Suggestion p50s sit {span(edge_over)} ms above "
        f"the simulated RTT at the edge and {span(central_over)} ms above it through the "
        "central node. That is the load generator, the edge, and the simulation itself: every "
        "simulated leg is a pass through an asyncio proxy in the `lightcone up` process."
    ]


def _calibration(b: Bench) -> list[str]:
    calibration = {c["label"]: c for c in b.results.get("calibration") or []}
    if len(calibration) != 3:
        return []
    direct, near, remote = calibration.values()
    per_pass_near = (near["p50_ms"] - near["rtt_ms"] - direct["p50_ms"]) / 2
    per_pass_far = (remote["p50_ms"] - remote["rtt_ms"] - direct["p50_ms"]) / 2
    return [
        "- **Calibration** (before any load; one idle sequential client in the bench "
        "process, `http.client` keep-alive, `GET /suggest?q=sao`): "
        f"{direct['label']} p50 {direct['p50_ms']:.2f} ms; {near['label']} "
        f"{near['p50_ms']:.2f} ms for a simulated {near['rtt_ms']:.1f}; {remote['label']} "
        f"{remote['p50_ms']:.2f} ms for a simulated {remote['rtt_ms']:.1f}. The edge answers "
        "in a fraction of a millisecond, so each pass through a proxy adds about "
        f"{per_pass_near:.1f} ms (short delays) to {per_pass_far:.1f} ms (long delays) on "
        "top of its delay: the proxies wait with `asyncio.sleep` on the standard asyncio "
        "loop, whose epoll timeout is rounded up to whole milliseconds and fires late, more "
        "so for long sleeps. A real network has no such cost; the simulation overstates "
        "every leg slightly, the same way for edge and central. What locust shows beyond "
        "the calibration is the load generator under load and the busy machine."
    ]


def _strict_suggestions(b: Bench, far: dict[str, City]) -> list[str]:
    strict_over = [
        b.p50(k, code, "edge", "strict") - b.p50(k, code, "edge", "tolerant") - c.link_rtt
        for code, c in far.items()
        for k in SUGGEST
    ]
    central_cost = [
        b.p50(k, code, "central", "strict") - b.p50(k, code, "central", "tolerant")
        for code in b.cities
        for k in SUGGEST
    ]
    core_link = next(iter(b.cities.values())).core_link_rtt
    return [
        f"- **The cost of strict suggestions** is one edge↔core round trip: at far edges "
        f"strict − tolerant exceeds the link RTT by {span(strict_over)} ms (two more proxy "
        "passes, on the link, and the core answering the sync). Through the central node, "
        f"whose link to the core is {core_link:.1f} ms, strict costs {span(central_cost)} "
        "ms: the same sync, next door."
    ]


def _levels(b: Bench, far: dict[str, City]) -> list[str]:
    lines = []
    for level in ("bounded", "session"):
        diffs = [
            b.p50(k, code, "edge", level) - b.p50(k, code, "edge", "tolerant")
            for code in b.cities
            for k in SUGGEST
        ]
        if all(math.isnan(d) for d in diffs):
            continue
        trips = _round_trips(b, level)
        lines.append(
            f"- **{level.capitalize()} at the edge** costs {span(diffs)} ms over tolerant "
            f"(p50, every city, HTTP and websocket){trips}"
            + (
                ": on a healthy link the edge's data is provably younger than the bound, so it "
                "answers from memory."
                if level == "bounded"
                else ": a read presenting a bookmark the edge has already reached is served "
                "from memory."
            )
        )
    return lines


def _round_trips(b: Bench, level: str) -> str:
    runs = b.runs_of("suggest", "edge", level)
    trips = [r.get("edge_counts", {}).get("round_trips") for r in runs]
    sent = sum(r.get("counters", {}).get("suggest_sent", 0) for r in runs)
    if not runs or None in trips or not sent:
        return ""
    return f", with {sum(t for t in trips if t is not None) / sent:.3f} core round trips per read"


def _ryw(b: Bench) -> list[str]:
    diffs = [
        b.p50("suggest_ryw", code, "edge", "session")
        - b.p50("suggest_http", code, "edge", "session")
        for code in b.cities
    ]
    if all(math.isnan(d) for d in diffs):
        return []
    delay = b.publish_delay
    seen = []
    for mode in b.levels(["suggest_ryw"]):
        saw = [
            x for code in b.cities for x in b.samples[("suggest_ryw", code, "edge", mode)].saw_write
        ]
        if saw:
            seen.append(f"{mode} {100 * sum(saw) / len(saw):.0f}%")
    return [
        f"- **Read-your-writes.** Under session the read right after one's own search costs "
        f"{span(diffs)} ms over the session's other reads (p50 per city); the core's publish "
        f"delay is {delay if delay is not None else 'unknown'} ms. The ack and the delta that "
        "carries the search come over the same link, the delta at most a publish delay later, "
        "so the edge waits for it (or asks the core once) and never longer. Share of those "
        "reads that saw the write, at the edge: " + ", ".join(seen) + "."
    ]


def _pop(b: Bench) -> list[str]:
    hits: list[float] = []
    misses: list[float] = []
    for code in b.cities:
        s = b.samples.get(("suggest_http", code, "pop", "tolerant"))
        if s:
            hits += s.rungs.get("pop", [])
            misses += s.rungs.get("edge", []) + s.rungs.get("core", [])
    if not hits and not misses:
        return []
    share = len(hits) / (len(hits) + len(misses))
    return [
        f"- **The PoP, tolerant**: {100 * share:.0f}% of answers came from its cache (p50 "
        f"{fmt(percentiles(hits, (50,))[0])} ms: the PoP sits with the user), the rest went "
        f"on to the edge (p50 {fmt(percentiles(misses, (50,))[0])} ms: the user's RTT to the "
        "edge plus a pass through nginx). Strict and session answers say `no-store`, so "
        "through the PoP they cost what they cost at the edge."
    ]


def _device(b: Bench) -> list[str]:
    device: list[float] = []
    total = 0
    for code in b.cities:
        s = b.samples.get(("device_keystroke", code, "edge", "tolerant"))
        if s:
            device += s.rungs.get("device", [])
            total += sum(len(v) for v in s.rungs.values())
    if not total:
        return []
    return [
        f"- **The device rung** answered {100 * len(device) / total:.0f}% of tolerant "
        f"keystrokes (the first one or two characters of each query) in "
        f"{fmt(percentiles(device, (50,))[0], 3)} ms at the median: a lookup in memory, no "
        "network at all. Under strict every keystroke goes to the edge."
    ]


def _cut(b: Bench) -> list[str]:
    found = []
    for (target, mode), cut in sorted(b.cuts.items()):
        during = cut.parts.get(("during", True))
        if during is None or not during.count:
            continue
        found.append(f"{target} · {mode} {100 * len(during.ok) / during.count:.0f}%")
    if not found:
        return []
    return [
        "- **During a link cut**, the share of requests behind the cut edge that got an "
        "answer: " + ", ".join(found) + ". Tolerant keeps answering from the edge's data; "
        "bounded answers while its bound holds, then fails fast; strict cannot answer without "
        "the core; session answers what the edge has already reached."
    ]


def _tick(b: Bench) -> list[str]:
    same = [
        b.p50("cursor_same", code, "edge", "tolerant") - c.edge_rtt for code, c in b.cities.items()
    ]
    tick = b.tick
    if tick is None or all(math.isnan(v) for v in same):
        return []
    return [
        f"- **Cursors, tolerant, same edge**: p50 − user RTT = {span(same)} ms. A move waits "
        f"for the edge's next tick (uniform in 0…{tick} ms, median {tick / 2:g}), then goes "
        "out to the room: half a tick plus the stack's overhead, as predicted."
    ]


def _strict_cursors(b: Bench, far: dict[str, City]) -> list[str]:
    pairs = [
        (
            b.p50("cursor_same", code, "edge", "strict"),
            b.p50("cursor_same", code, "central", "tolerant"),
        )
        for code in far
    ]
    return [
        "- **Strict cursors at the edge cost what central costs.** Same-city p50, edge "
        "strict vs central tolerant: "
        + ", ".join(
            f"`{code}` {fmt(a)} vs {fmt(c)} ms" for code, (a, c) in zip(far, pairs, strict=True)
        )
        + ". A strict move goes to the core and back before anyone sees it, which is the "
        "round trip a central deployment pays anyway; the edge only helps cursors in "
        "tolerant mode."
    ]


def _cross_cities(b: Bench) -> list[str]:
    diffs: dict[str, list[float]] = defaultdict(list)
    for (sender, receiver, target, mode), values in b.pairs.items():
        if mode == "tolerant" and values:
            expected = b.expected("cursor_cross", receiver, target, mode, sender)
            diffs[target].append(percentiles(values, (50,))[0] - expected)
    if not diffs:
        return []
    return [
        "- **Cursors between cities** (tables by pair) travel mover → its edge → core → the "
        "receiver's edge → receiver, so for two far cities the edge is no faster than "
        "central: both go through the core's region. Measured − expected per pair: "
        f"{span(diffs.get('edge', []))} ms at the edges (four proxy passes per move), "
        f"{span(diffs.get('central', []))} ms central (two)."
    ]


def _coalescing(b: Bench) -> list[str]:
    seen, possible = 0, 0.0
    for run in b.runs:
        counters = run.get("counters", {})
        if run["feature"] == "cursors" and counters.get("moves_sent"):
            users, size = run["users"], b.results["plan"]["room_size"]
            rooms = [min(size, users - i) for i in range(0, users, size)]
            share = sum(r * (r - 1) for r in rooms) / sum(rooms)
            seen += counters.get("moves_seen", 0)
            possible += counters["moves_sent"] * share
    if not possible:
        return []
    return [
        f"- **Coalescing.** Members saw {100 * seen / possible:.1f}% of the other members' "
        "moves; the rest were replaced by a newer move of the same member within one tick "
        "(the edge sends only the latest position), by design. Latency is measured on the "
        "moves that were delivered."
    ]


def _noise(b: Bench) -> list[str]:
    spreads = []
    for (kind, *_), s in b.samples.items():
        if kind not in KINDS:  # searches and pack downloads are no latency we report
            continue
        medians = [float(np.median(v)) for v in s.by_repeat.values() if v]
        if len(medians) > 1:
            spreads.append(max(medians) - min(medians))
    others = [r.get("cpu", {}).get("others_pct", math.nan) for r in b.runs]
    return [
        "- **Noise.** The largest spread of a p50 between repeats of one scenario was "
        f"{span([max(spreads)] if spreads else [], '.1f')} ms. Other work on the machine took "
        f"{span(others, '.0f')}% of a core during the runs (the `others` column below): this "
        "is a shared 2-core machine where the load generator, the proxies, the nodes and "
        "other engineers' jobs compete, so read the numbers side by side, not as absolutes."
    ]


def _off(found: list[Check]) -> list[str]:
    off = [c for c in found if c.holds is False]
    if not off:
        return []
    return [
        "- **Expectations that do not hold**: "
        + "; ".join(f"{c.what} for `{c.city}` ({c.measured - c.expected:+.1f} ms)" for c in off)
        + ". Check the CPU table below for those runs: a saturated machine (locust, the "
        "proxies and the nodes share its cores) adds latency the simulated network does not "
        "have."
    ]


def method() -> list[str]:
    return [
        "## Method",
        "",
        "- **Suggestions.** Each user is a person typing a city name (São Paulo, New York, "
        "Kraków, …, drawn from a Zipf mix of 50 names; half as written, half in plain lower "
        "case) one character at a time, "
        "120–280 ms between keystrokes, stopping after 3 characters or more, then pausing "
        "0.5–1.5 s. Every keystroke sends its prefix at once, without waiting for the "
        "previous answer (a type-ahead box does not wait), and each answer is timed from its "
        "own request. Answers must carry the scenario's `mode`, or they count as failures. "
        "Each user's choices are seeded by its number, so every scenario replays the same "
        "typing.",
        "- **Cursors.** Each user joins a room (its `presence` must carry the scenario's "
        "`mode`) and moves at the set rate on average (each interval ±25 %, as a hand "
        "is no metronome and a strictly periodic mover would meet the edge's tick at the same "
        "few phases). The n-th move of a member goes to coordinates "
        "that encode n; the sender notes the send time under (member id, x, y) in a registry "
        "all users of the one locust process share, and a receiver looks each position it is "
        "shown up there: one clock, nothing added to the protocol. Moves coalesced by the edge "
        "(two moves in one tick: only the latest is sent) are never seen and not counted.",
        "- **Expected values** come from the simulated network alone: suggestions tolerant = "
        "the entry's RTT, strict = + one edge↔core RTT; cursors = the mover's and the "
        "receiver's one-way legs + half a tick, + the edge↔core legs when the move goes "
        "through the core (strict, or between two edges).",
        "- **Levels** are set through the demo's control API before each run (the scenario's "
        "feature to its level; cursors stay tolerant at levels they do not have) and the run "
        "starts once every edge's `/status` shows them.",
        "- **Sessions.** In session runs users keep the newest bookmark they were given and "
        "present it with every read; a share of typed queries end in a search and a "
        "read-your-writes read with the ack's bookmark (`suggest_ryw`).",
        "- **Rungs.** Through the PoP only HTTP users run (it caches HTTP answers), each run "
        "with a cold cache (`&run=<n>`); device users answer one- and two-character "
        "keystrokes from the pack while tolerant. Every answer records its rung.",
        "- **Link cuts.** A cut run holds every byte of one edge's link to the core (the "
        "control API's partition) for a few seconds in its middle; requests are filed by "
        "when they were sent: before, during or after the cut.",
        "- **Far cities** are user cities whose nearest edge is not in the core's region; the "
        "expectations are checked for them.",
        "",
    ]
