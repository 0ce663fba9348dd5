"""Era batches for training and inference, read from the era store a few eras at a time.

A batch is E eras padded to the largest of them: features stay int8 (MISSING in padded rows),
a boolean mask marks the real stocks, targets are float32 with NaN for padding and nulls. Only
the batch's own eras are read from the store, so memory is bounded by eras_per_batch
eras whatever the size of the store; the set never exists as float32.

The temporal context of an era is the feature returns of past eras whose targets were already
known when that era was predicted. The rule (`known_eras`) is the same in training, validation,
backfill and live, so the temporal encoder never sees an unresolved or not-yet-known era.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np
import polars as pl
import torch

from model_core import schema
from model_core.era_store import EraStore

PUBLICATION_LAG_ERAS = 1  # a target is published the era after its window closes


@dataclasses.dataclass
class EraBatch:
    eras: list[str]
    features: torch.Tensor  # (E, N, F) int8, padded rows filled with MISSING
    mask: torch.Tensor  # (E, N) bool, True = real stock
    targets: torch.Tensor  # (E, N, T) float32, NaN for padding / null
    context: torch.Tensor | None  # (E, K, F) float32, lag 1 first; NaN rows = not known; None if K == 0

    def to(self, device: torch.device | str) -> EraBatch:
        return EraBatch(
            eras=list(self.eras),
            features=self.features.to(device),
            mask=self.mask.to(device),
            targets=self.targets.to(device),
            context=None if self.context is None else self.context.to(device),
        )

    @property
    def rows(self) -> int:
        """Real (unpadded) stocks in the batch."""
        return int(self.mask.sum())


def known_eras(position: int, horizon_eras: int, lags: int) -> list[int]:
    """Positions of the eras whose targets are known when predicting the era at `position`.

    The target of the era at q spans horizon_eras eras and is published one era later, so it is
    known at p only if q + horizon_eras + 1 <= p. Lag 1 (the most recent known era) comes first;
    positions before the start of history are left out, so the list can be shorter than `lags`.
    """
    if horizon_eras < 0 or lags < 0:
        raise ValueError(f"horizon_eras and lags must be >= 0, got {horizon_eras} and {lags}")
    latest = position - horizon_eras - PUBLICATION_LAG_ERAS
    return [q for q in range(latest, latest - lags, -1) if q >= 0]


class TemporalContext:
    """Feature returns of past RESOLVED eras, for an era being predicted.

    feature_returns: column `era` + one float32 column per feature (resolved eras only).
    all_eras: every era of the store in order, unresolved ones included (`EraStore.eras`); it
    gives positions. Without it, positions are those of the feature returns' own eras, which is
    right only when no unresolved era lies between them.
    """

    def __init__(
        self,
        feature_returns: pl.DataFrame,
        lags: int,
        horizon_eras: int = schema.ERAS_PER_HORIZON[20],
        all_eras: Sequence[str] | None = None,
    ):
        if schema.ERA not in feature_returns.columns:
            raise KeyError(
                f"feature returns have no {schema.ERA!r} column; columns: {feature_returns.columns[:5]}"
            )
        if lags < 0 or horizon_eras < 0:
            raise ValueError(f"lags and horizon_eras must be >= 0, got {lags} and {horizon_eras}")
        self.lags, self.horizon_eras = lags, horizon_eras
        self.features = [c for c in feature_returns.columns if c != schema.ERA]
        returned = feature_returns[schema.ERA].to_list()
        self._rows = {era: i for i, era in enumerate(returned)}
        if len(self._rows) != len(returned):
            raise ValueError("feature returns: an era appears more than once")
        self._returns = feature_returns.select(self.features).to_numpy().astype(np.float32)  # (R, F)
        self._ordered = sorted(returned if all_eras is None else all_eras)
        self._positions = {era: p for p, era in enumerate(self._ordered)}
        unknown = [era for era in returned if era not in self._positions]
        if unknown:
            raise ValueError(f"feature returns have eras missing from all_eras: {unknown[:5]}")

    def position(self, era: str) -> int:
        if era not in self._positions:
            raise KeyError(
                f"era {era!r} is not among the known eras ({len(self._ordered)}, last "
                f"{self._ordered[-1] if self._ordered else None!r}); pass its position explicitly "
                "(live: last known position + 1)"
            )
        return self._positions[era]

    @property
    def next_position(self) -> int:
        """The position of the era after the last known one (the live era)."""
        return len(self._ordered)

    def for_era(self, era: str, position: int | None = None) -> np.ndarray:
        """(K, F) float32 feature returns, lag 1 first; NaN rows where history is too short or
        the era at that lag has no feature returns (unresolved)."""
        if position is None:
            position = self.position(era)
        elif era in self._positions and self._positions[era] != position:
            raise ValueError(f"era {era!r} is at position {self._positions[era]}, not {position}")
        out = np.full((self.lags, len(self.features)), np.nan, dtype=np.float32)  # (K, F)
        for lag, q in enumerate(known_eras(position, self.horizon_eras, self.lags)):
            row = self._rows.get(self._ordered[q]) if q < len(self._ordered) else None
            if row is not None:
                out[lag] = self._returns[row]
        return out


class EraBatches:
    """Iterable of EraBatch over a list of eras of an EraStore.

    Each iteration is one epoch. With shuffle, the era order is a permutation seeded by
    (seed, epoch); the epoch counter advances after every iteration (or is set by set_epoch),
    so epochs differ from each other yet the whole run is reproducible. max_stocks draws a
    random subset of each larger era (seeded by seed, epoch and the era), bounding memory and
    time on huge eras.
    """

    def __init__(
        self,
        store: EraStore,
        eras: Sequence[str],
        *,
        eras_per_batch: int = 4,
        targets: Sequence[str] = (schema.MAIN_TARGET,),
        context: TemporalContext | None = None,
        shuffle: bool = False,
        seed: int = 0,
        max_stocks: int | None = None,
    ):
        if eras_per_batch < 1:
            raise ValueError(f"eras_per_batch must be >= 1, got {eras_per_batch}")
        if max_stocks is not None and max_stocks < 1:
            raise ValueError(f"max_stocks must be >= 1 or None, got {max_stocks}")
        if not targets:
            raise ValueError("targets is empty: name at least one target column")
        sizes = _era_sizes(store)
        unknown = [era for era in eras if era not in sizes]
        if unknown:
            raise KeyError(f"eras not in the store {store.path}: {unknown[:5]}")
        if context is not None and context.features != store.features:
            raise ValueError(
                f"temporal context has {len(context.features)} features that do not match the "
                f"store's {len(store.features)} (same names in the same order are required)"
            )
        self.store, self.eras = store, list(eras)
        self.eras_per_batch, self.shuffle, self.seed, self.max_stocks = (
            eras_per_batch,
            shuffle,
            seed,
            max_stocks,
        )
        self.targets = list(targets)
        self._target_columns = [store.target_index(t) for t in self.targets]  # KeyError names the target
        self.context = context
        self.epoch = 0
        self.rows = sum(_capped(sizes[era], max_stocks) for era in self.eras)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.eras) // self.eras_per_batch)

    def __iter__(self) -> Iterator[EraBatch]:
        epoch = self.epoch
        self.epoch += 1
        order = self._order(epoch)
        for start in range(0, len(order), self.eras_per_batch):
            yield self._batch(order[start : start + self.eras_per_batch], epoch)

    def _order(self, epoch: int) -> list[int]:
        """Indices into self.eras for one epoch."""
        if not self.shuffle:
            return list(range(len(self.eras)))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.eras)).tolist()

    def _batch(self, indices: list[int], epoch: int) -> EraBatch:
        parts = [self._read(i, epoch) for i in indices]
        eras = [self.eras[i] for i in indices]
        contexts = None
        if self.context is not None and self.context.lags > 0:
            contexts = np.stack([self.context.for_era(era) for era in eras])  # (E, K, F)
        return _pad(eras, parts, len(self.store.features), len(self.targets), contexts)

    def _read(self, index: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """One era's (features (n, F) int8, targets (n, T) float32), as read from the store."""
        data = self.store.era(self.eras[index])
        features, targets = data.features, data.targets
        n = features.shape[0]
        if self.max_stocks is not None and n > self.max_stocks:
            rng = np.random.default_rng([self.seed, epoch, index])
            # Sorted: keeps storage order within the era.
            rows = np.sort(rng.choice(n, size=self.max_stocks, replace=False))
            features, targets = features[rows], targets[rows]
        return features, targets[:, self._target_columns]


