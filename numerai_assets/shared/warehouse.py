"""The Warehouse resource: the service's small tables in `NUMERAI_HOME/warehouse.duckdb`.

Parquet under NUMERAI_HOME stays the source of truth for data; this file holds what a person
wants to query with plain `duckdb` (`duckdb -readonly .numerai/warehouse.duckdb`): how each
model version trained and scored, and what was uploaded when. The tables, their columns and what
a row means are in `numerai_assets.shared.warehouse_schema`; the submissions ledger's methods are in
`numerai_assets.shared.warehouse_ledger` (a mixin this resource inherits). Everything is importable from
here, as before the split.

Concurrency: DuckDB lets one process write a file at a time (and no writer while a reader
holds it), and Dagster's multiprocess executor, the daemon and the CLI are separate processes.
So every method opens a short-lived connection, runs one transaction and closes it; when the
file is locked by another process it retries with exponential backoff (`lock_backoff_s`,
doubling, at most 2 s a wait, `lock_retries` times) and then raises `WarehouseLockedError`
naming the file.
"""

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import duckdb
import polars as pl

from numerai_assets.shared.warehouse_ledger import SubmissionLedger
from numerai_assets.shared.warehouse_schema import (
    _COLUMNS,
    _KEYS,
    _POLARS_TYPES,
    MIGRATIONS,
    SCHEMA_VERSION,
    SPLITS,
    STATUS_DRY_RUN,
    STATUS_UPLOADED,
    STATUS_UPLOADING,
    WarehouseError,
    WarehouseLockedError,
    _cell,
    _ddl,
    _now,
)

__all__ = [
    "MAX_LOCK_WAIT_S",
    "SCHEMA_VERSION",
    "SPLITS",
    "STATUS_DRY_RUN",
    "STATUS_UPLOADED",
    "STATUS_UPLOADING",
    "SubmissionLedger",
    "Warehouse",
    "WarehouseError",
    "WarehouseLockedError",
]

T = TypeVar("T")

MAX_LOCK_WAIT_S = 2.0
_LOCK_MESSAGE = re.compile(r"\block", re.IGNORECASE)  # "Could not set lock", not "block"
# Files this process has seen at SCHEMA_VERSION: a read checks the version once per file, not
# with an extra connection every time (a file never goes back to an older version).
_CURRENT_FILES: set[str] = set()


def _is_lock_error(err: duckdb.Error) -> bool:
    return bool(_LOCK_MESSAGE.search(str(err)))


