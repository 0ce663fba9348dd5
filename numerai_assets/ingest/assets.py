"""Ingest: the dataset version and each round's live file, downloaded atomically; the cleaned
per-era store and the era x feature returns built from them."""

import dagster as dg
import numpy as np

from model_core import schema
from model_core.atomic import atomic_path
from model_core.clean import CleanConfig, CleanSummary, build_era_store
from model_core.era_store import EraStore
from model_core.feature_returns import compute_feature_returns, summarise_feature_returns
from model_core.report import markdown_table
from numerai_assets.ingest.fetch import FetchedFile, fetch_dataset, fetch_round, live_era_labels
from numerai_assets.shared.dataset_versions import (
    ingested_version,
    live_dataset_version,
    offered_versions,
    resolve_dataset_version,
)
from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.partitions import add_missing_partitions, era_partitions, round_partitions
from numerai_assets.shared.resources import NumeraiHome

# What `numerai-pipeline ingest` and the weekly job start with, in order.
INGEST_ASSETS = ("raw_dataset", "clean_eras", "feature_returns")


@dg.asset(group_name="ingest", kinds={"parquet"})
def raw_dataset(context: dg.AssetExecutionContext, numerai: NumeraiAPI, numerai_home: NumeraiHome):
    """train / validation / features.json / benchmarks / meta model of the dataset version
    (NUMERAI_DATASET_VERSION: `latest` is resolved here, to the newest version the API offers)."""
    offered = set(numerai.list_datasets())
    setting = numerai_home.dataset_version
    version = resolve_dataset_version(setting, offered, numerai.endpoint)
    context.log.info(
        f"dataset version {version} (NUMERAI_DATASET_VERSION={setting}; the API offers "
        f"{', '.join(offered_versions(offered))})"
    )
    layout = numerai_home.layout
    fetched = fetch_dataset(numerai, version, layout, context.log.info, _clean_config(numerai_home), offered)
    return dg.MaterializeResult(
        metadata={
            "dataset_version": version,
            "dataset_version_setting": setting,
            "offered_versions": ", ".join(offered_versions(offered)),
            **_files_metadata(fetched),
            "rows": sum(f.rows or 0 for f in fetched if f.name in ("train.parquet", "validation.parquet")),
            "path": dg.MetadataValue.path(str(layout.raw_dataset_dir(version))),
            "api": numerai.endpoint,
        }
    )


@dg.asset(group_name="ingest", kinds={"parquet"}, partitions_def=round_partitions)
def raw_round(context: dg.AssetExecutionContext, numerai: NumeraiAPI, numerai_home: NumeraiHome):
    """The round's live file (+ live benchmarks) of the current model's dataset version, at a
    round- and version-specific path: a newer version's live file never meets an older model."""
    round_number = int(context.partition_key)
    layout = numerai_home.layout
    offered = set(numerai.list_datasets(round_number))
    version, why = live_dataset_version(
        layout, numerai_home.dataset_version, offered, numerai.endpoint, round_number
    )
    context.log.info(f"round {round_number}: the live file of {version}, {why}")
    fetched = fetch_round(numerai, version, round_number, layout, context.log.info, offered)
    live = next(f for f in fetched if f.name == schema.LIVE_FILE)
    return dg.MaterializeResult(
        metadata={
            "round": round_number,
            "dataset_version": version,
            "rows": live.rows or 0,
            "live_era": ", ".join(live_era_labels(live.path)),
            **_files_metadata(fetched),
            "path": dg.MetadataValue.path(str(layout.round_dir(round_number, version))),
        }
    )


@dg.asset(group_name="features", deps=[raw_dataset], kinds={"numpy"})
def clean_eras(context: dg.AssetExecutionContext, numerai_home: NumeraiHome):
    """Per-era int8 features and float32 targets, streamed from the raw files; era partitions registered."""
    layout = numerai_home.layout
    version = ingested_version(layout)  # what raw_dataset resolved and published, not the setting
    store, summary = build_era_store(
        layout.raw_dataset_dir(version),
        layout.clean_eras_current,
        _clean_config(numerai_home),
        context.log.info,
        dataset_version=version,
    )
    added = add_missing_partitions(context.instance, era_partitions.name, store.eras)
    context.log.info(f"registered {len(added)} new era partition(s)")
    return dg.MaterializeResult(
        metadata=_store_metadata(store, summary, numerai_home.feature_set, len(added))
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


def _clean_config(numerai_home: NumeraiHome) -> CleanConfig:
    """The cleaning rules as clean_eras applies them; raw_dataset checks a download against the same."""
    return CleanConfig(feature_set=numerai_home.feature_set, eras_per_chunk=numerai_home.clean_eras_per_chunk)


def _files_metadata(fetched: list[FetchedFile]) -> dict:
    records = [
        dg.TableRecord({"file": f.name, "rows": f.rows or 0, "MB": round(f.bytes / 1e6, 2)}) for f in fetched
    ]
    columns = {"file": "string", "rows": "int", "MB": "float"}
    return {
        "files": dg.MetadataValue.table(records=records, schema=dg.TableSchema.from_name_type_dict(columns)),
        "bytes": sum(f.bytes for f in fetched),
        "seconds": round(sum(f.seconds for f in fetched), 2),
    }


def _store_metadata(store: EraStore, summary: CleanSummary, feature_set: str, new_partitions: int) -> dict:
    return {
        "dataset_version": store.dataset_version,
        "rows": summary.rows,
        "eras": summary.eras,
        "resolved_eras": summary.resolved_eras,
        "first_era": store.eras[0],
        "last_era": store.eras[-1],
        "features": summary.features,
        "feature_set": feature_set,
        "targets": summary.targets,
        "missing_share": round(summary.missing_share, 6),
        "unavailable_feature_eras": summary.unavailable_feature_eras,
        "bytes": store.nbytes(),
        "seconds": round(summary.seconds, 2),
        "new_era_partitions": new_partitions,
        "path": dg.MetadataValue.path(str(store.path)),
    }
