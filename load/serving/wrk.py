"""Closed-loop HTTP load with ``wrk``, its figures read from a Lua ``done`` hook."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import zlib
from collections.abc import Sequence
from pathlib import Path

from load.machine import children_cpu_s
from load.serving import BenchError
from load.serving.result import LoadResult

WRK_SCRIPT = """\
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%%d duration_us=%%d errors=%%d p50_us=%%d p99_us=%%d\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
_WRK_LINE = re.compile(
    r"BENCH requests=(\d+) duration_us=(\d+) errors=(\d+) p50_us=(\d+) p99_us=(\d+)"
)


def http_load_wrk(
    wrk: str,
    url: str,
    paths: Sequence[str],
    connections: int,
    seconds: int,
    script_dir: Path,
    cpu: int | None,
) -> LoadResult:
    """Closed-loop HTTP load with ``wrk -t1`` cycling through ``paths``."""
    script = script_dir / f"wrk-{zlib.crc32(chr(10).join(paths).encode()):08x}.lua"
    script.write_text(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
    cpu0 = children_cpu_s()
    args = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    proc = subprocess.Popen(
        [*args, "-s", str(script), url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, {cpu})
    try:
        out, _ = proc.communicate(timeout=seconds + 15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=5)
        raise BenchError("wrk did not finish in time") from None
    match = _WRK_LINE.search(out)
    if proc.returncode != 0 or match is None:
        raise BenchError(f"wrk failed ({proc.returncode}):\n{out}")
    requests, duration_us, errors, p50_us, p99_us = map(int, match.groups())
    return LoadResult(
        requests=requests,
        errors=errors,
        seconds=duration_us / 1e6,
        p50_s=p50_us / 1e6,
        p99_s=p99_us / 1e6,
        client_cpu_s=children_cpu_s() - cpu0,
        note="wrk",
    )
