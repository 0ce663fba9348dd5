"""Ingestion benchmark: wall time and peak memory of download + clean, and the pandas comparison.

    .venv/bin/python bench/ingest.py --scale full --workdir /tmp/numerai-bench
    .venv/bin/python bench/ingest.py --scale demo --workdir /tmp/numerai-bench-demo

Three measurements, each in its own child process, so that the peak RSS is that process's alone
(the parent holds the API stand-in and the bookkeeping, which would otherwise blur the numbers):

1. `ingest`: `raw_dataset`, `clean_eras`, `feature_returns` through `dagster.materialize` with the
   real resources, against the simulated tournament served by `SimServer`, into a fresh
   NUMERAI_HOME. This is what the service does every week.
2. `pandas`: what Numerai's example notebooks do, on a subset pandas can hold (the first K train
   eras): `pandas.read_parquet(columns=[era, target] + features)`, then features to float32.
3. `ours`: `model_core.clean.clean_files` on the same subset file.

Peak RSS comes from `os.wait4` on each child (the kernel's high-water mark of that process). It
counts file-backed pages of memory maps too, which the kernel can drop at any time (a reader
that memory-maps the 18 GB era store shows up to that much). So each child also samples
/proc/self/status and reports the peak of RssAnon (heap, arrays: memory that must fit).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MIB = 1024 * 1024
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
INGEST_ASSETS = ("raw_dataset", "clean_eras", "feature_returns")
DEFAULT_FEATURE_SET = {"tiny": "all", "demo": "all", "full": "all"}  # the worst case at each scale
# Environment variables that change what is measured (polars' default engine, its thread pool).
RELEVANT_ENV = ("POLARS_ENGINE_AFFINITY", "POLARS_MAX_THREADS")
TARGETS = {"full_peak_gib": 6.0, "pandas_ratio": 3.0}


# --------------------------------------------------------------------------------------------
# Child side: runs one measurement and writes a JSON result.
# --------------------------------------------------------------------------------------------


class RssSampler:
    """Samples /proc/self/status in a thread: peak RssAnon (memory that must fit) and VmRSS.

    Also logs a line every `log_every_s`, so a long run shows its memory next to dagster's
    progress lines.
    """

    def __init__(self, interval_s: float = 0.1, log_every_s: float = 30.0) -> None:
        self.interval_s, self.log_every_s = interval_s, log_every_s
        self.peak_anon_kib = 0
        self.peak_rss_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> dict[str, int]:
        status = read_proc_status()
        self.peak_anon_kib = max(self.peak_anon_kib, status.get("RssAnon", 0))
        self.peak_rss_kib = max(self.peak_rss_kib, status.get("VmRSS", 0))
        return status

    def _run(self) -> None:
        started = last_log = time.monotonic()
        while not self._stop.wait(self.interval_s):
            status = self._sample()
            if time.monotonic() - last_log >= self.log_every_s:
                last_log = time.monotonic()
                print(
                    f"[rss] t={last_log - started:.0f}s anon={status.get('RssAnon', 0) / 1024:.0f} MiB "
                    f"file={status.get('RssFile', 0) / 1024:.0f} MiB peak_anon={self.peak_anon_kib / 1024:.0f} MiB",
                    flush=True,
                )


def read_proc_status() -> dict[str, int]:
    """The kB fields of /proc/self/status (VmRSS, VmHWM, RssAnon, RssFile, ...)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            fields[key] = int(value.split()[0])
    return fields


def child_ingest(params: dict) -> dict:
    """raw_dataset -> clean_eras -> feature_returns through dagster, as the service runs them."""
    import dagster as dg

    from numerai_assets.defs.features import clean_eras, feature_returns
    from numerai_assets.defs.ingest import raw_dataset
    from numerai_assets.defs.resources import NumeraiHome
    from numerai_assets.numerai_api import NumeraiAPI

    resources = {
        "numerai": NumeraiAPI(
            api_url=params["api_url"], public_id=params["public_id"], secret_key=params["secret_key"]
        ),
        "numerai_home": NumeraiHome(
            home=params["home"],
            feature_set=params["feature_set"],
            clean_eras_per_chunk=params["eras_per_chunk"],
        ),
    }
    baseline_kib = read_proc_status()["VmRSS"]  # python + dagster + polars imported, nothing done
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [raw_dataset, clean_eras, feature_returns],
            resources=resources,
            instance=instance,
            raise_on_error=True,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
        step_seconds = _step_seconds(instance, result.run_id)
    assets = {}
    for name in INGEST_ASSETS:
        [event] = result.asset_materializations_for_node(name)
        metadata = {key: getattr(value, "value", value) for key, value in event.metadata.items()}
        assets[name] = {
            "step_seconds": step_seconds.get(name),
            "own_seconds": metadata.get("seconds"),  # the asset's own timer, when it reports one
            **{k: metadata[k] for k in ("rows", "eras", "features", "bytes") if k in metadata},
        }
    return {"assets": assets, "baseline_rss_mib": baseline_kib / 1024}


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall time of each step, from the STEP_START / STEP_SUCCESS timestamps of the event log."""
    import dagster as dg

    starts, ends = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            ends[event.step_key] = entry.timestamp
    return {key: ends[key] - starts[key] for key in ends if key in starts}


def child_pandas(params: dict) -> dict:
    """The example notebooks' way: the whole file into pandas, then features as float32."""
    import numpy as np
    import pandas as pd

    features = params["features"]
    baseline_kib = read_proc_status()["VmRSS"]
    started = time.perf_counter()
    frame = pd.read_parquet(params["path"], columns=["era", "target", *features])
    read_s = time.perf_counter() - started
    frame[features] = frame[features].astype(np.float32)
    return {
        "rows": len(frame),
        "features": len(features),
        "read_seconds": read_s,
        "seconds": time.perf_counter() - started,
        "result_mib": frame.memory_usage(deep=False).sum() / MIB,
        "baseline_rss_mib": baseline_kib / 1024,
    }


