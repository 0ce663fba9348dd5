"""The layout of `NUMERAI_HOME/warehouse.duckdb`: its tables, their columns and types, and its rules.

The `Warehouse` resource (`numerai_assets.shared.warehouse`) creates these tables and writes them; this
module only says what they are, so a person reading the file with plain `duckdb` finds here what
each table and column means. Tables, one row meaning:

- `schema_version`: one row, the layout version of this file (5; an older file is migrated).
- `model_versions`: one trained ensemble (`model_version`): when, how many folds, on which
  feature set and held-out test eras (JSON array text), its fold weights (JSON object), the
  test-era corr of the equal-weight and of the weighted ensemble, free notes, and the dataset
  version it was trained on (`dataset_version`, "v5.3"; NULL for versions recorded before 4).
- `fold_metrics`: one fold model of a model version (`model_version`, `fold`): best epoch,
  epochs run, out-of-fold corr mean / sharpe, training speed, device, checkpoint path, weight.
- `era_scores`: one model's score on one era (`model_version`, `model`, `era`); `model` is
  'ensemble', 'equal_weight', 'fold_0'.., 'baseline_lgbm' / 'lgbm' (the LightGBM on the test block /
  out of fold) or 'peer_ridge' (both; its out-of-fold and test eras never overlap); `split` is
  'oof' (a fold's validation eras), 'test' (the held-out eras) or 'backfill' (an era scored
  later). `cwmm` is the correlation with the meta model, `payout` the payout estimate
  clip(corr x CORR multiplier + mmc x MMC multiplier) with the multipliers of the round current
  when the row was written (the asset that wrote it shows them); both NULL without a meta model.
  `in_sample` (backfill rows): whether the models that predicted the era trained on it, so its
  score overstates live performance (numerai_assets.backfill.splits); NULL on 'oof' and 'test'
  rows, out of sample by construction.
- `submissions`: the ledger of live uploads, one per (`round`, `model_id`). Status 'uploading'
  is written BEFORE the upload and 'uploaded' after it, so a row left at 'uploading' tells the
  next run that a crash fell between the two; 'dry_run' is a file validated but not sent.
  `candidate` is what made the file (model_choice's choice for that model version).
- `candidates`: one candidate of a model version's weekly choice (`model_version`, `candidate`:
  'transformer', 'lgbm', 'peer_ridge' or 'blend'): whether it was `chosen`, by which `metric` and
  why, the blend's weight on the transformer (choice.json has every member's), its out-of-fold corr mean / sharpe over `oof_eras` (what
  decided) and its test-block corr mean / sharpe (reported only).
- `rounds`: one tournament round the service saw open: its live era, live rows, and when the
  service first saw it (`opened_seen_at`).
- `numerai_diagnostics`: one upload of a model version's test-block predictions to Numerai's own
  diagnostics (`model_version`, `model_id`, written by `numerai_diagnostics` when
  NUMERAI_UPLOAD_DIAGNOSTICS is on): the model's name, Numerai's `diagnostics_id`, rows, the
  file's sha256 and path, when it was uploaded. Only accepted uploads have a row.

All TIMESTAMP columns hold UTC (naive, DuckDB's TIMESTAMP). Nothing here takes a secret.

Also here: the values the code writes into constrained columns (`SPLITS`, the `STATUS_*` of the
ledger), how a Python value becomes a stored cell (`_cell`, `_now`), and the two errors every
part of the Warehouse raises (defined here, below `warehouse.py` and `warehouse_ledger.py`, which
both raise them; `numerai_assets.shared.warehouse` re-exports them and the public constants).
"""

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl

SCHEMA_VERSION = 5
# Columns added since version 1, added in place to an older file: table -> column -> type.
# (Version 3 added the table `numerai_diagnostics`: a new table is created as any missing one is.)
MIGRATIONS: dict[int, dict[str, dict[str, str]]] = {
    2: {"submissions": {"candidate": "VARCHAR"}},
    4: {
        "era_scores": {"cwmm": "DOUBLE", "payout": "DOUBLE"},
        "model_versions": {"dataset_version": "VARCHAR"},
    },
    5: {"era_scores": {"in_sample": "BOOLEAN"}},
}
SPLITS = ("oof", "test", "backfill")
STATUS_UPLOADING = "uploading"
STATUS_UPLOADED = "uploaded"
STATUS_DRY_RUN = "dry_run"

