"""The eras of one simulated tournament, for one dataset version: `Simulation`.

It assembles eras from the latent world (`world.py`): features, targets, ids, the oracle's
expected return, the benchmark and meta model scores. `generate.py` writes them.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterator

import numpy as np

from model_core import schema
from tournament_sim.benchmarks import benchmark_scores, draw_benchmark_weights
from tournament_sim.quantum import QuantumFeatures
from tournament_sim.scale import Scale
from tournament_sim.versions import QUANTUM_SET, VERSIONS, resolve_version
from tournament_sim.world import (
    TARGET_LATE_START_SHARE,
    TARGET_RANDOM_NULL_RATE,
    TARGETS,
    Dynamics,
    TargetSpec,
    Week,
    World,
    draw_feature_model,
    era_features,
    scattered_nulls,
    standardise,
    target_values,
    uniform_scores,
)

DATA_TYPE_UNRESOLVED = "test"  # validation eras whose targets are not known yet
LOOKAHEAD_WEEKS = max(schema.ERAS_PER_HORIZON.values())  # the longest target needs 12 weeks of future
ORACLE_WEEKS = schema.ERAS_PER_HORIZON[20]  # the oracle predicts `target`, the 20-day return
META_MODEL_NOISE = 1.5  # sd of the noise added to the standardised oracle for the meta model
# The version whose features every version has; its benchmarks are drawn from the main streams.
BASE_VERSION = VERSIONS["v5.2"]


@dataclasses.dataclass(frozen=True)
class EraBlock:
    """Everything the files of one version hold about one era, plus the latent stock of each row
    (never written: it would let a model follow stocks across eras; tests use it to check the
    target overlap)."""

    number: int
    data_type: str
    stock: np.ndarray  # (n,) universe index of each row
    ids: list[str]
    features: np.ndarray  # (F, n) int8: one row per feature, a contiguous column for arrow
    null_cells: tuple[np.ndarray, np.ndarray]  # (feature index, row index) of the null feature values
    missing_features: np.ndarray | None  # (F,) bool: features null in the whole era; None: none
    targets: np.ndarray  # (T, n) float32 in the order of TARGETS, NaN = null
    oracle: np.ndarray  # (n,) float32: expected 20-day return
    benchmarks: np.ndarray  # (B, n) float32 in (0, 1): the version's benchmark models, in order
    meta_model: np.ndarray | None  # (n,) float32 in (0, 1); resolved validation eras only


class Simulation:
    """The eras of one simulated tournament, deterministic per (scale, seed); the dataset version
    only adds to them (v5.3: the quantum features and its own benchmarks)."""

    def __init__(
        self, scale: Scale, seed: int, dynamics: Dynamics | None = None, data_version: str = BASE_VERSION.name
    ) -> None:
        self.scale = scale
        self.version = resolve_version(data_version)
        self.dynamics = dynamics or Dynamics()
        # Independent streams, so that e.g. the feature noise never shifts the world's draws. The
        # sixth is the quantum features': spawn(6)[:5] equals spawn(5), so it moved no v5.2 draw.
        streams = np.random.SeedSequence(seed).spawn(6)
        world, model, self._feature_rng, self._target_rng, self._score_rng = (
            np.random.default_rng(s) for s in streams[:5]
        )
        self.world = World(scale.universe_size, self.dynamics, world)
        self.features = draw_feature_model(
            scale.n_features, scale.n_eras, self.dynamics, schema.FEATURE_GROUPS, model
        )
        order = model.permutation(scale.n_features)
        self.small = sorted(order[: scale.n_small])
        self.medium = sorted(order[: scale.n_medium])  # small is a subset of medium
        self.target_starts = {
            spec.name: 1 + round(model.uniform(*TARGET_LATE_START_SHARE) * scale.n_train_eras)
            if spec.late_start
            else 1
            for spec in TARGETS
        }
        self.benchmark_weights = draw_benchmark_weights(
            self.features.latent_loadings,
            self.features.noise_sd,
            self.world,
            len(BASE_VERSION.benchmark_models),
            model,
        )
        self._id_key = int(model.integers(0, 2**60))
        self._rows = 0
        self.quantum = (
            QuantumFeatures(scale, self.world, self.features, len(self.version.benchmark_models), streams[5])
            if self.version.quantum
            else None
        )

    def feature_sets(self) -> dict[str, list[str]]:
        names = self.features.names
        quantum = list(self.quantum.names) if self.quantum else []
        sets = {
            "small": [names[i] for i in self.small],
            "medium": [names[i] for i in self.medium],
            "all": [*names, *quantum],
            **{group: list(members) for group, members in self.features.groups.items()},
        }
        return {**sets, QUANTUM_SET: quantum} if self.quantum else sets

    def eras(self) -> Iterator[EraBlock]:
        """Train, validation, then live eras, in order (once: the world moves on as it yields).
        It runs 12 weeks ahead of the era it yields, since targets need future returns; only those
        13 weeks are kept in memory."""
        if self.world.week:
            raise RuntimeError("Simulation.eras() runs once; make a new Simulation to start over")
        weeks: collections.deque[Week] = collections.deque(maxlen=LOOKAHEAD_WEEKS + 1)
        for number in range(1, self.scale.n_eras + LOOKAHEAD_WEEKS + 1):
            low, high = self.scale.stocks_range(number)
            weeks.append(self.world.step(int(self.world.rng.integers(low, high + 1))))
            if len(weeks) == weeks.maxlen:
                now, *ahead = weeks
                yield self._era(now, ahead)

    def data_type(self, era: int) -> str:
        if era <= self.scale.n_train_eras:
            return schema.DATA_TYPE_TRAIN
        if era <= self.scale.last_resolved_era:
            return schema.DATA_TYPE_VALIDATION
        return DATA_TYPE_UNRESOLVED if era <= self.scale.last_validation_era else schema.DATA_TYPE_LIVE

    def _era(self, now: Week, ahead: list[Week]) -> EraBlock:
        stocks, era = now.present, now.number
        sector, latent = self.world.sector[stocks], now.latent[stocks]
        data_type = self.data_type(era)
        features = era_features(self.features, latent, sector, era, self._feature_rng)
        null_cells = self._null_cells(len(stocks), data_type)
        missing = None
        # v5.2's benchmarks are drawn for every version: the meta model's noise comes after them
        # from the same stream, and must not depend on the version.
        benchmarks = benchmark_scores(self.benchmark_weights, features, self._score_rng)
        if self.quantum is not None:
            part = self.quantum.era(latent, sector, era, data_type)
            older = len(features)
            features = np.concatenate([features, part.features])
            quantum_features, quantum_rows = part.null_cells
            null_cells = (
                np.concatenate([null_cells[0], quantum_features + older]),
                np.concatenate([null_cells[1], quantum_rows]),
            )
            missing = np.zeros(len(features), dtype=bool)
            missing[older:] = part.missing
            benchmarks = self.quantum.benchmarks(features)
        oracle = self.world.expected_return(now, ahead[:ORACLE_WEEKS], stocks)
        return EraBlock(
            number=era,
            data_type=data_type,
            stock=stocks,
            ids=self._ids(len(stocks)),
            features=features,
            null_cells=null_cells,
            missing_features=missing,
            targets=self._targets(now, ahead, data_type),
            oracle=oracle.astype(np.float32),
            benchmarks=benchmarks,
            meta_model=self._meta_model(oracle) if data_type == schema.DATA_TYPE_VALIDATION else None,
        )

    def _last_known_era(self, spec: TargetSpec) -> int:
        """A 60-day target resolves 8 eras later than a 20-day one."""
        return self.scale.last_resolved_era - (spec.weeks - schema.ERAS_PER_HORIZON[20])

    def _targets(self, now: Week, ahead: list[Week], data_type: str) -> np.ndarray:
        stocks = now.present
        values = np.full((len(TARGETS), len(stocks)), np.nan, dtype=np.float32)
        if data_type not in schema.SCORED_DATA_TYPES:
            return values
        returns = np.stack([week.returns[stocks] for week in ahead])  # (12, n)
        factors = now.latent[stocks, : self.dynamics.n_risk_factors]
        for row, spec in enumerate(TARGETS):
            if self.target_starts[spec.name] <= now.number <= self._last_known_era(spec):
                values[row] = target_values(spec, returns, factors, self.world.sector[stocks])
                if spec.random_nulls:
                    values[row, self._target_rng.random(len(stocks)) < TARGET_RANDOM_NULL_RATE] = np.nan
        return values

    def _null_cells(self, n: int, data_type: str) -> tuple[np.ndarray, np.ndarray]:
        if data_type == schema.DATA_TYPE_TRAIN:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return scattered_nulls(self.scale.n_features, n, self._feature_rng)

    def _meta_model(self, oracle: np.ndarray) -> np.ndarray:
        noise = META_MODEL_NOISE * self._score_rng.standard_normal(len(oracle))
        return uniform_scores(standardise(oracle) + noise)

    def _ids(self, n: int) -> list[str]:
        counters = np.arange(self._rows, self._rows + n, dtype=np.uint64)
        self._rows += n
        return [f"n{value:015x}" for value in _scramble(counters, self._id_key).tolist()]


def _scramble(counters: np.ndarray, key: int) -> np.ndarray:
    """A bijection of 60-bit integers that looks random: ids from distinct counters never collide."""
    mask = np.uint64((1 << 60) - 1)
    x = (counters + np.uint64(key)) & mask
    x = (x * np.uint64(0x9E3779B97F4A7C15)) & mask  # odd multiplier: invertible modulo 2**60
    x ^= x >> np.uint64(29)  # xor-shifts are invertible too
    x = (x * np.uint64(0xBF58476D1CE4E5B9)) & mask
    return x ^ (x >> np.uint64(32))
