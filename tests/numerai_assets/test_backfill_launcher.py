"""An era backfill in one action from the UI (the `launch_era_backfill` job), the eras' splits and
the in-sample marking: real Dagster runs on the tiny trained home, real backfills in a real instance.

The trained home's eras: 0001..0060 train, 0061..0076 validation, of which 0069..0076 are the
held-out test block; 0077..0080 unresolved. Its live models (refits) trained on 0001..0076.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from model_core.era_store import EraStore
from numerai_assets.backfill.launcher import DEFAULT_ERAS, LAUNCH_JOB
from numerai_assets.backfill.splits import load_era_splits
from numerai_assets.shared import dagster_private as private
from numerai_assets.shared.era_selection import select_eras
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import current_version, load_plan
from numerai_assets.shared.warehouse import Warehouse
from tests.numerai_assets.tiny import tiny_definitions, tiny_env

BIN = Path(sys.executable).parent
NO_API = "http://127.0.0.1:9"
PER_RUN = 3
ERAS = [f"{n:04d}" for n in range(1, 81)]
REGISTERED = "(registered: 0001..0080)"
# One era of each split: train 0001, validation 0068, test 0069..0070, unresolved 0079..0080.
SPEC = "0001, 0068:0070, 0079:0080"
SPEC_ERAS = ["0001", "0068", "0069", "0070", "0079", "0080"]
SPLIT_OF = {"0001": "train", "0068": "validation", "0069": "test", "0070": "test", "0079": "unresolved"}


def _eras(spec: str) -> list[str]:
    return [
        f"{n:04d}" for a, b in (part.split(":") for part in spec.split()) for n in range(int(a), int(b) + 1)
    ]


# ---- the eras text ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def splits(trained):
    return load_era_splits(HomeLayout(trained.home))


def test_era_text_selects_ranges_lists_the_newest_and_splits(splits):
    def select(spec):
        return select_eras(ERAS, spec, splits=splits.splits, label="eras")

    assert select("0010:0012") == ["0010", "0011", "0012"] and select("0080") == ["0080"]
    assert select("0079:0080, 0001, 0002:0003") == ["0001", "0002", "0003", "0079", "0080"]
    assert select(DEFAULT_ERAS) == select("last 4") == _eras("0077:0080")
    assert select("test") == _eras("0069:0076") and select("unresolved") == _eras("0077:0080")
    assert select("validation") == _eras("0061:0068") and select("train") == _eras("0001:0060")
    assert select("all resolved") == select("resolved") == _eras("0001:0076")
    assert select("all") == ERAS and select("test, 0001") == ["0001", *_eras("0069:0076")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "0070:0090",
            "eras 0070:0090: 10 era(s) not registered as numerai_era partitions: 0081..0090 "
            f"{REGISTERED}; ingest data that has them first (numerai-pipeline ingest)",
        ),
        (
            "0012:0010",
            f"eras 0012:0010: 0012:0010 is reversed (0012 comes after 0010: write 0010:0012) {REGISTERED}",
        ),
        (
            "0575-0700",
            "eras 0575-0700: '0575-0700' is not an era (0575), a range (0575:0700), 'last N', a split "
            f"(train, validation, test, unresolved, resolved) or 'all' {REGISTERED}",
        ),
        ("0001,", "eras 0001,: '' is not an era (0575)"),
        ("last 81", f"eras last 81: 'last 81' asks for 81 eras; 80 are registered {REGISTERED}"),
    ],
)
def test_a_bad_era_text_is_one_error_naming_it_and_the_registered_eras(splits, spec, message):
    with pytest.raises(ValueError) as raised:
        select_eras(ERAS, spec, splits=splits.splits, label="eras")
    assert str(raised.value).startswith(message)


def test_each_era_has_its_split_and_the_refits_make_every_resolved_era_in_sample(trained, splits):
    assert splits.model_version == current_version(HomeLayout(trained.home))
    by_split = splits.by_split(ERAS)
    assert by_split == {
        "train": _eras("0001:0060"),
        "validation": _eras("0061:0068"),
        "test": _eras("0069:0076"),
        "unresolved": _eras("0077:0080"),
    }
    assert tuple(by_split["test"]) == load_plan(HomeLayout(trained.home)).plan.test_eras
    assert splits.split("0081") == "absent"  # registered later, not in the version's era store
    assert [era for era in ERAS if splits.in_sample(era)] == _eras("0001:0076")
    assert splits.in_sample_warning(_eras("0077:0080")) is None
    warning = splits.in_sample_warning(SPEC_ERAS)
    assert warning.startswith(
        f"4 of 6 era(s) are in-sample for model version {splits.model_version} (0001, 0068..0070)"
    )


def test_fold_models_make_only_their_training_eras_in_sample(trained_home):
    """A version live_model has not completed predicts with its fold models (no refits yet)."""
    layout = HomeLayout(trained_home)
    spec_path = layout.current_model_link.resolve() / "ensemble.json"
    spec = json.loads(spec_path.read_text())
    spec.update(live_checkpoints=[], lgbm_model=None, candidate="transformer", choice={})
    spec_path.write_text(json.dumps(spec))
    folds = load_plan(layout).plan.folds
    trained_on = sorted({era for fold in folds for era in fold.train_eras})
    splits = load_era_splits(layout)
    assert (
        [era for era in ERAS if splits.in_sample(era)]
        == trained_on
        == _eras(f"0001:{folds[-1].train_eras[-1]}")
    )
    assert "its fold models" in splits.in_sample_warning(["0001"])


# ---- the job, as the Launchpad launches it ------------------------------------------------------


def _launch(home: Path, instance: dg.DagsterInstance, eras: str | None):
    """The job as the Launchpad runs it: its default config, or `eras` written over it."""
    defs, _ = tiny_definitions(home, NO_API, None, backfill_eras_per_run=PER_RUN)
    config = None if eras is None else {"ops": {"record_era_backfill": {"config": {"eras": eras}}}}
    return defs.resolve_job_def(LAUNCH_JOB).execute_in_process(
        run_config=config, instance=instance, raise_on_error=False
    )


def _failure(result) -> str:
    [failure] = result.get_step_failure_events()
    return failure.step_failure_data.user_failure_data.description


def _warnings(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.level == logging.WARNING]


@pytest.fixture
def registered(trained, instance):
    instance.add_dynamic_partitions("numerai_era", EraStore(trained.home / "clean_eras" / "current").eras)
    return instance


def test_the_default_config_is_a_valid_launch(trained, registered):
    result = _launch(trained.home, registered, None)
    assert result.success
    [backfill] = registered.get_backfills()
    assert backfill.title == "eras 0077..0080" and backfill.status.value == "REQUESTED"
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = {k: getattr(v, "value", v) for k, v in output.step_output_data.metadata.items()}
    assert (
        metadata["backfill_id"] == backfill.backfill_id
        and metadata["backfill"] == f"/runs/b/{backfill.backfill_id}"
    )
    assert (metadata["eras"], metadata["era_range"], metadata["expected_runs"]) == (4, "0077..0080", 2)
    assert metadata["in_sample_eras"] == 0 and metadata["daemon_running"] is False
    assert "| unresolved | 0077..0080 | 4 | 0 |" in metadata["era_splits"]
    warnings = _warnings(registered, result.run_id)
    assert warnings == [
        f"no dagster-daemon serves this instance: backfill {backfill.backfill_id} waits until one starts "
        f"(dagster dev, dagster-daemon run), or run it here: numerai-pipeline backfill --id {backfill.backfill_id} --wait"
    ]


@pytest.mark.parametrize(
    ("eras", "message"),
    [
        (
            "0075:0085",
            "eras 0075:0085: 5 era(s) not registered as numerai_era partitions: 0081..0085 " + REGISTERED,
        ),
        (
            "0070:0060",
            "eras 0070:0060: 0070:0060 is reversed (0070 comes after 0060: write 0060:0070) " + REGISTERED,
        ),
        ("eras 5 to 9", "eras eras 5 to 9: 'eras 5 to 9' is not an era (0575), a range (0575:0700)"),
    ],
)
def test_a_bad_range_fails_the_launch_with_one_line_and_records_nothing(trained, registered, eras, message):
    result = _launch(trained.home, registered, eras)
    assert not result.success
    assert _failure(result).startswith(message)
    assert registered.get_backfills() == []


def test_without_a_trained_model_the_launch_says_what_to_run_first(tmp_path, registered):
    result = _launch(tmp_path / "empty_home", registered, "0001:0004")
    assert not result.success and "no current model version" in _failure(result)
    assert registered.get_backfills() == []


@pytest.fixture
def launched(trained, tmp_path, monkeypatch):
    """The job launched with SPEC, and the CLI's `backfill --eras SPEC`, in one persistent instance."""
    home = Path(shutil.copytree(trained.home, tmp_path / "home", symlinks=True))
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMERAI_", "DAGSTER_"))}
    env |= tiny_env(
        NUMERAI_HOME=str(home),
        NUMERAI_API_URL=NO_API,
        NUMERAI_EXECUTOR="in_process",
        NUMERAI_BACKFILL_ERAS_PER_RUN=str(PER_RUN),
        NUMERAI_API_BACKOFF_S="0.01",  # no API here: the payout settings fall back to the defaults
        DAGSTER_HOME=str(dagster_home),
    )
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("numerai_era", EraStore(home / "clean_eras" / "current").eras)
        result = _launch(home, instance, SPEC)
        assert result.success
        [from_ui] = instance.get_backfills()
    cli = _cli(["backfill", "--eras", SPEC], env, tmp_path)
    assert cli.returncode == 0, cli.stderr[-3000:]
    return home, env, result.run_id, from_ui.backfill_id, cli.stdout