class Warehouse(SubmissionLedger, dg.ConfigurableResource):
    """The service's small DuckDB tables (model versions, fold metrics, era scores, the
    submissions ledger, rounds, Numerai diagnostics ids) at `path`, safe to share between
    processes by taking turns."""

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
        """A read-only transaction; the first read of a missing file creates it (and its tables), and
        of a file an older version wrote migrates it, so a read never misses a newer table."""
        if self.path not in _CURRENT_FILES or not Path(self.path).exists():
            if not Path(self.path).exists() or self._stored_version() < SCHEMA_VERSION:
                self._transaction("create tables", lambda con: None)
            _CURRENT_FILES.add(self.path)
        return self._transaction(what, body, read_only=True)

    def _stored_version(self) -> int:
        def body(con: duckdb.DuckDBPyConnection) -> int:
            con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'")
            if not con.fetchone()[0]:
                return 0
            row = con.execute("SELECT max(version) FROM schema_version").fetchone()
            return row[0] or 0

        return self._transaction("schema version", body, read_only=True)

    def _ensure_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        versions = [row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()]
        if len(versions) > 1 or (versions and versions[0] > SCHEMA_VERSION):
            raise WarehouseError(
                f"warehouse {self.path} has schema version {versions}; this code knows version {SCHEMA_VERSION}"
            )
        # Missing tables first, whole; then an older file's existing tables get their new columns.
        for table in _COLUMNS:
            con.execute(_ddl(table))
        if not versions:
            con.execute("INSERT INTO schema_version VALUES (?)", [SCHEMA_VERSION])
        elif versions[0] < SCHEMA_VERSION:
            self._migrate(con, versions[0])

    @staticmethod
    def _migrate(con: duckdb.DuckDBPyConnection, version: int) -> None:
        """An older file gets the columns added since, in place (its rows are kept). A table the
        file does not have yet is created afterwards with every column, so it is skipped here."""
        present = {
            row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for table, columns in MIGRATIONS.get(step, {}).items():
                if table not in present:
                    continue
                for name, kind in columns.items():
                    con.execute(f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{name}" {kind}')
        con.execute("UPDATE schema_version SET version = ?", [SCHEMA_VERSION])

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

    def upsert_candidates(self, rows: list[dict[str, Any]]) -> int:
        """One row per (model_version, candidate) of the weekly choice, replaced whole."""
        return self._upsert_whole_rows("candidates", rows)

    def chosen_candidate(self, model_version: str) -> str | None:
        rows = self.query(
            "SELECT candidate FROM candidates WHERE model_version = ? AND chosen", [model_version]
        )
        return rows["candidate"][0] if rows.height else None

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

    def record_numerai_diagnostics(
        self,
        model_version: str,
        model_id: str,
        model_name: str,
        diagnostics_id: str,
        rows: int,
        sha256: str,
        path: str,
    ) -> None:
        """An upload Numerai's diagnostics accepted; a later one of the same (version, model) replaces it."""
        row = {
            "model_version": model_version,
            "model_id": model_id,
            "model_name": model_name,
            "diagnostics_id": diagnostics_id,
            "rows": rows,
            "file_sha256": sha256,
            "path": path,
            "uploaded_at": _now(),
        }
        columns = list(_COLUMNS["numerai_diagnostics"])
        frame = self._frame("numerai_diagnostics", [row], columns)
        update = [name for name in columns if name not in _KEYS["numerai_diagnostics"]]
        self._transaction(
            f"record Numerai diagnostics of {model_version}",
            lambda con: self._insert(con, "numerai_diagnostics", frame, update),
        )

    # ---- reads ----------------------------------------------------------------------------

    def numerai_diagnostics_id(self, model_version: str, model_id: str) -> str | None:
        """Numerai's diagnostics id of the upload recorded for (model_version, model_id), if any."""
        found = self.query(
            "SELECT diagnostics_id FROM numerai_diagnostics WHERE model_version = ? AND model_id = ?",
            [model_version, model_id],
        )
        return found["diagnostics_id"][0] if found.height else None

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

    def fold_devices(self, model_version: str) -> dict[int, str | None]:
        """fold -> the device it trained on, for the folds of `model_version` recorded so far."""
        known = self.query("SELECT fold, device FROM fold_metrics WHERE model_version = ?", [model_version])
        return dict(zip(known["fold"].to_list(), known["device"].to_list(), strict=True))

    def scored_eras(self, model_version: str, model: str, split: str) -> set[str]:
        """The eras `model` of `model_version` has a score row for in `split`."""
        found = self.query(
            'SELECT era FROM era_scores WHERE model_version = ? AND model = ? AND "split" = ?',
            [model_version, model, split],
        )
        return set(found["era"].to_list())

    def era_score_rows(self, model_version: str, model: str, splits: tuple[str, str]) -> pl.DataFrame:
        """era, split, corr, bmc, mmc, cwmm, payout, max_feature_exposure, in_sample of `model` in
        either of two splits."""
        return self.query(
            'SELECT era, "split", corr, bmc, mmc, cwmm, payout, max_feature_exposure, in_sample FROM era_scores '
            'WHERE model_version = ? AND model = ? AND "split" IN (?, ?)',
            [model_version, model, *splits],
        )

    def latest_model_version(self) -> str | None:
        """The most recently created model version, or None before the first training."""

        def body(con: duckdb.DuckDBPyConnection) -> str | None:
            found = con.execute(
                "SELECT model_version FROM model_versions "
                "ORDER BY created_at DESC NULLS LAST, model_version DESC LIMIT 1"
            ).fetchone()
            return found[0] if found else None

        return self._read("latest model version", body)
