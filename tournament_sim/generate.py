"""Generate a simulated Numerai tournament: the v5.2 files, the live rounds, the oracle, the state.

    state = generate_tournament(Path("/tmp/sim"), "demo", seed=0)

`Simulation` assembles eras from the latent world (`world.py`): features, targets, ids, the
oracle's expected return, the benchmark and meta model scores. `generate_tournament` streams them
era by era into parquet files laid out as `layout.py` describes, buffering at most one row group,
so even the full-size data set (6.6M rows x 2,748 features) stays within a few GB of memory.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from model_core import schema
from tournament_sim.layout import ORACLE_DIR, SimState, round_file, round_window, save_state
from tournament_sim.parquet_out import BENCHMARK_MODELS, FileSchemas, RowGroupWriter, publish, write_table
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
    standardise,
    target_values,
    uniform_scores,
)


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

    def stocks_range(self, era: int) -> tuple[int, int]:
        return self.stocks_per_era if era <= self.n_train_eras else self.validation_stocks_range

    @property
    def universe_size(self) -> int:
        """More stocks than any era holds, so eras are different subsets of one persistent universe."""
        most = max(self.stocks_per_era[1], self.validation_stocks_range[1])
        return math.ceil(Dynamics.universe_ratio * most)


SCALES: dict[str, Scale] = {
    # Seconds: for tests.
    "tiny": Scale(40, 10, 20, 60, 20, 4, (80, 120), n_rounds=3, row_group_eras=10),
    # A few minutes of a small transformer on 2 CPU cores, for the Dagster demo.
    "demo": Scale(120, 20, 60, 200, 60, 4, (400, 600), n_rounds=4, row_group_eras=20),
    # The walk-forward replay benchmark (bench/replay.py): Numerai's era size, a few minutes to
    # generate; 146 resolved validation eras leave ~100 served after the 40 held out.
    "eval": Scale(320, 32, 110, 300, 150, 4, (2000, 2400), n_rounds=1, row_group_eras=20),
    # The shape of the real v5.2: train ~2.74M rows, validation ~3.9M.
    "full": Scale(
        2748, 42, 780, 574, 624, 4, (4200, 5300), n_rounds=4, row_group_eras=20,
        validation_stocks_per_era=(5600, 6900),
    ),
}  # fmt: skip

LIVE_ERA_LABELS = ("number", "X")  # how a live file labels its era: "0803"-style, or "X"
DATA_TYPE_UNRESOLVED = "test"  # validation eras whose targets are not known yet
LOOKAHEAD_WEEKS = max(schema.ERAS_PER_HORIZON.values())  # the longest target needs 12 weeks of future
ORACLE_WEEKS = schema.ERAS_PER_HORIZON[20]  # the oracle predicts `target`, the 20-day return
BENCHMARK_NOISE = 1.0  # sd of the noise added to a benchmark's standardised linear score
META_MODEL_NOISE = 1.5  # sd of the noise added to the standardised oracle for the meta model
FEATURE_NULL_RATE = 0.0002  # nulls among validation and live feature values


@dataclasses.dataclass(frozen=True)
class EraBlock:
    """Everything the files hold about one era, plus the latent stock of each row (never written:
    it would let a model follow stocks across eras; tests use it to check the target overlap)."""

    number: int
    data_type: str
    stock: np.ndarray  # (n,) universe index of each row
    ids: list[str]
    features: np.ndarray  # (F, n) int8: one row per feature, a contiguous column for arrow
    null_cells: tuple[np.ndarray, np.ndarray]  # (feature index, row index) of the null feature values
    targets: np.ndarray  # (T, n) float32 in the order of TARGETS, NaN = null
    oracle: np.ndarray  # (n,) float32: expected 20-day return
    benchmarks: np.ndarray  # (len(BENCHMARK_MODELS), n) float32 in (0, 1)
    meta_model: np.ndarray | None  # (n,) float32 in (0, 1); resolved validation eras only


class Simulation:
    """The eras of one simulated tournament, deterministic per (scale, seed)."""

    def __init__(self, scale: Scale, seed: int, dynamics: Dynamics | None = None) -> None:
        self.scale = scale
        self.dynamics = dynamics or Dynamics()
        # Independent streams, so that e.g. the feature noise never shifts the world's draws.
        world, model, self._feature_rng, self._target_rng, self._score_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
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
        self.benchmark_weights = self._draw_benchmark_weights(model)
        self._id_key = int(model.integers(0, 2**60))
        self._rows = 0

    def feature_sets(self) -> dict[str, list[str]]:
        names = self.features.names
        return {
            "small": [names[i] for i in self.small],
            "medium": [names[i] for i in self.medium],
            "all": list(names),
            **{group: list(members) for group, members in self.features.groups.items()},
        }

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
        oracle = self.world.expected_return(now, ahead[:ORACLE_WEEKS], stocks)
        return EraBlock(
            number=era,
            data_type=data_type,
            stock=stocks,
            ids=self._ids(len(stocks)),
            features=features,
            null_cells=self._null_cells(len(stocks), data_type),
            targets=self._targets(now, ahead, data_type),
            oracle=oracle.astype(np.float32),
            benchmarks=self._benchmarks(features),
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
        cells = self.scale.n_features * n
        flat = self._feature_rng.integers(0, cells, self._feature_rng.binomial(cells, FEATURE_NULL_RATE))
        return np.divmod(flat, n)

    def _draw_benchmark_weights(self, rng: np.random.Generator) -> np.ndarray:
        """(B, F): roughly what a linear fit of rows would find (the loading on the base beta and on
        the part of the peer factor a row shows, shrunk by the feature's noise), on a random half
        of the features, with estimation error."""
        model = self.features
        world, dynamics = self.world, self.dynamics
        direction = world.base_beta + dynamics.peer_weight * dynamics.sector_share * world.peer_direction
        fit = (model.latent_loadings @ direction) / (1 + model.noise_sd**2)
        shape = (len(BENCHMARK_MODELS), model.n_features)
        used = rng.random(shape) < 0.5
        return (fit * used * (1 + 0.5 * rng.standard_normal(shape))).astype(np.float32)

    def _benchmarks(self, features: np.ndarray) -> np.ndarray:
        score = standardise(self.benchmark_weights @ features.astype(np.float32))
        score += BENCHMARK_NOISE * self._score_rng.standard_normal(score.shape)
        return np.stack([uniform_scores(row) for row in score])

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


def generate_tournament(
    out_dir: Path,
    scale: str | Scale = "tiny",
    seed: int = 0,
    *,
    live_era_label: str = "number",
    models: dict[str, str] | None = None,
    first_round: int = 1000,
    window_minutes: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> SimState:
    """Write a whole simulated tournament under `out_dir` (see layout.py) and return its state:
    round `first_round` is open, rounds up to `first_round + n_rounds - 1` have live files."""
    scale = resolve_scale(scale)
    if live_era_label not in LIVE_ERA_LABELS:
        raise ValueError(f"live_era_label {live_era_label!r}: choose one of {LIVE_ERA_LABELS}")
    models = default_models(seed) if models is None else dict(models)
    if not models:
        raise ValueError("models: the account needs at least one model (name -> id)")
    out_dir, report = Path(out_dir), progress or (lambda _message: None)
    sim = Simulation(scale, seed)
    version_dir = out_dir / schema.DEFAULT_DATASET_VERSION
    version_dir.mkdir(parents=True, exist_ok=True)
    feature_sets = sim.feature_sets()
    targets = [spec.name for spec in TARGETS]
    features_json = json.dumps({schema.FEATURE_SETS_KEY: feature_sets, schema.TARGETS_KEY: targets})
    publish(version_dir / schema.FEATURES_JSON, lambda tmp: tmp.write_text(features_json))
    schemas = FileSchemas.build(feature_sets["all"], targets)
    n_eras = {
        schema.DATA_TYPE_TRAIN: scale.n_train_eras,
        schema.DATA_TYPE_VALIDATION: scale.n_validation_eras,
    }
    with contextlib.ExitStack() as stack:

        def writer(path: Path, file_schema: pa.Schema) -> RowGroupWriter:
            return stack.enter_context(RowGroupWriter(path, file_schema, scale.row_group_eras))

        data = {
            schema.DATA_TYPE_TRAIN: writer(version_dir / schema.TRAIN_FILE, schemas.data),
            schema.DATA_TYPE_VALIDATION: writer(version_dir / schema.VALIDATION_FILE, schemas.data),
        }
        oracle = {split: writer(out_dir / ORACLE_DIR / f"{split}.parquet", schemas.oracle) for split in data}
        benchmarks = writer(version_dir / schema.VALIDATION_BENCHMARKS_FILE, schemas.benchmarks)
        meta_model = writer(version_dir / schema.META_MODEL_FILE, schemas.meta_model)
        for block in sim.eras():
            era = schema.era_label(block.number)
            if block.data_type == schema.DATA_TYPE_LIVE:
                number = first_round + block.number - scale.last_validation_era - 1
                live_era = era if live_era_label == "number" else "X"
                write_live_round(out_dir, number, block, live_era, schemas)
                report(f"live: round {number} (era {era})")
                continue
            is_train = block.data_type == schema.DATA_TYPE_TRAIN
            split = schema.DATA_TYPE_TRAIN if is_train else schema.DATA_TYPE_VALIDATION
            data[split].add(schemas.data_table(block, era))
            oracle[split].add(schemas.oracle_table(block, era))
            if not is_train:
                benchmarks.add(schemas.benchmarks_table(block, era))
                if block.meta_model is not None:
                    meta_model.add(schemas.meta_model_table(block, era))
            index = block.number - (0 if is_train else scale.n_train_eras)
            if index % max(1, n_eras[split] // 10) == 0 or index == n_eras[split]:
                report(f"{split}: era {index:04d}/{n_eras[split]:04d}")
    state = SimState(
        dataset_version=schema.DEFAULT_DATASET_VERSION,
        first_round=first_round,
        last_round=first_round + scale.n_rounds - 1,
        current=round_window(first_round, window_minutes),
        models=models,
    )
    save_state(out_dir, state)
    return state


def resolve_scale(scale: str | Scale) -> Scale:
    if isinstance(scale, Scale):
        return scale
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: choose one of {sorted(SCALES)} or pass a Scale")
    return SCALES[scale]


def default_models(seed: int) -> dict[str, str]:
    """Two account models with ids that are uuids drawn from the seed."""
    rng = np.random.default_rng([seed, 0x6D6F64656C])  # a stream of its own ("model")
    return {name: str(uuid.UUID(bytes=rng.bytes(16), version=4)) for name in ("sim_model", "sim_model_b")}


def write_live_round(
    out_dir: Path, number: int, block: EraBlock, live_era: str, schemas: FileSchemas
) -> None:
    """One live round: the live era (labelled `live_era`), its benchmarks, and the oracle (whose
    era column keeps the true era number)."""
    version = schema.DEFAULT_DATASET_VERSION
    write_table(round_file(out_dir, number, version, schema.LIVE_FILE), schemas.data_table(block, live_era))
    write_table(
        round_file(out_dir, number, version, schema.LIVE_BENCHMARKS_FILE),
        schemas.benchmarks_table(block, live_era),
    )
    write_table(
        out_dir / ORACLE_DIR / f"live_{number}.parquet",
        schemas.oracle_table(block, schema.era_label(block.number)),
    )
