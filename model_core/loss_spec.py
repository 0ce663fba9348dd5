"""Which training loss: the names, a weighted mix of them, and the parser of `NUMERAI_LOSS`-style
specs. No torch here, so settings can check a spec when they load without importing it."""

from __future__ import annotations

import dataclasses
import math

LOSS_NAMES = ("pearson", "mse", "sharpe")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """A weighted sum of named losses; names from LOSS_NAMES."""

    weights: dict[str, float] = dataclasses.field(default_factory=lambda: {"pearson": 1.0})

    def __post_init__(self) -> None:
        if not self.weights:
            raise ValueError(f"LossConfig: no loss given; choose from {list(LOSS_NAMES)}")
        unknown = sorted(set(self.weights) - set(LOSS_NAMES))
        if unknown:
            raise ValueError(f"LossConfig: unknown loss {unknown}; choose from {list(LOSS_NAMES)}")
        bad = {k: w for k, w in self.weights.items() if not math.isfinite(float(w))}
        if bad:
            raise ValueError(f"LossConfig: weights must be finite numbers, got {bad}")


def parse_loss(spec: str) -> LossConfig:
    """Parses "pearson" | "mse" | "sharpe" | "mix:pearson=0.7,mse=0.3" into a LossConfig."""
    choices = f'{", ".join(LOSS_NAMES)}, or "mix:<name>=<weight>,..." (e.g. "mix:pearson=0.7,mse=0.3")'
    spec = spec.strip()
    if spec in LOSS_NAMES:
        return LossConfig({spec: 1.0})
    if not spec.startswith("mix:"):
        raise ValueError(f"unknown loss {spec!r}; choose from {choices}")
    weights: dict[str, float] = {}
    for part in spec[len("mix:") :].split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not sep or name not in LOSS_NAMES or name in weights or not math.isfinite(weight):
            raise ValueError(f"loss {spec!r}: bad term {part!r}; choose from {choices}, each name once")
        weights[name] = weight
    return LossConfig(weights)
