"""Which partitions a backfill targets: the era and round ranges of `numerai-pipeline backfill`.

`--rounds 1001:1004` is parsed and checked here, before anything is recorded in the Dagster
instance, so a bad range fails with one line naming what is wrong. `--eras` takes the grammar of
the UI's `launch_era_backfill` job (`numerai_assets.shared.era_selection`, re-exported here with
the helper that turns chosen keys back into the contiguous ranges a backfill selector takes). The
partition and asset names are those of the code location (the comments say where each is defined).

Nothing here imports Dagster.
"""

from __future__ import annotations

from numerai_assets.shared.era_selection import ERA_PARTITIONS, parse_range, select_eras
from numerai_assets.shared.era_selection import key_ranges as _key_ranges

__all__ = [
    "ERA_ASSETS",
    "ERA_PARTITIONS",
    "ROUND_ASSETS",
    "ROUND_PARTITIONS",
    "_key_ranges",
    "select_eras",
    "select_rounds",
]
ERA_ASSETS = ("era_predictions", "era_scores")  # numerai_assets.backfill.assets
ROUND_PARTITIONS = "numerai_round"  # numerai_assets.shared.partitions.round_partitions
# A past round's live file and predictions (submission is left out: Numerai takes uploads for
# the open round only, which the round sensor or `numerai-pipeline submit` handles).
ROUND_ASSETS = ("raw_round", "live_predictions")


def select_rounds(spec: str) -> list[str]:
    """Round numbers of `spec` ("1001:1004", inclusive, or one round "1001") as partition keys."""
    _, _, lo, hi = parse_range(spec, "--rounds", "a round number", "1001:1004")
    return [str(n) for n in range(lo, hi + 1)]
