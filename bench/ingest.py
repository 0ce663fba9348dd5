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
import shutil
import sys
from pathlib import Path

from ingest_child import child_main
from ingest_measure import ensure_tournament, measure_ingest, measure_subset
from ingest_report import RESULTS_PATH, append_results, load_average, report

DEFAULT_FEATURE_SET = {"tiny": "all", "demo": "all", "full": "all"}  # the worst case at each scale


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
