"""Live path benchmark: round-open-to-upload on the demo tournament, real-size inference on one core.

    .venv/bin/python bench/live.py
    .venv/bin/python bench/live.py --scale tiny --rounds 1 --skip-inference --no-results  # a quick check

1. The `demo` tournament is generated, served by the API stand-in, and a 4-fold ensemble trained
   through the real assets (1 epoch). For each timed round, advance_round opens it and the clock
   runs until the stand-in records the upload; in between, `tick_round_sensor` evaluates the round
   sensor as the daemon does and runs the live_round job (raw_round -> live_predictions -> blocking
   check -> submission). Per-step times come from the run's STEP_START / STEP_SUCCESS events.
   Round 1000, open since generation, is a warm-up (first imports), reported but not in the median.
2. Real size: 6,900 live stocks x 2,748 int8 features, the default model (ModelConfig defaults)
   in a 4-fold ensemble of untrained checkpoints saved as model_core.train saves them. A fresh
   child process pinned to one core (1 torch thread) times the ensemble load, clean_live_frame on a
   Numerai-layout live parquet, and Ensemble.predict; its peak RSS is getrusage's high-water mark.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

LIVE_STOCKS, REAL_FEATURES, FOLDS = 6_900, 2_748, 4
AIM_S, AIM_MIB = 60, 2048  # what we aim for; Numerai's model-upload limits are 1 CPU, 4 GB, 10 min
WAIT_FOR = r"bench/(ingest|train|backfill|quality)\.py"
POLL_S = 5  # NUMERAI_ROUND_POLL_S here: the shortest sensor interval


def run_step_times(instance, round_number: int) -> tuple[float, float, dict[str, float]]:
    """Start and end (epoch s) of the round's live_round run and each step's duration, from its events."""
    import dagster as dg

    tags = {"dagster/partition": str(round_number)}
    [run] = instance.get_runs(filters=dg.RunsFilter(job_name="live_round", tags=tags))
    marks, steps = {}, {}
    for entry in instance.all_logs(run.run_id):
        kind = entry.dagster_event.event_type_value if entry.dagster_event else None
        if kind in ("STEP_START", "STEP_SUCCESS"):
            steps.setdefault(entry.step_key, {})[kind] = entry.timestamp
        elif kind in ("PIPELINE_START", "PIPELINE_SUCCESS"):
            marks[kind] = entry.timestamp
    durations = {key: t["STEP_SUCCESS"] - t["STEP_START"] for key, t in steps.items()}
    return marks["PIPELINE_START"], marks["PIPELINE_SUCCESS"], durations


def timed_round(instance, workspace, sim: Path, open_round) -> dict:
    """Open a round, tick the sensor as the daemon would, stop the clock when the upload is recorded."""
    from numerai_assets.cli.round_sensor import tick_round_sensor
    from tournament_sim.server import list_submissions

    time.sleep(POLL_S)  # the sensor ticks at most every POLL_S: that wait stays off the clock
    before, wall0, t0 = len(list_submissions(sim)), time.time(), time.perf_counter()
    number = open_round()
    tick = tick_round_sensor(instance, workspace)
    while len(list_submissions(sim)) <= before and time.perf_counter() - t0 < 600:
        time.sleep(0.01)  # the run is in this process: normally there already
    total, wall1 = time.perf_counter() - t0, time.time()
    run_start, run_end, steps = run_step_times(instance, number)
    print(f"[bench] round {number}: open -> upload recorded in {total:.2f} s; steps {steps}", flush=True)
    return {
        "round": number,
        "cursor": tick.cursor,
        "steps": {key.removeprefix("live_predictions_"): s for key, s in steps.items()},
        "total_s": total,
        "to_run_start_s": run_start - wall0,  # sensor evaluation + run creation
        "dagster_s": run_end - run_start - sum(steps.values()),  # between and around the steps
        "after_run_s": wall1 - run_end,  # the run's execution returning, then the upload seen
    }


def bench_demo(args: argparse.Namespace, work: Path) -> dict:
    from tournament_sim.generate import generate_tournament
    from tournament_sim.rounds import advance_round
    from tournament_sim.server import SimServer

    sim, started = work / "sim", time.perf_counter()
    state = generate_tournament(sim, args.scale, args.seed)
    generate_s = time.perf_counter() - started
    with SimServer(sim) as server:
        os.environ.update(
            NUMERAI_HOME=str(work / "home"),
            NUMERAI_API_URL=server.url,
            NUMERAI_PUBLIC_ID=state.public_id,
            NUMERAI_SECRET_KEY=state.secret_key,
            NUMERAI_MODEL_NAME=next(iter(state.models)),
            NUMERAI_MAX_EPOCHS="1",
            NUMERAI_BASELINE="false",
            NUMERAI_PEER_RIDGE="false",
            NUMERAI_EXECUTOR="in_process",
            NUMERAI_ROUND_POLL_S=str(POLL_S),
        )
        if args.scale == "tiny":  # 76 resolved eras: smaller folds
            os.environ.update(NUMERAI_N_FOLDS="2", NUMERAI_TEST_ERAS="8", NUMERAI_MIN_TRAIN_ERAS="12")
        import dagster as dg  # the code location reads its settings at import: after the environment

        from numerai_assets.cli.code_location import code_location
        from numerai_assets.cli.runs import materialize_selection
        from numerai_assets.shared.settings import load_settings
        from numerai_assets.training.jobs import training_selection

        settings = load_settings()
        # the live path needs the store, the feature returns and models/current, not diagnostics
        selection = [
            a
            for a in training_selection(settings.n_folds, False, settings.refit_seeds, False)
            if a not in ("validation_diagnostics", "numerai_diagnostics")
        ]
        with dg.instance_for_test() as instance, code_location(instance) as workspace:
            print(f"[bench] training {settings.n_folds} folds x 1 epoch ({args.scale})", flush=True)
            started = time.perf_counter()
            materialize_selection(workspace, selection, log_level="WARNING")
            train_s = time.perf_counter() - started
            share = common.CpuShare()
            warm = timed_round(instance, workspace, sim, lambda: state.current.number)
            rounds = [
                timed_round(instance, workspace, sim, lambda: advance_round(sim)) for _ in range(args.rounds)
            ]
            others = share.others()
    return dict(
        generate_s=generate_s, train_s=train_s, warm=warm, rounds=rounds, settings=settings, others=others
    )


def write_inference_inputs(folder: Path, args: argparse.Namespace) -> list[float]:
    """A 4-fold ensemble of untrained default-size models (checkpoints as train_fold saves them) and
    `live.parquet` in the Numerai layout; returns the checkpoints' sizes in MiB."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from model_core.batches import live_batch
    from model_core.inference import EnsembleSpec
    from model_core.model import EraTransformer, ModelConfig
    from model_core.train import TrainConfig, _save

    rng, n, f = np.random.default_rng(args.seed), args.stocks, args.features
    names, config = [f"feature_{i:04d}" for i in range(f)], ModelConfig(n_features=f)
    checkpoints = [f"fold_{k}.pt" for k in range(FOLDS)]
    for k, name in enumerate(checkpoints):
        torch.manual_seed(args.seed + k)
        model = EraTransformer(config)
        optimizer = torch.optim.AdamW(model.parameters())
        small = live_batch(
            rng.integers(0, 5, (64, f), np.int8), np.zeros((config.temporal_lags, f), np.float32)
        )
        model(small.features, small.mask, small.context).square().mean().backward()
        optimizer.step()  # so the checkpoint carries AdamW's moments, as a trained one does
        best = {key: v.detach().clone() for key, v in model.state_dict().items()}
        state = dict(epoch=1, best_val_corr=0.0, best_epoch=1, bad_epochs=0, history=[], best_model=best)
        _save(folder / name, model, optimizer, config, TrainConfig(), state)
    weights = [1 / FOLDS] * FOLDS
    spec = EnsembleSpec(
        "20260101T000000Z-bench", checkpoints, weights, weights, config.temporal_lags, "all", names
    )
    spec.save(folder)
    values, nulls = rng.integers(0, 5, (n, f), np.int8), rng.random((n, f)) < 0.001  # nulls -> MISSING
    ids = [f"n{h:015x}" for h in rng.integers(0, 2**60, n)]
    columns = {"id": pa.array(ids), "era": pa.array(["X"] * n), "data_type": pa.array(["live"] * n)}
    columns |= {name: pa.array(values[:, j], mask=nulls[:, j]) for j, name in enumerate(names)}
    columns["target"] = pa.nulls(n, pa.float32())  # unknown in a live file
    pq.write_table(pa.table(columns), folder / "live.parquet")
    return [(folder / c).stat().st_size / 2**20 for c in checkpoints]


