"""Quality benchmark: the fold ensemble vs Numerai's example LightGBM vs the oracle, on held-out eras.

    .venv/bin/python bench/quality.py
    .venv/bin/python bench/quality.py --feature-set all --skip-ablations
    .venv/bin/python bench/quality.py --try "mse:loss=mse" --try "12 epochs:max_epochs=12,patience=4"

On the `demo` simulated tournament (seed 0): clean it (`build_era_store`), compute the feature
returns, cut purged folds (`make_folds`). Then, scoring everything on the same held-out test eras
with Numerai's per-era CORR (`era_numerai_corr`, `summarise_corrs`):

- the ensemble: one `train_fold` per fold; each fold's best model scores the test eras; the
  ensemble is the mean of the fold models' per-era ranks;
- Numerai's example LightGBM (2,000 trees, lr 0.01, depth 5, 31 leaves, colsample 0.1), trained
  on every era before the gap and the test block (MISSING -> 2, the example scripts' neutral);
- the oracle (the simulator's expected return: the ceiling);
- ablations, each a retrained ensemble: no temporal encoder, no cross-stock attention, no
  similarity prior; and `--try` variations (any ModelConfig / TrainConfig / batch field);
- attention reliance: the per-era correlation between the ensemble's scores and the same models'
  scores with cross-stock mixing switched off (`cross_stock=False` at inference). Near 1: the
  attention across stocks is not used.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from common import append_section, wait_until_quiet
from quality_data import (
    Data,
    Scored,
    ensure_tournament,
    lightgbm_baseline,
    load_data,
    oracle_predictions,
    score,
)
from quality_ensemble import ABLATIONS, Variant, attention_reliance, rank_mean, train_ensemble
from quality_report import fmt, report

# --------------------------------------------------------------------------------------------


def parse_value(text: str):
    """'true' / 'false' / 'none' / ints / floats / strings, for --set and --try."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_pairs(text: str) -> dict:
    pairs = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{part!r}: expected key=value")
        pairs[key.strip()] = parse_value(value)
    return pairs