def child_ours(params: dict) -> dict:
    """Our cleaning of the same file: streamed a chunk of eras at a time into an int8 era store."""
    from model_core.clean import CleanConfig, clean_files

    baseline_kib = read_proc_status()["VmRSS"]
    out_dir = Path(params["out_dir"])
    out_dir.mkdir(parents=True)
    config = CleanConfig(feature_set=params["feature_set"], eras_per_chunk=params["eras_per_chunk"])
    summary = clean_files(
        [Path(params["path"])], params["features"], params["targets"], out_dir, print, config
    )
    return {
        "rows": summary.rows,
        "features": summary.features,
        "seconds": summary.seconds,
        "store_mib": sum(p.stat().st_size for p in out_dir.iterdir()) / MIB,
        "baseline_rss_mib": baseline_kib / 1024,
    }


CHILDREN = {"ingest": child_ingest, "pandas": child_pandas, "ours": child_ours}


def child_main(kind: str, params_path: Path, result_path: Path) -> None:
    params = json.loads(params_path.read_text())
    started = time.perf_counter()
    with RssSampler() as sampler:
        result = CHILDREN[kind](params)
    result["wall_seconds"] = time.perf_counter() - started
    result["peak_anon_mib"] = sampler.peak_anon_kib / 1024
    result_path.write_text(json.dumps(result))


# --------------------------------------------------------------------------------------------
# Parent side: prepares data, runs each child, collects peak RSS, writes the report.
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Measurement:
    name: str
    peak_rss_mib: float  # the kernel's high-water mark of the child (os.wait4 ru_maxrss)
    result: dict  # what the child reported


def run_child(kind: str, params: dict, log_path: Path) -> Measurement:
    """Run one measurement in a fresh interpreter; its output goes to `log_path`."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        params_path, result_path = Path(tmp) / "params.json", Path(tmp) / "result.json"
        params_path.write_text(json.dumps(params))
        command = [sys.executable, __file__, "--child", kind, str(params_path), str(result_path)]
        print(f"[bench] {kind}: running (log: {log_path})", flush=True)
        with open(log_path, "w") as log:
            child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            # wait4 rather than wait: it hands back this child's own rusage (RUSAGE_CHILDREN would
            # be the maximum over every child so far).
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            tail = "".join(log_path.read_text().splitlines(keepends=True)[-30:])
            raise SystemExit(f"[bench] {kind} failed (exit {child.returncode}); last lines:\n{tail}")
        measurement = Measurement(kind, usage.ru_maxrss / 1024, json.loads(result_path.read_text()))
    print(
        f"[bench] {kind}: {measurement.result['wall_seconds']:.1f}s, peak RSS {measurement.peak_rss_mib:.0f} MiB"
        f" (anon {measurement.result['peak_anon_mib']:.0f} MiB)",
        flush=True,
    )
    return measurement


def ensure_tournament(sim_dir: Path, scale: str, seed: int) -> None:
    """Generate the simulated tournament once; sim_state.json is written last, so it marks a whole one."""
    from tournament_sim.generate import generate_tournament
    from tournament_sim.layout import STATE_FILE

    if (sim_dir / STATE_FILE).exists():
        check_scale(sim_dir, scale)
        print(f"[bench] reusing the simulated tournament in {sim_dir}", flush=True)
        return
    if sim_dir.exists():
        shutil.rmtree(sim_dir)  # a generation that was cut off: start again
    print(f"[bench] generating the {scale!r} simulated tournament in {sim_dir} (seed {seed})", flush=True)
    started = time.perf_counter()
    generate_tournament(sim_dir, scale, seed, progress=lambda m: print(f"[sim] {m}", flush=True))
    print(f"[bench] generated in {time.perf_counter() - started:.0f}s", flush=True)


def check_scale(sim_dir: Path, scale: str) -> None:
    """A tournament of another scale in the same workdir would give numbers under the wrong name."""
    from model_core.feature_metadata import load_feature_metadata
    from tournament_sim.generate import SCALES

    n_features = len(load_feature_metadata(sim_dir / "v5.2" / "features.json").features("all"))
    if n_features != SCALES[scale].n_features:
        raise SystemExit(
            f"[bench] {sim_dir} holds a tournament with {n_features} features, not the {scale!r} scale's "
            f"{SCALES[scale].n_features}: use another --workdir"
        )


def write_subset(train: Path, out: Path, n_eras: int) -> int:
    """The first `n_eras` eras of `train` as their own parquet file, one row group at a time.

    Keeps the file's schema (and its pandas metadata, so pandas sees `id` as the index).
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    source = pq.ParquetFile(train)
    eras = sorted(source.read(columns=["era"]).column("era").unique().to_pylist())[:n_eras]
    last = eras[-1]
    rows = 0
    with pq.ParquetWriter(out, source.schema_arrow) as writer:
        for i in range(source.num_row_groups):
            group = source.read_row_group(i)
            group = group.filter(pc.less_equal(group.column("era"), last))
            if group.num_rows == 0:
                break  # eras are in order in the files: nothing later belongs to the subset
            writer.write_table(group)
            rows += group.num_rows
    return rows