def child_main(params: dict) -> dict:
    os.sched_setaffinity(0, {0})
    started, cpu0 = time.perf_counter(), time.process_time()
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from model_core.batches import live_batch
    from model_core.clean import clean_live_frame
    from model_core.inference import Ensemble

    out = {"imports (torch, polars, model_core)": (time.perf_counter() - started, time.process_time() - cpu0)}

    def timed(name: str, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        value = fn()
        out[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        return value

    folder = Path(params["folder"])
    ensemble = timed("ensemble load (4 checkpoints)", lambda: Ensemble(folder))
    live = folder / "live.parquet"
    ids, features = timed("clean_live_frame", lambda: clean_live_frame(live, ensemble.spec.features))
    rng = np.random.default_rng(params["seed"])
    context = 0.02 * rng.standard_normal((ensemble.spec.temporal_lags, features.shape[1]))
    context = context.astype(np.float32)
    predictions = timed("Ensemble.predict", lambda: ensemble.predict(features, context))
    timed("Ensemble.predict, again", lambda: ensemble.predict(features, context))
    batch = live_batch(features, context)
    with torch.no_grad():  # the N x N similarity prior that each fold model builds inside predict
        timed(
            "similarity prior, one fold (inside each fold's predict)",
            lambda: ensemble.models[0]._stock_graph(batch.features, batch.mask),
        )
    assert predictions.shape == (len(ids),) and predictions.min() > 0 and predictions.max() <= 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    missing = int((features == -1).sum())
    return dict(steps=out, peak_mib=peak, missing=missing, cpus=sorted(os.sched_getaffinity(0)))


def bench_inference(args: argparse.Namespace, work: Path) -> dict:
    folder = work / "ensemble"
    folder.mkdir()
    print(f"[bench] writing {FOLDS} checkpoints, a {args.stocks:,} x {args.features:,} live file", flush=True)
    sizes = write_inference_inputs(folder, args)
    share, started = common.CpuShare(), time.perf_counter()
    child = [sys.executable, __file__, "--child", json.dumps({"folder": str(folder), "seed": args.seed})]
    done = subprocess.run(child, capture_output=True, text=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"inference child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(child_s=time.perf_counter() - started, others=share.others(), sizes=sizes)
    result["live_mib"] = (folder / "live.parquet").stat().st_size / 2**20
    print(f"[bench] inference: {result}", flush=True)
    return result


def demo_section(d: dict, scale: str) -> list[str]:
    timed, warm = d["rounds"], d["warm"]
    steps = list((timed or [warm])[0]["steps"])
    cols = ["total_s", "to_run_start_s", *steps, "dagster_s", "after_run_s"]

    def cell(r, c):
        return r["steps"].get(c, r.get(c))

    rows = [[f"{r['round']}" + (" (warm-up)" if r is warm else ""), *(f"{cell(r, c):.2f}" for c in cols)] for r in [warm, *timed]]  # fmt: skip
    if timed:
        rows.append([f"**median of {len(timed)}**", *(f"**{statistics.median(cell(r, c) for r in timed):.2f}**" for c in cols)])  # fmt: skip
    header = ["round", "open -> upload (s)", "sensor + run start (s)", *(f"{s} (s)" for s in steps), "Dagster around steps (s)", "run end -> upload seen (s)"]  # fmt: skip
    s = d["settings"]
    return [
        f"### Round open -> upload, `{scale}` tournament", "",
        f"Generated in {d['generate_s']:.0f} s; {s.n_folds} folds x 1 epoch trained through the assets in {d['train_s']:.0f} s (not part of the live path); model d_model {s.d_model}, {s.n_layers} layers, {s.temporal_lags} lags, feature set `{s.feature_set}`.", "",
        *common.markdown_table(header, rows), "",
        f"Other processes used {d['others']:.0%} of the machine's CPUs during the rounds (warm-up included). Step times are STEP_START -> STEP_SUCCESS from the run's events; `sensor + run start` = advance_round, the sensor's evaluation (two API calls), the partition and the run's creation, up to RUN_START.",
        f"In production the daemon evaluates the sensor every NUMERAI_ROUND_POLL_S = {s.round_poll_s} s, so a run starts up to that much after the round opens; add it to these figures (here the sensor is ticked right after advance_round).",
    ]  # fmt: skip


def inference_section(r: dict, args: argparse.Namespace) -> list[str]:
    steps = r["steps"]  # in the child's order: imports, load, clean, predict, then the extras
    rows = [[name, f"{wall:.2f}", f"{cpu:.2f}"] for name, (wall, cpu) in steps.items()]
    one_era = sum(wall for wall, _ in list(steps.values())[:4])
    rows.append(["imports + load + clean + predict (one live era)", f"{one_era:.2f}", ""])
    rows.append(["child process, start to exit (all of the above)", f"{r['child_s']:.2f}", ""])
    ok = r["child_s"] < AIM_S and r["peak_mib"] < AIM_MIB
    return [
        "", "### Live inference on one CPU core", "",
        f"{args.stocks:,} stocks x {args.features:,} int8 features ({r['missing']:,} nulls -> MISSING), ModelConfig defaults (d_model 64, 2 layers, 4 heads, 8 lags, prior `bias`), {FOLDS} folds (checkpoints {', '.join(f'{m:.1f}' for m in r['sizes'])} MiB, AdamW state included; live parquet {r['live_mib']:.1f} MiB). Child process pinned to CPU {r['cpus']}, 1 torch thread; other processes used {r['others']:.0%} of the machine's CPUs meanwhile.", "",
        *common.markdown_table(["step", "wall (s)", "CPU (s)"], rows), "",
        f"Peak RSS of the child: **{r['peak_mib']:,.0f} MiB**. Aim: under {AIM_S} s and {AIM_MIB:,} MiB on one core: **{'met' if ok else 'MISSED'}**; Numerai's model-upload limits: 1 CPU, 4 GB, 10 minutes.",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after the warm-up (demo has 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", default="demo", help="simulated tournament (tiny: a quick check)")
    parser.add_argument("--stocks", type=int, default=LIVE_STOCKS)
    parser.add_argument("--features", type=int, default=REAL_FEATURES)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-inference", action="store_true")
    parser.add_argument("--max-wait-min", type=float, default=10.0, help="for other benchmarks / a busy CPU")
    parser.add_argument("--no-results", action="store_true", help="print only, do not append to RESULTS.md")
    args = parser.parse_args()
    quiet = common.wait_until_quiet(WAIT_FOR, args.max_wait_min * 60)
    print(f"[bench] {quiet}", flush=True)
    lines = [
        "## Live path (bench/live.py)",
        "",
        f"- date: {common.today()}",
        f"- command: `{common.command_line()}`",
        f"- machine: {common.machine_description()}",
        f"- other load: {quiet}; load average at the start {common.load_average()}",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        body = []
        if not args.skip_demo:
            body += demo_section(bench_demo(args, Path(tmp)), args.scale)
        if not args.skip_inference:
            body += inference_section(bench_inference(args, Path(tmp)), args)
    lines += [f"- load average at the end: {common.load_average()}", "", *body, ""]
    text = "\n".join(lines)
    print("\n" + text)
    if not args.no_results:
        common.append_section(text)
        print("[bench] appended to bench/RESULTS.md")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child_main(json.loads(sys.argv[2]))))
    else:
        main()
