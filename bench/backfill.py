"""Era backfill benchmark: seconds per era at the real era size, and how a run grows with its eras.

    .venv/bin/python bench/backfill.py
    .venv/bin/python bench/backfill.py --eras 4 8 --stocks 1000 --features 300 --no-results

A temporary NUMERAI_HOME holds what a backfill reads, at the real data's size: an era store
(model_core.era_store.EraStoreWriter) of synthetic eras of 5,000 stocks x 2,748 int8 features,
random feature returns (the temporal context), a benchmark model and a meta model file (so BMC and
MMC are computed), and an untrained ensemble of 4 default-size fold models (ModelConfig defaults:
d_model 64, 2 layers, 4 heads, 8 lags, similarity prior `bias`) saved the way ensemble_weights
saves one (fold checkpoints, ensemble.json, the `current` link). Inference costs the same whatever
the weights, so training them would only cost time.

Each row runs one backfill run of n eras in its own child process, through the glue the
`era_predictions` / `era_scores` step calls (numerai_assets.backfill.eras.backfill_eras): the
ensemble, store, context and references loaded once, then every era predicted (file written) and
scored (CORR, BMC, MMC, max feature exposure). A last row runs the real Dagster step (a ranged
run through `dagster.materialize`, warehouse upserts, per-era materialisations, plots) for
--dagster-eras eras. The time per era should not grow with n, and the load should be paid once.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backfill_home import HISTORY_ERAS, build_home
from backfill_report import CONTENDED_SHARE, report
from common import CpuShare, append_section, wait_until_quiet

REAL_STOCKS = 5_000
REAL_FEATURES = 2_748


# --------------------------------------------------------------------------------------------
# Child side: one backfill run, one process.
# --------------------------------------------------------------------------------------------


def child_glue(params: dict) -> dict:
    """One run through the glue the Dagster step calls."""
    import torch

    # Imported before the clock starts: a backfill run's cost is not the interpreter's imports.
    for module in ("model_core.inference", "model_core.diagnostics"):
        importlib.import_module(module)
    from numerai_assets.backfill.eras import backfill_eras
    from numerai_assets.shared.home import HomeLayout

    layout = HomeLayout(Path(params["home"]))
    started = time.perf_counter()
    result = backfill_eras(
        layout,
        layout.raw_dataset_dir("v5.2"),
        None,
        params["eras"],
        predict=True,
        score=True,
        log=lambda m: None,
    )
    total = time.perf_counter() - started
    if result.failed:
        raise RuntimeError(f"eras failed: {result.failed}")
    bmc = [d.scores["bmc"] for d in result.done]
    return {
        "total_s": total,
        "load_s": result.load_seconds,
        "predict_s": result.seconds_per_era("predict"),
        "score_s": result.seconds_per_era("score"),
        "first_era_s": result.done[0].predict_seconds + result.done[0].score_seconds,
        "bmc_scored": sum(b == b for b in bmc),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def child_dagster(params: dict) -> dict:
    """One ranged run of the real step, through dagster.materialize (warehouse, events, plots)."""
    import dagster as dg

    from numerai_assets.definitions import build_definitions
    from numerai_assets.shared import dagster_private as private
    from numerai_assets.shared.settings import load_settings

    eras = params["eras"]
    settings = load_settings(home=Path(params["home"]), executor="in_process", feature_set="all")
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("numerai_era", params["all_eras"])
        started = time.perf_counter()
        result = dg.materialize(
            list(defs.assets),
            resources=defs.resources,
            instance=instance,
            selection=["era_predictions", "era_scores"],
            tags={
                private.ASSET_PARTITION_RANGE_START_TAG: eras[0],
                private.ASSET_PARTITION_RANGE_END_TAG: eras[-1],
            },
        )
        total = time.perf_counter() - started
        events = result.asset_materializations_for_node("era_predictions_and_scores")
        last = events[-1].metadata  # the scores' last era: it carries the run's summary
        predictions = instance.fetch_materializations(dg.AssetKey("era_predictions"), limit=1).records
    prediction_meta = predictions[0].asset_materialization.metadata
    return {
        "total_s": total,
        "load_s": prediction_meta["model_load_seconds"].value,
        "predict_s": prediction_meta["seconds_per_era"].value,
        "score_s": last["seconds_per_era"].value,
        "first_era_s": float("nan"),
        "bmc_scored": len(eras) if "bmc_mean" in last else 0,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": 0,
    }


# --------------------------------------------------------------------------------------------
# Parent side.
# --------------------------------------------------------------------------------------------


def run_child(kind: str, params: dict) -> dict:
    share = CpuShare()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMERAI_")}
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(params)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} run of {len(params['eras'])} eras failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    others = share.others()
    result.update(kind=kind, eras=len(params["eras"]), others=others, contended=others > CONTENDED_SHARE)
    per_era = (result["total_s"] - result["load_s"]) / result["eras"]
    result["per_era_s"] = per_era
    print(
        f"[bench] {kind} {result['eras']} eras: {result['total_s']:.1f} s, load {result['load_s']:.1f} s, "
        f"{per_era:.2f} s/era (others {others:.0%})",
        flush=True,
    )
    return result


def run_least_contended(kind: str, params: dict, args: argparse.Namespace) -> dict:
    """Run a row; while other jobs took the CPUs during it, wait for quiet and run it again (up to
    --retries times), keeping the least contended run (2 cores: one other job halves our speed)."""
    best = run_child(kind, params)
    for attempt in range(args.retries):
        if not best["contended"]:
            break
        print(f"[bench] contended ({best['others']:.0%}), retry {attempt + 1}", flush=True)
        print(f"[bench] {wait_until_quiet(args.wait_for, args.max_wait_min * 60)}", flush=True)
        best = min(best, run_child(kind, params), key=lambda r: r["others"])
    return best


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--eras", type=int, nargs="+", default=[4, 8, 16, 32], help="eras per run, one row each"
    )
    parser.add_argument("--dagster-eras", type=int, default=8, help="eras of the Dagster row (0: none)")
    parser.add_argument("--stocks", type=int, default=REAL_STOCKS)
    parser.add_argument("--features", type=int, default=REAL_FEATURES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--wait-for", default="bench/", help="pgrep -f pattern of other benchmarks to wait for"
    )
    parser.add_argument("--max-wait-min", type=float, default=5.0)
    parser.add_argument("--retries", type=int, default=2, help="reruns of a row that others' jobs contended")
    parser.add_argument("--no-results", action="store_true", help="print only, do not append to RESULTS.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    quiet = wait_until_quiet(args.wait_for, args.max_wait_min * 60)
    print(f"[bench] {quiet}", flush=True)
    n_backfill = max([*args.eras, args.dagster_eras])
    home = Path(tempfile.mkdtemp(prefix="numerai-bench-backfill-"))
    try:
        started = time.perf_counter()
        eras = build_home(home, HISTORY_ERAS + n_backfill, args.stocks, args.features, args.seed)
        setup_s = time.perf_counter() - started
        print(f"[bench] wrote {len(eras)} eras to {home} in {setup_s:.0f} s", flush=True)
        results = [
            run_least_contended("glue", {"home": str(home), "eras": eras[-n:]}, args) for n in args.eras
        ]
        if args.dagster_eras:
            params = {"home": str(home), "eras": eras[-args.dagster_eras :], "all_eras": eras}
            results.append(run_least_contended("dagster", params, args))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    text = report(args, results, quiet, setup_s)
    print("\n" + text)
    if not args.no_results:
        append_section(text)
        print("[bench] appended to bench/RESULTS.md")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child = {"glue": child_glue, "dagster": child_dagster}[sys.argv[2]]
        print(json.dumps(child(json.loads(sys.argv[3]))))
    else:
        main()
