"""The ensemble of the quality benchmark (bench/quality.py): the variants to train (ablations,
`--try`), one `train_fold` per fold and seed, the fold models' test scores with cross-stock mixing
on and off, their rank-mean and the attention reliance.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import numpy as np
from common import CpuShare
from quality_data import Data, score

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
