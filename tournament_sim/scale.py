"""How big a simulated tournament is: `Scale`, and the named scales of `sim generate --scale`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tournament_sim.world import Dynamics

# v5.3's quantum features are null before this share of the train eras, as new features are null
# in the older eras of the real files.
QUANTUM_START_SHARE = 0.4


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big a simulated tournament is."""

    n_features: int
    n_small: int
    n_medium: int
    n_train_eras: int
    n_validation_eras: int
    n_unresolved_eras: int  # trailing validation eras whose targets are not known yet
    stocks_per_era: tuple[int, int]  # (min, max), drawn uniformly per era
    n_rounds: int  # live rounds, one era each, after the last validation era
    row_group_eras: int  # eras buffered per parquet row group
    validation_stocks_per_era: tuple[int, int] | None = None  # validation and live; None: as train
    n_quantum: int = 8  # v5.3's new features (the feature set `quantum`), beyond the n_features

    def __post_init__(self) -> None:
        checks = {
            "0 < n_small <= n_medium <= n_features": 0 < self.n_small <= self.n_medium <= self.n_features,
            "0 <= n_unresolved_eras < n_validation_eras": 0
            <= self.n_unresolved_eras
            < self.n_validation_eras,
            "stocks per era (min, max) with 10 <= min <= max": all(
                10 <= low <= high for low, high in (self.stocks_per_era, self.validation_stocks_range)
            ),
            "n_train_eras >= 10, n_rounds >= 1, row_group_eras >= 1": self.n_train_eras >= 10
            and self.n_rounds >= 1
            and self.row_group_eras >= 1,
            "n_quantum >= 1": self.n_quantum >= 1,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"{self}: need {'; '.join(failed)}")

    @property
    def validation_stocks_range(self) -> tuple[int, int]:
        return self.validation_stocks_per_era or self.stocks_per_era

    @property
    def last_validation_era(self) -> int:
        return self.n_train_eras + self.n_validation_eras

    @property
    def last_resolved_era(self) -> int:
        return self.last_validation_era - self.n_unresolved_eras

    @property
    def n_eras(self) -> int:
        """Train, validation and live eras together."""
        return self.last_validation_era + self.n_rounds

    @property
    def quantum_from(self) -> int:
        """The first era where the quantum features have values (null before)."""
        return 1 + round(QUANTUM_START_SHARE * self.n_train_eras)

    def stocks_range(self, era: int) -> tuple[int, int]:
        return self.stocks_per_era if era <= self.n_train_eras else self.validation_stocks_range

    @property
    def universe_size(self) -> int:
        """More stocks than any era holds, so eras are different subsets of one persistent universe."""
        most = max(self.stocks_per_era[1], self.validation_stocks_range[1])
        return math.ceil(Dynamics.universe_ratio * most)

    def to_record(self) -> dict[str, Any]:
        """The fields as JSON values, pairs as lists (sim_state.json keeps them to redraw the world)."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Scale:
        return cls(
            **{key: tuple(value) if isinstance(value, list) else value for key, value in record.items()}
        )


SCALES: dict[str, Scale] = {
    # Seconds: for tests.
    "tiny": Scale(40, 10, 20, 60, 20, 4, (80, 120), n_rounds=3, row_group_eras=10, n_quantum=8),
    # A few minutes of a small transformer on 2 CPU cores, for the Dagster demo.
    "demo": Scale(120, 20, 60, 200, 60, 4, (400, 600), n_rounds=4, row_group_eras=20, n_quantum=24),
    # The walk-forward replay benchmark (bench/replay.py): Numerai's era size, a few minutes to
    # generate; 146 resolved validation eras leave ~100 served after the 40 held out.
    "eval": Scale(
        320, 32, 110, 300, 150, 4, (2000, 2400), n_rounds=1, row_group_eras=20, n_quantum=64
    ),
    # The shape of the real v5.2 (train ~2.74M rows, validation ~3.9M) and v5.3's 807 quantum features.
    "full": Scale(
        2748, 42, 780, 574, 624, 4, (4200, 5300), n_rounds=4, row_group_eras=20,
        validation_stocks_per_era=(5600, 6900), n_quantum=807,
    ),
}  # fmt: skip


def resolve_scale(scale: str | Scale) -> Scale:
    if isinstance(scale, Scale):
        return scale
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: choose one of {sorted(SCALES)} or pass a Scale")
    return SCALES[scale]
