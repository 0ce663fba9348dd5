"""Training through Dagster on the tiny tournament: folds, fold models, the GPU-limited executor."""

import json
import os

import dagster as dg
import numpy as np
import pytest
import torch

from numerai_assets.cli.runs import PID_TAG, train
from numerai_assets.cli.summary import print_training_summary
from numerai_assets.ingest.assets import clean_eras, feature_returns, raw_dataset
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import load_plan
from numerai_assets.training.assets import build_training_assets
from numerai_assets.training.resources import TrainingKnobs
from tests.numerai_assets.code_location_runs import (
    assert_runs_belong_to_the_location,
    assert_the_ui_can_reexecute,
    ui_workspace,
)
from tests.numerai_assets.tiny import TINY_KNOBS, tiny_definitions, tiny_env


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
        # a run of the code location's weekly_training job: under that job in the UI, re-executable
        assert_runs_belong_to_the_location(instance, [run], "weekly_training")
        assert run.tags[PID_TAG] == str(os.getpid())
        with ui_workspace(instance) as workspace:
            assert_the_ui_can_reexecute(workspace, [run])


def _cv_folds(home, instance, **overrides):
    defs, resources = tiny_definitions(home, "http://127.0.0.1:9", None, **overrides)
    return dg.materialize(
        list(defs.assets),
        resources=resources,
        instance=instance,
        selection=["cv_folds"],
        raise_on_error=False,
    )


def test_unset_cv_knobs_shrink_to_a_short_history(trained_home, instance):
    # The defaults (52 test eras, a 52-era first fold) need more than the tiny 76 resolved eras.
    result = _cv_folds(trained_home, instance, test_eras=None, min_train_eras=None)
    assert result.success
    [event] = result.asset_materializations_for_node("cv_folds")
    n_test = int(event.metadata["test_eras"].value.split("(")[1].rstrip(")"))
    assert 1 <= n_test < 52
    plan = load_plan(HomeLayout(trained_home)).plan
    assert len(plan.folds) == TINY_KNOBS["n_folds"]  # one fold_model_k asset per fold: never shrunk
    assert len(plan.folds[0].train_eras) < 52
    logs = [e.message for e in instance.all_logs(result.run_id) if e.message]
    assert any("short history: test_eras 52 ->" in m for m in logs)


def test_cv_knobs_the_user_set_do_not_shrink_and_are_named(trained_home, instance):
    result = _cv_folds(trained_home, instance, test_eras=70)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()  # with the cause, our ValueError
    assert "too few eras" in message and "NUMERAI_TEST_ERAS" in message and "NUMERAI_N_FOLDS" in message


def _svg_of(markdown: str):
    """The inline chart's SVG, parsed (a broken document fails here)."""
    import re
    import xml.etree.ElementTree as ET
    from urllib.parse import unquote

    match = re.fullmatch(r"!\[[^\]]*\]\(data:image/svg\+xml,([^()\s]+)\)", markdown)
    assert match, markdown[:80]
    return ET.fromstring(unquote(match.group(1)))


def _columns(table) -> list[str]:
    return [c.name for c in table.schema.columns]


def test_a_fold_model_shows_its_epochs_curve_eras_and_settings(trained):
    meta = trained.metadata["fold_model_0"]
    plan = load_plan(HomeLayout(trained.home)).plan
    epochs = [r.data for r in meta["epochs"].records]
    assert _columns(meta["epochs"]) == [
        "epoch",
        "train_loss",
        "val_corr_mean",
        "val_corr_sharpe",
        "learning_rate",
        "seconds",
        "rows_per_s",
        "best_so_far",
    ]
    assert [row["epoch"] for row in epochs] == list(range(1, meta["epochs_run"] + 1))
    best = epochs[meta["best_epoch"] - 1]
    assert best["val_corr_mean"] == pytest.approx(meta["val_corr_mean"], abs=1e-5) and best["best_so_far"]
    assert all(row["seconds"] > 0 and row["learning_rate"] > 0 for row in epochs)
    # The curve: an SVG under the UI's 1,000 characters, one point per epoch, the best one marked.
    assert len(meta["training_curve"]) < 1000
    svg = _svg_of(meta["training_curve"])
    titles = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert titles[0].startswith("validation CORR") and f"best {meta['best_epoch']}" in titles[-1]
    fold = plan.folds[0]
    assert meta["train_eras"] == f"{fold.train_eras[0]}..{fold.train_eras[-1]} ({len(fold.train_eras)})"
    assert meta["validation_eras"].endswith(f"({len(fold.validation_eras)})")
    assert meta["purge_gap"] == plan.gap
    settings = {(r.data["part"], r.data["setting"]): r.data["value"] for r in meta["settings"].records}
    assert settings[("model", "d_model")] == str(TINY_KNOBS["d_model"])
    assert settings[("training", "max_epochs")] == str(TINY_KNOBS["max_epochs"])
    assert settings[("batches", "eras_per_batch")] == str(TINY_KNOBS["eras_per_batch"])


