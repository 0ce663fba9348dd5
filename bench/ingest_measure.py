"""Parent side of the ingestion benchmark (bench/ingest.py): the simulated tournament, the subset
file, and running each measurement in a child process whose peak RSS is collected.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INGEST_SCRIPT = Path(__file__).with_name("ingest.py")  # the children run as `ingest.py --child ...`


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
        command = [sys.executable, str(INGEST_SCRIPT), "--child", kind, str(params_path), str(result_path)]
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
    generate_tournament(
        sim_dir,
        scale,
        seed,
        progress=lambda m: print(f"[sim] {m}", flush=True),
    )
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
