"""Payout-aligned scores in real Dagster runs on the tiny tournament, against the stand-in:
validation_diagnostics, the era backfill, and the weekly choice by payout.

The stand-in announces CORR x0.75 + MMC x2.5, clip 0.1, payout factor 0.125 for every round;
the tiny tournament's round 1000 is open. Its meta model covers eras 0061..0076 only: none of the
out-of-fold eras (0021..0060), so the choice by payout falls back to CORR unless a test gives the
out-of-fold eras meta model values.
"""

import logging
import math

import dagster as dg
import numpy as np
import polars as pl
import pytest

from model_core import schema
from model_core.candidates import PAYOUT_MIN_ERAS
from model_core.era_store import EraStore
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import current_version, load_plan
from numerai_assets.shared.warehouse import Warehouse
from tests.numerai_assets.test_diagnostics_assets import _scramble_targets
from tests.numerai_assets.tiny import tiny_definitions

ROUND = {
    "payout_corr_multiplier": 0.75,
    "payout_mmc_multiplier": 2.5,
    "payout_clip": 0.1,
    "payout_factor": 0.125,
    "payout_settings_from": "round 1000",
}
PER_ERA_COLUMNS = ["era", "CORR20", "MMC", "CWMM", "BMC", "payout"]
NO_API = "http://127.0.0.1:9"


def _payout(corr: float, mmc: float, meta: dict) -> float:
    corr_part = corr * meta["payout_corr_multiplier"]
    return float(
        np.clip(corr_part + mmc * meta["payout_mmc_multiplier"], -meta["payout_clip"], meta["payout_clip"])
    )


def _plain(event) -> dict:
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def test_diagnostics_show_the_rounds_multipliers_beside_the_payout(trained):
    meta = trained.metadata["validation_diagnostics"]
    assert {key: meta[key] for key in ROUND} == ROUND
    assert meta["payout_formula"] == "clip(CORR20 x 0.75 + MMC x 2.5, -0.1, 0.1)"
    for key in ("cwmm_mean", "payout_mean", "payout_sharpe"):
        assert math.isfinite(meta[key]), key
    rows = {record.data["model"]: record.data for record in meta["metrics"].records}
    assert rows["ensemble"]["payout"] == pytest.approx(meta["payout_mean"], abs=1e-5)
    assert rows["ensemble"]["cwmm"] == pytest.approx(meta["cwmm_mean"], abs=1e-5)
    assert "multipliers from round 1000" in meta["metrics_md"]
    assert [c.name for c in meta["per_era_scores"].schema.columns][:6] == PER_ERA_COLUMNS
    assert len(meta["per_era_scores"].records) == 8  # the 8 held-out test eras
    assert "multipliers from round 1000" in meta["payout_note"]
    with open(meta["report"]) as report:
        assert (
            "payout = clip(CORR20 x 0.75 + MMC x 2.5, -0.1, 0.1), multipliers from round 1000"
            in report.read()
        )


def test_the_warehouse_keeps_cwmm_and_the_payout_of_each_test_era(trained):
    layout = HomeLayout(trained.home)
    rows = Warehouse(path=str(layout.warehouse_path)).query(
        # The models validation_diagnostics scores with the meta model; baseline_peer_ridge's own
        # test rows carry CORR and the rest, without a meta model to compare with.
        "SELECT model, corr, mmc, cwmm, payout FROM era_scores "
        "WHERE model_version = ? AND split = 'test' AND model != 'peer_ridge'",
        [current_version(layout)],
    )
    assert rows.height == 5 * 8 and rows["cwmm"].is_not_null().all()
    meta = trained.metadata["validation_diagnostics"]
    for row in rows.iter_rows(named=True):
        assert row["payout"] == pytest.approx(_payout(row["corr"], row["mmc"], meta), abs=1e-12)
    ensemble = rows.filter(pl.col("model") == "ensemble")
    assert ensemble["payout"].mean() == pytest.approx(meta["payout_mean"])


def _backfill_era(home, url, state, instance, era):
    defs, resources = tiny_definitions(home, url, state)
    instance.add_dynamic_partitions("numerai_era", [era])
    result = dg.materialize(
        list(defs.assets),
        resources=resources,
        instance=instance,
        selection=["era_predictions", "era_scores"],
        partition_key=era,
    )
    [event] = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["era_scores"]
    ]
    return result, _plain(event)