def test_a_refit_shows_its_epochs_fixed_by_the_folds(trained):
    meta = trained.metadata["refit_model_0"]
    if "skipped" in meta:
        pytest.skip(f"the tiny run chose no transformer: {meta['skipped']}")
    epochs = [r.data for r in meta["epochs"].records]
    assert len(epochs) == meta["epochs_run"] and "val_corr_mean" not in _columns(meta["epochs"])
    assert "fixed by cross-validation" in meta["epochs_from"]
    assert len(meta["training_curve"]) < 1000 and _svg_of(meta["training_curve"]) is not None
    assert meta["train_eras"].endswith(")") and any(
        r.data["part"] == "model" for r in meta["settings"].records
    )


def test_cv_folds_shows_each_fold_and_the_test_block(trained):
    meta = trained.metadata["cv_folds"]
    plan = load_plan(HomeLayout(trained.home)).plan
    rows = [r.data for r in meta["folds"].records]
    assert [row["fold"] for row in rows] == [*(str(f.index) for f in plan.folds), "test"]
    for row, fold in zip(rows, plan.folds, strict=False):
        assert row["train_eras"] == len(fold.train_eras) and row["validation_eras"] == len(
            fold.validation_eras
        )
        assert row["train"].startswith(fold.train_eras[0]) and row["gap"] == plan.gap
    assert rows[-1]["validation_eras"] == len(plan.test_eras) and rows[-1]["train"] is None


def test_the_peer_ridge_candidate_predicts_each_fold_and_the_test_block(trained):
    """baseline_peer_ridge: one ridge per fold on the fold's training eras, out-of-fold predictions
    of every validation era and test-block predictions, in files and in the warehouse."""
    import duckdb

    from model_core.candidates import load_era_predictions
    from model_core.knobs import KNOBS_BY_NAME
    from numerai_assets.shared.home import OOF_PEER_RIDGE, TEST_PEER_RIDGE

    meta = trained.metadata["baseline_peer_ridge"]
    layout = HomeLayout(trained.home)
    saved = load_plan(layout)
    validation = sorted(e for f in saved.plan.folds for e in f.validation_eras)
    assert meta["model_version"] == saved.model_version
    assert meta["oof_eras"] == len(validation) and meta["test_eras"] == len(saved.plan.test_eras)
    # The settings it ran with (the knobs' defaults: the tiny definitions leave them as they are).
    defaults = {name: KNOBS_BY_NAME[f"peer_ridge_{name}"].default for name in ("ks", "hop", "lambda")}
    assert (meta["peer_ks"], meta["peer_hop"], meta["ridge_lambda"]) == (
        defaults["ks"],
        defaults["hop"],
        defaults["lambda"],
    )
    assert np.isfinite(meta["corr_mean"]) and np.isfinite(meta["corr_sharpe"])
    folder = layout.model_dir(saved.model_version)
    assert sorted(load_era_predictions(folder / OOF_PEER_RIDGE)) == validation
    assert sorted(load_era_predictions(folder / TEST_PEER_RIDGE)) == sorted(saved.plan.test_eras)
    with duckdb.connect(str(layout.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "SELECT split, count(*), avg(corr) FROM era_scores "
            "WHERE model_version = ? AND model = 'peer_ridge' GROUP BY split",
            [saved.model_version],
        ).fetchall()
    counts = {split: n for split, n, _ in rows}
    assert counts == {"oof": len(validation), "test": len(saved.plan.test_eras)}
    assert {split: mean for split, _, mean in rows}["test"] == pytest.approx(meta["corr_mean"])
