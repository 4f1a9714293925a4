"""This machine and its processes, as every benchmark in ``load/`` records them.

CPU time comes from ``/proc`` (Linux): a process's from ``/proc/PID/stat`` (all its threads,
user + system), the whole machine's from ``/proc/stat``; this process's own and its reaped
children's from ``getrusage``. Memory from ``/proc/PID/status`` and ``/proc/meminfo``. The rest
is what a report needs to say what was measured: CPU model, load average, package versions and
the git state of the tree.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
"""The checkout the benchmarks run from (its git state goes in the reports)."""


# --- CPU and memory of processes -----------------------------------------------------------


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far.

    Raises:
        OSError: no such process (or no ``/proc``).
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> tuple[float, float]:
    """Busy and stolen CPU seconds of the whole machine so far (``/proc/stat``, all CPUs).

    Busy is everything but idle and iowait: user, nice, system, irq, softirq and steal.
    """
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values + [0] * (8 - len(values))
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / tick, steal / tick


def self_cpu_s() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu_s() -> float:
    """User + system CPU seconds of this process's children that have been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def status_kb(pid: int, key: str) -> int:
    """A ``kB`` field of ``/proc/PID/status``: ``VmRSS`` (resident now), ``VmHWM`` (its peak).

    Raises:
        OSError: no such process.
        LookupError: no such field.
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise LookupError(f"no {key} in /proc/{pid}/status")


# --- the machine ---------------------------------------------------------------------------


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or ``None`` where there are none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_kb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


# --- the software --------------------------------------------------------------------------


def git_state(root: Path = ROOT) -> str | None:
    """``<commit>`` of the tree measured, ``+dirty`` if tracked files differ from it.

    Untracked files do not count: scratch files and output folders change nothing that runs
    (a new module that does runs only if a tracked file, changed, imports it). ``None`` outside
    a git checkout or without git.
    """
    try:
        commit = _git(root, "rev-parse", "--short", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def versions(names: Iterable[str]) -> dict[str, str]:
    """The installed version of each distribution in ``names`` (those not installed left out)."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


ROOT = Path(__file__).resolve().parent.parent


def shown_path(path: str | Path) -> str:
    """``path`` as a report shows it: relative to the repository when inside it, so reports
    committed to the repository name no machine's folders."""
    for candidate in (Path(path).absolute(), Path(path).resolve()):  # a venv's python links out
        if candidate.is_relative_to(ROOT):
            return str(candidate.relative_to(ROOT)) or "."
    return str(path)


def shown_command(args: Iterable[str], *folders: Path) -> str:
    """A command line as a report shows it: repository paths relative, ``folders`` (e.g. the
    output folder) written as ``<out>``."""
    text = " ".join(args)
    for folder in folders:
        text = text.replace(str(folder.resolve()), "<out>").replace(str(folder), "<out>")
    return text.replace(str(ROOT) + "/", "")


def environment(packages: Iterable[str]) -> dict[str, Any]:
    """The machine and software a run measured, for a report (``packages``: whose versions)."""
    mem_kb = mem_total_kb()
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "mem_gb": None if mem_kb is None else round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "python_executable": shown_path(sys.executable),
        "versions": versions(packages),
        "git": git_state(),
        "loadavg": loadavg(),
        "lightcone_env": {k: v for k, v in os.environ.items() if k.startswith("LIGHTCONE_")},
        "cwd": shown_path(os.getcwd()),
    }
