"""Glue for live_model: the version's ensemble.json gets what predicts live, then it is promoted.

ensemble_weights wrote the fold ensemble (and promoted it, so a week whose refits fail still has
a current model made this week). Here the spec is completed with the chosen candidate and its
refit models, and promoted again: one atomic symlink swap, so a live run sees one or the other.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from numerai_assets.ensemble.choice import load_choice
from numerai_assets.ensemble.refit import REFIT_LGBM, REFIT_PEER_RIDGE, refit_checkpoint_name
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import load_plan, promote


def complete_live_model(layout: HomeLayout, refit_seeds: int):  # -> model_core.inference.EnsembleSpec
    from model_core.candidates import LGBM, PEER_RIDGE, TRANSFORMER
    from model_core.inference import EnsembleSpec

    saved = load_plan(layout)
    folder = layout.model_dir(saved.model_version)
    choice = load_choice(layout, saved.model_version)
    used = choice.members_used()
    checkpoints: list[str] = []
    if TRANSFORMER in used:
        checkpoints = [refit_checkpoint_name(k) for k in range(refit_seeds)]
        _all_present(folder, checkpoints, "refit_model_k")
    lgbm = peer_ridge = None
    if LGBM in used:
        _all_present(folder, [REFIT_LGBM], "refit_lgbm")
        lgbm = REFIT_LGBM
    if PEER_RIDGE in used:
        _all_present(folder, [REFIT_PEER_RIDGE], "refit_peer_ridge")
        peer_ridge = REFIT_PEER_RIDGE
    spec = dataclasses.replace(
        EnsembleSpec.load(folder),
        candidate=choice.candidate,
        live_checkpoints=checkpoints,
        lgbm_model=lgbm,
        peer_ridge_model=peer_ridge,
        blend_weight=choice.blend_weight,
        blend_weights=dict(choice.blend_weights),
        choice=choice.to_dict(),
    )
    spec.save(folder)
    promote(layout, saved.model_version)
    return spec


def _all_present(folder: Path, names: list[str], asset: str) -> None:
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise FileNotFoundError(f"{folder}: {missing} missing (materialise {asset} first)")
