"""A served file that lost a column, arriving after a good `numerai-pipeline ingest`: the ingest
fails naming the file and the column, the good data stays current and byte-identical, and nothing
is left behind. (A duplicate id, a feature value 7 and a truncated file are
tests/numerai_assets/test_ingest_assets.py's.)"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from tests.faults.harness import published, run_cli, run_statuses, targets, temporaries
from tests.numerai_assets.test_cli import _error_lines


def _a_medium_feature(tournament: Path) -> str:
    sets = json.loads((tournament / "v5.3" / "features.json").read_text())["feature_sets"]
    return sets["medium"][0]  # one the model uses (the tiny knobs' feature set)


@pytest.mark.parametrize(
    ("served", "column", "owner"),
    [
        ("v5.3/validation.parquet", "feature", "raw/v5.3"),
        ("v5.3/train.parquet", "target", "raw/v5.3"),
        ("rounds/{round}/v5.3/live.parquet", "era", "rounds/{round}/v5.3"),
    ],
    ids=["validation_without_a_feature", "train_without_target", "live_without_era"],
)
def test_a_file_without_a_column_leaves_the_good_data_current(
    ingested_env, tmp_path, tournament, tournament_state, served, column, owner
):
    home = Path(ingested_env["NUMERAI_HOME"])
    number = tournament_state.current.number
    served, owner = served.format(round=number), owner.format(round=number)
    column = _a_medium_feature(tournament) if column == "feature" else column
    good, links = published(home), targets(home)
    # the good download's own files: what the failed ingest must leave as they are
    owned = {name: digest for name, digest in good.items() if name.startswith(f"{owner}/")}
    assert owned and links[owner]
    pl.read_parquet(tournament / served).drop(column).write_parquet(tournament / served)
    runs_before = len(run_statuses(ingested_env))

    done = run_cli(["ingest"], ingested_env, tmp_path)

    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    [line] = _error_lines(done)
    assert f"{Path(served).name}: missing " in line and column in line, line
    # named as the API names it, beside what stays current; never the deleted staging folder
    assert f"v5.3/{Path(served).name}: missing " in line and "rejected, not published" in line, line
    assert ".staging" not in line, line
    now = published(home)
    assert {name: now.get(name) for name in owned} == owned
    assert targets(home)[owner] == links[owner]
    if owner == "raw/v5.3":  # stopped at the download: nothing else was touched either
        assert now == good and targets(home) == links
    assert temporaries(home) == []
    new_runs = [status for _, status in run_statuses(ingested_env)[runs_before:]]
    failed = [dg.DagsterRunStatus.FAILURE]
    assert new_runs == (failed if owner == "raw/v5.3" else [dg.DagsterRunStatus.SUCCESS, *failed])
