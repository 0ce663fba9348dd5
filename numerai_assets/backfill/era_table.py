"""What era_scores shows in place on its asset page: the backfilled range's per-era table and
its CORR as an inline chart (the PNGs stay in the `plots` markdown, behind its link)."""

from __future__ import annotations

import numpy as np

from model_core.inline_chart import Panel
from numerai_assets.shared.payout_report import ERA_COLUMNS
from numerai_assets.shared.ui_metadata import era_score_table, inline_chart

# Newest eras in the table: about five years of weekly eras, enough to read, not a page of
# thousands of rows on every run's materialisation (every era is in the warehouse's era_scores).
TABLE_ERAS = 260
BACKFILL_COLUMNS = {
    "era": "era",
    "split": "split",
    "in_sample": "in_sample",  # the era was trained on by the model version scoring it
    **{k: v for k, v in ERA_COLUMNS.items() if k != "era"},
    "max_exposure": "max_feature_exposure",
}


def backfill_tables(view, payout_note: str) -> dict:
    """`per_era_scores` (the newest TABLE_ERAS eras of the backfilled range, held-out test eras
    marked by their split), the note on its payout column, and the CORR chart."""
    shown = view.rows[-TABLE_ERAS:]
    out = {
        "per_era_scores": era_score_table(shown, BACKFILL_COLUMNS),
        "per_era_scores_note": f"{len(shown)} of {len(view.rows)} backfilled eras (the newest; all are in "
        f"the warehouse's era_scores). {payout_note}",
    }
    if view.eras:
        corrs = list(view.corrs)  # NaN where unresolved: a gap in the line, 0 in the sum
        panels = [
            Panel("cumulative CORR", {"ensemble": list(np.cumsum(np.nan_to_num(corrs, nan=0.0)))}),
            Panel("CORR per era", {"ensemble": corrs}),
        ]
        out["corr_chart"] = inline_chart(
            "backfilled CORR", panels, f"eras {view.eras[0]}..{view.eras[-1]} ({len(view.eras)})"
        )
    return out
