"""Ensemble weights, validation diagnostics, the baseline and the warehouse, on the tiny tournament."""

import json
import re

import dagster as dg
import duckdb
import numpy as np
import pytest

from model_core.era_store import TARGETS_BIN, EraStore
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import load_plan
from tests.numerai_assets.tiny import TINY_KNOBS, tiny_definitions

MODELS = {"ensemble", "equal_weight", "fold_0", "fold_1", "baseline_lgbm"}


def test_diagnostics_metadata_has_numbers_tables_and_pictures(trained):
    meta = trained.metadata["validation_diagnostics"]
    assert isinstance(meta["corr_mean"], float) and -1 < meta["corr_mean"] < 1
    assert meta["corr_mean"] > 0  # the planted signal is found on held-out eras
    for key in ("corr_sharpe", "max_drawdown", "fnc_mean", "max_feature_exposure", "bmc_mean", "mmc_mean"):
        assert np.isfinite(meta[key]), key
    rows = {record.data["model"]: record.data for record in meta["metrics"].records}
    assert set(rows) == MODELS
    assert rows["ensemble"]["corr_mean"] == pytest.approx(meta["corr_mean"], abs=1e-5)
    assert meta["baseline_lgbm_corr_mean"] == pytest.approx(trained.metadata["baseline_lgbm"]["corr_mean"])
    assert meta["plots"].count("data:image/png;base64,") == 3
    assert "data:image/png;base64," in meta["feature_importance"]
    assert {"intelligence", "wisdom"} <= set(re.findall(r"\| (\w+) \|", meta["feature_importance"]))
    assert meta["attention"].count("data:image/png;base64,") == 2  # cross-stock and temporal


def test_diagnostics_show_tables_and_a_chart_in_place(trained):
    """What the asset page draws without a click: tables, and a chart under 1,000 characters."""
    from tests.numerai_assets.test_training_assets import _svg_of

    meta = trained.metadata["validation_diagnostics"]
    plan = load_plan(HomeLayout(trained.home)).plan
    per_era = [r.data for r in meta["per_era_scores"].records]
    assert [row["era"] for row in per_era] == list(plan.test_eras)
    assert {"CORR20", "MMC", "CWMM", "BMC", "payout", "FNC", "max_exposure"} <= set(per_era[0])
    ensemble = {record.data["model"]: record.data for record in meta["metrics"].records}["ensemble"]
    assert np.mean([row["CORR20"] for row in per_era]) == pytest.approx(ensemble["corr_mean"], abs=1e-4)
    importance = {r.data["group"]: r.data["importance"] for r in meta["importance"].records}
    assert {"intelligence", "wisdom"} <= set(importance)
    reliance = {r.data["model"]: r.data for r in meta["reliance"].records}
    assert reliance["ensemble"]["reliance"] == pytest.approx(meta["attention_reliance"], abs=1e-4)
    assert len(meta["cumulative_corr_chart"]) < 1000
    legend = {t.text for t in _svg_of(meta["cumulative_corr_chart"]).iter() if t.get("fill")}
    assert legend == {"ensemble", "baseline_lgbm"}


def test_attention_reliance_is_reported_for_every_model(trained):
    """Each model scored with the era's other stocks and alone: the table's first column is the
    same CORR the metrics table reports, and reliance is the difference."""
    meta = trained.metadata["validation_diagnostics"]
    metrics = {record.data["model"]: record.data["corr_mean"] for record in meta["metrics"].records}
    cells = re.findall(r"^\| (ensemble|fold_\d) \| (\S+) \| (\S+) \| (\S+) \|$", meta["attention"], re.M)
    table = {name: [float(c) for c in rest] for name, *rest in cells}
    assert set(table) == {"ensemble", "fold_0", "fold_1"}
    for name, (corr, corr_alone, reliance) in table.items():
        assert corr == pytest.approx(metrics[name], abs=1e-4), name
        assert reliance == pytest.approx(corr - corr_alone, abs=2e-4), name
    assert any(abs(reliance) > 1e-4 for _, _, reliance in table.values())  # the peers change the scores
    assert meta["attention_reliance"] == pytest.approx(table["ensemble"][2], abs=1e-4)


