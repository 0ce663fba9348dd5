"""Walk-forward replay: the service against Numerai's example LightGBM, round by round.

    .venv/bin/python bench/replay.py                       # eval scale, seeds 0 and 1 (hours)
    .venv/bin/python bench/replay.py --scale tiny --holdout 3 --env NUMERAI_MAX_EPOCHS=1  # smoke
    .venv/bin/python bench/replay.py --seeds 0 --no-service  # the baselines only

Per seed: generate the simulated tournament (cached under --work), hold out its last --holdout
resolved validation eras (`tournament_sim.replay.make_replay`), serve the rest with
`numerai-pipeline sim serve`, and run the service as a user would: `numerai-pipeline train`, then
per held-out round `numerai-pipeline submit` (and `sim advance-round`). Each upload the stand-in
received is scored on its held-out targets (CORR, BMC against the benchmark column). Beside it,
on exactly the served eras with a target: the example LightGBM on `all` and `medium`, the deep
LightGBM, a ridge; plus the benchmark column and the oracle as references. Per model and seed:
mean, std, Sharpe, max drawdown, BMC, and the paired per-era difference to the LightGBM on `all`
with its standard error (within 2 SE: a tie). Appends a section to bench/RESULTS.md and writes
every per-era score to WORK/replay-<scale>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from pathlib import Path

from common import BENCH_DIR, CpuShare, append_section
from replay_baselines import OPENMP_WAIT, RIDGE, Baseline, deep_lgbm, example_lgbm, passive_openmp, run
from replay_data import (
    REPLAY_DATA_VERSION,
    benchmark_column,
    ensure_source,
    feature_sets,
    fresh_replay,
    load_answers,
    load_live,
    load_served,
)
from replay_report import REFERENCE, SERVICE, ModelScores, SeedResult, report
from replay_scoring import era_scores
from replay_service import run_service

from model_core.knobs import default
from tournament_sim.versions import VERSIONS

MODELS = ("lgbm-all", "lgbm-medium", "lgbm-deep", "ridge")
DEFAULT_DEEP_TREES = 1500  # eval scale, 2 shared cores: 1,500 at lr 0.02 took 6 min; 30,000 at lr 0.001 ~2 h


def parse_env(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("NUMERAI_"):
        raise argparse.ArgumentTypeError(f"--env {text!r}: expected NUMERAI_<NAME>=VALUE")
    if key in ("NUMERAI_API_URL", "NUMERAI_PUBLIC_ID", "NUMERAI_SECRET_KEY", "NUMERAI_HOME"):
        raise argparse.ArgumentTypeError(f"--env {key}: the benchmark sets it (the stand-in, a fresh home)")
    return key, value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--scale", default="eval", help="simulated tournament scale (tiny: a smoke run)")
    parser.add_argument("--holdout", type=int, default=40, help="held-out eras = rounds replayed")
    parser.add_argument(
        "--unresolved", type=int, default=4, help="served eras before the cut without targets"
    )
    parser.add_argument("--live-era", default="number", choices=["number", "X"])
    # v5.2 by default: the cached sources and the results recorded in RESULTS.md are v5.2, and a
    # run on another version would not be comparable with them. The service asks for its
    # NUMERAI_DATASET_VERSION: with v5.3, pass --env NUMERAI_DATASET_VERSION=v5.3 too.
    parser.add_argument(
        "--data-version",
        default=REPLAY_DATA_VERSION,
        choices=list(VERSIONS),
        help="dataset version of the simulated tournament (default v5.2, as the recorded results)",
    )
    parser.add_argument("--no-service", action="store_true", help="the baselines only")
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"baselines to train, of {','.join(MODELS)}"
    )
    parser.add_argument(
        "--deep-trees", type=int, default=DEFAULT_DEEP_TREES, help="trees of the deep LightGBM"
    )
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="LightGBM threads")
    parser.add_argument(
        "--work", type=Path, default=BENCH_DIR / ".cache" / "replay", help="cache and outputs"
    )
    parser.add_argument(
        "--env", type=parse_env, action="append", default=[], help="NUMERAI_KEY=VALUE for the service run"
    )
    parser.add_argument("--note", dest="notes", action="append", default=[], help="a line for the report")
    parser.add_argument("--no-results", action="store_true", help="print only, do not append to RESULTS.md")
    args = parser.parse_args(argv)
    args.env = dict(args.env)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(args.models) - set(MODELS)
    if unknown:
        parser.error(f"--models: unknown {sorted(unknown)} (known: {', '.join(MODELS)})")
    return args


def baselines_for(args: argparse.Namespace, rows: int) -> list[Baseline]:
    chosen = {
        "lgbm-all": lambda: example_lgbm("all"),
        "lgbm-medium": lambda: example_lgbm("medium"),
        "lgbm-deep": lambda: deep_lgbm(args.deep_trees, rows),
        "ridge": lambda: RIDGE,
    }
    return [chosen[name]() for name in MODELS if name in args.models]


def score_model(name, features, predictions, answers, bench, rounds, **timing) -> ModelScores:
    corr, bmc = [], []
    for number in rounds:
        era = answers[answers["round"] == number]
        c, b = era_scores(predictions[number], era["target"], era[bench])
        corr.append(c)
        bmc.append(b)
    return ModelScores(name, features, corr, bmc, **timing)


def run_seed(args: argparse.Namespace, seed: int, work: Path) -> tuple[SeedResult, list[Baseline]]:
    share = CpuShare()
    source, generation_s, cached = ensure_source(work, args.scale, seed, args.data_version)
    seed_dir = work / f"{args.scale}-seed{seed}"
    replay_dir = seed_dir / "replay"
    manifest, replay_s = fresh_replay(source, replay_dir, args.holdout, args.unresolved, args.live_era)
    rounds = sorted(int(n) for n in manifest.rounds)
    eras = [manifest.rounds[str(n)] for n in rounds]
    print(f"[replay] seed {seed}: rounds {rounds[0]}..{rounds[-1]} = eras {eras[0]}..{eras[-1]}", flush=True)
    answers, bench = load_answers(replay_dir), benchmark_column(manifest)
    models = []
    service = None
    if not args.no_service:
        # First, while nothing else of ours holds memory; it reads the files the server serves.
        drop = frozenset({OPENMP_WAIT[0]} if args.set_openmp else ())
        ran = run_service(replay_dir, manifest, seed_dir / "service", args.env, drop)
        service = {k: v for k, v in dataclasses.asdict(ran).items() if k != "predictions"}
        timing = {"fit_s": ran.train_s, "predict_s": sum(ran.submit_s.values())}
        feature_set = args.env.get("NUMERAI_FEATURE_SET", f"{default('feature_set')} (default)")
        models.append(score_model(SERVICE, feature_set, ran.predictions, answers, bench, rounds, **timing))
    served = load_served(replay_dir, manifest)
    sets = feature_sets(replay_dir)
    live = load_live(replay_dir, manifest, served.features)
    data = (
        f"{len(served.era_list)} served eras with a target ({served.era_list[0]}..{served.era_list[-1]}), "
        f"{len(served.y):,} rows, {len(served.features)} features (`medium` {len(sets['medium'])}); "
        f"served eras without a target {', '.join(manifest.unresolved_eras)}; {len(answers):,} held-out rows"
    )
    print(f"[replay] seed {seed}: {data}", flush=True)
    baselines = baselines_for(args, len(served.y))
    for baseline in baselines:
        fitted = run(baseline, served, live, sets, args.threads)
        timing = {"fit_s": fitted.fit_s, "predict_s": fitted.predict_s, "note": fitted.note}
        scores = score_model(
            baseline.name, baseline.feature_set, fitted.predictions, answers, bench, rounds, **timing
        )
        models.append(scores)
    for name, column in (("benchmark", bench), ("oracle", "oracle")):
        by_round = {n: answers.loc[answers["round"] == n, column] for n in rounds}
        models.append(score_model(name, column, by_round, answers, bench, rounds))
    order = {REFERENCE: 0, SERVICE: 1}
    models.sort(key=lambda m: order.get(m.name, 2))  # stable: the rest as run
    result = SeedResult(
        seed, eras, rounds, models, data, generation_s, cached, replay_s, share.others(), service
    )
    return result, baselines


def finite(value):
    """NaN and infinities as None, so the JSON is strict."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.set_openmp = passive_openmp()
    started = time.perf_counter()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results, baselines = [], []
    for seed in args.seeds:
        result, baselines = run_seed(args, seed, work)
        results.append(result)
        for m in result.models:
            print(f"[replay] seed {seed} {m.name}: CORR {sum(m.corr) / len(m.corr):.4f}", flush=True)
    json_path = work / f"replay-{args.scale}.json"
    json_path.write_text(
        json.dumps(
            {
                "scale": args.scale,
                "holdout": args.holdout,
                "env": args.env,
                "seeds": {str(r.seed): finite(dataclasses.asdict(r)) for r in results},
            },
            indent=1,
        )
    )
    text = report(args, results, baselines, json_path, time.perf_counter() - started)
    print("\n" + text)
    if not args.no_results:
        append_section(text)
        print("[replay] appended to bench/RESULTS.md")


if __name__ == "__main__":
    main()
