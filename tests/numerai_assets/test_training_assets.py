"""Training through Dagster on the tiny tournament: folds, fold models, the GPU-limited executor."""

import json

import dagster as dg
import pytest
import torch

from numerai_assets.defs.features import clean_eras, feature_returns
from numerai_assets.defs.ingest import raw_dataset
from numerai_assets.defs.training import build_training_assets
from numerai_assets.defs.training_resource import TrainingKnobs
from numerai_assets.runs import train
from numerai_assets.summary import print_training_summary
from tests.numerai_assets.tiny import TINY_KNOBS, tiny_env


def test_cv_folds_and_a_fold_model_materialise(api, home, instance):
    assets = [raw_dataset, clean_eras, feature_returns, *build_training_assets(2)]
    resources = {"numerai": api, "numerai_home": home, "training": TrainingKnobs(**TINY_KNOBS)}
    result = dg.materialize(
        assets,
        resources=resources,
        instance=instance,
        selection=[a.key.path[-1] for a in assets[:4]] + ["fold_model_0"],
    )
    assert result.success
    plan = json.loads(home.layout.cv_folds_path.read_text())
    [event] = result.asset_materializations_for_node("fold_model_0")
    meta = {k: getattr(v, "value", v) for k, v in event.metadata.items()}
    assert meta["model_version"] == plan["model_version"]
    assert 1 <= meta["best_epoch"] <= meta["epochs_run"] <= 2
    assert meta["device"] == "cpu" and meta["train_rows"] > 0 and meta["rows_per_s"] > 0
    checkpoint = torch.load(meta["checkpoint"], weights_only=True)
    assert checkpoint["best_epoch"] == meta["best_epoch"]
    test_eras = set(plan["plan"]["test_eras"])
    for fold in plan["plan"]["folds"]:
        assert not test_eras & set(fold["train_eras"]) and not test_eras & set(fold["validation_eras"])


@pytest.mark.slow
def test_multiprocess_run_trains_two_folds_one_at_a_time(server, tmp_path, monkeypatch, capsys):
    """execute_job with the multiprocess executor and a GPU limit of one: fold steps never overlap."""
    env = tiny_env()
    env |= {
        "NUMERAI_API_URL": server.url,
        "NUMERAI_HOME": str(tmp_path / "home"),
        "NUMERAI_FOLD_CONCURRENCY": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    with dg.DagsterInstance.get() as instance:
        summary = train(instance)
        assert {"fold_model_0", "fold_model_1", "cv_folds", "clean_eras"} <= set(summary)
        print_training_summary(summary)
        printed = capsys.readouterr().out
        assert summary["cv_folds"]["model_version"] in printed
        assert all(f"fold_model_{k}" in printed for k in (0, 1))
        [run] = instance.get_runs()
        spans = {}
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event and event.step_key and event.step_key.startswith("fold_model_"):
                if event.event_type_value == "STEP_START":
                    spans.setdefault(event.step_key, [0, 0])[0] = record.timestamp
                elif event.event_type_value == "STEP_SUCCESS":
                    spans[event.step_key][1] = record.timestamp
        (a_start, a_end), (b_start, b_end) = sorted(spans.values())
        assert a_start < a_end <= b_start < b_end, f"fold steps overlapped: {spans}"
        pids = {
            r.dagster_event.pid
            for r in instance.all_logs(run.run_id)
            if r.dagster_event and r.dagster_event.pid
        }
        assert len(pids) > 2  # each step in its own process