def test_backfilled_era_scores_carry_the_new_scores_and_the_multipliers(
    trained_home, server, tournament_state, instance
):
    _, meta = _backfill_era(trained_home, server.url, tournament_state, instance, "0062")
    assert {key: meta[key] for key in ROUND} == ROUND
    for key in ("corr", "mmc", "cwmm", "bmc", "payout"):
        assert math.isfinite(meta[key]), key
    assert meta["payout"] == pytest.approx(_payout(meta["corr"], meta["mmc"], meta), abs=1e-12)
    rows = {r.data["era"]: r.data for r in meta["per_era_scores"].records}
    assert (
        rows["0062"]["payout"] == pytest.approx(meta["payout"], abs=1e-5)
        and rows["0062"]["split"] == "backfill"
    )
    assert "multipliers from round 1000" in meta["per_era_scores_note"]
    assert "CWMM" in meta["summary"] and "payout mean" in meta["summary"]
    layout = HomeLayout(trained_home)
    [row] = (
        Warehouse(path=str(layout.warehouse_path))
        .query("SELECT cwmm, payout FROM era_scores WHERE era = '0062' AND split = 'backfill'")
        .rows()
    )
    assert row == pytest.approx((meta["cwmm"], meta["payout"]))


def test_without_the_api_the_backfill_uses_the_defaults_with_one_warning(trained_home, instance):
    result, meta = _backfill_era(trained_home, NO_API, None, instance, "0063")
    assert meta["payout_settings_from"] == "documented defaults"
    assert (meta["payout_corr_multiplier"], meta["payout_mmc_multiplier"], meta["payout_clip"]) == (
        0.5,
        2.0,
        0.05,
    )
    assert "payout_factor" not in meta
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING and "payout" in entry.user_message
    ]
    assert len(warnings) == 1 and warnings[0].endswith(
        "payout estimated with the documented defaults CORR x0.5 + MMC x2, clip 0.05"
    )


def _choose(home, url, state, instance) -> dict:
    defs, resources = tiny_definitions(home, url, state, selection_metric="payout")
    result = dg.materialize(
        list(defs.assets), resources=resources, instance=instance, selection=["model_choice"]
    )
    [event] = result.asset_materializations_for_node("model_choice")
    meta = _plain(event)
    meta["rows"] = {r.data["candidate"]: r.data for r in meta["candidates"].records}
    return meta


def _give_the_oof_eras_a_meta_model(home) -> list[str]:
    """Meta model values (random, seeded) for every out-of-fold era, beside the file's own eras."""
    layout = HomeLayout(home)
    plan = load_plan(layout)
    store = EraStore(plan.store_path)
    eras = sorted({era for fold in plan.plan.folds for era in fold.validation_eras})
    rng = np.random.default_rng(3)
    [path] = {p.resolve() for p in (layout.root / "raw").glob(f"*/{schema.META_MODEL_FILE}")}
    existing = pl.read_parquet(path).select(schema.ID, schema.ERA, schema.META_MODEL_COLUMN)
    added = [
        pl.DataFrame(
            {
                schema.ID: store.era(era).ids,
                schema.ERA: era,
                schema.META_MODEL_COLUMN: rng.random(len(store.era(era).ids)),
            }
        ).cast(existing.schema)
        for era in eras
    ]
    pl.concat([existing, *added]).write_parquet(path)
    return eras


def test_choice_by_payout_falls_back_to_corr_without_meta_model_eras(
    trained_home, server, tournament_state, instance
):
    meta = _choose(trained_home, server.url, tournament_state, instance)
    assert meta["metric"] == "corr"
    assert meta["reason"].startswith(
        f"chosen by CORR, not payout: only 0 out-of-fold eras have meta model values (payout needs {PAYOUT_MIN_ERAS})"
    )
    assert {key: meta[key] for key in ROUND} == ROUND
    best_corr = max(meta["rows"], key=lambda name: meta["rows"][name]["oof_corr_mean"])
    assert meta["candidate"] == best_corr


def test_choice_by_payout_over_the_meta_model_eras_ignores_the_test_block(
    trained_home, server, tournament_state, instance
):
    eras = _give_the_oof_eras_a_meta_model(trained_home)
    assert len(eras) >= PAYOUT_MIN_ERAS
    before = _choose(trained_home, server.url, tournament_state, instance)
    assert before["metric"] == "payout"
    assert "best out-of-fold payout (CORR x0.75 + MMC x2.5, clip 0.1, round 1000)" in before["reason"]
    rows = before["rows"]
    assert {row["oof_payout_eras"] for row in rows.values()} == {len(eras)}
    assert before["candidate"] == max(rows, key=lambda name: rows[name]["oof_payout_mean"])

    _scramble_targets(trained_home, load_plan(HomeLayout(trained_home)).plan.test_eras, seed=1)
    after = _choose(trained_home, server.url, tournament_state, instance)
    assert after["candidate"] == before["candidate"] and after["reason"] == before["reason"]
    assert {n: r["oof_payout_mean"] for n, r in after["rows"].items()} == {
        n: r["oof_payout_mean"] for n, r in rows.items()
    }
