"""The weekly candidate choice, the live refits and the promoted live model, on the tiny tournament."""

import dagster as dg
import duckdb
import pytest

from model_core.era_store import EraStore
from model_core.inference import EnsembleSpec
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import current_model_dir, load_plan
from tests.numerai_assets.test_diagnostics_assets import _scramble_targets
from tests.numerai_assets.tiny import tiny_definitions

CANDIDATES = {"transformer", "lgbm", "peer_ridge", "blend"}
MEMBERS = ("transformer", "lgbm", "peer_ridge")


def _choose(home, instance, **overrides) -> dict:
    defs, resources = tiny_definitions(home, "http://127.0.0.1:9", None, **overrides)
    result = dg.materialize(
        list(defs.assets), resources=resources, instance=instance, selection=["model_choice"]
    )
    [event] = result.asset_materializations_for_node("model_choice")
    table = {r.data["candidate"]: r.data for r in event.metadata["candidates"].value.records}
    return {
        "candidate": event.metadata["candidate"].value,
        "rows": table,
        "weight": event.metadata["blend_weight_transformer"].value,
        "weights": event.metadata["blend_weights"].value,
    }


def _oof(choice: dict) -> dict:
    return {name: (row["oof_corr_mean"], row["oof_corr_sharpe"]) for name, row in choice["rows"].items()}


def _test(choice: dict) -> dict:
    return {name: row["test_corr_mean"] for name, row in choice["rows"].items()}


def test_the_choice_table_has_every_candidate_and_one_chosen(trained):
    meta = trained.metadata["model_choice"]
    rows = {r.data["candidate"]: r.data for r in meta["candidates"].records}
    assert set(rows) == CANDIDATES
    assert [name for name, row in rows.items() if row["chosen"]] == [meta["candidate"]]
    assert 0.0 <= meta["blend_weight_transformer"] <= 1.0
    assert meta["reason"] and meta["metric"] == "corr"
    chosen = rows[meta["candidate"]]["oof_corr_mean"]
    assert chosen == max(row["oof_corr_mean"] for row in rows.values())
    # The table says why and with what weights: the reason on the chosen row only.
    assert {name: row["reason"] for name, row in rows.items()} == {
        name: meta["reason"] if name == meta["candidate"] else "" for name in CANDIDATES
    }
    # Each member's share in each candidate: 1 in itself, its fitted weight in the blend.
    weights = meta["blend_weights"]
    assert list(weights) == list(MEMBERS) and sum(weights.values()) == pytest.approx(1.0)
    assert all(round(w * 20, 6) == round(w * 20) for w in weights.values())  # the 0.05 grid
    assert weights["transformer"] == meta["blend_weight_transformer"]
    for member in MEMBERS:
        shares = {name: row[f"{member}_weight"] for name, row in rows.items()}
        assert shares == {name: float(name == member) for name in MEMBERS} | {
            "blend": round(weights[member], 4)
        }


def test_choice_and_blend_weights_ignore_the_test_eras(trained_home, instance):
    before = _choose(trained_home, instance)
    assert set(before["weights"]) == set(MEMBERS)  # three members: the transformer, LightGBM, peer ridge
    plan = load_plan(HomeLayout(trained_home))
    _scramble_targets(trained_home, plan.plan.test_eras, seed=1)
    after = _choose(trained_home, instance)
    assert after["candidate"] == before["candidate"]
    assert after["weight"] == before["weight"] and after["weights"] == before["weights"]
    assert _oof(after) == _oof(before)
    assert _test(after) != _test(before)  # the test block was read: for the report only

    # The same check can fail: the out-of-fold eras do decide.
    _scramble_targets(trained_home, plan.plan.folds[0].validation_eras, seed=2)
    assert _oof(_choose(trained_home, instance)) != _oof(before)


def test_a_pinned_candidate_is_chosen_whatever_the_figures(trained_home, instance):
    for pinned in ("lgbm", "transformer", "peer_ridge"):
        choice = _choose(trained_home, instance, candidate=pinned)
        assert choice["candidate"] == pinned


def test_a_pinned_candidate_that_was_not_trained_is_a_clear_error(trained_home, instance):
    from numerai_assets.shared.home import OOF_LGBM, OOF_PEER_RIDGE, TEST_LGBM, TEST_PEER_RIDGE

    layout = HomeLayout(trained_home)
    folder = layout.model_dir(load_plan(layout).model_version)
    for name in (OOF_PEER_RIDGE, TEST_PEER_RIDGE):  # a week with NUMERAI_PEER_RIDGE=false
        (folder / name).unlink()
    assert set(_choose(trained_home, instance, peer_ridge=False)["weights"]) == {"transformer", "lgbm"}
    message = _choice_failure(trained_home, instance, peer_ridge=False, candidate="peer_ridge")
    assert "NUMERAI_CANDIDATE=peer_ridge" in message and "NUMERAI_PEER_RIDGE is off" in message
    # Without the LightGBM either, the transformer alone has nothing to blend with.
    for name in (OOF_LGBM, TEST_LGBM):
        (folder / name).unlink()
    assert _choose(trained_home, instance, peer_ridge=False, baseline=False)["weights"] == {
        "transformer": 1.0
    }
    message = _choice_failure(trained_home, instance, peer_ridge=False, baseline=False, candidate="blend")
    assert "NUMERAI_CANDIDATE=blend: only the transformer was trained" in message


