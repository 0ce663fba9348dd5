"""Stage 3, ensemble: fold weights, the candidate chosen out of fold, the live refits, the live model."""

from __future__ import annotations

import dagster as dg

from numerai_assets.ensemble.assets import build_ensemble_asset
from numerai_assets.ensemble.live_model_assets import build_live_model_assets
from numerai_assets.shared.executor import fold_step_tags
from numerai_assets.shared.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            build_ensemble_asset(settings.n_folds),
            *build_live_model_assets(
                settings.refit_seeds, settings.baseline, settings.peer_ridge, fold_step_tags(settings)
            ),
        ]
    )
