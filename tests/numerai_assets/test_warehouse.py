"""The Warehouse on a real DuckDB file: tables, upserts, the ledger, and lock contention between
processes (a second Python process holds the file the way a parallel Dagster step would)."""

import math
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from numerai_assets.shared.warehouse import SCHEMA_VERSION, Warehouse, WarehouseError, WarehouseLockedError

TABLES = {
    "schema_version",
    "model_versions",
    "fold_metrics",
    "era_scores",
    "submissions",
    "rounds",
    "candidates",
    "numerai_diagnostics",
}

# Holds a write connection on argv[1] for argv[2] seconds; says "locked" once it has the file.
HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    return Warehouse(path=str(tmp_path / "home" / "warehouse.duckdb"), lock_backoff_s=0.02)


def _hold_lock(path: str, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, path, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _score(era: str, corr: float, **extra) -> dict:
    return {"model_version": "mv1", "model": "ensemble", "era": era, "split": "test", "corr": corr, **extra}


def test_tables_created_on_first_use_and_readable_with_plain_duckdb(warehouse):
    assert not Path(warehouse.path).exists()
    assert warehouse.latest_model_version() is None  # a first read creates the file
    assert warehouse.last_submission() is None
    with duckdb.connect(warehouse.path, read_only=True) as con:
        names = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert names == TABLES
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert warehouse.era_scores_frame().is_empty()


def test_a_version_1_file_gains_the_new_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:  # what version 1 wrote: no candidate column
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute("INSERT INTO schema_version VALUES (1)")
        con.execute(
            "CREATE TABLE submissions (round INTEGER, model_id VARCHAR, model_name VARCHAR, status VARCHAR, "
            "submission_id VARCHAR, file_sha256 VARCHAR, rows INTEGER, model_version VARCHAR, path VARCHAR, "
            "started_at TIMESTAMP, finished_at TIMESTAMP, PRIMARY KEY (round, model_id))"
        )
        con.execute(
            "INSERT INTO submissions VALUES (7, 'id', 'm', 'uploaded', 'sub-7', 'sha', 10, 'mv1', 'p', now(), now())"
        )
    warehouse = Warehouse(path=str(path))
    assert warehouse.last_submission()["submission_id"] == "sub-7"
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        columns = {row[0] for row in con.execute("DESCRIBE submissions").fetchall()}
        assert "candidate" in columns
        assert con.execute("SELECT candidate FROM submissions").fetchall() == [(None,)]


def test_a_version_2_file_gains_the_numerai_diagnostics_table_on_a_read(tmp_path):
    path = tmp_path / "v2.duckdb"
    with duckdb.connect(str(path)) as con:  # what version 2 wrote: no numerai_diagnostics table
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute("INSERT INTO schema_version VALUES (2)")
        con.execute(
            "CREATE TABLE rounds (round INTEGER PRIMARY KEY, live_era VARCHAR, live_rows INTEGER, opened_seen_at TIMESTAMP)"
        )
        con.execute("INSERT INTO rounds VALUES (7, 'X', 10, now())")
    warehouse = Warehouse(path=str(path))
    assert warehouse.numerai_diagnostics_id("mv1", "model-id") is None  # a read, no error
    assert warehouse.query("SELECT round FROM rounds")["round"].to_list() == [7]
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_a_version_3_file_gains_cwmm_and_payout_and_keeps_its_era_scores(tmp_path):
    path = tmp_path / "v3.duckdb"
    with duckdb.connect(str(path)) as con:  # what version 3 wrote: era_scores without cwmm / payout
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute("INSERT INTO schema_version VALUES (3)")
        con.execute(
            "CREATE TABLE era_scores (model_version VARCHAR, model VARCHAR, era VARCHAR, split VARCHAR, "
            "corr DOUBLE, fnc DOUBLE, bmc DOUBLE, mmc DOUBLE, max_feature_exposure DOUBLE, churn_corr DOUBLE, "
            "written_at TIMESTAMP, PRIMARY KEY (model_version, model, era))"
        )
        con.execute(
            "INSERT INTO era_scores VALUES ('mv1', 'ensemble', '0001', 'test', 0.02, NULL, NULL, 0.01, "
            "0.3, NULL, now())"
        )
    warehouse = Warehouse(path=str(path))
    old = warehouse.era_scores_frame("mv1")
    assert old.select("era", "corr", "mmc", "cwmm", "payout").rows() == [("0001", 0.02, 0.01, None, None)]
    warehouse.upsert_era_scores([_score("0002", 0.04, mmc=0.02, cwmm=0.5, payout=0.07)])
    rows = warehouse.era_scores_frame("mv1").select("era", "corr", "cwmm", "payout").rows()
    assert rows == [("0001", 0.02, None, None), ("0002", 0.04, 0.5, 0.07)]
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_a_version_4_file_gains_in_sample_and_keeps_its_era_scores(tmp_path):
    path = tmp_path / "v4.duckdb"
    with duckdb.connect(str(path)) as con:  # what version 4 wrote: era_scores without in_sample
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute("INSERT INTO schema_version VALUES (4)")
        con.execute(
            "CREATE TABLE era_scores (model_version VARCHAR, model VARCHAR, era VARCHAR, split VARCHAR, "
            "corr DOUBLE, fnc DOUBLE, bmc DOUBLE, mmc DOUBLE, max_feature_exposure DOUBLE, churn_corr DOUBLE, "
            "written_at TIMESTAMP, cwmm DOUBLE, payout DOUBLE, PRIMARY KEY (model_version, model, era))"
        )
        con.execute(
            "INSERT INTO era_scores VALUES ('mv1', 'ensemble', '0001', 'backfill', 0.02, NULL, NULL, 0.01, "
            "0.3, NULL, now(), 0.4, 0.05)"
        )
    warehouse = Warehouse(path=str(path))
    assert warehouse.era_scores_frame("mv1").select("era", "payout", "in_sample").rows() == [
        ("0001", 0.05, None)
    ]
    warehouse.upsert_era_scores([{**_score("0002", 0.04), "split": "backfill", "in_sample": True}])
    rows = warehouse.era_scores_frame("mv1").select("era", "split", "in_sample").rows()
    assert rows == [("0001", "backfill", None), ("0002", "backfill", True)]
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)] == [(5,)]


