"""The Warehouse resource: the service's small tables in `NUMERAI_HOME/warehouse.duckdb`.

Parquet under NUMERAI_HOME stays the source of truth for data; this file holds what a person
wants to query with plain `duckdb` (`duckdb -readonly .numerai/warehouse.duckdb`): how each
model version trained and scored, and what was uploaded when. Tables, one row meaning:

- `schema_version`: one row, the layout version of this file (1).
- `model_versions`: one trained ensemble (`model_version`): when, how many folds, on which
  feature set and held-out test eras (JSON array text), its fold weights (JSON object), the
  test-era corr of the equal-weight and of the weighted ensemble, free notes.
- `fold_metrics`: one fold model of a model version (`model_version`, `fold`): best epoch,
  epochs run, out-of-fold corr mean / sharpe, training speed, device, checkpoint path, weight.
- `era_scores`: one model's score on one era (`model_version`, `model`, `era`); `model` is
  'ensemble', 'equal_weight', 'fold_0'.. or 'baseline_lgbm'; `split` is 'oof' (a fold's
  validation eras), 'test' (the held-out eras) or 'backfill' (an era scored later).
- `submissions`: the ledger of live uploads, one per (`round`, `model_id`). Status 'uploading'
  is written BEFORE the upload and 'uploaded' after it, so a row left at 'uploading' tells the
  next run that a crash fell between the two; 'dry_run' is a file validated but not sent.
- `rounds`: one tournament round the service saw open: its live era, live rows, and when the
  service first saw it (`opened_seen_at`).

All TIMESTAMP columns hold UTC (naive, DuckDB's TIMESTAMP). Nothing here takes a secret.

Concurrency: DuckDB lets one process write a file at a time (and no writer while a reader
holds it), and Dagster's multiprocess executor, the daemon and the CLI are separate processes.
So every method opens a short-lived connection, runs one transaction and closes it; when the
file is locked by another process it retries with exponential backoff (`lock_backoff_s`,
doubling, at most 2 s a wait, `lock_retries` times) and then raises `WarehouseLockedError`
naming the file.
"""

import json
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import duckdb
import polars as pl

T = TypeVar("T")

SCHEMA_VERSION = 1
MAX_LOCK_WAIT_S = 2.0
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
    },
    "rounds": {
        "round": "INTEGER",
        "live_era": "VARCHAR",
        "live_rows": "INTEGER",
        "opened_seen_at": "TIMESTAMP",
    },
}
_KEYS: dict[str, tuple[str, ...]] = {
    "model_versions": ("model_version",),
    "fold_metrics": ("model_version", "fold"),
    "era_scores": ("model_version", "model", "era"),
    "submissions": ("round", "model_id"),
    "rounds": ("round",),
}
_POLARS_TYPES = {
    "VARCHAR": pl.String,
    "JSON": pl.String,
    "INTEGER": pl.Int32,
    "DOUBLE": pl.Float64,
    "TIMESTAMP": pl.Datetime("us"),
}
_LOCK_MESSAGE = re.compile(r"\block", re.IGNORECASE)  # "Could not set lock", not "block"


class WarehouseError(RuntimeError):
    """The warehouse file could not be read or written (the message names the file)."""


