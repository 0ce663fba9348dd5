"""The models that predict live: refit on every resolved era, for the epochs the folds chose.

The fold models never see the newest eras (the last validation chunk, the gaps and the test
block: about two years at the real scale), and in a market whose feature-target relations drift
and flip those are the eras that matter most. So once the folds have chosen the settings and
the epoch count, the live models are trained again on every era whose target is resolved, with
several seeds. Unresolved eras (the live era's own recent past, whose targets are not known
yet) are never among them: a model cannot train on a target that does not exist at prediction
time, and the store marks exactly those eras unresolved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class RefitPlan:
    eras: tuple[str, ...]  # every resolved era, in order
    epochs: int  # the folds' choice
    seeds: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"eras": list(self.eras), "epochs": self.epochs, "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, data: dict) -> RefitPlan:
        return cls(eras=tuple(data["eras"]), epochs=int(data["epochs"]), seeds=tuple(data["seeds"]))


def refit_epochs(best_epochs: Sequence[int]) -> int:
    """The folds' median best epoch (rounded up): their early stopping is the only honest
    evidence of how long to train, and the median ignores one fold that stopped oddly."""
    epochs = [int(e) for e in best_epochs if int(e) >= 1]
    if not epochs:
        raise ValueError(f"no fold has a best epoch >= 1 (got {list(best_epochs)}): train the folds first")
    return int(np.ceil(np.median(epochs)))


def make_refit_plan(
    resolved_eras: Sequence[str], best_epochs: Sequence[int], n_seeds: int, seed: int
) -> RefitPlan:
    """Refit on `resolved_eras` (the store's eras with a known target) with seeds seed..seed+n-1."""
    if n_seeds < 1:
        raise ValueError(f"refit seeds must be >= 1, got {n_seeds}")
    eras = tuple(sorted(resolved_eras))
    if not eras:
        raise ValueError("no resolved era to refit on")
    return RefitPlan(eras=eras, epochs=refit_epochs(best_epochs), seeds=tuple(range(seed, seed + n_seeds)))