def test_numerai_diagnostics_ids_are_kept_per_version_and_model(warehouse):
    warehouse.record_numerai_diagnostics("mv1", "model-a", "a", "diag-1", 40, "sha", "p.csv")
    warehouse.record_numerai_diagnostics("mv1", "model-b", "b", "diag-2", 40, "sha", "p.csv")
    warehouse.record_numerai_diagnostics("mv1", "model-a", "a", "diag-3", 41, "sha2", "p.csv")  # replaces
    assert warehouse.numerai_diagnostics_id("mv1", "model-a") == "diag-3"
    assert warehouse.numerai_diagnostics_id("mv1", "model-b") == "diag-2"
    assert warehouse.numerai_diagnostics_id("mv2", "model-a") is None
    rows = warehouse.query("SELECT rows, uploaded_at FROM numerai_diagnostics WHERE model_id = 'model-a'")
    assert rows["rows"].to_list() == [41] and rows["uploaded_at"].null_count() == 0


def test_era_scores_upsert_twice_keeps_one_row_per_key_with_second_values(warehouse):
    warehouse.upsert_era_scores([_score("0001", 0.01, fnc=0.5), _score("0002", 0.02)])
    written = warehouse.upsert_era_scores([_score("0001", 0.11), _score("0002", 0.12), _score("0003", 0.13)])
    assert written == 3
    frame = warehouse.era_scores_frame("mv1", "test")
    assert frame["era"].to_list() == ["0001", "0002", "0003"]
    assert frame["corr"].to_list() == [0.11, 0.12, 0.13]
    assert frame["fnc"].to_list() == [None, None, None]  # rows are replaced whole: missing is NULL
    assert frame["written_at"].null_count() == 0
    assert warehouse.era_scores_frame(split="oof").is_empty()
    with duckdb.connect(warehouse.path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM era_scores").fetchone() == (3,)


def test_nan_is_stored_as_null(warehouse):
    warehouse.upsert_era_scores([_score("0001", math.nan, bmc=float("nan"), mmc=0.3)])
    warehouse.upsert_fold_metrics([{"model_version": "mv1", "fold": 0, "val_corr_sharpe": math.nan}])
    with duckdb.connect(warehouse.path, read_only=True) as con:
        assert con.execute("SELECT corr, bmc, mmc FROM era_scores").fetchall() == [(None, None, 0.3)]
        assert con.execute("SELECT val_corr_sharpe FROM fold_metrics").fetchall() == [(None,)]


def test_bad_rows_are_refused_with_the_table_and_file(warehouse):
    with pytest.raises(ValueError, match=r"era_scores.*unknown columns \['sharpe'\]") as info:
        warehouse.upsert_era_scores([_score("0001", 0.1, sharpe=1.0)])
    assert warehouse.path in str(info.value)
    with pytest.raises(ValueError, match="split must be one of"):
        warehouse.upsert_era_scores([_score("0001", 0.1) | {"split": "live"}])
    with pytest.raises(ValueError, match=r"key columns \['fold'\]"):
        warehouse.upsert_fold_metrics([{"model_version": "mv1", "best_epoch": 3}])


def test_model_version_upsert_updates_only_given_columns(warehouse):
    warehouse.upsert_model_version("mv1", n_folds=3, weights={"fold_0": 0.6, "fold_1": 0.4})
    warehouse.upsert_model_version("mv1", ensemble_corr=0.02)
    time.sleep(0.01)
    warehouse.upsert_model_version("mv2", n_folds=4)
    rows = warehouse.query("SELECT * FROM model_versions ORDER BY model_version").to_dicts()
    assert rows[0]["n_folds"] == 3 and rows[0]["ensemble_corr"] == 0.02
    assert warehouse.query(
        "SELECT weights->>'fold_0' AS w FROM model_versions WHERE model_version = ?", ["mv1"]
    )["w"].to_list() == ["0.6"]
    assert warehouse.latest_model_version() == "mv2"


def test_ledger_lifecycle_started_finished_dry_run_forget(warehouse):
    file = {"model_name": "m", "file_sha256": "ab" * 32, "rows": 10, "model_version": "mv1", "path": "/s.csv"}
    assert warehouse.ledger_entry(7, "id-1") is None
    with pytest.raises(WarehouseError, match="expected 'uploading'"):
        warehouse.record_upload_finished(7, "id-1", "sub-1")

    warehouse.record_upload_started(7, "id-1", **file)
    started = warehouse.ledger_entry(7, "id-1")
    assert started["status"] == "uploading" and started["finished_at"] is None  # what a crash leaves
    warehouse.record_upload_finished(7, "id-1", "sub-1")
    finished = warehouse.ledger_entry(7, "id-1")
    assert finished["status"] == "uploaded" and finished["submission_id"] == "sub-1"
    assert finished["finished_at"] >= finished["started_at"]
    with pytest.raises(WarehouseError, match="already records round 7"):
        warehouse.record_upload_started(7, "id-1", **file)

    warehouse.record_dry_run(8, "id-1", **file)
    assert warehouse.ledger_entry(8, "id-1")["status"] == "dry_run"
    assert warehouse.last_submission()["round"] == 8

    assert warehouse.forget_submission(7, "id-1") is True
    assert warehouse.forget_submission(7, "id-1") is False
    assert warehouse.ledger_entry(7, "id-1") is None
    warehouse.record_upload_started(7, "id-1", **file)  # a forced resubmission starts afresh
    assert warehouse.ledger_entry(7, "id-1")["status"] == "uploading"


def test_round_keeps_its_first_sighting(warehouse):
    warehouse.upsert_round(700, "0999", 5000)
    first = warehouse.query("SELECT opened_seen_at FROM rounds").item()
    warehouse.upsert_round(700, "0999", 5001)
    assert warehouse.query("SELECT live_rows, opened_seen_at FROM rounds").rows() == [(5001, first)]


def test_write_waits_for_another_process_holding_the_file(warehouse):
    warehouse.upsert_round(1, "0001", 1)  # the file exists, so the holder opens the same database
    impatient = Warehouse(path=warehouse.path, lock_retries=0)
    holder = _hold_lock(warehouse.path, 1.0)
    try:
        with pytest.raises(WarehouseLockedError, match="locked by another process") as info:
            impatient.upsert_round(2, "0002", 2)
        assert warehouse.path in str(info.value)

        began = time.monotonic()
        warehouse.upsert_era_scores([_score("0001", 0.1)])  # retries until the holder lets go
        assert time.monotonic() - began > 0.3
        assert holder.wait(timeout=10) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert warehouse.era_scores_frame()["corr"].to_list() == [0.1]


def test_read_waits_for_a_writer_in_another_process(warehouse):
    warehouse.upsert_round(1, "0001", 1)
    holder = _hold_lock(warehouse.path, 0.5)
    try:
        began = time.monotonic()
        assert warehouse.query("SELECT round FROM rounds")["round"].to_list() == [1]
        assert time.monotonic() - began > 0.2  # a reader waits too: DuckDB locks the whole file
        assert holder.wait(timeout=10) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_warehouse_works_as_a_dagster_resource(warehouse):
    @dg.asset
    def scored(warehouse: Warehouse) -> dg.MaterializeResult:
        warehouse.upsert_era_scores([_score("0001", 0.2)])
        return dg.MaterializeResult(metadata={"rows": len(warehouse.era_scores_frame())})

    result = dg.materialize([scored], resources={"warehouse": warehouse})
    assert result.success
    assert warehouse.era_scores_frame()["corr"].to_list() == [0.2]


def test_a_version_3_file_gains_the_dataset_version_of_model_versions(tmp_path):
    path = tmp_path / "v3.duckdb"
    with duckdb.connect(str(path)) as con:  # what version 3 wrote: model versions without a dataset version
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute("INSERT INTO schema_version VALUES (3)")
        con.execute(
            "CREATE TABLE model_versions (model_version VARCHAR PRIMARY KEY, created_at TIMESTAMP, "
            "n_folds INTEGER, feature_set VARCHAR, test_eras VARCHAR, weights JSON, "
            "equal_weight_corr DOUBLE, ensemble_corr DOUBLE, notes VARCHAR)"
        )
        con.execute("INSERT INTO model_versions (model_version, n_folds) VALUES ('mv-old', 4)")
    warehouse = Warehouse(path=str(path))
    warehouse.upsert_model_version("mv-new", n_folds=2, dataset_version="v5.3")
    rows = warehouse.query("SELECT model_version, n_folds, dataset_version FROM model_versions ORDER BY 1")
    assert rows.rows() == [("mv-new", 2, "v5.3"), ("mv-old", 4, None)]
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
