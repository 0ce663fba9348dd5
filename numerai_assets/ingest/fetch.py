"""Downloading a dataset version or a round's live file: all files checked before any is published.

A download is staged beside the published one and becomes current (the symlink swap) only once
every check ingest makes of it passed, the cleaning rules included (`validate_dataset`,
`clean_live_frame`): a bad file never replaces a good one, and the previous good version is
pruned only after a newer one is current. Staging left by runs that died is removed when a
download starts (`model_core.atomic`: each staging directory is locked by its live owner).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl

from model_core import schema
from model_core.atomic import publish_dir, staging_dir, swap_symlink, sweep_abandoned
from model_core.clean import CleanConfig, clean_live_frame, validate_dataset
from model_core.errors import DataContractError
from model_core.feature_metadata import FeatureMetadata, load_feature_metadata
from model_core.raw_files import inspect_parquet
from numerai_assets.shared.home import HomeLayout
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


def fetch_dataset(
    api: NumeraiAPI, version: str, layout: HomeLayout, log: Log, clean: CleanConfig, offered: set[str]
) -> list[FetchedFile]:
    """Download the dataset files of `version` and publish them together at `raw/<version>`
    (a symlink), then make that version the ingested one (`raw/current`).

    `offered`: the names `list_datasets()` gave. Nothing under `raw/` changes unless every
    required file downloaded and passed its checks, including every rule `clean_eras` applies
    with `clean` (a streamed pass that writes nothing). `features.json` comes first: a feature
    set it does not offer stops before the large files.
    """
    link = layout.raw_dataset_dir(version)
    wanted = _wanted_files(version, offered, schema.REQUIRED_DATASET_FILES, schema.OPTIONAL_DATASET_FILES)
    sweep_abandoned(link.parent, ".*.staging", log)  # every download of raw/ stages there
    with staging_dir(link.parent, prefix=version, log=log) as staged:
        fetched = [_fetch_one(api, version, schema.FEATURES_JSON, staged, None, log)]
        metadata = load_feature_metadata(staged / schema.FEATURES_JSON)
        _require_feature_set(metadata, clean.feature_set, schema.dataset_file(version, schema.FEATURES_JSON))
        with _rejected(version, link, staged, shown_as=version):
            fetched += [
                _fetch_one(api, version, name, staged, None, log)
                for name in wanted
                if name != schema.FEATURES_JSON
            ]
            _check_main_files(staged, metadata)
            eras = validate_dataset(staged, clean, log)
        log(f"{version}: every cleaning rule passed on {eras} eras; publishing it at {link}")
        final = publish_dir(staged, link)
    swap_symlink(layout.raw_current_link, link.name)
    return [dataclasses.replace(f, path=final / f.name) for f in fetched]


def fetch_round(
    api: NumeraiAPI, version: str, round_number: int, layout: HomeLayout, log: Log, offered: set[str]
) -> list[FetchedFile]:
    """Download round `round_number`'s live file (+ live benchmarks when offered) of dataset
    version `version` to `rounds/<n>/<version>` (`offered`: `list_datasets(round_number)`).

    The live file must pass the rules the live predictions apply (`clean_live_frame`) on every
    feature of that version's `features.json` (`all`; when that version was never downloaded,
    the file's own feature columns) before it replaces a previous download of the round.
    """
    link = layout.round_dir(round_number, version)
    wanted = _wanted_files(version, offered, schema.ROUND_FILES, schema.OPTIONAL_ROUND_FILES)
    sweep_abandoned(link.parent, ".*.staging", log)  # every version of the round stages there
    with staging_dir(link.parent, prefix=link.name, log=log) as staged:
        with _rejected(f"round {round_number}", link, staged, shown_as=version):
            fetched = [_fetch_one(api, version, name, staged, round_number, log) for name in wanted]
            live = staged / schema.LIVE_FILE
            features_json = layout.raw_dataset_dir(version) / schema.FEATURES_JSON
            clean_live_frame(live, _live_features(live, features_json))
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


def _live_features(live: Path, features_json: Path) -> list[str]:
    if features_json.exists():
        return load_feature_metadata(features_json).all_features()
    return [c for c in pl.scan_parquet(live).collect_schema().names() if c.startswith(schema.FEATURE_PREFIX)]


@contextlib.contextmanager
def _rejected(what: str, link: Path, staged: Path, shown_as: str) -> Iterator[None]:
    """Say, on a data error, that the download was not published and what stays current. The
    staging folder is gone by the time a user reads the message, so files are named as the API
    names them (`v5.2/validation.parquet`)."""
    try:
        yield
    except DataContractError as err:
        kept = (
            f"{link} still points at {link.resolve().name}" if link.is_symlink() else f"nothing is at {link}"
        )
        detail = str(err).replace(f"{staged}/", f"{shown_as}/").replace(f"{staged.name}/", f"{shown_as}/")
        raise DataContractError(
            f"{what}: the download is rejected, not published ({kept}): {detail}"
        ) from None


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


def _check_main_files(staged: Path, metadata: FeatureMetadata) -> None:
    """train and validation must carry the contract's columns and every feature of `all`."""
    all_features = metadata.all_features()
    required = [schema.ID, schema.ERA, schema.DATA_TYPE, schema.MAIN_TARGET]
    for name in (schema.TRAIN_FILE, schema.VALIDATION_FILE):
        summary = inspect_parquet(staged / name, required=required)
        present = set(summary.columns)
        missing = [f for f in all_features if f not in present]
        if missing:
            raise DataContractError(
                f"{staged.name}/{name}: missing feature column(s) {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )


def _require_feature_set(metadata: FeatureMetadata, feature_set: str, source: str) -> None:
    """NUMERAI_FEATURE_SET must name sets of `features.json` (`source` says which one)."""
    unknown = metadata.unknown_sets(feature_set)
    if unknown:
        offered = ", ".join(sorted(metadata.feature_sets))
        raise SettingsError(
            f"NUMERAI_FEATURE_SET: {', '.join(repr(u) for u in unknown)} is not a feature set of {source}, "
            f"which offers: {offered}"
        )
