"""Glue for baseline_peer_ridge, the peer ridge candidate: out-of-fold and test-block predictions."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from numerai_assets.shared.home import OOF_PEER_RIDGE, TEST_PEER_RIDGE, HomeLayout
from numerai_assets.training.baseline import candidate_inputs, oof_corrs, test_block_scores


@dataclasses.dataclass(frozen=True)
class PeerRidgeFit:
    model_version: str
    summary: dict[str, float]  # test-block figures (model_core.diagnostics.summarise_scores)
    rows: list[dict]  # warehouse era_scores rows: peer_ridge on the test block and out of fold
    oof_eras: int
    test_eras: int
    train_eras: int  # of the ridge that predicted the test block
    train_rows: int
    seconds: float
    path: Path  # the out-of-fold predictions


def fit_peer_ridge_candidate(layout: HomeLayout, config, log: Callable[[str], None]) -> PeerRidgeFit:
    """The peer ridge candidate (config: model_core.peer_ridge.PeerRidgeConfig), made as the
    LightGBM's: out-of-fold predictions from one ridge per fold (for the choice), test-block
    predictions from one fitted on every era before the test gap (for the report)."""
    from model_core.candidates import save_era_predictions
    from model_core.diagnostics import summarise_scores
    from model_core.peer_ridge import blocks, fold_predictions

    started = time.perf_counter()
    inputs = candidate_inputs(layout)
    plan, store, target, eras = inputs.plan, inputs.store, inputs.target, inputs.pre_gap_eras
    log(
        f"peer ridge candidate: {len(plan.plan.folds)} folds + the test block, peers {config.peer_ks}, "
        f"hop {config.peer_hop}, lambda {config.ridge_lambda}, "
        f"{len(store.features) * blocks(config.peer_ks, config.peer_hop):,} columns"
    )
    oof, test = fold_predictions(store, plan.plan, target, config, log)
    folder = layout.model_dir(plan.model_version)
    save_era_predictions(folder / OOF_PEER_RIDGE, oof)
    save_era_predictions(folder / TEST_PEER_RIDGE, test)
    scores = test_block_scores(store, target, test)
    summary = summarise_scores(scores)
    log(f"peer ridge candidate: test CORR {summary['corr_mean']:.4f} (sharpe {summary['corr_sharpe']:.2f})")
    version = plan.model_version
    rows = [{**vars(s), "model_version": version, "model": "peer_ridge", "split": "test"} for s in scores]
    rows += [
        {"model_version": version, "model": "peer_ridge", "era": era, "split": "oof", "corr": corr}
        for era, corr in zip(sorted(oof), oof_corrs(store, target, oof), strict=True)
    ]
    return PeerRidgeFit(
        model_version=version,
        summary=summary,
        rows=rows,
        oof_eras=len(oof),
        test_eras=len(test),
        train_eras=len(eras),
        train_rows=store.row_count(eras),
        seconds=time.perf_counter() - started,
        path=folder / OOF_PEER_RIDGE,
    )