def _choice_failure(home, instance, **settings) -> str:
    """The error of a model_choice run that must fail under `settings` (tiny_definitions' keywords)."""
    defs, resources = tiny_definitions(home, "http://127.0.0.1:9", None, **settings)
    result = dg.materialize(
        list(defs.assets),
        resources=resources,
        instance=instance,
        selection=["model_choice"],
        raise_on_error=False,
    )
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.error.to_string()


def test_the_choice_is_in_the_warehouse(trained):
    layout = HomeLayout(trained.home)
    version = load_plan(layout).model_version
    with duckdb.connect(str(layout.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "SELECT candidate, chosen FROM candidates WHERE model_version = ?", [version]
        ).fetchall()
    assert {name for name, _ in rows} == CANDIDATES
    assert [name for name, chosen in rows if chosen] == [trained.metadata["model_choice"]["candidate"]]


def test_refits_train_on_every_resolved_era_and_no_unresolved_one(trained):
    store = EraStore(load_plan(HomeLayout(trained.home)).store_path)
    resolved = store.resolved_eras()
    unresolved = sorted(set(store.eras) - set(resolved))
    assert unresolved, "the tiny tournament has unresolved eras, so this test can fail"
    for name in ("refit_model_0", "refit_lgbm", "refit_peer_ridge"):
        meta = trained.metadata[name]
        if "skipped" in meta:
            continue
        assert meta["train_eras"] == f"{resolved[0]}..{resolved[-1]} ({len(resolved)})", name
        assert resolved[-1] < unresolved[0]


def test_the_live_model_is_the_chosen_candidate_made_of_refits(trained):
    spec = EnsembleSpec.load(current_model_dir(HomeLayout(trained.home)))
    chosen = trained.metadata["model_choice"]["candidate"]
    assert spec.candidate == chosen == trained.metadata["live_model"]["candidate"]
    if chosen == "transformer" or (chosen == "blend" and spec.member_weights()["transformer"] > 0):
        assert spec.live_checkpoints == ["refit_0.pt"]
    used = trained.metadata["model_choice"]["blend_weights"] if chosen == "blend" else {chosen: 1.0}
    assert (spec.lgbm_model == "lgbm_refit.txt") == (used.get("lgbm", 0) > 0)
    assert (spec.peer_ridge_model == "peer_ridge_refit.npz") == (used.get("peer_ridge", 0) > 0)
    assert spec.member_weights() == trained.metadata["model_choice"]["blend_weights"]
    assert trained.metadata["validation_diagnostics"]["live_uses"]


REFITS = {"transformer": "refit_model_0", "lgbm": "refit_lgbm", "peer_ridge": "refit_peer_ridge"}


@pytest.mark.parametrize("pinned", ["lgbm", "transformer", "peer_ridge"])
def test_refits_the_choice_does_not_need_are_skipped(trained_home, instance, pinned):
    defs, resources = tiny_definitions(trained_home, "http://127.0.0.1:9", None, candidate=pinned)
    result = dg.materialize(
        list(defs.assets),
        resources=resources,
        instance=instance,
        selection=["model_choice", *REFITS.values(), "live_model"],
    )
    for member, refit in REFITS.items():
        [event] = result.asset_materializations_for_node(refit)
        assert ("skipped" in event.metadata) == (member != pinned), refit
    [live] = result.asset_materializations_for_node("live_model")
    assert live.metadata["candidate"].value == pinned
    spec = EnsembleSpec.load(current_model_dir(HomeLayout(trained_home)))
    assert (spec.peer_ridge_model is not None) == (pinned == "peer_ridge")
    assert (spec.lgbm_model is not None) == (pinned == "lgbm")


def test_a_blend_that_gives_a_member_no_weight_skips_its_refit(trained_home, instance):
    """The choice recorded a blend of the transformer and the peer ridge, none of the LightGBM:
    refit_lgbm is skipped, and the live model blends the two refits it has."""
    import json

    import numpy as np

    from model_core.candidates import Choice
    from model_core.inference import Ensemble
    from numerai_assets.shared.home import CHOICE_FILE
    from numerai_assets.shared.model_versions import temporal_context

    layout = HomeLayout(trained_home)
    saved = load_plan(layout)
    path = layout.model_dir(saved.model_version) / CHOICE_FILE
    choice = Choice.from_dict(json.loads(path.read_text()))
    weights = {"transformer": 0.5, "lgbm": 0.0, "peer_ridge": 0.5}
    data = choice.to_dict() | {"candidate": "blend", "blend_weights": weights, "blend_weight": 0.5}
    path.write_text(json.dumps(data))
    defs, resources = tiny_definitions(trained_home, "http://127.0.0.1:9", None)
    result = dg.materialize(
        list(defs.assets), resources=resources, instance=instance, selection=[*REFITS.values(), "live_model"]
    )
    skipped = {
        r: result.asset_materializations_for_node(r)[0].metadata.get("skipped") for r in REFITS.values()
    }
    assert skipped["refit_model_0"] is None and skipped["refit_peer_ridge"] is None
    assert "gives the LightGBM no weight" in skipped["refit_lgbm"].value
    folder = current_model_dir(layout)
    spec = EnsembleSpec.load(folder)
    assert spec.lgbm_model is None and spec.peer_ridge_model == "peer_ridge_refit.npz"
    assert spec.blend_weights == weights
    store = EraStore(saved.store_path)
    era = store.eras[-1]
    context = temporal_context(layout, store, spec.temporal_lags)
    predictions = Ensemble(folder).predict(store.era(era).features, context.for_era(era))
    assert predictions.shape == (len(store.era(era).ids),) and 0 < predictions.min() <= predictions.max() <= 1
    assert np.ptp(predictions) > 0