def parse_try(text: str) -> Variant:
    name, sep, pairs = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"--try {text!r}: expected 'name:key=value,...'")
    return Variant(name.strip(), tuple(parse_pairs(pairs).items()))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/numerai-bench-quality"))
    parser.add_argument("--scale", default="demo", help="simulated tournament scale (tiny for a smoke test)")
    parser.add_argument("--seed", type=int, default=0, help="tournament seed (training seed: --set seed=N)")
    parser.add_argument("--feature-set", default="medium")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--test-eras", type=int, default=52)
    parser.add_argument("--min-train-eras", type=int, default=52)
    parser.add_argument(
        "--set", dest="base", type=parse_pairs, default={}, help="overrides for every ensemble: key=value,..."
    )
    parser.add_argument("--skip-ablations", action="store_true")
    parser.add_argument(
        "--ablation-folds", type=int, default=None, help="train the ablations on the last N folds only"
    )
    parser.add_argument(
        "--try",
        dest="tries",
        type=parse_try,
        action="append",
        default=[],
        help="an extra ensemble 'name:key=value,...' (ModelConfig / TrainConfig / batch fields, "
        "feature_set, seeds = models per fold)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch and LightGBM threads (default: all)")
    parser.add_argument(
        "--note", dest="notes", action="append", default=[], help="a line added to the report"
    )
    parser.add_argument("--wait-for", default="bench/ingest.py", help="pgrep -f pattern to wait for")
    parser.add_argument("--max-wait-min", type=float, default=20.0)
    parser.add_argument("--json", type=Path, default=None, help="also write every per-era CORR here")
    parser.add_argument("--no-results", action="store_true", help="print only, do not append to RESULTS.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    quiet = wait_until_quiet(args.wait_for, args.max_wait_min * 60)
    print(f"[quality] {quiet}", flush=True)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    started = time.perf_counter()
    workdir = args.workdir.resolve()
    sim_dir = workdir / f"sim-{args.scale}-{args.seed}"
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_tournament(sim_dir, args.scale, args.seed)
    datasets: dict[str, Data] = {}

    def data_for(feature_set: str) -> Data:
        if feature_set not in datasets:
            datasets[feature_set] = load_data(sim_dir, workdir, feature_set, args)
        return datasets[feature_set]

    main_data = data_for(args.feature_set)
    oracle = Scored("oracle", "-", score(oracle_predictions(sim_dir, main_data), main_data.targets))
    print(f"[quality] oracle CORR {oracle.summary['mean']:.4f}", flush=True)

    # The references first: they are quick, and the ensemble's target is the LightGBM.
    lgbm_rows: dict[str, Scored] = {}
    lgbm_eras = 0

    def lgbm_for(feature_set: str) -> Scored:
        nonlocal lgbm_eras
        if feature_set not in lgbm_rows:
            data = data_for(feature_set)
            preds, timing, lgbm_eras = lightgbm_baseline(data, threads)
            lgbm_rows[feature_set] = Scored(
                "example LightGBM", feature_set, score(preds, data.targets), **timing
            )
        return lgbm_rows[feature_set]

    lgbm = lgbm_for(args.feature_set)
    last = tuple(range(args.folds - args.ablation_folds, args.folds)) if args.ablation_folds else None
    variants = [(Variant("ensemble"), "main")]
    if not args.skip_ablations:
        variants += [(dataclasses.replace(v, folds=last), "ablation") for v in ABLATIONS]
    variants += [(v, "try") for v in args.tries]
    rows, ensembles, tried = [oracle, lgbm], [], []
    main_row = None
    for variant, kind in variants:
        # feature_set selects the data, not a config field: split it off the overrides.
        feature_set = variant.settings.get("feature_set", args.feature_set)
        variant = dataclasses.replace(
            variant, overrides=tuple((k, v) for k, v in variant.overrides if k != "feature_set")
        )
        data = data_for(feature_set)
        if feature_set != args.feature_set:
            rows.append(lgbm_for(feature_set))
        result = train_ensemble(variant, data, args.base, workdir)
        result["feature_set"] = feature_set
        ensembles.append(result)
        cross = result["settings"].get("cross_stock", True)
        folds_note = "" if variant.folds is None else f"folds {', '.join(map(str, variant.folds))}"
        row = Scored(
            variant.name,
            feature_set,
            score(rank_mean(result["on"]), data.targets),
            result["train_s"],
            attention_reliance(rank_mean(result["on"]), rank_mean(result["off"])) if cross else None,
            folds_note,
            float(np.mean([f["val_corr"] for f in result["folds"]])),
            result["cpu_s"],
            result["others"],
        )
        rows.append(row)
        print(
            f"[quality] {feature_set}/{variant.name}: CORR {row.summary['mean']:.4f} "
            f"(Sharpe {row.summary['sharpe']:.2f}), reliance {fmt(row.reliance, 3)}, {row.train_s:.0f} s",
            flush=True,
        )
        if kind == "main":
            main_row = row
            if cross:
                rows.append(
                    Scored(
                        "ensemble, mixing off at inference",
                        feature_set,
                        score(rank_mean(result["off"]), data.targets),
                    )
                )
        elif kind == "try":
            tried.append(row)
    context = {
        "quiet": quiet,
        "data": "; ".join(
            f"`{d.feature_set}`: {len(d.store.features)} features, {d.store.n_rows:,} rows, "
            f"{len(d.plan.folds)} folds (first trains on {len(d.plan.folds[0].train_eras)} eras, last on "
            f"{len(d.plan.folds[-1].train_eras)}), gap {d.plan.gap}, {len(d.plan.test_eras)} test eras "
            f"{d.plan.test_eras[0]}..{d.plan.test_eras[-1]}"
            for d in datasets.values()
        ),
        "lgbm_eras": lgbm_eras,
        "total_s": time.perf_counter() - started,
    }
    if args.json:
        args.json.write_text(json.dumps({r.name + "|" + r.feature_set: r.corrs for r in rows}, indent=1))
    text = report(args, rows, ensembles, main_row, lgbm_rows, tried, context)
    print("\n" + text)
    if not args.no_results:
        append_section(text)
        print("[quality] appended to bench/RESULTS.md")


if __name__ == "__main__":
    main()
