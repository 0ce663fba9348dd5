"""Features: the cleaned per-era store, and the era x feature returns."""

import dagster as dg
import numpy as np

from model_core import schema
from model_core.atomic import atomic_path
from model_core.clean import CleanConfig, build_era_store
from model_core.era_store import EraStore
from model_core.feature_returns import compute_feature_returns, summarise_feature_returns
from model_core.report import markdown_table
from numerai_assets.defs.ingest import raw_dataset
from numerai_assets.defs.partitions import add_missing_partitions, era_partitions
from numerai_assets.defs.resources import NumeraiHome


@dg.asset(group_name="features", deps=[raw_dataset], kinds={"numpy"})
def clean_eras(context: dg.AssetExecutionContext, numerai_home: NumeraiHome):
    """Per-era int8 features and float32 targets, streamed from the raw files; era partitions registered."""
    layout = numerai_home.layout
    config = CleanConfig(
        feature_set=numerai_home.feature_set, eras_per_chunk=numerai_home.clean_eras_per_chunk
    )
    store, summary = build_era_store(
        layout.raw_dataset_dir(numerai_home.dataset_version),
        layout.clean_eras_current,
        config,
        context.log.info,
    )
    added = add_missing_partitions(context.instance, era_partitions.name, store.eras)
    context.log.info(f"registered {len(added)} new era partition(s)")
    return dg.MaterializeResult(
        metadata={
            "rows": summary.rows,
            "eras": summary.eras,
            "resolved_eras": summary.resolved_eras,
            "first_era": store.eras[0],
            "last_era": store.eras[-1],
            "features": summary.features,
            "feature_set": numerai_home.feature_set,
            "targets": summary.targets,
            "missing_share": round(summary.missing_share, 6),
            "unavailable_feature_eras": summary.unavailable_feature_eras,
            "bytes": store.nbytes(),
            "seconds": round(summary.seconds, 2),
            "new_era_partitions": len(added),
            "path": dg.MetadataValue.path(str(store.path)),
        }
    )


@dg.asset(group_name="features", deps=[clean_eras], kinds={"parquet"})
def feature_returns(context: dg.AssetExecutionContext, numerai_home: NumeraiHome):
    """Era x feature correlation with the target: the momentum input and a regime diagnostic."""
    store = EraStore(numerai_home.layout.clean_eras_current)
    returns = compute_feature_returns(store, progress=context.log.info)
    path = numerai_home.layout.feature_returns_path
    with atomic_path(path) as tmp:
        returns.write_parquet(tmp)
    top = summarise_feature_returns(returns)
    values = returns.drop(schema.ERA)
    return dg.MaterializeResult(
        metadata={
            "eras": returns.height,
            "features": values.width,
            "mean_abs_corr": float(np.nanmean(np.abs(values.to_numpy()))) if values.height else 0.0,
            "top_features": dg.MetadataValue.md(markdown_table(top.columns, top.rows())),
            "store": str(store.path),
            "path": dg.MetadataValue.path(str(path)),
        }
    )
