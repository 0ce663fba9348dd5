"""Downloading a dataset version or a round's live file: all files checked before any is published."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from model_core import schema
from model_core.atomic import publish_dir, staging_dir
from model_core.errors import DataContractError
from model_core.feature_metadata import FeatureMetadata, load_feature_metadata
from model_core.raw_files import inspect_parquet
from numerai_assets.shared.numerai_api import NumeraiAPI, NumeraiAPIError
from numerai_assets.shared.settings import SettingsError

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class FetchedFile:
    name: str
    path: Path
    bytes: int
    rows: int | None  # None for features.json
    seconds: float


def fetch_dataset(api: NumeraiAPI, version: str, link: Path, log: Log, feature_set: str) -> list[FetchedFile]:
    """Download the dataset files of `version` and publish them together at `link` (a symlink).

    Nothing under `link` changes unless every required file downloaded and passed its checks.
    `features.json` comes first: a `feature_set` it does not offer stops before the large files.
    """
    offered = set(api.list_datasets())
    wanted = _wanted_files(version, offered, schema.REQUIRED_DATASET_FILES, schema.OPTIONAL_DATASET_FILES)
    with staging_dir(link.parent, prefix=version) as staged:
        fetched = [_fetch_one(api, version, schema.FEATURES_JSON, staged, None, log)]
        metadata = load_feature_metadata(staged / schema.FEATURES_JSON)
        _require_feature_set(metadata, feature_set, schema.dataset_file(version, schema.FEATURES_JSON))
        fetched += [
            _fetch_one(api, version, name, staged, None, log)
            for name in wanted
            if name != schema.FEATURES_JSON
        ]
        _check_main_files(staged, metadata.feature_sets)
        final = publish_dir(staged, link)
    return [dataclasses.replace(f, path=final / f.name) for f in fetched]


def fetch_round(api: NumeraiAPI, version: str, round_number: int, link: Path, log: Log) -> list[FetchedFile]:
    """Download round `round_number`'s live file (+ live benchmarks when offered) to `link`."""
    offered = set(api.list_datasets(round_number))
    wanted = _wanted_files(version, offered, schema.ROUND_FILES, schema.OPTIONAL_ROUND_FILES)
    with staging_dir(link.parent, prefix=link.name) as staged:
        fetched = [_fetch_one(api, version, name, staged, round_number, log) for name in wanted]
        final = publish_dir(staged, link)
    return [dataclasses.replace(f, path=final / f.name) for f in fetched]


def live_era_labels(path: Path) -> list[str]:
    """The era value(s) of a live file. Not guaranteed to be a number ("X" happens): informative only,
    so a live file without the column is not an error here (none: [])."""
    if schema.ERA not in pl.scan_parquet(path).collect_schema().names():
        return []
    return (
        pl.scan_parquet(path)
        .select(pl.col(schema.ERA).cast(pl.String).unique())
        .collect()[schema.ERA]
        .to_list()
    )


def _wanted_files(version: str, offered: set[str], required: tuple, optional: tuple) -> list[str]:
    missing = [name for name in required if schema.dataset_file(version, name) not in offered]
    if missing:
        listed = (
            ", ".join(sorted(f for f in offered if f.startswith(f"{version}/"))) or "nothing for that version"
        )
        raise NumeraiAPIError(
            f"the API does not offer {', '.join(schema.dataset_file(version, m) for m in missing)}; it offers {listed}"
        )
    return [*required, *(name for name in optional if schema.dataset_file(version, name) in offered)]


def _fetch_one(api: NumeraiAPI, version: str, name: str, staged: Path, round_number: int | None, log: Log):
    started = time.perf_counter()
    path = api.download(schema.dataset_file(version, name), staged / name, round_num=round_number)
    rows = None
    if name.endswith(".parquet"):
        required = (schema.ID,) if name != schema.LIVE_FILE else (schema.ID, schema.ERA)
        rows = inspect_parquet(path, required=required).rows
        if rows == 0:
            raise DataContractError(f"{schema.dataset_file(version, name)}: the file has no rows")
    size = path.stat().st_size
    seconds = time.perf_counter() - started
    log(f"downloaded {schema.dataset_file(version, name)}: {size / 1e6:.1f} MB in {seconds:.1f}s")
    return FetchedFile(name=name, path=path, bytes=size, rows=rows, seconds=seconds)


def _check_main_files(staged: Path, feature_sets: dict[str, list[str]]) -> None:
    """train and validation must carry the contract's columns and every feature of `all`."""
    all_features = feature_sets.get("all") or sorted({f for fs in feature_sets.values() for f in fs})
    required = [schema.ID, schema.ERA, schema.DATA_TYPE, schema.MAIN_TARGET]
    for name in (schema.TRAIN_FILE, schema.VALIDATION_FILE):
        summary = inspect_parquet(staged / name, required=required)
        missing = [f for f in all_features if f not in summary.columns]
        if missing:
            raise DataContractError(
                f"{staged.name}/{name}: missing feature column(s) {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )


def _require_feature_set(metadata: FeatureMetadata, feature_set: str, source: str) -> None:
    """NUMERAI_FEATURE_SET must name a set of `features.json` (`source` says which one)."""
    if feature_set not in metadata.feature_sets:
        offered = ", ".join(sorted(metadata.feature_sets))
        raise SettingsError(
            f"NUMERAI_FEATURE_SET: {feature_set!r} is not a feature set of {source}, which offers: {offered}"
        )
