"""Dataset versions: which ones the API offers, what `latest` means, which one a model was trained on.

Numerai publishes a new dataset version now and then (v5.2, then v5.3 with the `quantum` features)
and keeps offering older ones for a while. The service follows it without mixing them:

- `NUMERAI_DATASET_VERSION=latest` (the default) is resolved by `raw_dataset` at each ingest to the
  newest version the API's `list_datasets()` names, in numeric order (v5.10 > v5.9); a pinned
  version must be offered, else ingest stops naming it and the offered ones, before any download.
- The version ingest published is `NUMERAI_HOME/raw/current` (a symlink to `raw/<version>`):
  `clean_eras` cleans that one and records it in the era store, and every model version records
  the store's version (fold plan, ensemble.json, warehouse).
- The live path downloads the live file of the version the *current model* was trained on, never
  the newest one: a model only ever sees the features it was trained on. When the API stops
  offering that version, live stops and says to run the weekly training.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from model_core import schema
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import current_model_dir, load_plan
from numerai_assets.shared.settings import SettingsError, env_var_of

LATEST = "latest"
_VERSION = re.compile(r"^v(\d+)\.(\d+)$")


class DatasetVersionError(ValueError):
    """The dataset version a step needs is not there (not offered, not ingested, not recorded)."""


def version_key(version: str) -> tuple[int, int]:
    """Numeric order of "v<major>.<minor>": v5.10 sorts after v5.9 (a string sort would not)."""
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not a dataset version like 'v5.3'")
    return int(match.group(1)), int(match.group(2))


def offered_versions(names: Iterable[str], files: tuple[str, ...] = ()) -> list[str]:
    """The versions named in `names` (numerapi's `list_datasets()`: "v5.3/train.parquet", ...),
    oldest first; with `files`, only those offering every one of them. Other names are ignored."""
    by_version: dict[str, set[str]] = {}
    for name in names:
        version, _, filename = name.partition("/")
        if _VERSION.match(version):
            by_version.setdefault(version, set()).add(filename)
    return sorted((v for v, offered in by_version.items() if set(files) <= offered), key=version_key)


def resolve_dataset_version(
    setting: str, names: Iterable[str], endpoint: str, files: tuple[str, ...] = ()
) -> str:
    """The version to download: for `latest` the newest one `names` offer (with `files`, the newest
    offering them), else the pinned one, which must be offered (an error names it and what is
    offered). A version that lacks a file ingest needs is refused later, naming the file."""
    offered = offered_versions(names, files)
    if setting == LATEST:
        if not offered:
            raise DatasetVersionError(
                f"{env_var_of('dataset_version')}=latest: the API at {endpoint} offers no dataset version"
                + (f" with {', '.join(files)}" if files else "")
            )
        return offered[-1]
    if setting not in offered:
        raise SettingsError(
            f"{env_var_of('dataset_version')}: {setting} is not offered by the API at {endpoint}; it offers "
            f"{', '.join(offered) or 'none'} (or set `latest`). Nothing was downloaded; what was ingested "
            "before is unchanged"
        )
    return setting


def ingested_version(layout: HomeLayout) -> str:
    """The version the last ingest published (`raw/current`), which clean_eras cleans."""
    link = layout.raw_current_link
    if not link.is_symlink():
        raise DatasetVersionError(f"{link}: no dataset ingested yet (materialise raw_dataset first)")
    return Path(link.readlink()).name


def model_dataset_version(model_dir: Path) -> str:
    """The dataset version a model version was trained on, from its ensemble.json."""
    path = Path(model_dir) / "ensemble.json"
    recorded = json.loads(path.read_text()).get("dataset_version") if path.exists() else None
    if not recorded:
        raise DatasetVersionError(
            f"{path}: model version {Path(model_dir).name} does not record the dataset version it was "
            "trained on (made before versions were recorded): run the weekly training (`numerai-pipeline train`)"
        )
    return recorded


def planned_model_dataset_dir(layout: HomeLayout) -> Path:
    """`raw/<version>` of the model version the fold plan trains (not yet current while the weekly
    job runs): the meta model and benchmarks its out-of-fold choice reads."""
    return layout.raw_dataset_dir(model_dataset_version(layout.model_dir(load_plan(layout).model_version)))


def current_model_dataset_dir(layout: HomeLayout) -> Path:
    """`raw/<version>` of the current model version: its benchmarks, meta model and feature groups."""
    return layout.raw_dataset_dir(model_dataset_version(current_model_dir(layout)))


def live_dataset_version(
    layout: HomeLayout, setting: str, names: Iterable[str], endpoint: str, round_number: int
) -> tuple[str, str]:
    """(version, why) of the live file a round needs, given the round's `list_datasets` `names`.

    The current model's version, which the API must still offer (else: run the weekly training).
    Before any model, the ingested version; before any ingest, what the setting resolves to.
    """
    offered = offered_versions(names, schema.ROUND_FILES)
    shown = ", ".join(offered) or "no version"
    if layout.current_model_link.is_symlink():
        model_dir = current_model_dir(layout)
        version = model_dataset_version(model_dir)
        if version not in offered:
            raise DatasetVersionError(
                f"round {round_number}: model version {model_dir.name} was trained on {version}, which the "
                f"API no longer offers (it offers {shown}): run the weekly training (`numerai-pipeline train`)"
            )
        return version, f"the version model version {model_dir.name} was trained on"
    if layout.raw_current_link.is_symlink():
        version = ingested_version(layout)
        if version not in offered:
            raise DatasetVersionError(
                f"round {round_number}: the API no longer offers {schema.dataset_file(version, schema.LIVE_FILE)}"
                f" (it offers {shown}): ingest again (`numerai-pipeline ingest`)"
            )
        return version, "the ingested version (no model yet)"
    version = resolve_dataset_version(setting, names, endpoint, schema.ROUND_FILES)
    return version, f"{env_var_of('dataset_version')}={setting} (nothing ingested yet)"
