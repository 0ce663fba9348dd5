"""The latent world behind the simulated tournament: stocks, their features, their returns.

A persistent universe of stocks, each with a fixed sector and a latent state that drifts week to
week. Every week a random subset of the universe forms the era. Returns are driven by the state
through betas that drift and switch between regimes, by the sector peers present that week, by
factor and sector shocks nobody can predict, and by a lot of idiosyncratic noise.

`Dynamics` holds the tuned constants, `World` steps through the weeks, `FeatureModel` turns a
latent state into binned features, and `TargetSpec` turns future returns into binned targets.
`generate.py` assembles eras from these and writes the files.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from model_core.schema import MAIN_TARGET, target_horizon_eras


@dataclasses.dataclass(frozen=True)
class Dynamics:
    """The constants of the world. The noise levels are tuned so that the oracle (which knows the
    latent state and the betas) reaches a per-era CORR of about 0.1 on `target`, with a per-era
    standard deviation of a few hundredths, as a very good Numerai model would."""

    universe_ratio: float = 1.3
    n_latent: int = 12
    n_sectors: int = 16
    rho: float = 0.98  # weekly persistence of the latent state (a half-life of about 8 months)
    sector_share: float = 0.4  # share of each latent dimension common to the sector: what peers reveal
    # A Markov chain of regimes: the base one lasts ~8 months, the others ~3 and lead back to
    # it, so the base regime holds ~70% of the time and a fit over many eras finds its betas.
    n_regimes: int = 4
    base_regime_stay: float = 0.97
    other_regime_stay: float = 0.93
    flipped_dims: int = 4  # latent dims whose beta changes sign in each non-base regime
    beta_drift: float = 0.3  # stationary sd of the slow drift added to the unit-norm base beta
    beta_drift_rho: float = 0.995
    # Weight of the sector peers' mean latent factor in the return. A row alone shows its own
    # state, which holds only `sector_share` of the sector's: a model of rows misses ~60% of it.
    peer_weight: float = 2.0
    factor_shock: float = 0.7  # sd per latent dim of the unpredictable weekly factor returns
    sector_shock: float = 0.5  # sd of the unpredictable weekly sector returns
    idio_noise: float = 28.0  # sd of the idiosyncratic weekly return: the signal is buried in it
    n_risk_factors: int = 3  # the latent dims that the residualised targets are neutral to


@dataclasses.dataclass(frozen=True)
class Week:
    """One simulated week: the state at its start, who is in its era, and what it returned."""

    number: int
    latent: np.ndarray  # (U, D) latent state of every stock of the universe
    sector_latent: np.ndarray  # (S, D) mean latent state of each sector over the whole universe
    beta: np.ndarray  # (D,) how the latent state pays this week
    present: np.ndarray  # (n,) universe indices of this era's stocks, in row order (random)
    returns: np.ndarray  # (U,) return of every stock over the week


class World:
    """Steps a persistent universe of stocks forward one week at a time (deterministic per rng)."""

    def __init__(self, universe_size: int, dynamics: Dynamics, rng: np.random.Generator) -> None:
        d = self.dynamics = dynamics
        self.rng = rng
        self.size = universe_size
        dims = d.n_latent
        self.sector = rng.integers(0, d.n_sectors, universe_size)
        # z = sector's common part + the stock's own part; each AR(1) with unit total variance per dim.
        self.common = rng.standard_normal((d.n_sectors, dims)) * math.sqrt(d.sector_share)
        self.own = rng.standard_normal((universe_size, dims)) * math.sqrt(1 - d.sector_share)
        self.base_beta = _unit(rng.standard_normal(dims))
        self.peer_direction = _unit(rng.standard_normal(dims))
        self.regime_signs = np.ones((d.n_regimes, dims))
        for regime in range(1, d.n_regimes):
            self.regime_signs[regime, rng.choice(dims, d.flipped_dims, replace=False)] = -1.0
        self.regime = 0
        self.drift = rng.standard_normal(dims) * d.beta_drift / math.sqrt(dims)
        self.week = 0

    def latent(self) -> np.ndarray:
        return self.common[self.sector] + self.own

    def step(self, n_present: int) -> Week:
        """The current week (its era holds `n_present` stocks), then move the world one week on."""
        d, rng = self.dynamics, self.rng
        self.week += 1
        latent = self.latent()
        present = rng.choice(self.size, n_present, replace=False)
        beta = self.base_beta * self.regime_signs[self.regime] + self.drift
        factor_shock = rng.standard_normal(d.n_latent) * d.factor_shock
        sector_shock = rng.standard_normal(d.n_sectors) * d.sector_shock
        returns = (
            latent @ (beta + factor_shock)
            + d.peer_weight * self.peer_term(latent, present)
            + sector_shock[self.sector]
            + rng.standard_normal(self.size) * d.idio_noise
        )
        week = Week(self.week, latent, self.sector_means(latent), beta, present, returns)
        self._advance()
        return week

    def sector_means(self, latent: np.ndarray, members: np.ndarray | None = None) -> np.ndarray:
        """(S, D) mean latent state per sector over `members` (default: the whole universe); 0 if empty."""
        members = np.arange(self.size) if members is None else members
        sums = np.zeros((self.dynamics.n_sectors, latent.shape[1]))
        np.add.at(sums, self.sector[members], latent[members])
        return sums / np.maximum(np.bincount(self.sector[members], minlength=len(sums)), 1)[:, None]

    def peer_term(self, latent: np.ndarray, present: np.ndarray) -> np.ndarray:
        """(U,) the peer factor of each stock's sector, averaged over the sector's stocks present in
        the era: a model that looks at the other stocks of the era can estimate it, a model that
        sees one row at a time only partly (through the sector's share of the row's own state)."""
        return (self.sector_means(latent, present) @ self.peer_direction)[self.sector]

    def _advance(self) -> None:
        d, rng = self.dynamics, self.rng
        # Innovations keep the stationary variances: sector_share for the common part, the rest own.
        common_sd, own_sd = (
            math.sqrt((1 - d.rho**2) * share) for share in (d.sector_share, 1 - d.sector_share)
        )
        self.common = d.rho * self.common + common_sd * rng.standard_normal(self.common.shape)
        self.own = d.rho * self.own + own_sd * rng.standard_normal(self.own.shape)
        drift_innovation = math.sqrt(1 - d.beta_drift_rho**2) * d.beta_drift / math.sqrt(d.n_latent)
        self.drift = d.beta_drift_rho * self.drift + drift_innovation * rng.standard_normal(d.n_latent)
        if self.regime == 0 and rng.random() > d.base_regime_stay:
            self.regime = int(rng.integers(1, d.n_regimes))
        elif self.regime != 0 and rng.random() > d.other_regime_stay:
            self.regime = 0

    def expected_return(self, now: Week, ahead: list[Week], stocks: np.ndarray) -> np.ndarray:
        """(n,) the oracle: the expected sum of the returns of the weeks `ahead`, knowing the
        latent state now and the betas of those weeks (the shocks and the noise are unknowable)."""
        rho = self.dynamics.rho
        decay = rho ** np.arange(1, len(ahead) + 1)
        beta = sum(k * week.beta for k, week in zip(decay, ahead, strict=True))
        peer = (now.sector_latent @ self.peer_direction)[self.sector[stocks]]
        return now.latent[stocks] @ beta + self.dynamics.peer_weight * decay.sum() * peer


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


@dataclasses.dataclass(frozen=True)
class FeatureModel:
    """How features are made: noisy linear views of the latent state and of the sector."""

    names: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]  # the 8 groups of features.json
    latent_loadings: np.ndarray  # (F, D)
    sector_loadings: np.ndarray  # (F, S)
    noise_sd: np.ndarray  # (F,)
    newer: np.ndarray  # (F,) bool: features that "did not exist yet" (all 2) before `newer_from`
    newer_from: int  # first era where the newer features have values
    missing_rate: float = 0.001  # chance that a feature is all 2 in an era, at random

    @property
    def n_features(self) -> int:
        return len(self.names)


NOISE_FEATURE_SHARE = 0.1  # features that load on nothing
NEWER_FEATURE_SHARE = 0.05
NEWER_FEATURES_ERA_SHARE = 0.15  # the newer features are all 2 in this share of the first eras
GROUP_HOME_DIMS = 4  # each group loads mostly on its own few latent dims
FEATURE_NULL_RATE = 0.0002  # nulls among validation and live feature values


def draw_feature_model(
    n_features: int,
    n_eras: int,
    dynamics: Dynamics,
    groups: tuple[str, ...],
    rng: np.random.Generator,
    taken: frozenset[str] = frozenset(),
) -> FeatureModel:
    """Loadings, noise and names (none of them in `taken`) of `n_features` features; each group
    loads mostly on a few latent dims of its own, some features are pure noise, some only exist
    after ~15% of eras."""
    dims, n_sectors = dynamics.n_latent, dynamics.n_sectors
    group_of = rng.permutation(np.arange(n_features) % len(groups))
    home = np.full((len(groups), dims), 0.2)
    for group in range(len(groups)):
        home[group, rng.choice(dims, GROUP_HOME_DIMS, replace=False)] = 1.0
    latent = rng.standard_normal((n_features, dims)) * home[group_of]
    latent /= np.linalg.norm(latent, axis=1, keepdims=True)
    sector = rng.standard_normal((n_features, n_sectors))
    sector /= np.linalg.norm(sector, axis=1, keepdims=True) / math.sqrt(n_sectors)
    # Split each feature's unit signal variance between the latent state and the (static) sector.
    sector_part = rng.uniform(0.0, 0.3, n_features)[:, None]
    latent *= np.sqrt(1 - sector_part)
    sector *= np.sqrt(sector_part)
    r_squared = rng.uniform(0.05, 0.5, n_features)  # of the feature on its signal: most of it is noise
    noise_sd = np.sqrt((1 - r_squared) / r_squared)
    pure_noise = rng.random(n_features) < NOISE_FEATURE_SHARE
    latent[pure_noise] = 0.0
    sector[pure_noise] = 0.0
    names = feature_names(n_features, rng, taken)
    return FeatureModel(
        names=names,
        groups={
            g: tuple(n for n, k in zip(names, group_of, strict=True) if k == i) for i, g in enumerate(groups)
        },
        latent_loadings=latent.astype(np.float32),
        sector_loadings=sector.astype(np.float32),
        noise_sd=noise_sd.astype(np.float32),
        newer=rng.random(n_features) < NEWER_FEATURE_SHARE,
        newer_from=1 + math.ceil(NEWER_FEATURES_ERA_SHARE * n_eras),
    )


_ONSETS = ("b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "br", "ch", "st", "tr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou")
_CODAS = ("", "", "", "n", "r", "s", "l", "nt", "st")


def feature_names(
    count: int, rng: np.random.Generator, taken: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """`feature_<word>_<word>` names made of pseudo-words, unique and none of them in `taken`,
    deterministic per rng (and the same draws as without `taken` when it holds none of them)."""

    def word() -> str:
        syllables = int(rng.integers(2, 4))
        return "".join(
            rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)
        )

    names: dict[str, None] = {}
    while len(names) < count:
        name = f"feature_{word()}_{word()}"
        if name not in taken:
            names.setdefault(name, None)
    return tuple(names)


def era_features(
    model: FeatureModel, latent: np.ndarray, sector: np.ndarray, era: int, rng: np.random.Generator
) -> np.ndarray:
    """(F, n) int8 features of one era's stocks (latent (n, D), sector (n,)): 0..4 in 5 equal bins.
    One row per feature, so each is a contiguous column for arrow."""
    raw = unit_noise(rng, (model.n_features, len(sector)))
    raw *= model.noise_sd[:, None]
    raw += model.latent_loadings @ latent.T.astype(np.float32)
    raw += model.sector_loadings[:, sector]
    features = equal_bins(raw)
    unavailable = rng.random(model.n_features) < model.missing_rate
    if era < model.newer_from:
        unavailable |= model.newer
    features[unavailable] = 2  # how the real data shows a feature missing for a whole era
    return features


def scattered_nulls(n_features: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(feature index, row index) of the null cells of an era of `n` rows: about
    FEATURE_NULL_RATE of them, anywhere, as the real validation and live files have a few."""
    cells = n_features * n
    flat = rng.integers(0, cells, rng.binomial(cells, FEATURE_NULL_RATE))
    return np.divmod(flat, n)


