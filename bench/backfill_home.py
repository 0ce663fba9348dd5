"""The synthetic NUMERAI_HOME of the era backfill benchmark (bench/backfill.py): an era store of
random eras, feature returns, benchmark and meta model files, a fold plan and an untrained
ensemble of default-size fold models, promoted as the current model version.
"""

from __future__ import annotations

import json
from pathlib import Path

N_FOLDS = 4
HISTORY_ERAS = 12  # eras before the backfilled ones: a full temporal context (8 lags + 4-era horizon)
MODEL_VERSION = "bench-untrained"
BENCHMARK_COLUMN = "v52_lgbm_ender20"

# --------------------------------------------------------------------------------------------
# The synthetic NUMERAI_HOME.
# --------------------------------------------------------------------------------------------


def era_label(i: int) -> str:
    return f"{i + 1:04d}"


def build_home(home: Path, n_eras: int, stocks: int, features: int, seed: int) -> list[str]:
    """Write the store, feature returns, references, fold plan and ensemble; returns the eras."""
    import numpy as np
    import polars as pl
    import torch

    from model_core import schema
    from model_core.cv import Fold, FoldPlan
    from model_core.era_store import EraStats, EraStoreWriter
    from model_core.inference import EnsembleSpec
    from model_core.model import EraTransformer, ModelConfig
    from model_core.train import CHECKPOINT_FORMAT
    from numerai_assets.shared.home import HomeLayout
    from numerai_assets.shared.model_versions import promote

    layout = HomeLayout(home)
    rng = np.random.default_rng(seed)
    names = [f"feature_{i:04d}" for i in range(features)]
    eras = [era_label(i) for i in range(n_eras)]
    store_dir = layout.clean_eras_root / "bench-store"
    store_dir.mkdir(parents=True)
    writer = EraStoreWriter(store_dir, names, [schema.MAIN_TARGET], {"source": "bench/backfill.py"})
    references = []
    for e, era in enumerate(eras):
        ids = [f"n{e * 10**6 + i:015x}" for i in range(stocks)]
        x = rng.integers(schema.FEATURE_MIN, schema.FEATURE_MAX + 1, (stocks, features), dtype=np.int8)
        y = rng.choice(np.array(schema.TARGET_VALUES_5, np.float32), (stocks, 1))
        writer.append(pl.Series(schema.ID, ids), x, y, EraStats(era, "validation", True, 0, 0, 0, 0, 0))
        references.append(pl.DataFrame({schema.ID: ids, schema.ERA: era, "r": rng.random(stocks)}))
    writer.close()
    layout.clean_eras_current.symlink_to(store_dir.name)

    returns = pl.DataFrame(
        {schema.ERA: eras, **{n: (0.02 * rng.standard_normal(n_eras)).astype(np.float32) for n in names}}
    )
    layout.feature_returns_path.parent.mkdir(parents=True)
    returns.write_parquet(layout.feature_returns_path)

    raw = layout.raw_dataset_dir("v5.2")
    raw.mkdir(parents=True)
    frame = pl.concat(references)
    frame.rename({"r": BENCHMARK_COLUMN}).write_parquet(raw / schema.VALIDATION_BENCHMARKS_FILE)
    frame.rename({"r": schema.META_MODEL_COLUMN}).write_parquet(raw / schema.META_MODEL_FILE)

    plan = FoldPlan(
        folds=tuple(Fold(k, tuple(eras[:2]), tuple(eras[2:4])) for k in range(N_FOLDS)),
        test_eras=tuple(eras[-2:]),
        gap=0,
    )
    layout.cv_folds_path.parent.mkdir(parents=True)
    layout.cv_folds_path.write_text(
        json.dumps(
            {
                "model_version": MODEL_VERSION,
                "store": str(store_dir.relative_to(home)),
                "plan": plan.to_dict(),
            }
        )
    )

    folder = layout.model_dir(MODEL_VERSION)
    folder.mkdir(parents=True)
    config = ModelConfig(n_features=features)
    checkpoints = []
    for k in range(N_FOLDS):
        torch.manual_seed(seed + k)
        model = EraTransformer(config)
        torch.save(  # the keys model_core.train.load_trained reads, as train_fold writes them
            {
                "format": CHECKPOINT_FORMAT,
                "best_model": model.state_dict(),
                "model_config": config.to_dict(),
                "train_config": {},
                "history": [],
                "best_epoch": 0,
                "best_val_corr": 0.0,
            },
            folder / f"fold_{k}.pt",
        )
        checkpoints.append(f"fold_{k}.pt")
    EnsembleSpec(
        model_version=MODEL_VERSION,
        checkpoints=checkpoints,
        weights=[1 / N_FOLDS] * N_FOLDS,
        equal_weights=[1 / N_FOLDS] * N_FOLDS,
        temporal_lags=config.temporal_lags,
        feature_set="all",
        features=names,
    ).save(folder)
    promote(layout, MODEL_VERSION)
    return eras
