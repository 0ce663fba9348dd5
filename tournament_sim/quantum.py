"""v5.3's `quantum` features: new features, null in the early eras, and v5.3's benchmarks.

They are drawn like the others (the same feature model on the same latent world, so they are as
informative), but from a seed stream of their own: adding them moves no draw of v5.2, whose
files stay byte-identical for a (scale, seed).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from model_core import schema
from tournament_sim.benchmarks import benchmark_scores, draw_benchmark_weights
from tournament_sim.scale import Scale
from tournament_sim.world import FeatureModel, World, draw_feature_model, era_features, scattered_nulls


@dataclasses.dataclass(frozen=True)
class QuantumEra:
    """The quantum features of one era."""

    features: np.ndarray  # (Q, n) int8; FEATURE_NEUTRAL where the era has none yet
    null_cells: tuple[np.ndarray, np.ndarray]  # (feature index, row index) of scattered nulls
    missing: bool  # the era is before the quantum features existed: all of them null


class QuantumFeatures:
    """The quantum features of one simulated tournament and the benchmarks of the version that has
    them (fit on the older features and on these), deterministic per (scale, seed stream)."""

    def __init__(
        self,
        scale: Scale,
        world: World,
        older: FeatureModel,
        n_benchmarks: int,
        seed: np.random.SeedSequence,
    ) -> None:
        self.scale = scale
        model_rng, self._feature_rng, self._null_rng, self._score_rng = (
            np.random.default_rng(s) for s in seed.spawn(4)
        )
        drawn = draw_feature_model(
            scale.n_quantum,
            scale.n_eras,
            world.dynamics,
            schema.FEATURE_GROUPS,
            model_rng,
            taken=frozenset(older.names),
        )
        # Null before `scale.quantum_from` stands for "did not exist yet", so no extra all-2
        # "newer" eras; features.json's 8 groups stay the older features'.
        self.model = dataclasses.replace(drawn, groups={}, newer=np.zeros(drawn.n_features, dtype=bool))
        self.benchmark_weights = draw_benchmark_weights(
            np.concatenate([older.latent_loadings, self.model.latent_loadings]),
            np.concatenate([older.noise_sd, self.model.noise_sd]),
            world,
            n_benchmarks,
            model_rng,
        )

    @property
    def names(self) -> tuple[str, ...]:
        return self.model.names

    def era(self, latent: np.ndarray, sector: np.ndarray, era: int, data_type: str) -> QuantumEra:
        """The quantum features of an era's stocks (latent (n, D), sector (n,))."""
        n = len(sector)
        if era < self.scale.quantum_from:
            neutral = np.full((self.model.n_features, n), schema.FEATURE_NEUTRAL, dtype=np.int8)
            return QuantumEra(neutral, (np.empty(0, np.int64), np.empty(0, np.int64)), missing=True)
        features = era_features(self.model, latent, sector, era, self._feature_rng)
        if data_type == schema.DATA_TYPE_TRAIN:  # as the older features: nulls in validation and live only
            return QuantumEra(features, (np.empty(0, np.int64), np.empty(0, np.int64)), missing=False)
        return QuantumEra(features, scattered_nulls(self.model.n_features, n, self._null_rng), missing=False)

    def benchmarks(self, features: np.ndarray) -> np.ndarray:
        """(B, n) predictions of this version's benchmarks from all its features (F + Q, n)."""
        return benchmark_scores(self.benchmark_weights, features, self._score_rng)