def unit_noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Unit-variance triangular noise (the sum of two uniform int16), float32. Much faster than
    normals, and the features are rank-binned, so only the rough shape of the noise matters."""
    pairs = np.frombuffer(rng.bytes(4 * shape[0] * shape[1]), dtype=np.int16).reshape(2, *shape)
    noise = pairs[0].astype(np.float32)
    noise += pairs[1]
    noise *= 1 / math.sqrt(2 * (2**32 - 1) / 12)
    return noise


def equal_bins(raw: np.ndarray, n_bins: int = 5) -> np.ndarray:
    """Rank-bin each row of (F, n) into `n_bins` equal-count bins 0..n_bins-1, as int8."""
    n = raw.shape[1]
    # Quantised to int16, numpy sorts by radix: 4x faster than sorting floats, and with 65k levels
    # ties (which could make a bin one stock larger) are rare enough not to matter.
    scale = 32000.0 / np.maximum(np.abs(raw).max(axis=1, keepdims=True), 1e-12)
    quantised = (raw * scale).astype(np.int16)
    cut_ranks = [n * k // n_bins for k in range(1, n_bins)]
    cuts = np.sort(quantised, axis=1, kind="stable")[:, cut_ranks]
    bins = np.zeros(raw.shape, dtype=np.int8)
    for k in range(n_bins - 1):
        bins += quantised >= cuts[:, k : k + 1]
    return bins


BELL_5 = (0.05, 0.20, 0.50, 0.20, 0.05)
BELL_7 = (0.05, 0.10, 0.20, 0.30, 0.20, 0.10, 0.05)


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """One target column: the sum of the returns of the next `weeks` weeks, optionally
    neutralised, rank-binned within the era into len(proportions) bell-shaped bins on [0, 1]."""

    name: str
    neutralise: tuple[str, ...] = ()  # "sector": demean within sector; "factor": residualise on factors
    proportions: tuple[float, ...] = BELL_5
    late_start: bool = True  # the target "did not exist" in the first ~10% of eras
    random_nulls: bool = True

    @property
    def weeks(self) -> int:
        """4 for a 20-day target, 12 for a 60-day one (from the name, as consumers read it)."""
        return target_horizon_eras(self.name)


TARGETS = (
    TargetSpec(MAIN_TARGET, late_start=False, random_nulls=False),
    TargetSpec("target_ender_20", late_start=False, random_nulls=False),  # == target
    TargetSpec("target_ender_60", late_start=False),
    TargetSpec("target_jasper_20", ("factor",)),
    TargetSpec("target_jasper_60", ("factor",)),
    TargetSpec("target_teager2b_20", ("sector",)),
    TargetSpec("target_teager2b_60", ("sector",)),
    TargetSpec("target_cyrusd_20", ("sector", "factor"), BELL_7),
)
TARGET_RANDOM_NULL_RATE = 0.001
TARGET_LATE_START_SHARE = (0.07, 0.13)  # of the train eras, drawn per late target


def target_values(
    spec: TargetSpec, returns: np.ndarray, factors: np.ndarray, sector: np.ndarray
) -> np.ndarray:
    """(n,) float32 binned target of one era, from the stocks' future weekly returns (weeks, n),
    their exposures to the risk factors (n, k) and their sectors (n,)."""
    total = returns[: spec.weeks].sum(axis=0)
    if "sector" in spec.neutralise:
        sums = np.bincount(sector, weights=total)
        total = total - (sums / np.maximum(np.bincount(sector), 1))[sector]
    if "factor" in spec.neutralise:
        exposures = np.column_stack([np.ones(len(total)), factors])
        total = total - exposures @ np.linalg.lstsq(exposures, total, rcond=None)[0]
    return bell_bins(total, spec.proportions)


def bell_bins(values: np.ndarray, proportions: tuple[float, ...]) -> np.ndarray:
    """Rank-bin `values` into len(proportions) bins with those shares, valued k / (bins - 1)."""
    quantile = (ranks(values) + 0.5) / len(values)
    edges = np.cumsum(proportions)[:-1]
    return (np.searchsorted(edges, quantile, side="right") / (len(proportions) - 1)).astype(np.float32)


def ranks(values: np.ndarray) -> np.ndarray:
    """0-based ranks (ties broken by position)."""
    order = np.argsort(values, kind="stable")
    result = np.empty(len(values), dtype=np.int64)
    result[order] = np.arange(len(values))
    return result


def uniform_scores(values: np.ndarray) -> np.ndarray:
    """Ranks mapped into (0, 1), float32: how the benchmark and meta model predictions look."""
    return ((ranks(values) + 0.5) / len(values)).astype(np.float32)


def standardise(values: np.ndarray) -> np.ndarray:
    """Zero mean, unit sd along the last axis."""
    centred = values - values.mean(axis=-1, keepdims=True)
    return centred / np.maximum(centred.std(axis=-1, keepdims=True), 1e-12)
