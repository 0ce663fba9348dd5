"""Report of the ingestion benchmark (bench/ingest.py): the machine, the service-path and subset
tables with their targets, and appending the section to RESULTS.md.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
from pathlib import Path

from ingest_child import INGEST_ASSETS, MIB
from ingest_measure import Measurement

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
# Environment variables that change what is measured (polars' default engine, its thread pool).
RELEVANT_ENV = ("POLARS_ENGINE_AFFINITY", "POLARS_MAX_THREADS")
TARGETS = {"full_peak_gib": 6.0, "pandas_ratio": 3.0}


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def machine_description() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    import pandas
    import polars
    import pyarrow

    return (
        f"{len(os.sched_getaffinity(0))} CPU(s) ({cpu}), {mem_kib / MIB:.1f} GiB RAM, "
        f"Python {platform.python_version()}, polars {polars.__version__}, pandas {pandas.__version__}, "
        f"pyarrow {pyarrow.__version__}"
    )


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def command_line() -> str:
    """The exact command, with the environment variables that change what is measured."""
    env = [f"{name}={shlex.quote(os.environ[name])}" for name in RELEVANT_ENV if name in os.environ]
    return " ".join([*env, shlex.join(sys.orig_argv)])


def gib(mib: float) -> str:
    return f"{mib / 1024:.2f} GiB"


def gigabytes(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e9:.2f} GB"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(args, ingest: Measurement | None, subset: tuple[Measurement, Measurement, int] | None) -> str:
    lines = [
        f"## ingest, scale `{args.scale}`, feature set `{args.feature_set}`, {dt.date.today().isoformat()}",
        "",
        f"- command: `{command_line()}`",
        f"- machine: {machine_description()}",
        f"- clean_eras_per_chunk: {args.eras_per_chunk}",
        # 2 cores: anything else running (tests, other benchmarks) stretches the wall times.
        f"- load average (1 / 5 / 15 min) at the start: {args.load_at_start}; at the end: {load_average()}",
        "",
    ]
    if ingest is not None:
        lines += ingest_table(args, ingest)
    if subset is not None:
        lines += subset_table(args, *subset)
    return "\n".join(lines) + "\n"


def ingest_table(args, ingest: Measurement) -> list[str]:
    assets = ingest.result["assets"]
    clean = assets["clean_eras"]
    peak_gib = ingest.peak_rss_mib / 1024
    anon_gib = ingest.result["peak_anon_mib"] / 1024
    lines = [
        "Service path (`dagster.materialize` of the three assets, one child process):",
        "",
        "| asset | step wall s | asset's own s | rows | eras | features | bytes written |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in INGEST_ASSETS:
        a = assets[name]
        lines.append(
            f"| `{name}` | {seconds(a['step_seconds'])} | {seconds(a['own_seconds'])} | {a.get('rows', '-')} "
            f"| {a.get('eras', '-')} | {a.get('features', '-')} | {gigabytes(a.get('bytes'))} |"
        )
    clean_s = clean["step_seconds"] or 0.0
    lines += [
        f"| **total** | {seconds(ingest.result['wall_seconds'])} | | | | | |",
        "",
        f"- clean_eras: {clean.get('eras', 0) / max(clean_s, 1e-9):.1f} eras/s, "
        f"{clean.get('rows', 0) / max(clean_s, 1e-9) / 1e3:.0f}k rows/s",
        f"- peak RSS of the child: **{gib(ingest.peak_rss_mib)}** (kernel high-water mark, includes "
        f"file-backed pages of memory maps); peak anonymous RSS: **{gib(ingest.result['peak_anon_mib'])}**; "
        f"after imports: {gib(ingest.result['baseline_rss_mib'])}",
    ]
    if args.scale == "full":
        target = TARGETS["full_peak_gib"]
        verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
        lines.append(
            f"- target peak < {target:.0f} GiB: {verdict(peak_gib < target)} on total RSS, "
            f"{verdict(anon_gib < target)} on anonymous RSS"
        )
    return [*lines, ""]


def subset_table(args, pandas_way: Measurement, ours: Measurement, rows: int) -> list[str]:
    ratio = pandas_way.peak_rss_mib / ours.peak_rss_mib
    # Net of the interpreter and its imports, which neither way can avoid: the data's own cost.
    net_ratio = (pandas_way.peak_rss_mib - pandas_way.result["baseline_rss_mib"]) / max(
        1.0, ours.peak_rss_mib - ours.result["baseline_rss_mib"]
    )
    features = pandas_way.result["features"]
    return [
        f"Subset: the first {args.subset_eras} train eras, {rows:,} rows x {features:,} features, "
        "each way in its own child process:",
        "",
        "| way | wall s | peak RSS | peak anon RSS | after imports | holds afterwards |",
        "|---|---:|---:|---:|---:|---:|",
        f"| pandas `read_parquet` + `astype(float32)` | {pandas_way.result['seconds']:.1f} "
        f"| {gib(pandas_way.peak_rss_mib)} | {gib(pandas_way.result['peak_anon_mib'])} "
        f"| {gib(pandas_way.result['baseline_rss_mib'])} | {gib(pandas_way.result['result_mib'])} DataFrame in RAM |",
        f"| ours `clean_files` (streamed, int8) | {ours.result['seconds']:.1f} | {gib(ours.peak_rss_mib)} "
        f"| {gib(ours.result['peak_anon_mib'])} | {gib(ours.result['baseline_rss_mib'])} "
        f"| {gib(ours.result['store_mib'])} era store on disk |",
        "",
        f"- memory ratio pandas / ours (peak RSS): **{ratio:.1f}x** "
        f"(target >= {TARGETS['pandas_ratio']:.0f}x: {'met' if ratio >= TARGETS['pandas_ratio'] else 'NOT met'}); "
        f"net of imports: {net_ratio:.1f}x; time: ours takes {ours.result['seconds'] / pandas_way.result['seconds']:.1f}x "
        "the pandas way's",
        "",
    ]


def append_results(text: str) -> None:
    """Append a section; other benchmark scripts append to the same file, so nothing is rewritten."""
    existing = RESULTS_PATH.read_text() if RESULTS_PATH.exists() else ""
    if not existing:
        prefix = "# Benchmarks\n\nWritten by the scripts in `bench/`; newest sections at the end.\n\n"
    else:
        prefix = "" if existing.endswith("\n\n") else "\n" if existing.endswith("\n") else "\n\n"
    with open(RESULTS_PATH, "a") as out:
        out.write(prefix + text.rstrip("\n") + "\n")