def test_html_report_is_self_contained_with_the_plots(trained):
    path = trained.metadata["validation_diagnostics"]["report"]
    with open(path) as f:
        html = f.read()
    assert html.count('<img src="data:image/png;base64,') == 6
    assert "baseline_lgbm" in html and "equal_weight" in html
    assert "http://" not in html and "https://" not in html


def test_warehouse_holds_era_scores_folds_and_the_version(trained):
    layout = HomeLayout(trained.home)
    plan = load_plan(layout)
    version = plan.model_version
    with duckdb.connect(str(layout.warehouse_path), read_only=True) as con:
        counts = dict(
            con.execute(
                "SELECT model, count(*) FROM era_scores WHERE model_version = ? AND split = 'test' GROUP BY model",
                [version],
            ).fetchall()
        )
        # validation_diagnostics' models, and the peer ridge (baseline_peer_ridge scores its test block)
        assert counts == dict.fromkeys({*MODELS, "peer_ridge"}, len(plan.plan.test_eras))
        mean = con.execute(
            "SELECT avg(corr) FROM era_scores WHERE model_version = ? AND model = 'ensemble' AND split = 'test'",
            [version],
        ).fetchone()[0]
        assert mean == pytest.approx(trained.metadata["validation_diagnostics"]["corr_mean"])
        oof = con.execute(
            "SELECT count(*) FROM era_scores WHERE model_version = ? AND model = 'fold_0' AND split = 'oof'",
            [version],
        ).fetchone()[0]
        assert oof == len(plan.plan.folds[0].validation_eras)
        weights, ensemble_corr = con.execute(
            "SELECT weights, ensemble_corr FROM model_versions WHERE model_version = ?", [version]
        ).fetchone()
        assert sum(json.loads(weights).values()) == pytest.approx(1.0)
        assert ensemble_corr == pytest.approx(mean)
        folds = con.execute(
            "SELECT fold, weight FROM fold_metrics WHERE model_version = ?", [version]
        ).fetchall()
        assert sorted(f for f, _ in folds) == [0, 1]


def _weights(home, instance):
    defs, resources = tiny_definitions(home, "http://127.0.0.1:9", None)
    result = dg.materialize(
        list(defs.assets), resources=resources, instance=instance, selection=["ensemble_weights"]
    )
    [event] = result.asset_materializations_for_node("ensemble_weights")
    return np.array([event.metadata[f"weight_fold_{k}"].value for k in range(TINY_KNOBS["n_folds"])])


def _scramble_targets(home, eras, seed):
    """Overwrite the stored targets of `eras` with random values, in place."""
    plan = load_plan(HomeLayout(home))
    store = EraStore(plan.store_path)
    targets = np.memmap(plan.store_path / TARGETS_BIN, dtype=np.float32, mode="r+").reshape(
        -1, len(store.targets)
    )
    rng = np.random.default_rng(seed)
    for row in store.era_table.filter(store.era_table["era"].is_in(list(eras))).iter_rows(named=True):
        start, end = row["row_start"], row["row_end"]
        targets[start:end] = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=(end - start, len(store.targets)))
    targets.flush()


def test_weights_are_a_shrunk_simplex_fitted_without_the_test_eras(trained_home, instance):
    before = _weights(trained_home, instance)
    assert (before >= 0).all() and before.sum() == pytest.approx(1.0)
    assert (before >= 0.5 / len(before) - 1e-9).all()  # shrinkage 0.5 toward equal weights

    plan = load_plan(HomeLayout(trained_home))
    _scramble_targets(trained_home, plan.plan.test_eras, seed=1)
    np.testing.assert_array_equal(_weights(trained_home, instance), before)

    # The same check can fail: scrambling a fold's validation eras does move the weights.
    _scramble_targets(trained_home, plan.plan.folds[0].validation_eras, seed=2)
    assert not np.allclose(_weights(trained_home, instance), before)