def test_the_launched_backfill_is_the_clis_and_its_runs_mark_in_sample_eras(launched, tmp_path):
    home, env, launch_run, backfill_id, cli_stdout = launched
    assert (
        f"warning: 4 of 6 era(s) are in-sample for model version {current_version(HomeLayout(home))}"
        in cli_stdout
    )
    with dg.DagsterInstance.get() as instance:
        from_cli, from_ui = instance.get_backfills()  # newest first
        assert from_ui.backfill_id == backfill_id != from_cli.backfill_id
        for same in ("title", "description", "asset_selection", "run_config"):
            assert getattr(from_ui, same) == getattr(from_cli, same), same
        assert from_ui.asset_backfill_data.target_subset == from_cli.asset_backfill_data.target_subset
        assert from_ui.title == "eras 0001, 0068..0070, 0079..0080"
        assert from_ui.description.startswith(
            "train 0001; validation 0068; test 0069..0070; unresolved 0079..0080"
        )
        assert from_ui.tags == {"numerai/launched_by": f"launch_era_backfill run {launch_run}"}
        assert any("4 of 6 era(s) are in-sample" in w for w in _warnings(instance, launch_run))

    done = _cli(["backfill", "--id", backfill_id], env, tmp_path)  # no daemon: run here
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "no dagster-daemon is running: running the backfill here" in done.stdout
    assert f"backfill {backfill_id}: completed_success, 3/3 runs succeeded (here)" in done.stdout

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(dg.RunsFilter(tags={private.BACKFILL_ID_TAG: backfill_id}))
        assert len(runs) == 3 and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        in_sample_runs = [
            run for run in runs if any("in-sample" in w for w in _warnings(instance, run.run_id))
        ]
        assert len(in_sample_runs) == 2  # 0001 and 0068..0070; not the unresolved 0079..0080
        records = instance.fetch_materializations(dg.AssetKey("era_scores"), limit=100).records
        metadata = {r.partition_key: r.asset_materialization.metadata for r in records}
    assert sorted(metadata) == SPEC_ERAS
    for era in SPEC_ERAS:
        assert metadata[era]["split"].value == SPLIT_OF.get(era, "unresolved"), era
        assert metadata[era]["in_sample"].value is (era < "0077"), era
    rows = Warehouse(path=str(HomeLayout(home).warehouse_path)).era_scores_frame(
        current_version(HomeLayout(home))
    )
    rows = rows.filter((pl.col("model") == "ensemble") & pl.col("era").is_in(SPEC_ERAS)).sort("era")
    stored = {row["era"]: (row["split"], row["in_sample"]) for row in rows.iter_rows(named=True)}
    assert stored == {
        "0001": ("backfill", True),
        "0068": ("backfill", True),
        "0069": ("test", None),  # validation_diagnostics' out-of-sample row is kept
        "0070": ("test", None),
        "0079": ("backfill", False),
        "0080": ("backfill", False),
    }


def test_an_unknown_backfill_id_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMERAI_", "DAGSTER_"))}
    env |= tiny_env(NUMERAI_HOME=str(tmp_path / "home"), DAGSTER_HOME=str(tmp_path))
    done = _cli(["backfill", "--id", "nosuchid"], env, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --id nosuchid: no such backfill in this Dagster instance (latest: none)"
    )


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "numerai-pipeline"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
