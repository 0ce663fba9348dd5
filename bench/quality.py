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
import shutil
import time
from pathlib import Path

import numpy as np
from common import (
    CpuShare,
    append_section,
    command_line,
    load_average,
    machine_description,
    markdown_table,
    today,
    wait_until_quiet,
)

TARGET_CORR_NOTE = "the ensemble's CORR mean and Sharpe at or above the LightGBM's"
LGBM_PARAMS = {  # Numerai's example model
    "n_estimators": 2000,
    "learning_rate": 0.01,
    "max_depth": 5,
    "num_leaves": 2**5 - 1,
    "colsample_bytree": 0.1,
}
BATCH_FIELDS = {"eras_per_batch": 4, "max_stocks": None}  # EraBatches knobs (the service defaults)
SEED_STRIDE = 1000  # seed k of a fold: TrainConfig.seed + 1000 k (batches: that + the fold index)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One ensemble to train: a name, field overrides, and which folds (None = all)."""

    name: str
    overrides: tuple[tuple[str, object], ...] = ()
    folds: tuple[int, ...] | None = None

    @property
    def settings(self) -> dict:
        return dict(self.overrides)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "_" for c in self.name.lower()).strip("_")


ABLATIONS = (
    Variant("no temporal encoder", (("temporal_lags", 0),)),
    Variant("no cross-stock attention", (("cross_stock", False),)),
    Variant("no similarity prior", (("similarity_prior", "none"),)),
)


@dataclasses.dataclass
class Data:
    """One cleaned feature set of the tournament: store, feature returns, folds, test targets."""

    feature_set: str
    store: object  # model_core.era_store.EraStore
    returns: object  # polars DataFrame: era + one column per feature
    plan: object  # model_core.cv.FoldPlan
    targets: dict[str, np.ndarray]  # test era -> (N,) main target, storage order


@dataclasses.dataclass
class Scored:
    """A row of the table."""

    name: str
    feature_set: str
    corrs: list[float]
    train_s: float | None = None
    reliance: float | None = None
    note: str = ""
    val_corr: float | None = None  # mean over folds of the best validation CORR (out-of-fold)
    cpu_s: float | None = None
    others: float | None = None  # share of the CPUs other processes used while it trained

    @property
    def summary(self) -> dict[str, float]:
        from model_core.metrics import summarise_corrs

        return summarise_corrs(self.corrs)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def ensure_tournament(sim_dir: Path, scale: str, seed: int) -> None:
    """Generate the simulated tournament once (demo: ~1 s); later runs reuse it."""
    from model_core import schema
    from tournament_sim.generate import generate_tournament
    from tournament_sim.layout import STATE_FILE

    if (sim_dir / STATE_FILE).exists() and (sim_dir / schema.DEFAULT_DATASET_VERSION).exists():
        return
    print(f"[quality] generating the {scale!r} tournament (seed {seed}) in {sim_dir}", flush=True)
    generate_tournament(sim_dir, scale, seed)