def live_batch(
    features: np.ndarray, context: np.ndarray | None, era: str = schema.DATA_TYPE_LIVE
) -> EraBatch:
    """A single era (live, or one backfilled era) with no targets: targets are NaN, T = 1.

    features: (N, F) int8 with MISSING; context: (K, F) float32 from TemporalContext.for_era,
    or None.
    """
    if features.ndim != 2 or features.dtype != np.int8:
        raise ValueError(f"live features must be a 2-D int8 array, got {features.ndim}-D {features.dtype}")
    if context is not None and (context.ndim != 2 or context.shape[1] != features.shape[1]):
        raise ValueError(
            f"context must be (K, {features.shape[1]}) to match the features, got {tuple(context.shape)}"
        )
    n = features.shape[0]
    targets = np.full((n, 1), np.nan, dtype=np.float32)
    contexts = None if context is None or context.shape[0] == 0 else context[None].astype(np.float32)
    return _pad([era], [(features, targets)], features.shape[1], 1, contexts)


def _pad(
    eras: list[str],
    parts: list[tuple[np.ndarray, np.ndarray]],
    n_features: int,
    n_targets: int,
    contexts: np.ndarray | None,
) -> EraBatch:
    """Copy E eras into padded arrays: the only copy of the data a batch makes."""
    width = max((f.shape[0] for f, _ in parts), default=0)
    features = np.full((len(parts), width, n_features), schema.MISSING, dtype=np.int8)  # (E, N, F)
    targets = np.full((len(parts), width, n_targets), np.nan, dtype=np.float32)  # (E, N, T)
    mask = np.zeros((len(parts), width), dtype=bool)  # (E, N)
    for i, (era_features, era_targets) in enumerate(parts):
        n = era_features.shape[0]
        features[i, :n] = era_features
        targets[i, :n] = era_targets
        mask[i, :n] = True
    return EraBatch(
        eras=eras,
        features=torch.from_numpy(features),
        mask=torch.from_numpy(mask),
        targets=torch.from_numpy(targets),
        context=None
        if contexts is None
        else torch.from_numpy(np.ascontiguousarray(contexts, dtype=np.float32)),
    )


def _era_sizes(store: EraStore) -> dict[str, int]:
    """Rows per era from the era table: no era is read to count them."""
    table = store.era_table.select(schema.ERA, (pl.col("row_end") - pl.col("row_start")).alias("rows"))
    return dict(zip(table[schema.ERA].to_list(), table["rows"].to_list(), strict=True))


def _capped(rows: int, max_stocks: int | None) -> int:
    return rows if max_stocks is None else min(rows, max_stocks)
