"""``summary.md`` of the serving benchmark, and the line it prints after each phase.

Every figure comes from ``results.json``; the targets are those of DESIGN §7.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from load.histogram import Buckets, bucket_quantile, bucket_sum
from load.serving.phases import PHASES, Phase
from load.serving.workload import LIMIT

TARGET_RATIO = 0.8
TARGET_P99_S = 0.001
TARGET_RSS_BYTES = 256 * 2**20
TARGET_COLD_START_S = 1.0


def _spread(values: Sequence[float | None], fmt: Callable[[float], str]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "n/a"
    return f"{fmt(statistics.median(present))} ({fmt(min(present))}–{fmt(max(present))})"


def quantile_ms(buckets: Buckets, q: float) -> str:
    """Quantile ``q`` in ms for a report: ``≤ 0.1`` when it falls in the first bucket (there is
    no lower bound to interpolate from: "0.050" would only be half the bucket), else the
    interpolated value and its bucket."""
    value = bucket_quantile(buckets, q)
    if value is None:
        return "n/a"
    if buckets[0][1] >= q * buckets[-1][1] and buckets[0][0] != float("inf"):
        return f"≤ {buckets[0][0] * 1000:g}"
    return f"{value * 1000:.3f} {_bucket_of(buckets, q)}"


def _bucket_of(buckets: Buckets, q: float) -> str:
    """The bucket that quantile ``q`` falls in, as ``(lo–hi]`` in ms."""
    if not buckets or buckets[-1][1] <= 0:
        return ""
    rank, lower = q * buckets[-1][1], 0.0
    for le, count in buckets:
        if count >= rank:
            hi = "∞" if le == float("inf") else f"{le * 1000:g}"
            return f"(in {lower * 1000:g}–{hi}]"
        lower = le
    return ""


_HANDLER_LABELS = (
    ("index", "`SuggestIndex.query(fold(q), 10)` (the lookup behind a prepared-answer miss)"),
    ("http_handler", "`SuggestFeature.suggest` + `Answer.http_body()` (HTTP)"),
    ("ws_handler", "`SuggestFeature.suggest` + `Answer.frame(id, msgpack)` (websocket)"),
)


def _buckets(phase: dict[str, Any]) -> Buckets:
    return [(float(le), float(count)) for le, count in phase["server_buckets"]]


_TARGET_NAMES = {"suggest": "suggest (edge)", "echo": "bare echo", "codec": "codec echo"}


_RATIOS = (("http", "echo", "http"), ("ws", "echo", "ws"), ("ws", "codec", "ws_codec"))
"""(transport, baseline, headline key) of each suggest / baseline ratio."""


def _ok(met: bool) -> str:
    return "met" if met else "**not met**"


def _ms(seconds: float | None, digits: int = 2) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.{digits}f}"


def phase_line(p: Phase, rounds: int) -> str:
    line = (
        f"[round {p.round}/{rounds}] {p.transport:4} {p.target:7} {p.rps:8,.0f} req/s  "
        f"client p50 {_ms(p.client_p50_s)} p99 {_ms(p.client_p99_s)} ms  "
        f"server CPU {p.server_cpu_s / p.seconds:4.0%} ({p.server_cpu_us_per_request:.0f} us/req)"
        f"  client CPU {p.client_cpu_s / p.seconds:4.0%}"
        f"  others {p.other_cpu_s / p.seconds:.2f} CPUs"
    )
    if p.target == "suggest":
        b = p.server_buckets
        line += f"  server-side p50 {quantile_ms(b, 0.5)} p99 {quantile_ms(b, 0.99)} ms"
    if p.errors:
        line += f"  ERRORS {p.errors}"
    return line


def summarize(results: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The markdown summary and the headline figures of a run."""
    phases: list[dict[str, Any]] = results["phases"]
    head: dict[str, Any] = {}
    lines = _header(results)
    lines += _throughput(phases)
    lines += _ratios(phases, head)
    lines += _server_latency(phases, head)
    lines += _handler(results["handler"])
    lines += _edge(results, head)
    return "\n".join(lines), head