def measure_ingest(args, sim_dir: Path, home: Path, log_dir: Path) -> Measurement:
    from tournament_sim.layout import load_state
    from tournament_sim.server import SimServer

    if home.exists():
        shutil.rmtree(home)  # a fresh NUMERAI_HOME: the download and the store are measured whole
    state = load_state(sim_dir)
    # The stand-in is served from this process, so the child's memory is the service's alone.
    with SimServer(sim_dir) as server:
        params = {
            "api_url": server.url,
            "public_id": state.public_id,
            "secret_key": state.secret_key,
            "home": str(home),
            "feature_set": args.feature_set,
            "eras_per_chunk": args.eras_per_chunk,
        }
        return run_child("ingest", params, log_dir / "ingest.log")


def measure_subset(args, sim_dir: Path, work: Path, log_dir: Path) -> tuple[Measurement, Measurement, int]:
    from model_core.feature_metadata import load_feature_metadata

    version_dir = sim_dir / "v5.2"
    metadata = load_feature_metadata(version_dir / "features.json")
    features = metadata.features(args.feature_set)
    subset = work / f"train_first_{args.subset_eras}_eras.parquet"
    rows = write_subset(version_dir / "train.parquet", subset, args.subset_eras)
    print(f"[bench] subset: {rows:,} rows x {len(features):,} features in {subset}", flush=True)
    pandas_way = run_child("pandas", {"path": str(subset), "features": features}, log_dir / "pandas.log")
    store_dir = work / "subset_store"
    if store_dir.exists():
        shutil.rmtree(store_dir)
    ours = run_child(
        "ours",
        {
            "path": str(subset),
            "features": features,
            "targets": metadata.targets,
            "out_dir": str(store_dir),
            "feature_set": args.feature_set,
            "eras_per_chunk": args.eras_per_chunk,
        },
        log_dir / "ours.log",
    )
    subset.unlink()
    shutil.rmtree(store_dir)
    return pandas_way, ours, rows


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


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=["tiny", "demo", "full"], default="full")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/numerai-bench"))
    parser.add_argument("--feature-set", default=None, help="default: all (the worst case)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eras-per-chunk",
        type=int,
        default=None,
        help="NUMERAI_CLEAN_ERAS_PER_CHUNK; default: the service's",
    )
    parser.add_argument("--subset-eras", type=int, default=100, help="train eras in the pandas comparison")
    parser.add_argument("--skip-ingest", action="store_true", help="only the pandas comparison")
    parser.add_argument("--skip-subset", action="store_true", help="only the service path")
    parser.add_argument("--keep-home", action="store_true", help="keep NUMERAI_HOME (raw copy + era store)")
    parser.add_argument(
        "--remove-sim", action="store_true", help="delete the simulated tournament at the end"
    )
    parser.add_argument("--no-results", action="store_true", help=f"do not append to {RESULTS_PATH.name}")
    args = parser.parse_args(argv)
    args.feature_set = args.feature_set or DEFAULT_FEATURE_SET[args.scale]
    if args.eras_per_chunk is None:
        from model_core.clean import CleanConfig

        args.eras_per_chunk = CleanConfig().eras_per_chunk  # what the service runs with by default
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.load_at_start = load_average()
    workdir = args.workdir.resolve()
    sim_dir, log_dir = workdir / "sim", workdir / "logs"
    home = workdir / f"home-{args.feature_set}"
    log_dir.mkdir(parents=True, exist_ok=True)
    ensure_tournament(sim_dir, args.scale, args.seed)
    try:
        ingest = None if args.skip_ingest else measure_ingest(args, sim_dir, home, log_dir)
        subset = None if args.skip_subset else measure_subset(args, sim_dir, workdir, log_dir)
    finally:
        if not args.keep_home and home.exists():
            shutil.rmtree(home)  # full scale: ~6 GB of raw files and ~18 GB of era store
        if args.remove_sim:
            shutil.rmtree(sim_dir)
    text = report(args, ingest, subset)
    print("\n" + text)
    if not args.no_results:
        append_results(text)
        print(f"[bench] appended to {RESULTS_PATH}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
