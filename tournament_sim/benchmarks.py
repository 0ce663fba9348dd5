"""Numerai's benchmark models, simulated: a noisy linear score of an era's features.

Each dataset version has its own (v52_lgbm_ender20, ... / v53_lgbm_ender20, ...), fit on the
features that version has.
"""

from __future__ import annotations

import numpy as np

from tournament_sim.world import World, standardise, uniform_scores

BENCHMARK_NOISE = 1.0  # sd of the noise added to a benchmark's standardised linear score


def draw_benchmark_weights(
    latent_loadings: np.ndarray, noise_sd: np.ndarray, world: World, n_models: int, rng: np.random.Generator
) -> np.ndarray:
    """(B, F) weights of `n_models` benchmarks on features with these loadings (F, D) and noise
    (F,): roughly what a linear fit of rows would find (the loading on the base beta and on the
    part of the peer factor a row shows, shrunk by the feature's noise), on a random half of the
    features, with estimation error."""
    dynamics = world.dynamics
    direction = world.base_beta + dynamics.peer_weight * dynamics.sector_share * world.peer_direction
    fit = (latent_loadings @ direction) / (1 + noise_sd**2)
    shape = (n_models, len(noise_sd))
    used = rng.random(shape) < 0.5
    return (fit * used * (1 + 0.5 * rng.standard_normal(shape))).astype(np.float32)


def benchmark_scores(weights: np.ndarray, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B, n) float32 predictions in (0, 1) of the benchmarks `weights` (B, F) on an era's
    features (F, n)."""
    score = standardise(weights @ features.astype(np.float32))
    score += BENCHMARK_NOISE * rng.standard_normal(score.shape)
    return np.stack([uniform_scores(row) for row in score])