class WarehouseLockedError(WarehouseError):
    """Another process kept the warehouse file locked for longer than the retries allow."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _is_lock_error(err: duckdb.Error) -> bool:
    return bool(_LOCK_MESSAGE.search(str(err)))


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


def _fetch_dicts(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [column[0] for column in con.description]
    return [dict(zip(names, row, strict=True)) for row in con.fetchall()]


class Warehouse(dg.ConfigurableResource):
    """The service's small DuckDB tables (model versions, fold metrics, era scores, the
    submissions ledger, rounds) at `path`, safe to share between processes by taking turns."""

    path: str
    lock_retries: int = 20
    lock_backoff_s: float = 0.1

    # ---- connections ----------------------------------------------------------------------

    def _with_lock_retry(self, what: str, attempt: Callable[[], T]) -> T:
        """Run `attempt` again while another process holds the file; name the file on failure."""
        delay, waited, tries = self.lock_backoff_s, 0.0, 0
        while True:
            tries += 1
            try:
                return attempt()
            except duckdb.Error as err:
                if not _is_lock_error(err):
                    raise WarehouseError(f"{what} on warehouse {self.path}: {err}") from err
                if tries > self.lock_retries:
                    raise WarehouseLockedError(
                        f"{what}: warehouse {self.path} is locked by another process "
                        f"(tried {tries} times over {waited:.1f} s): {err}"
                    ) from err
            wait = min(delay, MAX_LOCK_WAIT_S)
            time.sleep(wait)
            waited += wait
            delay *= 2

    def _transaction(
        self, what: str, body: Callable[[duckdb.DuckDBPyConnection], T], *, read_only: bool = False
    ) -> T:
        """Open, BEGIN, run `body`, COMMIT (ROLLBACK on error), close: hold the file briefly."""

        def attempt() -> T:
            con = duckdb.connect(self.path, read_only=read_only)
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    if not read_only:
                        self._ensure_schema(con)
                    result = body(con)
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
                return result
            finally:
                con.close()

        if not read_only:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        return self._with_lock_retry(what, attempt)

    def _read(self, what: str, body: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """A read-only transaction; the first read of a missing file creates it (and its tables)."""
        if not Path(self.path).exists():
            self._transaction("create tables", lambda con: None)
        return self._transaction(what, body, read_only=True)

    def _ensure_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        versions = [row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()]
        if not versions:
            con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION])
        elif versions != [SCHEMA_VERSION]:
            raise WarehouseError(
                f"warehouse {self.path} has schema version {versions}; this code knows version {SCHEMA_VERSION}"
            )
        for table in _COLUMNS:
            con.execute(_ddl(table))

    # ---- generic upsert -------------------------------------------------------------------

    def _frame(self, table: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> pl.DataFrame:
        """Rows as a typed frame over `columns`: missing keys NULL, NaN NULL, last row per key wins."""
        kinds = _COLUMNS[table]
        for index, row in enumerate(rows):
            unknown = sorted(set(row) - set(kinds))
            if unknown:
                raise ValueError(f"{table} row {index} for {self.path}: unknown columns {unknown}")
            missing = [key for key in _KEYS[table] if row.get(key) is None]
            if missing:
                raise ValueError(f"{table} row {index} for {self.path}: key columns {missing} are missing")
        cleaned = [{name: _cell(kinds[name], row.get(name)) for name in columns} for row in rows]
        schema = {name: _POLARS_TYPES[kinds[name]] for name in columns}
        try:
            frame = pl.DataFrame(cleaned, schema=schema)
        except (TypeError, pl.exceptions.PolarsError) as err:
            raise ValueError(f"{table} rows for {self.path} do not fit the table's types: {err}") from err
        return frame.with_columns(pl.col(pl.Float64).fill_nan(None)).unique(
            subset=list(_KEYS[table]), keep="last", maintain_order=True
        )

    @staticmethod
    def _insert(
        con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, update: Sequence[str]
    ) -> None:
        """INSERT the frame; on a key already there, overwrite only the `update` columns."""
        names = ", ".join(f'"{name}"' for name in frame.columns)
        keys = ", ".join(f'"{name}"' for name in _KEYS[table])
        if update:
            sets = ", ".join(f'"{name}" = excluded."{name}"' for name in update)
            on_conflict = f"ON CONFLICT ({keys}) DO UPDATE SET {sets}"
        else:
            on_conflict = f"ON CONFLICT ({keys}) DO NOTHING"
        con.register("incoming_rows", frame)
        try:
            con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM incoming_rows {on_conflict}")
        finally:
            con.unregister("incoming_rows")

    def _upsert_whole_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        """Insert or replace whole rows (every non-key column, missing ones NULL), stamped written_at."""
        if not rows:
            return 0
        columns = list(_COLUMNS[table])
        frame = self._frame(table, rows, columns).with_columns(pl.col("written_at").fill_null(_now()))
        update = [name for name in columns if name not in _KEYS[table]]
        self._transaction(f"upsert {table}", lambda con: self._insert(con, table, frame, update))
        return frame.height

    # ---- writes ---------------------------------------------------------------------------

    def upsert_model_version(self, model_version: str, **fields: Any) -> None:
        """Insert the model version or update only the given columns; created_at defaults to now."""
        given = list(fields)
        row = {"model_version": model_version, **fields}
        columns = ["model_version", *given]
        if "created_at" not in fields:
            row["created_at"] = _now()
            columns.append("created_at")  # set on insert, left alone on update
        frame = self._frame("model_versions", [row], columns)
        self._transaction(
            f"upsert model version {model_version}",
            lambda con: self._insert(con, "model_versions", frame, given),
        )

    def upsert_fold_metrics(self, rows: list[dict[str, Any]]) -> int:
        """One row per (model_version, fold), replaced whole; returns the rows written."""
        return self._upsert_whole_rows("fold_metrics", rows)

    def upsert_era_scores(self, rows: list[dict[str, Any]]) -> int:
        """One row per (model_version, model, era), replaced whole (missing keys and NaN are NULL)."""
        bad = sorted({row["split"] for row in rows if row.get("split") not in (None, *SPLITS)})
        if bad:
            raise ValueError(f"era_scores for {self.path}: split must be one of {SPLITS}, got {bad}")
        return self._upsert_whole_rows("era_scores", rows)

    def upsert_round(self, round: int, live_era: str, live_rows: int) -> None:
        """Record a round seen open; opened_seen_at keeps the first sighting."""
        row = {"round": round, "live_era": live_era, "live_rows": live_rows, "opened_seen_at": _now()}
        frame = self._frame("rounds", [row], list(_COLUMNS["rounds"]))
        self._transaction(
            f"upsert round {round}",
            lambda con: self._insert(con, "rounds", frame, ["live_era", "live_rows"]),
        )

    def _write_ledger(self, what: str, row: dict[str, Any]) -> None:
        """Insert or replace a ledger row, refusing to overwrite a finished upload."""
        frame = self._frame("submissions", [row], list(_COLUMNS["submissions"]))
        update = [name for name in _COLUMNS["submissions"] if name not in _KEYS["submissions"]]

        def body(con: duckdb.DuckDBPyConnection) -> None:
            status = self._status(con, row["round"], row["model_id"])
            if status == STATUS_UPLOADED:
                raise WarehouseError(
                    f"{what}: warehouse {self.path} already records round {row['round']} model "
                    f"{row['model_id']} as uploaded; forget_submission first to resubmit"
                )
            self._insert(con, "submissions", frame, update)

        self._transaction(what, body)

    @staticmethod
    def _status(con: duckdb.DuckDBPyConnection, round: int, model_id: str) -> str | None:
        found = con.execute(
            "SELECT status FROM submissions WHERE round = ? AND model_id = ?", [round, model_id]
        ).fetchone()
        return found[0] if found else None

    def record_upload_started(
        self,
        round: int,
        model_id: str,
        model_name: str,
        file_sha256: str,
        rows: int,
        model_version: str,
        path: str,
    ) -> None:
        """Write status 'uploading' BEFORE the upload, so a crash before the receipt is visible."""
        self._write_ledger(
            f"record upload started (round {round}, model {model_name})",
            {
                "round": round,
                "model_id": model_id,
                "model_name": model_name,
                "status": STATUS_UPLOADING,
                "file_sha256": file_sha256,
                "rows": rows,
                "model_version": model_version,
                "path": path,
                "started_at": _now(),
            },
        )

    def record_upload_finished(self, round: int, model_id: str, submission_id: str) -> None:
        """Mark an 'uploading' row 'uploaded' with the API's submission id."""

        def body(con: duckdb.DuckDBPyConnection) -> None:
            status = self._status(con, round, model_id)
            if status != STATUS_UPLOADING:
                raise WarehouseError(
                    f"record upload finished: warehouse {self.path} has round {round} model {model_id} "
                    f"at status {status!r}, expected {STATUS_UPLOADING!r} (call record_upload_started first)"
                )
            con.execute(
                "UPDATE submissions SET status = ?, submission_id = ?, finished_at = ? "
                "WHERE round = ? AND model_id = ?",
                [STATUS_UPLOADED, submission_id, _now(), round, model_id],
            )

        self._transaction(f"record upload finished (round {round}, model {model_id})", body)

    def record_dry_run(
        self,
        round: int,
        model_id: str,
        model_name: str,
        file_sha256: str,
        rows: int,
        model_version: str,
        path: str,
    ) -> None:
        """Record a validated file that was deliberately not uploaded."""
        now = _now()
        self._write_ledger(
            f"record dry run (round {round}, model {model_name})",
            {
                "round": round,
                "model_id": model_id,
                "model_name": model_name,
                "status": STATUS_DRY_RUN,
                "file_sha256": file_sha256,
                "rows": rows,
                "model_version": model_version,
                "path": path,
                "started_at": now,
                "finished_at": now,
            },
        )

    def forget_submission(self, round: int, model_id: str) -> bool:
        """Delete the ledger row (a forced resubmission); True when there was one."""

        def body(con: duckdb.DuckDBPyConnection) -> bool:
            found = con.execute(
                "DELETE FROM submissions WHERE round = ? AND model_id = ?", [round, model_id]
            ).fetchone()
            return bool(found and found[0])

        return self._transaction(f"forget submission (round {round}, model {model_id})", body)

    # ---- reads ----------------------------------------------------------------------------

    def query(self, sql: str, params: list | None = None) -> pl.DataFrame:
        """Run a read-only query and return its rows as a polars frame."""
        return self._read("query", lambda con: con.sql(sql, params=params).pl())

    def era_scores_frame(self, model_version: str | None = None, split: str | None = None) -> pl.DataFrame:
        """Era scores, optionally of one model version and/or one split, ordered by model and era."""
        where, params = [], []
        if model_version is not None:
            where.append("model_version = ?")
            params.append(model_version)
        if split is not None:
            where.append('"split" = ?')
            params.append(split)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.query(f"SELECT * FROM era_scores {clause} ORDER BY model_version, model, era", params)

    def latest_model_version(self) -> str | None:
        """The most recently created model version, or None before the first training."""

        def body(con: duckdb.DuckDBPyConnection) -> str | None:
            found = con.execute(
                "SELECT model_version FROM model_versions "
                "ORDER BY created_at DESC NULLS LAST, model_version DESC LIMIT 1"
            ).fetchone()
            return found[0] if found else None

        return self._read("latest model version", body)

    def ledger_entry(self, round: int, model_id: str) -> dict[str, Any] | None:
        """The ledger row of (round, model_id) as a dict, or None when nothing was recorded."""

        def body(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
            con.execute("SELECT * FROM submissions WHERE round = ? AND model_id = ?", [round, model_id])
            rows = _fetch_dicts(con)
            return rows[0] if rows else None

        return self._read(f"ledger entry (round {round}, model {model_id})", body)

    def last_submission(self) -> dict[str, Any] | None:
        """The newest ledger row of any status (latest round, then latest start), or None."""

        def body(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
            con.execute("SELECT * FROM submissions ORDER BY round DESC, started_at DESC NULLS LAST LIMIT 1")
            rows = _fetch_dicts(con)
            return rows[0] if rows else None

        return self._read("last submission", body)