def _pick(phases: list[dict[str, Any]], transport: str, target: str) -> list[dict[str, Any]]:
    return [p for p in phases if p["transport"] == transport and p["target"] == target]


def _header(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    return [
        f"Command: `{results['command']}` (tree {m['git']}); wall time {results['wall_s']:.0f} s.",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, kernel "
        f"{m['kernel']}; load average {m['loadavg_at_start'][0]:.2f} at start, "
        f"{results['loadavg_at_end'][0]:.2f} at end. HTTP client: {results['http_client']}; "
        f"websocket client: websockets {m['versions'].get('websockets', '?')} (asyncio); "
        f"pinning: {'servers CPU 0, clients CPU 1' if results['pinning'] else 'off'}; "
        f"{results['options']['connections']} connections, {results['prefixes']} prefixes, "
        f"limit {LIMIT}.",
        "",
    ]


def _throughput(phases: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| transport | target | req/s | client p50 ms | client p99 ms | server CPU µs/req "
        "| server CPU | client CPU | others (CPUs) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for transport, target in PHASES:
        ps = _pick(phases, transport, target)
        if ps:
            rows.append(
                f"| {transport.upper()} | {_TARGET_NAMES[target]} "
                f"| {_spread([p['rps'] for p in ps], lambda v: f'{v:,.0f}')} "
                f"| {_spread([p['client_p50_s'] for p in ps], lambda v: f'{v * 1000:.2f}')} "
                f"| {_spread([p['client_p99_s'] for p in ps], lambda v: f'{v * 1000:.2f}')} "
                f"| {_spread([p['server_cpu_us_per_request'] for p in ps], lambda v: f'{v:.0f}')} "
                f"| {_spread([p['server_cpu_s'] / p['seconds'] for p in ps], '{:.0%}'.format)} "
                f"| {_spread([p['client_cpu_s'] / p['seconds'] for p in ps], '{:.0%}'.format)} "
                f"| {_spread([p['other_cpu_s'] / p['seconds'] for p in ps], '{:.2f}'.format)} "
                f"| {sum(p['errors'] for p in ps)} |"
            )
    return ["Throughput, median of rounds (min–max):", "", *rows, ""]


def _ratios(phases: list[dict[str, Any]], head: dict[str, Any]) -> list[str]:
    rows = [
        "| transport | baseline | ratio per round | median | per server CPU-second: per round "
        "| median | target ≥ 0.8 |",
        "|---|---|---|---|---|---|---|",
    ]
    for transport, baseline, key in _RATIOS:
        ratios, cpu_ratios = _round_ratios(phases, transport, baseline)
        if not ratios:
            continue
        med = statistics.median(ratios)
        cpu_med = statistics.median(cpu_ratios) if cpu_ratios else float("nan")
        head[f"{key}_ratio"] = med
        head[f"{key}_ratio_per_cpu"] = cpu_med
        rows.append(
            f"| {transport.upper()} | {_TARGET_NAMES[baseline]} "
            f"| {', '.join(f'{v:.2f}' for v in ratios)} | **{med:.2f}** "
            f"| {', '.join(f'{v:.2f}' for v in cpu_ratios)} | {cpu_med:.2f} "
            f"| {_ok(med >= TARGET_RATIO)} |"
        )
    return [
        "Suggest / baseline throughput ratio (same round, side by side; per server CPU-second is",
        "the baseline's server CPU per request divided by the edge's):",
        "",
        *rows,
        "",
    ]


def _round_ratios(
    phases: list[dict[str, Any]], transport: str, baseline: str
) -> tuple[list[float], list[float]]:
    """Per round: suggest ÷ baseline req/s, and baseline ÷ suggest server CPU per request."""
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for r in sorted({p["round"] for p in phases}):
        s = [p for p in _pick(phases, transport, "suggest") if p["round"] == r]
        e = [p for p in _pick(phases, transport, baseline) if p["round"] == r]
        if len(s) != 1 or len(e) != 1:
            continue
        if e[0]["rps"]:
            ratios.append(s[0]["rps"] / e[0]["rps"])
        if s[0]["server_cpu_us_per_request"]:
            cpu_ratios.append(e[0]["server_cpu_us_per_request"] / s[0]["server_cpu_us_per_request"])
    return ratios, cpu_ratios


def _server_latency(phases: list[dict[str, Any]], head: dict[str, Any]) -> list[str]:
    rows = [
        "| transport | p50 ms pooled | p99 ms per round | p99 ms, all rounds pooled "
        "| p99.9 ms pooled | ≤ 0.1 ms | > 1 ms | observations | target p99 ≤ 1 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for transport in ("http", "ws"):
        ps = _pick(phases, transport, "suggest")
        pooled = bucket_sum([_buckets(p) for p in ps])
        p99 = bucket_quantile(pooled, 0.99)
        head[f"{transport}_server_p99_s"] = p99
        total = pooled[-1][1] if pooled else 0.0
        fast = next((c for le, c in pooled if le == 0.0001), 0.0)
        slow = total - next((c for le, c in pooled if le == 0.001), total)
        rows.append(
            f"| {transport.upper()} "
            f"| {quantile_ms(pooled, 0.5)} "
            f"| {', '.join(quantile_ms(_buckets(p), 0.99) for p in ps)} "
            f"| **{quantile_ms(pooled, 0.99)}** "
            f"| {quantile_ms(pooled, 0.999)} "
            f"| {fast / total if total else 0:.1%} | {slow:,.0f} "
            f"| {sum(p['server_count'] for p in ps):,} "
            f"| {_ok(p99 is not None and p99 <= TARGET_P99_S)} |"
        )
    return [
        "Server-side latency from the edge's Prometheus histograms (handler time, no queueing;",
        "buckets 0.1 / 0.25 / 0.5 / 1 / 2.5 ms, interpolated within a bucket: bucket resolution;",
        "'≤ 0.1' when the quantile falls in the first bucket):",
        "",
        *rows,
        "",
    ]


def _handler(h: dict[str, Any]) -> list[str]:
    return [
        "Handler time measured in-process on the edge's snapshot (µs, no server around it;",
        f"{h['index']['calls']:,} calls each, warm):",
        "",
        "| what | p50 µs | p99 µs | mean µs | max µs |",
        "|---|---|---|---|---|",
        *(
            f"| {label} | {h[name]['p50_s'] * 1e6:.1f} | {h[name]['p99_s'] * 1e6:.1f} "
            f"| {h[name]['mean_s'] * 1e6:.1f} | {h[name]['max_s'] * 1e6:.0f} |"
            for name, label in _HANDLER_LABELS
        ),
        "",
    ]


def _edge(results: dict[str, Any], head: dict[str, Any]) -> list[str]:
    cold = [c["ready_s"] for c in results["cold_starts"]]
    listen = [c["listening_s"] for c in results["cold_starts"]]
    cold_med = statistics.median(cold)
    rss = results["rss_kb"]
    rss_max = max(rss.values(), default=0) * 1024
    peak = results["rss_peak_kb"] * 1024
    head.update(cold_start_s=cold_med, rss_after_bytes=rss["after"] * 1024, rss_peak_bytes=peak)
    return [
        "| edge | figure | target |",
        "|---|---|---|",
        f"| cold start, spawn → /readyz 200 (median of {len(cold)}) | **{cold_med * 1000:.0f} ms** "
        f"(each: {', '.join(f'{v * 1000:.0f}' for v in cold)}) | ≤ 1 s: "
        f"{_ok(cold_med <= TARGET_COLD_START_S)} |",
        f"| of which spawn → 'listening on' (imports, app) "
        f"| {statistics.median(listen) * 1000:.0f} ms | |",
        f"| RSS when ready / after warm-up / after load | {rss['ready'] / 1024:.1f} / "
        f"{rss['warm'] / 1024:.1f} / {rss['after'] / 1024:.1f} MB (peak {peak / 2**20:.1f} MB) "
        f"| fits 256 MB: {_ok(max(rss_max, peak) <= TARGET_RSS_BYTES)} |",
        "",
    ]