# table -> column -> DuckDB type, in table order; the first entries of _KEYS are the primary key.
_COLUMNS: dict[str, dict[str, str]] = {
    "model_versions": {
        "model_version": "VARCHAR",
        "created_at": "TIMESTAMP",
        "n_folds": "INTEGER",
        "feature_set": "VARCHAR",
        "test_eras": "VARCHAR",
        "weights": "JSON",
        "equal_weight_corr": "DOUBLE",
        "ensemble_corr": "DOUBLE",
        "notes": "VARCHAR",
        "dataset_version": "VARCHAR",
    },
    "fold_metrics": {
        "model_version": "VARCHAR",
        "fold": "INTEGER",
        "best_epoch": "INTEGER",
        "epochs_run": "INTEGER",
        "val_corr_mean": "DOUBLE",
        "val_corr_sharpe": "DOUBLE",
        "rows_per_s": "DOUBLE",
        "device": "VARCHAR",
        "checkpoint": "VARCHAR",
        "weight": "DOUBLE",
        "written_at": "TIMESTAMP",
    },
    "era_scores": {
        "model_version": "VARCHAR",
        "model": "VARCHAR",
        "era": "VARCHAR",
        "split": "VARCHAR",
        "corr": "DOUBLE",
        "fnc": "DOUBLE",
        "bmc": "DOUBLE",
        "mmc": "DOUBLE",
        "max_feature_exposure": "DOUBLE",
        "churn_corr": "DOUBLE",
        "written_at": "TIMESTAMP",
        "cwmm": "DOUBLE",  # added in version 4, after written_at as the migration adds it
        "payout": "DOUBLE",
        "in_sample": "BOOLEAN",  # added in version 5
    },
    "submissions": {
        "round": "INTEGER",
        "model_id": "VARCHAR",
        "model_name": "VARCHAR",
        "status": "VARCHAR",
        "submission_id": "VARCHAR",
        "file_sha256": "VARCHAR",
        "rows": "INTEGER",
        "model_version": "VARCHAR",
        "path": "VARCHAR",
        "started_at": "TIMESTAMP",
        "finished_at": "TIMESTAMP",
        "candidate": "VARCHAR",
    },
    "candidates": {
        "model_version": "VARCHAR",
        "candidate": "VARCHAR",
        "chosen": "BOOLEAN",
        "metric": "VARCHAR",
        "reason": "VARCHAR",
        "blend_weight": "DOUBLE",
        "oof_corr_mean": "DOUBLE",
        "oof_corr_sharpe": "DOUBLE",
        "oof_eras": "INTEGER",
        "test_corr_mean": "DOUBLE",
        "test_corr_sharpe": "DOUBLE",
        "written_at": "TIMESTAMP",
    },
    "rounds": {
        "round": "INTEGER",
        "live_era": "VARCHAR",
        "live_rows": "INTEGER",
        "opened_seen_at": "TIMESTAMP",
    },
    "numerai_diagnostics": {
        "model_version": "VARCHAR",
        "model_id": "VARCHAR",
        "model_name": "VARCHAR",
        "diagnostics_id": "VARCHAR",
        "rows": "INTEGER",
        "file_sha256": "VARCHAR",
        "path": "VARCHAR",
        "uploaded_at": "TIMESTAMP",
    },
}
_KEYS: dict[str, tuple[str, ...]] = {
    "model_versions": ("model_version",),
    "fold_metrics": ("model_version", "fold"),
    "era_scores": ("model_version", "model", "era"),
    "submissions": ("round", "model_id"),
    "rounds": ("round",),
    "candidates": ("model_version", "candidate"),
    "numerai_diagnostics": ("model_version", "model_id"),
}
_POLARS_TYPES = {
    "VARCHAR": pl.String,
    "JSON": pl.String,
    "INTEGER": pl.Int32,
    "DOUBLE": pl.Float64,
    "TIMESTAMP": pl.Datetime("us"),
    "BOOLEAN": pl.Boolean,
}


class WarehouseError(RuntimeError):
    """The warehouse file could not be read or written (the message names the file)."""


class WarehouseLockedError(WarehouseError):
    """Another process kept the warehouse file locked for longer than the retries allow."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _ddl(table: str) -> str:
    columns = ", ".join(f'"{name}" {kind}' for name, kind in _COLUMNS[table].items())
    keys = ", ".join(f'"{name}"' for name in _KEYS[table])
    return f"CREATE TABLE IF NOT EXISTS {table} ({columns}, PRIMARY KEY ({keys}))"


def _cell(kind: str, value: Any) -> Any:
    """One value as its column stores it: JSON text for dicts/lists, UTC-naive timestamps."""
    if kind in ("VARCHAR", "JSON") and isinstance(value, dict | list | tuple):
        return json.dumps(value)
    if kind == "TIMESTAMP" and isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value
