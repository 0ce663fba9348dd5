"""Helpers shared by the training benchmarks: the machine, other benchmarks running, RESULTS.md.

Kept free of torch and dagster imports so that a parent process that only spawns children and
writes the report stays small (its own memory is not what is being measured).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
RESULTS_HEADER = "# Benchmarks\n\nWritten by the scripts in `bench/`; newest sections at the end.\n\n"
MIB = 1024 * 1024


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return int(line.split()[1]) / MIB
    return float("nan")


def machine_description() -> str:
    """nproc, memory, CPU model, Python, torch (imported here only to read its version)."""
    import torch

    return (
        f"{len(os.sched_getaffinity(0))} CPU(s) ({cpu_model()}), {memory_gib():.1f} GiB RAM, "
        f"Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} intra-op threads)"
    )


def today() -> str:
    return dt.date.today().isoformat()


def command_line() -> str:
    """The exact command, as typed (interpreter included), for the report."""
    return shlex.join(sys.orig_argv)


def other_benchmarks(pattern: str = "bench/ingest.py") -> list[str]:
    """Command lines of running processes matching `pattern` (pgrep -f), ours excluded."""
    found = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True, check=False)
    ours = {os.getpid(), os.getppid()}
    lines = []
    for line in found.stdout.splitlines():
        pid, _, cmd = line.partition(" ")
        if int(pid) not in ours and "pgrep" not in cmd:
            lines.append(line)
    return lines


def wait_until_quiet(pattern: str, max_wait_s: float, poll_s: float = 30.0, max_share: float = 0.25) -> str:
    """Wait while another benchmark runs, or other jobs keep the CPUs busy (2 cores: one job
    halves our throughput). Polls every poll_s; gives up after max_wait_s.

    Returns a line for the report: quiet, or still busy (the timings then shared the machine).
    """
    started = time.monotonic()
    while True:
        share = CpuShare()
        time.sleep(min(poll_s, 5.0))  # a short look at the machine's load, not a full poll
        others, busy = share.others(), other_benchmarks(pattern)
        waited = time.monotonic() - started
        if not busy and others <= max_share:
            return (
                f"quiet before the start (no `{pattern}`, others used {others:.0%} of the CPUs; "
                f"waited {waited / 60:.0f} min)"
            )
        if waited >= max_wait_s:
            return (
                f"CONTENDED: after waiting {waited / 60:.0f} min, {len(busy)} process(es) matching "
                f"`{pattern}` still ran and others used {others:.0%} of the CPUs"
            )
        print(
            f"[bench] waiting: {len(busy)} process(es) matching {pattern!r}, others use {others:.0%} "
            "of the CPUs ...",
            flush=True,
        )
        time.sleep(max(0.0, poll_s - 5.0))


class CpuShare:
    """How much of the machine's CPU time went to other processes over an interval.

    /proc/stat gives the busy time of every CPU (all processes); our own share is this process's
    and its waited-for children's CPU time (os.times). The rest, over wall time x CPUs, is what
    others took: 0 on a quiet machine, ~0.5 when another job keeps one of two cores busy. A
    timing is only clean when that share is small, whatever the processes are called.
    """

    def __init__(self) -> None:
        self.started = self._snapshot()

    @staticmethod
    def _snapshot() -> tuple[float, float, float]:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
        t = os.times()
        return time.monotonic(), busy, t.user + t.system + t.children_user + t.children_system

    def others(self) -> float:
        """Share (0..1) of all CPUs' time used by other processes since construction."""
        wall0, busy0, ours0 = self.started
        wall1, busy1, ours1 = self._snapshot()
        capacity = (wall1 - wall0) * (os.cpu_count() or 1)
        return max(0.0, (busy1 - busy0) - (ours1 - ours0)) / capacity if capacity > 0 else 0.0


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def append_section(text: str) -> None:
    """Append a section to RESULTS.md without touching what others wrote there.

    The file is re-read right before writing (other scripts append to it too): only a missing
    trailing blank line is added before our text, nothing is rewritten.
    """
    existing = RESULTS_PATH.read_text() if RESULTS_PATH.exists() else ""
    prefix = "" if existing else RESULTS_HEADER
    if existing and not existing.endswith("\n\n"):
        prefix = "\n" if existing.endswith("\n") else "\n\n"
    with open(RESULTS_PATH, "a") as out:
        out.write(prefix + text.rstrip("\n") + "\n")


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a markdown table; the first column left-aligned, the others right-aligned."""
    align = [":--", *["--:"] * (len(header) - 1)]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
