"""The per-round score configurations the simulated tournament announces (numerapi's
`list_rounds()` -> each round's `roundScoreConfigs`), kept in `sim_state.json`.

Since 2026-03 Numerai pays `corr * corr_multiplier + mmc * mmc_multiplier`, clipped, with the
multipliers set per round in these configs (`isPayout` marks the ones that pay). The stand-in's
defaults deliberately differ from the multipliers the service documents as its fallback
(CORR x0.5 + MMC x2, clip 0.05): a test can then tell "read from the round" from "fell back".
An empty list makes every round answer without score configs.
"""

from __future__ import annotations

import dataclasses

DEFAULT_PAYOUT_FACTOR = "0.125"  # a decimal string, as the API sends it (numerapi parses it)


@dataclasses.dataclass
class ScoreConfig:
    name: str  # the score's identity, e.g. "v2_corr20", "mmc", "bmc"
    display_name: str
    is_payout: bool  # True: the score enters the payout with `default_multiplier`
    default_multiplier: float
    min_multiplier: float
    max_multiplier: float
    clip_threshold: float | None
    total_score_days: int = 20


def default_score_configs() -> list[ScoreConfig]:
    """CORR x0.75 + MMC x2.5, clip 0.1, and BMC shown but not paid."""
    return [
        ScoreConfig("v2_corr20", "CORR20", True, 0.75, 0.0, 2.0, 0.1),
        ScoreConfig("mmc", "MMC", True, 2.5, 0.0, 3.0, 0.1),
        ScoreConfig("bmc", "BMC", False, 0.0, 0.0, 0.0, None),
    ]


def score_configs_from_json(raw: list[dict] | None) -> list[ScoreConfig]:
    """The configs of a state file; a file written before they existed gets the defaults."""
    return default_score_configs() if raw is None else [ScoreConfig(**item) for item in raw]
