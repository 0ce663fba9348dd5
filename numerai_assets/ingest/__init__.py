"""Stage 1, ingest: download the dataset and each round's live file, clean them into the era store."""

from __future__ import annotations

import dagster as dg

from numerai_assets.ingest.assets import clean_eras, feature_returns, raw_dataset, raw_round
from numerai_assets.shared.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[raw_dataset, raw_round, clean_eras, feature_returns])
