"""How the payout estimate is shown beside the other scores: the multipliers as metadata, one
line saying where they came from, and the per-era table (CORR20, MMC, CWMM, BMC, payout) that
validation_diagnostics and the era backfill both show."""

from __future__ import annotations

from collections.abc import Sequence

from model_core.payout import PayoutSettings

# Per-era columns: header -> EraScores / era_scores attribute. CORR20 is Numerai's name for the
# CORR on `target` (the 20-day target), the `corr` column everywhere else.
ERA_COLUMNS = {"era": "era", "CORR20": "corr", "MMC": "mmc", "CWMM": "cwmm", "BMC": "bmc", "payout": "payout"}


def payout_formula(settings: PayoutSettings) -> str:
    clip = f"{settings.clip:g}"
    return f"clip(CORR20 x {settings.corr_multiplier:g} + MMC x {settings.mmc_multiplier:g}, -{clip}, {clip})"


def payout_note(settings: PayoutSettings) -> str:
    """One line for a reader: the formula, where its multipliers came from, what it is."""
    factor = "" if settings.payout_factor is None else f", payout factor {settings.payout_factor:g}"
    return (
        f"payout = {payout_formula(settings)}, multipliers from {settings.source}{factor}: an estimate "
        "of the payout score on past eras (empty where the meta model does not cover the era)"
    )


def payout_metadata(settings: PayoutSettings) -> dict[str, object]:
    """The multipliers beside a payout figure, as asset metadata (Dagster plots the numbers)."""
    out: dict[str, object] = {
        "payout_formula": payout_formula(settings),
        "payout_corr_multiplier": settings.corr_multiplier,
        "payout_mmc_multiplier": settings.mmc_multiplier,
        "payout_clip": settings.clip,
        "payout_settings_from": settings.source,
    }
    if settings.payout_factor is not None:
        out["payout_factor"] = settings.payout_factor
    return out


def era_rows(scores: Sequence[object]) -> list[list[object]]:
    """One row per era of ERA_COLUMNS, from EraScores or warehouse row dicts."""
    return [
        [score[name] if isinstance(score, dict) else getattr(score, name) for name in ERA_COLUMNS.values()]
        for score in scores
    ]
