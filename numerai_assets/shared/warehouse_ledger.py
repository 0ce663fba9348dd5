"""The submissions ledger of the Warehouse: what was uploaded to Numerai, and when.

One row per (`round`, `model_id`) in the `submissions` table. Status 'uploading' is written BEFORE
the upload and 'uploaded' after it, so a row left at 'uploading' tells the next run that a crash
fell between the two; 'dry_run' is a file validated but not sent. A row at 'uploaded' is never
overwritten: a forced resubmission forgets it first.

`SubmissionLedger` is a plain mixin of methods that `Warehouse` (`numerai_assets.shared.warehouse`)
inherits; it keeps them in their own module because the ledger is its own concept. It holds no
fields (those stay on the `Warehouse` resource, where Dagster and pydantic read them) and uses the
Warehouse's transaction plumbing: `self.path`, `self._transaction`, `self._read`, `self._frame`
and `self._insert`.
"""

from typing import Any

import duckdb
import polars as pl

from numerai_assets.shared.warehouse_schema import (
    _COLUMNS,
    _KEYS,
    STATUS_DRY_RUN,
    STATUS_UPLOADED,
    STATUS_UPLOADING,
    WarehouseError,
    _now,
)


def _fetch_dicts(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [column[0] for column in con.description]
    return [dict(zip(names, row, strict=True)) for row in con.fetchall()]


class SubmissionLedger:
    """The Warehouse's methods on the submissions ledger (a mixin; see the module doc)."""

    # ---- writes ---------------------------------------------------------------------------

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
            # The candidate that made the file: the model version's recorded choice (NULL for a
            # version made before choices were recorded).
            chosen = con.execute(
                "SELECT candidate FROM candidates WHERE model_version = ? AND chosen LIMIT 1",
                [row.get("model_version")],
            ).fetchall()  # fetched in full: DuckDB refuses new work on a half-read result
            chosen = chosen[0] if chosen else None
            self._insert(
                con,
                "submissions",
                frame.with_columns(pl.lit(chosen[0] if chosen else None, dtype=pl.String).alias("candidate")),
                update,
            )

        self._transaction(what, body)

    @staticmethod
    def _status(con: duckdb.DuckDBPyConnection, round: int, model_id: str) -> str | None:
        found = con.execute(
            "SELECT status FROM submissions WHERE round = ? AND model_id = ?", [round, model_id]
        ).fetchall()
        return found[0][0] if found else None

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
        row = _file_row(round, model_id, model_name, file_sha256, rows, model_version, path)
        self._write_ledger(
            f"record upload started (round {round}, model {model_name})",
            {**row, "status": STATUS_UPLOADING, "started_at": _now()},
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
        row = _file_row(round, model_id, model_name, file_sha256, rows, model_version, path)
        self._write_ledger(
            f"record dry run (round {round}, model {model_name})",
            {**row, "status": STATUS_DRY_RUN, "started_at": now, "finished_at": now},
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

    def ledger_entry(self, round: int, model_id: str) -> dict[str, Any] | None:
        """The ledger row of (round, model_id) as a dict, or None when nothing was recorded."""

        def body(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
            con.execute("SELECT * FROM submissions WHERE round = ? AND model_id = ?", [round, model_id])
            rows = _fetch_dicts(con)
            return rows[0] if rows else None

        return self._read(f"ledger entry (round {round}, model {model_id})", body)

    def round_handled(self, round: int, model_name: str | None = None) -> bool:
        """Whether round `round` was uploaded (or, by a service without the API key, written as a
        dry run): by `model_name` when given (in any case), else by any model."""

        def body(con: duckdb.DuckDBPyConnection) -> bool:
            found = con.execute(
                "SELECT count(*) FROM submissions WHERE round = ? AND status IN (?, ?) "
                "AND (CAST(? AS VARCHAR) IS NULL OR lower(model_name) = lower(?))",
                [round, STATUS_UPLOADED, STATUS_DRY_RUN, model_name, model_name],
            ).fetchone()
            return bool(found[0])

        return self._read(f"round {round} handled", body)

    def last_submission(self) -> dict[str, Any] | None:
        """The newest ledger row of any status (latest round, then latest start), or None."""

        def body(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
            con.execute("SELECT * FROM submissions ORDER BY round DESC, started_at DESC NULLS LAST LIMIT 1")
            rows = _fetch_dicts(con)
            return rows[0] if rows else None

        return self._read("last submission", body)


def _file_row(
    round: int, model_id: str, model_name: str, file_sha256: str, rows: int, model_version: str, path: str
) -> dict[str, Any]:
    """The ledger columns that describe the submitted file (the same for an upload and a dry run)."""
    return {
        "round": round,
        "model_id": model_id,
        "model_name": model_name,
        "file_sha256": file_sha256,
        "rows": rows,
        "model_version": model_version,
        "path": path,
    }
