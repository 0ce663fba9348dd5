"""deploy/dagster.yaml against a real PostgreSQL server: run `make test-postgres`.

deploy/test_postgres.sh starts the server, puts deploy/dagster.yaml in DAGSTER_HOME with the
DAGSTER_POSTGRES_* variables pointing at it, sets the `gpu` pool as the daemon does, and runs
this file. The training job runs as a user runs it (`numerai-pipeline train`, multiprocess
executor, every step in its own process) on the `tiny` simulated tournament; the test then reads
the run, its materialisations and the pool back, through Dagster and with plain SQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster import DagsterRunStatus

from tournament_sim.generate import generate_tournament
from tournament_sim.server import SimServer

pytestmark = pytest.mark.postgres

BIN = Path(sys.executable).parent
POSTGRES_VARS = ("HOST", "PORT", "USER", "PASSWORD", "DB")
CORE_ASSETS = ("raw_dataset", "clean_eras", "feature_returns", "cv_folds", "fold_model_0", "fold_model_1")
# Sized for the tiny tournament (76 resolved eras): seconds per fold on a CPU.
TINY_ENV = {
    "NUMERAI_N_FOLDS": "2",
    "NUMERAI_TEST_ERAS": "8",
    "NUMERAI_MIN_TRAIN_ERAS": "12",
    "NUMERAI_MAX_EPOCHS": "2",
    "NUMERAI_D_MODEL": "16",
    "NUMERAI_N_LAYERS": "1",
    "NUMERAI_N_HEADS": "2",
    "NUMERAI_TEMPORAL_LAGS": "4",
    "NUMERAI_ERAS_PER_BATCH": "8",
    "NUMERAI_DEVICE": "cpu",
    "NUMERAI_BASELINE_ESTIMATORS": "20",
    "NUMERAI_FOLD_CONCURRENCY": "2",
}


@pytest.fixture(scope="module")
def postgres_env() -> dict[str, str]:
    missing = [
        f"DAGSTER_POSTGRES_{name}" for name in POSTGRES_VARS if not os.environ.get(f"DAGSTER_POSTGRES_{name}")
    ]
    if missing or not os.environ.get("DAGSTER_HOME"):
        pytest.fail(
            f"run through `make test-postgres` (deploy/test_postgres.sh): {missing or 'DAGSTER_HOME'} unset"
        )
    instance_yaml = Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml"
    repo_yaml = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"
    assert instance_yaml.read_text() == repo_yaml.read_text(), (
        "DAGSTER_HOME must hold deploy/dagster.yaml as is"
    )
    return {name: os.environ[f"DAGSTER_POSTGRES_{name}"] for name in POSTGRES_VARS}


def _sql(env: dict[str, str], query: str, *args: object) -> list[tuple]:
    params = {"host": env["HOST"], "port": int(env["PORT"]), "user": env["USER"], "dbname": env["DB"]}
    with closing(psycopg2.connect(password=env["PASSWORD"], **params)) as conn, conn.cursor() as cursor:
        cursor.execute(query, args)
        return cursor.fetchall()


def test_training_run_is_recorded_in_postgres(postgres_env, tmp_path):
    tournament = tmp_path / "tournament"
    generate_tournament(tournament, "tiny", seed=7)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMERAI_")}
    env |= TINY_ENV | {"NUMERAI_HOME": str(tmp_path / "numerai_home")}
    with SimServer(tournament) as server:
        env["NUMERAI_API_URL"] = server.url
        done = subprocess.run(
            [str(BIN / "numerai-pipeline"), "train"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]

    with dg.DagsterInstance.get() as instance:
        # The instance is the one deploy/dagster.yaml describes: Postgres for all three storages.
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        [run] = instance.get_runs()
        assert run.job_name == "weekly_training" and run.status == DagsterRunStatus.SUCCESS
        materialized = {
            record.asset_key.to_user_string()
            for record in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            ).records
            if record.asset_key is not None
        }
        assert set(CORE_ASSETS) <= materialized, materialized
        latest = instance.get_latest_materialization_event(dg.AssetKey("fold_model_1"))
        assert latest is not None and latest.run_id == run.run_id
        checkpoint = latest.asset_materialization.metadata["checkpoint"].value
        assert Path(checkpoint).is_file() and Path(checkpoint).is_relative_to(tmp_path / "numerai_home")
        # The pool the fold steps use, as the daemon's start command set it.
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 2

    # The same facts, read from the database itself: nothing went to a local SQLite file.
    assert _sql(postgres_env, "SELECT status, pipeline_name FROM runs WHERE run_id = %s", run.run_id) == [
        ("SUCCESS", "weekly_training")
    ]
    rows = _sql(
        postgres_env,
        "SELECT DISTINCT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
        run.run_id,
        "ASSET_MATERIALIZATION",
    )
    assert {dg.AssetKey.from_db_string(key).to_user_string() for (key,) in rows} == materialized
    limits = _sql(
        postgres_env, 'SELECT concurrency_key, "limit", using_default_limit FROM concurrency_limits'
    )
    assert limits == [("gpu", 2, False)]
    free_slots = _sql(
        postgres_env,
        "SELECT count(*) FROM concurrency_slots WHERE concurrency_key = 'gpu' AND NOT deleted AND run_id IS NULL",
    )
    assert free_slots == [(2,)], "the fold steps' slots were not all given back"
    assert not list(Path(os.environ["DAGSTER_HOME"]).rglob("*.db")), "a SQLite storage was created"
