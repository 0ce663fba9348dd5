"""Data of the quality benchmark (bench/quality.py): the simulated tournament, its cleaned feature sets
and folds, the per-era CORR, and the references the ensemble is scored against (Numerai's example
LightGBM, the simulator's oracle).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from common import CpuShare

LGBM_PARAMS = {  # Numerai's example model
    "n_estimators": 2000,
    "learning_rate": 0.01,
    "max_depth": 5,
    "num_leaves": 2**5 - 1,
    "colsample_bytree": 0.1,
}


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
    # v5.2, the version the recorded results were measured on (and the one read below)
    generate_tournament(sim_dir, scale, seed, data_version=schema.DEFAULT_DATASET_VERSION)


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
