"""Glue for model_choice: the candidates' out-of-fold figures decide, the test block is reported.

Reads what the fold stage left in the model version's folder (the transformer folds', the
LightGBM folds' and the peer ridge folds' out-of-fold predictions, the LightGBM's and the peer
ridge's test-block predictions), fits the blend weights and chooses with model_core.candidates,
scores the test block for the report, and writes `choice.json`. No test era reaches
`fit_blend_weights` or `choose_candidate`. Choosing by payout also reads the meta model of the
out-of-fold eras (the raw dataset's meta_model.parquet).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from model_core.atomic import write_text_atomic
from model_core.era_store import EraStore
from model_core.schema import MAIN_TARGET, META_MODEL_COLUMN, META_MODEL_FILE
from numerai_assets.shared.home import (
    CHOICE_FILE,
    OOF_LGBM,
    OOF_PEER_RIDGE,
    OOF_TRANSFORMER,
    TEST_LGBM,
    TEST_PEER_RIDGE,
    HomeLayout,
)
from numerai_assets.shared.model_versions import load_plan, temporal_context
from numerai_assets.shared.references import load_reference

# The members besides the transformer: their prediction files, and the setting that trains them.
OPTIONAL_MEMBERS = {
    "lgbm": (OOF_LGBM, TEST_LGBM, "the LightGBM candidate", "NUMERAI_BASELINE"),
    "peer_ridge": (OOF_PEER_RIDGE, TEST_PEER_RIDGE, "the peer ridge candidate", "NUMERAI_PEER_RIDGE"),
}


def choose_for_version(
    layout: HomeLayout,
    metric: str,
    pinned: str | None,
    log: Callable[[str], None],
    raw_dir: Path | None = None,
    payout=None,  # model_core.payout.PayoutSettings: needed (with raw_dir) when metric is "payout"
):  # -> model_core.candidates.Choice
    import dataclasses

    from model_core.candidates import (
        TRANSFORMER,
        candidate_predictions,
        choose_candidate,
        era_corrs,
        era_mmcs,
        figures,
        fit_blend_weights,
        load_era_predictions,
    )

    plan = load_plan(layout)
    folder = layout.model_dir(plan.model_version)
    store = EraStore(plan.store_path)
    target = store.target_index(MAIN_TARGET)
    members = {TRANSFORMER: _required(folder / OOF_TRANSFORMER, "ensemble_weights", load_era_predictions)}
    for name, (oof_file, _, _, _) in OPTIONAL_MEMBERS.items():
        if (folder / oof_file).exists():
            members[name] = load_era_predictions(folder / oof_file)
    _check_pinned(pinned, members)
    targets = {era: store.era(era).targets[:, target] for era in members[TRANSFORMER]}
    weights = fit_blend_weights(members, targets) if len(members) > 1 else {TRANSFORMER: 1.0}
    oof = candidate_predictions(members, weights)
    mmcs = None
    if metric == "payout":
        meta_model = _meta_model_of(raw_dir, store, sorted(targets))
        mmcs = {name: era_mmcs(p, targets, meta_model) for name, p in oof.items()}
    choice = choose_candidate(
        {name: era_corrs(p, targets) for name, p in oof.items()}, metric, pinned, weights, mmcs, payout
    )
    shown = ", ".join(f"{name} {w:.2f}" for name, w in weights.items())
    log(f"candidates: {choice.candidate} chosen; {choice.reason}; blend weights {shown}")
    tests = {
        name: _required(folder / OPTIONAL_MEMBERS[name][1], f"baseline_{name}", load_era_predictions)
        for name in members
        if name != TRANSFORMER
    }
    test = _test_block_figures(layout, plan, store, target, tests, weights)
    choice = dataclasses.replace(choice, test={name: figures(c) for name, c in test.items()})
    if len(choice.test) > 1:
        log("test block (report only): " + ", ".join(f"{n} {f['mean']:.4f}" for n, f in choice.test.items()))
    write_text_atomic(folder / CHOICE_FILE, json.dumps(choice.to_dict(), indent=2))
    return choice


def _check_pinned(pinned: str | None, members: dict) -> None:
    """A pinned candidate whose models were not trained this week is a clear error."""
    if pinned in OPTIONAL_MEMBERS and pinned not in members:
        _, _, what, setting = OPTIONAL_MEMBERS[pinned]
        raise ValueError(
            f"NUMERAI_CANDIDATE={pinned}: {what} was not trained ({setting} is off); "
            f"pin another candidate or turn {setting} on"
        )
    if pinned == "blend" and len(members) < 2:
        raise ValueError(
            "NUMERAI_CANDIDATE=blend: only the transformer was trained (NUMERAI_BASELINE and "
            "NUMERAI_PEER_RIDGE are off), there is nothing to blend; pin 'transformer' or turn one on"
        )


def load_choice(layout: HomeLayout, model_version: str):
    from model_core.candidates import Choice

    return Choice.from_dict(
        _required(
            layout.model_dir(model_version) / CHOICE_FILE, "model_choice", lambda p: json.loads(p.read_text())
        )
    )


def _test_block_figures(layout, plan, store, target, tests, weights) -> dict[str, list[float]]:
    """Per-era CORR of each candidate's cross-validated models on the held-out test block
    (tests: member -> its test-block predictions, the transformer's made here)."""
    from model_core.candidates import TRANSFORMER, candidate_predictions, era_corrs
    from model_core.inference import Ensemble

    eras = list(plan.plan.test_eras)
    if not eras:
        return {}
    ensemble = Ensemble(layout.model_dir(plan.model_version), members="folds")
    context = temporal_context(layout, store, ensemble.spec.temporal_lags)
    targets, transformer = {}, {}
    for era in eras:
        data = store.era(era)
        targets[era] = data.targets[:, target]
        transformer[era] = ensemble.predict(data.features, None if context is None else context.for_era(era))
    members = {TRANSFORMER: transformer, **{name: {e: p[e] for e in eras} for name, p in tests.items()}}
    predictions = candidate_predictions(members, weights)
    return {name: era_corrs(p, targets) for name, p in predictions.items()}


def _meta_model_of(raw_dir: Path | None, store: EraStore, eras: list[str]) -> dict:
    """era -> the meta model's values for the era's stocks (store order), for the eras it covers."""
    if raw_dir is None:
        raise ValueError("choosing by payout needs the raw dataset folder (its meta_model.parquet)")
    lookup = load_reference(Path(raw_dir) / META_MODEL_FILE, META_MODEL_COLUMN, eras)
    if lookup is None:
        return {}
    values = {era: lookup.values(store.era(era).ids) for era in eras}
    return {era: v for era, v in values.items() if v is not None}


def _required(path: Path, asset: str, read):
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (materialise {asset} first)")
    return read(path)


def record_choice(layout: HomeLayout, warehouse, choice) -> str:
    """The choice's rows in the warehouse's `candidates` table; returns the model version."""
    version = load_plan(layout).model_version
    nan = float("nan")
    warehouse.upsert_candidates(
        [
            {
                "model_version": version,
                "candidate": name,
                "chosen": name == choice.candidate,
                "metric": choice.metric,
                "reason": choice.reason,
                "blend_weight": choice.blend_weight,
                "oof_corr_mean": oof["mean"],
                "oof_corr_sharpe": oof["sharpe"],
                "oof_eras": oof["eras"],
                "test_corr_mean": choice.test.get(name, {}).get("mean", nan),
                "test_corr_sharpe": choice.test.get(name, {}).get("sharpe", nan),
            }
            for name, oof in choice.oof.items()
        ]
    )
    return version