def load_data(sim_dir: Path, workdir: Path, feature_set: str, args: argparse.Namespace) -> Data:
    from model_core import schema
    from model_core.clean import CleanConfig, build_era_store
    from model_core.cv import CVConfig, make_folds
    from model_core.feature_returns import compute_feature_returns

    started = time.perf_counter()
    # One directory per feature set: publish_dir deletes every other `store-*` version in the
    # link's directory, so two feature sets side by side would delete each other's store.
    link = workdir / "stores" / feature_set / "current"
    store, _summary = build_era_store(
        sim_dir / schema.DEFAULT_DATASET_VERSION, link, CleanConfig(feature_set=feature_set)
    )
    returns = compute_feature_returns(store)
    cv = CVConfig(n_folds=args.folds, test_eras=args.test_eras, min_train_eras=args.min_train_eras)
    plan = make_folds(store.resolved_eras(), cv)
    column = store.target_index(schema.MAIN_TARGET)
    targets = {era: np.array(store.era(era).targets[:, column]) for era in plan.test_eras}
    print(
        f"[quality] feature set {feature_set!r}: {len(store.features)} features, {store.n_rows:,} rows, "
        f"{len(plan.folds)} folds, {len(plan.test_eras)} test eras ({plan.test_eras[0]}..{plan.test_eras[-1]}), "
        f"gap {plan.gap}; {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return Data(feature_set, store, returns, plan, targets)


# --------------------------------------------------------------------------------------------
# The ensemble
# --------------------------------------------------------------------------------------------


def split_settings(settings: dict, n_features: int):
    """Overrides -> (ModelConfig, TrainConfig, EraBatches kwargs, feature set); unknown keys fail."""
    from model_core.model import ModelConfig
    from model_core.train import TrainConfig

    model_fields = {f.name for f in dataclasses.fields(ModelConfig)} - {"n_features"}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(settings) - model_fields - train_fields - set(BATCH_FIELDS) - {"feature_set"}
    if unknown:
        raise ValueError(
            f"unknown setting(s) {sorted(unknown)}; known: ModelConfig {sorted(model_fields)}, "
            f"TrainConfig {sorted(train_fields)}, batches {sorted(BATCH_FIELDS)}, feature_set"
        )
    model = ModelConfig(n_features=n_features, **{k: v for k, v in settings.items() if k in model_fields})
    train = TrainConfig(**{k: v for k, v in settings.items() if k in train_fields})
    batches = {k: settings.get(k, default) for k, default in BATCH_FIELDS.items()}
    return model, train, batches


def temporal_context(data: Data, lags: int):
    from model_core.batches import TemporalContext

    if lags == 0:
        return None  # as the fold assets do: no context at all when the encoder is off
    return TemporalContext(data.returns, lags, all_eras=data.store.eras)


def predict_eras(model, data: Data, eras, context, cross_stock: bool | None = None) -> dict[str, np.ndarray]:
    """Scores of every stock of `eras` (storage order), eval mode, no grad: the inference path."""
    import torch

    from model_core.batches import EraBatches

    batches = EraBatches(data.store, eras, eras_per_batch=4, context=context)
    out = {}
    model.eval()
    with torch.no_grad():
        for batch in batches:
            scores = model(batch.features, batch.mask, batch.context, cross_stock=cross_stock)[..., 0]
            for e, era in enumerate(batch.eras):
                out[era] = scores[e][batch.mask[e]].numpy().astype(np.float64)
    return out


def train_member(fold, seed: int, configs, data: Data, context, checkpoint: Path) -> tuple[dict, dict]:
    """One train_fold (fold, seed); its best model's test scores, mixing on and off, and a report."""
    from model_core.batches import EraBatches
    from model_core.train import load_trained, train_fold

    model_config, train_config, batch_kw = configs
    train_config = dataclasses.replace(train_config, seed=seed)
    train = EraBatches(
        data.store, fold.train_eras, shuffle=True, seed=seed + fold.index, context=context, **batch_kw
    )
    val = EraBatches(
        data.store, fold.validation_eras, eras_per_batch=batch_kw["eras_per_batch"], context=context
    )
    wall, cpu = time.perf_counter(), time.process_time()
    trained = train_fold(model_config, train_config, train, val, checkpoint)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    model, _meta = load_trained(trained.checkpoint)
    scores = {
        "on": predict_eras(model, data, data.plan.test_eras, context),
        "off": predict_eras(model, data, data.plan.test_eras, context, cross_stock=False),
    }
    report = {
        "fold": fold.index,
        "seed": seed,
        "train_eras": len(fold.train_eras),
        "train_rows": train.rows,
        "epochs_run": trained.epochs_run,
        "best_epoch": trained.best_epoch,
        "val_corr": trained.best_val_corr,
        "val_history": [round(h.val_corr_mean, 4) for h in trained.history],
        "test_corr": float(np.nanmean(score(scores["on"], data.targets))),
        "seconds": wall,
        "cpu_seconds": cpu,
        "rows_per_s": float(np.mean([h.rows_per_s for h in trained.history])),
    }
    return scores, report


def train_ensemble(variant: Variant, data: Data, base: dict, workdir: Path) -> dict:
    """One train_fold per fold (and seed), then each best model scores the test eras."""
    settings = {**base, **variant.settings}
    seeds = int(settings.get("seeds", 1))  # models per fold, rank-averaged with the others
    configs = split_settings({k: v for k, v in settings.items() if k != "seeds"}, len(data.store.features))
    context = temporal_context(data, configs[0].temporal_lags)
    model_dir = workdir / "models" / f"{data.feature_set}-{variant.slug}"
    shutil.rmtree(model_dir, ignore_errors=True)  # train_fold resumes from a checkpoint: start fresh
    model_dir.mkdir(parents=True)
    folds = [f for f in data.plan.folds if variant.folds is None or f.index in variant.folds]
    result = {"name": variant.name, "settings": settings, "folds": [], "on": [], "off": []}
    share = CpuShare()  # how much of the machine other jobs took while this ensemble trained
    for fold in folds:
        for k in range(seeds):
            seed = configs[1].seed + SEED_STRIDE * k
            checkpoint = model_dir / f"fold_{fold.index}_seed_{seed}.pt"
            scores, report = train_member(fold, seed, configs, data, context, checkpoint)
            result["on"].append(scores["on"])
            result["off"].append(scores["off"])
            result["folds"].append(report)
            print(
                f"[quality] {data.feature_set}/{variant.name} fold {fold.index} seed {seed}: "
                f"{report['train_eras']} train eras, {report['epochs_run']} epochs (best "
                f"{report['best_epoch']}, val CORR {report['val_corr']:.4f}, history {report['val_history']}), "
                f"test CORR {report['test_corr']:.4f}, {report['seconds']:.0f} s wall / "
                f"{report['cpu_seconds']:.0f} s CPU",
                flush=True,
            )
    result.update(
        train_s=sum(r["seconds"] for r in result["folds"]),
        cpu_s=sum(r["cpu_seconds"] for r in result["folds"]),
        others=share.others(),
    )
    return result


def rank_mean(per_fold: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The ensemble: per era, the mean over fold models of their rank-percentiles."""
    from scipy.stats import rankdata

    return {era: np.mean([rankdata(p[era]) / len(p[era]) for p in per_fold], axis=0) for era in per_fold[0]}


def attention_reliance(on: dict[str, np.ndarray], off: dict[str, np.ndarray]) -> float:
    """Mean over eras of the Pearson correlation of the scores with mixing on vs off."""
    corrs = [
        np.corrcoef(on[era], off[era])[0, 1] for era in on if np.ptp(on[era]) > 0 and np.ptp(off[era]) > 0
    ]
    return float(np.mean(corrs)) if corrs else float("nan")


def score(predictions: dict[str, np.ndarray], targets: dict[str, np.ndarray]) -> list[float]:
    from model_core.metrics import era_numerai_corr

    return [era_numerai_corr(predictions[era], targets[era]) for era in sorted(targets)]


# --------------------------------------------------------------------------------------------
# The references
# --------------------------------------------------------------------------------------------


def stack_eras(data: Data, eras) -> tuple[np.ndarray, np.ndarray]:
    """(rows, F) float32 features with MISSING -> 2 (the example scripts' neutral) and (rows,) target."""
    from model_core import schema

    column = data.store.target_index(schema.MAIN_TARGET)
    parts = [data.store.era(era) for era in eras]
    features = np.concatenate([p.features for p in parts])
    features = np.where(features == schema.MISSING, schema.FEATURE_NEUTRAL, features).astype(np.float32)
    return features, np.concatenate([p.targets[:, column] for p in parts])


def lightgbm_baseline(data: Data, threads: int) -> tuple[dict[str, np.ndarray], dict, int]:
    """Numerai's example LightGBM on every era before the gap and the test block."""
    import lightgbm

    last = data.plan.folds[-1]
    eras = [*last.train_eras, *last.validation_eras]  # the whole fold region, purged from the test block
    x, y = stack_eras(data, eras)
    model = lightgbm.LGBMRegressor(**LGBM_PARAMS, n_jobs=threads, verbose=-1)
    started, cpu, share = time.perf_counter(), time.process_time(), CpuShare()
    model.fit(x, y)
    seconds = time.perf_counter() - started
    timing = {"train_s": seconds, "cpu_s": time.process_time() - cpu, "others": share.others()}
    predictions = {}
    for era in data.plan.test_eras:
        features, _ = stack_eras(data, [era])
        predictions[era] = model.predict(features)
    print(
        f"[quality] {data.feature_set}/LightGBM: {len(eras)} eras, {len(y):,} rows, {seconds:.0f} s",
        flush=True,
    )
    return predictions, timing, len(eras)


def oracle_predictions(sim_dir: Path, data: Data) -> dict[str, np.ndarray]:
    """The simulator's expected 20-day return, joined on id to the store's test rows."""
    import polars as pl

    from model_core import schema
    from tournament_sim.layout import ORACLE_DIR

    files = [sim_dir / ORACLE_DIR / f"{split}.parquet" for split in ("train", "validation")]
    oracle = pl.concat([pl.read_parquet(f, columns=[schema.ID, schema.ERA, "prediction"]) for f in files])
    oracle = oracle.filter(pl.col(schema.ERA).is_in(list(data.plan.test_eras)))
    by_id = dict(zip(oracle[schema.ID].to_list(), oracle["prediction"].to_list(), strict=True))
    out = {}
    for era in data.plan.test_eras:
        ids = data.store.era(era).ids
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(f"oracle: {len(missing)} id(s) of era {era} missing, e.g. {missing[:3]}")
        out[era] = np.array([by_id[i] for i in ids], dtype=np.float64)
    return out


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def results_table(rows: list[Scored]) -> list[str]:
    header = [
        "model",
        "features",
        "CORR mean",
        "std",
        "Sharpe",
        "max drawdown",
        "attention reliance",
        "val CORR",
        "train s",
        "train CPU s",
        "others' CPU",
    ]
    lines = []
    for r in rows:
        s = r.summary
        lines.append(
            [
                r.name + (f" ({r.note})" if r.note else ""),
                r.feature_set,
                fmt(s["mean"]),
                fmt(s["std"]),
                fmt(s["sharpe"], 3),
                fmt(s["max_drawdown"]),
                fmt(r.reliance, 3),
                fmt(r.val_corr),
                "-" if r.train_s is None else f"{r.train_s:.0f}",
                "-" if r.cpu_s is None else f"{r.cpu_s:.0f}",
                "-" if r.others is None else f"{r.others:.0%}",
            ]
        )
    return markdown_table(header, lines)


def folds_table(ensembles: list[dict]) -> list[str]:
    header = [
        "ensemble",
        "fold",
        "seed",
        "train eras",
        "epochs (best)",
        "val CORR",
        "val CORR per epoch",
        "test CORR",
        "s",
        "rows/s",
    ]
    rows = [
        [
            f"{e['feature_set']}/{e['name']}",
            str(f["fold"]),
            str(f["seed"]),
            str(f["train_eras"]),
            f"{f['epochs_run']} ({f['best_epoch']})",
            fmt(f["val_corr"]),
            " ".join(f"{v:.3f}" for v in f["val_history"]),
            fmt(f["test_corr"]),
            f"{f['seconds']:.0f}",
            f"{f['rows_per_s']:,.0f}",
        ]
        for e in ensembles
        for f in e["folds"]
    ]
    return markdown_table(header, rows)


def paired(a: Scored, b: Scored) -> str:
    """Per-era difference a - b: mean, its standard error and t (the eras are the same)."""
    diff = np.asarray(a.corrs) - np.asarray(b.corrs)
    diff = diff[~np.isnan(diff)]
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    return f"per-era difference {diff.mean():+.4f} +- {se:.4f} (t = {diff.mean() / se:+.1f})"


def beats(a: Scored, b: Scored) -> bool:
    return a.summary["mean"] >= b.summary["mean"] and a.summary["sharpe"] >= b.summary["sharpe"]


def verdict(main: Scored, lgbm: dict[str, Scored], tried: list[Scored]) -> list[str]:
    """The target line, then every tried variation against the LightGBM of its own feature set."""
    b = lgbm[main.feature_set]
    m, r = main.summary, b.summary
    lines = [
        f"**Target ({TARGET_CORR_NOTE}): {'met' if beats(main, b) else 'NOT met'}** on the "
        f"`{main.feature_set}` feature set: the ensemble scores CORR {m['mean']:.4f} (Sharpe "
        f"{m['sharpe']:.2f}) against the LightGBM's {r['mean']:.4f} (Sharpe {r['sharpe']:.2f}) on the "
        f"same {len(main.corrs)} test eras; {paired(main, b)}.",
        "",
    ]
    for t in tried:
        ref = lgbm[t.feature_set]
        lines.append(
            f"- {t.name} (`{t.feature_set}`): CORR {t.summary['mean']:.4f}, Sharpe {t.summary['sharpe']:.2f} "
            f"vs LightGBM `{t.feature_set}` {ref.summary['mean']:.4f} / {ref.summary['sharpe']:.2f}: "
            f"{'at or above it on both' if beats(t, ref) else 'not at or above it on both'}; {paired(t, ref)}"
        )
    return lines


def report(
    args, rows: list[Scored], ensembles: list[dict], main: Scored, lgbm: dict[str, Scored], tried, context
) -> str:
    base = ", ".join(f"{k}={v}" for k, v in sorted(args.base.items())) or "TrainConfig / ModelConfig defaults"
    lines = [
        f"## Quality on the {args.scale} tournament (bench/quality.py)",
        "",
        f"- date: {today()}",
        f"- command: `{command_line()}`",
        f"- machine: {machine_description()}",
        f"- other load: {context['quiet']}; load average at the end {load_average()}",
        f"- data: `{args.scale}` tournament, seed {args.seed}; {context['data']}",
        f"- ensemble settings (all ensembles, on top of the defaults): {base}; eras_per_batch "
        f"{args.base.get('eras_per_batch', BATCH_FIELDS['eras_per_batch'])}; one model per fold (`seeds=k`: k "
        f"per fold, TrainConfig seed + {SEED_STRIDE} j), data order seeded by that seed + the fold index; "
        "ensemble = mean of the models' per-era ranks; the ablations and variations change only what "
        "their name says",
        f"- LightGBM: {', '.join(f'{k}={v}' for k, v in LGBM_PARAMS.items())}; trained on the "
        f"{context['lgbm_eras']} eras before the gap (last fold's train + validation eras), MISSING -> 2",
        f"- total wall time of the run: {context['total_s'] / 60:.1f} min",
        "",
        *results_table(rows),
        "",
        "CORR = Numerai's per-era CORR (`numerai_tools.scoring.numerai_corr`) on `target`, over the test "
        "eras; Sharpe = mean / std (ddof 0); max drawdown of the cumulative per-era CORR. Attention "
        "reliance = per-era correlation between the ensemble's scores and the same fold models' "
        "scores with cross-stock mixing switched off at inference (`model(..., cross_stock=False)`), "
        "averaged over the test eras: near 1 means the attention across stocks is not used. "
        '"mixing off at inference" is that second set of scores, scored. val CORR = mean over the '
        "folds of the best validation CORR (each fold's own validation eras, before the test block: "
        "the figure to choose settings by; the test eras are kept for this report). train s = wall "
        "seconds of `train_fold` over the ensemble's folds (validation passes included); train CPU s "
        "= this process's CPU time over the same (all threads); others' CPU = share of all CPUs' "
        "time that other processes used meanwhile (/proc/stat minus ours): well above 0, the "
        "machine was shared and the wall seconds are pessimistic.",
        "",
        *verdict(main, lgbm, tried),
        "",
        "<details><summary>per fold</summary>",
        "",
        *folds_table(ensembles),
        "",
        "</details>",
        "",
    ]
    if args.notes:
        lines += [*args.notes, ""]
    return "\n".join(lines)


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
