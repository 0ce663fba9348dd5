"""Purged expanding-window era folds, and a held-out block of test eras.

Layout over the resolved eras, in order (positions, not labels):

    [ chunk 0 | chunk 1 | ... | chunk n_folds ][ gap ][ test block ]

Fold k trains on chunks 0..k minus the last `gap` eras before its validation chunk, and
validates (early-stops) on chunk k+1. Targets overlap several eras (a 20-day target spans 4),
so a training era right before a validation era shares part of its return window: the gap
purges those. The test block sits `gap` eras after the last validation chunk; no fold trains or
early-stops on it, so it stays an honest estimate for the ensemble.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

from model_core import schema
from model_core.knobs import default

# Purge gap (in eras) for the longest target horizon used: twice the 20-day overlap, and the
# usual 16 for 60-day targets (their 12-era overlap plus a publication margin).
DEFAULT_GAP_BY_HORIZON = {schema.ERAS_PER_HORIZON[20]: 8, schema.ERAS_PER_HORIZON[60]: 16}


@dataclasses.dataclass(frozen=True)
class CVConfig:
    n_folds: int = default("n_folds")
    # None: derived from the targets used (8 for 20-day, 16 if any 60-day)
    gap_eras: int | None = default("purge_gap")
    test_eras: int = default("test_eras")  # held-out block at the end of the resolved eras (about a year)
    min_train_eras: int = default("min_train_eras")  # the first fold must train on at least this many eras
    targets: tuple[str, ...] = (schema.MAIN_TARGET,)

    def __post_init__(self) -> None:
        if self.n_folds < 1:
            raise ValueError(f"CVConfig.n_folds must be >= 1, got {self.n_folds}")
        if self.gap_eras is not None and self.gap_eras < 0:
            raise ValueError(f"CVConfig.gap_eras must be >= 0 or None, got {self.gap_eras}")
        if self.test_eras < 0:
            raise ValueError(f"CVConfig.test_eras must be >= 0, got {self.test_eras}")
        if self.min_train_eras < 1:
            raise ValueError(f"CVConfig.min_train_eras must be >= 1, got {self.min_train_eras}")
        if not self.targets:
            raise ValueError("CVConfig.targets is empty: name at least the main target")

    def resolved_gap(self) -> int:
        """The purge gap in eras: `gap_eras` if set, else derived from the longest target horizon."""
        if self.gap_eras is not None:
            return self.gap_eras
        horizon = max(schema.target_horizon_eras(target) for target in self.targets)
        return DEFAULT_GAP_BY_HORIZON[horizon]


@dataclasses.dataclass(frozen=True)
class Fold:
    index: int
    train_eras: tuple[str, ...]
    validation_eras: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class FoldPlan:
    folds: tuple[Fold, ...]
    test_eras: tuple[str, ...]
    gap: int

    def to_dict(self) -> dict:
        """JSON-able form (lists of era strings), as the cv_folds asset stores it."""
        return {
            "gap": self.gap,
            "test_eras": list(self.test_eras),
            "folds": [
                {
                    "index": fold.index,
                    "train_eras": list(fold.train_eras),
                    "validation_eras": list(fold.validation_eras),
                }
                for fold in self.folds
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> FoldPlan:
        missing = {"gap", "test_eras", "folds"} - set(data)
        if missing:
            raise ValueError(f"fold plan: missing key(s) {sorted(missing)}; it has {sorted(data)}")
        folds = tuple(
            Fold(
                index=int(fold["index"]),
                train_eras=tuple(fold["train_eras"]),
                validation_eras=tuple(fold["validation_eras"]),
            )
            for fold in data["folds"]
        )
        return cls(folds=folds, test_eras=tuple(data["test_eras"]), gap=int(data["gap"]))


def make_folds(eras: Sequence[str], config: CVConfig = CVConfig()) -> FoldPlan:
    """Purged expanding-window folds over `eras` (the resolved eras; sorted here, labels unique)."""
    ordered = _sorted_unique(eras)
    gap = config.resolved_gap()
    # No test block: nothing to keep away from, so no trailing gap either.
    tail = config.test_eras + gap if config.test_eras else 0
    region = len(ordered) - tail
    needed = tail + min_fold_region(config.n_folds, config.min_train_eras, gap)
    if len(ordered) < needed:
        raise ValueError(
            f"too few eras for cross-validation: {len(ordered)} eras given, {needed} needed "
            f"({config.n_folds} folds, first fold >= {config.min_train_eras} training eras, "
            f"gap {gap}, {config.test_eras} test eras)"
        )
    starts = validation_starts(region, config.n_folds, config.min_train_eras + gap)
    ends = [*starts[1:], region]
    folds = tuple(
        Fold(
            index=k,
            train_eras=tuple(ordered[: start - gap]),
            validation_eras=tuple(ordered[start:end]),
        )
        for k, (start, end) in enumerate(zip(starts, ends, strict=True))
    )
    test = tuple(ordered[len(ordered) - config.test_eras :]) if config.test_eras else ()
    return FoldPlan(folds=folds, test_eras=test, gap=gap)


def validation_starts(region: int, n_folds: int, first_chunk_min: int = 0) -> list[int]:
    """Start positions of the n_folds validation chunks in a fold region of `region` eras.

    The region is cut into n_folds + 1 chunks of equal size, the first (training-only) chunk
    taking the remainder, so the validation chunks are equal and end exactly at the region's
    end. When that would leave the first chunk below `first_chunk_min`, the validation chunks
    shrink instead: a short history costs validation eras, never the first fold's training.
    """
    size = min(region // (n_folds + 1), (region - first_chunk_min) // n_folds)
    first = region - n_folds * size
    return [first + k * size for k in range(n_folds)]


def min_fold_region(n_folds: int, min_train_eras: int, gap: int) -> int:
    """The fewest eras the fold region needs: a first chunk of min_train_eras + gap (fold 0
    trains on it minus the gap) and one era per validation chunk."""
    return min_train_eras + gap + n_folds


def _sorted_unique(eras: Sequence[str]) -> list[str]:
    if isinstance(eras, str):
        raise TypeError(f"eras must be a sequence of era labels, not the string {eras!r}")
    ordered = sorted(eras)
    duplicates = sorted({a for a, b in itertools.pairwise(ordered) if a == b})
    if duplicates:
        raise ValueError(f"eras must be unique; repeated: {duplicates[:5]}")
    return ordered


def fit_to_history(
    n_eras: int, config: CVConfig, fixed: frozenset[str] = frozenset()
) -> tuple[CVConfig, list[str]]:
    """`config` shrunk to fit `n_eras` resolved eras, and a note per change.

    The defaults are sized for the real history (~1,100 eras); a younger dataset or a test gets
    a smaller test block (a sixth of the eras), a shorter first fold (a quarter) and, last, fewer
    folds. Knobs named in `fixed` (the ones the user set) never change: when they cannot fit,
    `make_folds` says so.
    """
    gap, notes = config.resolved_gap(), []

    def needed(c: CVConfig) -> int:
        return (c.test_eras + gap if c.test_eras else 0) + min_fold_region(c.n_folds, c.min_train_eras, gap)

    steps = (
        ("test_eras", lambda c: max(1, n_eras // 6)),
        ("min_train_eras", lambda c: max(4, n_eras // 4)),
        ("n_folds", lambda c: c.n_folds - 1 if c.n_folds > 1 else c.n_folds),
    )
    for name, smaller in steps:
        while needed(config) > n_eras and name not in fixed:
            value = min(getattr(config, name), smaller(config))
            if value == getattr(config, name):
                break
            notes.append(f"{name} {getattr(config, name)} -> {value} ({n_eras} resolved eras)")
            config = dataclasses.replace(config, **{name: value})
    return config, notes
