"""Ingest: the dataset version and each round's live file, downloaded atomically."""

import dagster as dg

from numerai_assets.defs.partitions import round_partitions
from numerai_assets.defs.resources import NumeraiHome
from numerai_assets.fetch import fetch_dataset, fetch_round, live_era_labels
from numerai_assets.numerai_api import NumeraiAPI


@dg.asset(group_name="ingest", kinds={"parquet"})
def raw_dataset(context: dg.AssetExecutionContext, numerai: NumeraiAPI, numerai_home: NumeraiHome):
    """train / validation / features.json / benchmarks / meta model of the dataset version."""
    version = numerai_home.dataset_version
    fetched = fetch_dataset(numerai, version, numerai_home.layout.raw_dataset_dir(version), context.log.info)
    return dg.MaterializeResult(
        metadata={
            "dataset_version": version,
            "files": dg.MetadataValue.table(
                records=[
                    dg.TableRecord({"file": f.name, "rows": f.rows or 0, "MB": round(f.bytes / 1e6, 2)})
                    for f in fetched
                ],
                schema=dg.TableSchema.from_name_type_dict({"file": "string", "rows": "int", "MB": "float"}),
            ),
            "rows": sum(f.rows or 0 for f in fetched if f.name in ("train.parquet", "validation.parquet")),
            "bytes": sum(f.bytes for f in fetched),
            "seconds": round(sum(f.seconds for f in fetched), 2),
            "path": dg.MetadataValue.path(str(numerai_home.layout.raw_dataset_dir(version))),
            "api": numerai.endpoint,
        }
    )


@dg.asset(group_name="ingest", kinds={"parquet"}, partitions_def=round_partitions)
def raw_round(context: dg.AssetExecutionContext, numerai: NumeraiAPI, numerai_home: NumeraiHome):
    """The round's live file (+ live benchmarks), at a round-specific path."""
    round_number = int(context.partition_key)
    link = numerai_home.layout.round_dir(round_number)
    fetched = fetch_round(numerai, numerai_home.dataset_version, round_number, link, context.log.info)
    live = next(f for f in fetched if f.name == "live.parquet")
    return dg.MaterializeResult(
        metadata={
            "round": round_number,
            "rows": live.rows or 0,
            "live_era": ", ".join(live_era_labels(live.path)),
            "files": ", ".join(f.name for f in fetched),
            "bytes": sum(f.bytes for f in fetched),
            "seconds": round(sum(f.seconds for f in fetched), 2),
            "path": dg.MetadataValue.path(str(link)),
        }
    )
