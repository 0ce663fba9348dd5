"""The peer ridge candidate: a ridge regression on each stock's features and its peers' mean features.

The simulated market pays for the state of a stock's sector peers, which a stock's own row does
not show. The peers are the stocks of the same era whose raw features are most alike, exactly as
the transformer finds them (`model_core.layers.nearest_stocks`); the mean features of the k
nearest, for a few k, sit beside the stock's own features, and a linear model on those columns
scores about as well as the whole transformer ensemble on the eval tournament (README, "How the
weekly model is chosen and refit").

Fitted by streaming eras: per era, its design (one era's float32 columns, never the set's) is
centred within the era, columns and target alike, so no intercept is needed and an era's level
does not leak into the slopes; Z'Z and Z'y are summed in float64, then one ridge solve. At the
real v5 scale that is p = 2,748 x (1 + len(ks) + 1 with the hop) columns: the cost grows as p^2
per row.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from model_core import schema
from model_core.atomic import atomic_path
from model_core.era_store import EraStore
from model_core.knobs import default


def parse_ks(text: str) -> tuple[int, ...]:
    """ "30,100,300" -> (30, 100, 300) (what NUMERAI_PEER_RIDGE_KS holds)."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(
            f"peer counts {text!r}: expected integers separated by commas, e.g. 30,100,300"
        ) from None


@dataclasses.dataclass(frozen=True)
class PeerRidgeConfig:
    peer_ks: tuple[int, ...] = parse_ks(default("peer_ridge_ks"))
    ridge_lambda: float = default("peer_ridge_lambda")  # times trace(G) / p on the diagonal
    peer_hop: int = default("peer_ridge_hop")  # the peers' own peer means over h peers; 0 = off

    def __post_init__(self) -> None:
        ks = tuple(self.peer_ks)
        if not ks or min(ks) < 1 or any(b <= a for a, b in itertools.pairwise(ks)):
            raise ValueError(f"peer counts {ks}: expected positive, strictly increasing integers")
        if self.peer_hop < 0:
            raise ValueError(f"peer hop {self.peer_hop}: expected 0 (off) or a peer count")
        if not self.ridge_lambda > 0:
            raise ValueError(f"ridge lambda must be > 0, got {self.ridge_lambda}")


@dataclasses.dataclass(frozen=True)
class PeerRidge:
    """A fitted peer ridge: one slope per design column."""

    beta: np.ndarray  # (n_features * blocks(peer_ks, peer_hop),) float64
    peer_ks: tuple[int, ...]
    ridge_lambda: float
    n_features: int
    peer_hop: int = 0  # models saved before the hop block existed have none


def blocks(peer_ks: Sequence[int], peer_hop: int) -> int:
    """Column blocks of the design, each as wide as the features: own, one per k, the hop's."""
    return 1 + len(peer_ks) + (1 if peer_hop else 0)


def design(features: np.ndarray, peer_ks: Sequence[int], peer_hop: int = 0) -> np.ndarray:
    """One era's columns, float32 (N, F * blocks(peer_ks, peer_hop)): the stock's features centred
    on the neutral bin (MISSING -> 0, neutral), then per k the mean of those over its k nearest
    peers, then (peer_hop = h > 0) the mean over its h nearest peers of their own h-peer means:
    the wider neighbourhood a stock's peers sit in, which its own k-means only blur.

    An era with fewer than k + 1 stocks averages the peers it has (nearest_stocks' `ok` mask).
    """
    # torch only here: the settings check (NUMERAI_PEER_RIDGE_KS) imports this module.
    import torch

    from model_core.layers import nearest_stocks

    n, f = features.shape
    x = features.astype(np.float32) - schema.FEATURE_NEUTRAL
    x[features == schema.MISSING] = 0.0
    out = np.zeros((n, f * blocks(peer_ks, peer_hop)), dtype=np.float32)
    out[:, :f] = x
    if n < 2:
        return out  # no peers: their columns stay neutral
    k_max = min(max(*peer_ks, peer_hop), n - 1)
    codes = np.require(features, dtype=np.int8, requirements=["C", "W"])  # a copy only when torch needs one
    neighbours, ok, _ = nearest_stocks(
        torch.from_numpy(codes)[None], torch.ones(1, n, dtype=torch.bool), k_max
    )
    neighbours, ok = neighbours[0].numpy(), ok[0].numpy()  # (N, k_max), most similar first
    total = np.zeros((n, f), dtype=np.float32)
    count = np.zeros((n, 1), dtype=np.float32)
    hop_means = None
    # One gather per peer rank (an (N, F) temporary), never an (N, k, F) one; the running sums
    # give every k's mean on the way.
    for rank in range(k_max):
        total += x[neighbours[:, rank]] * ok[:, rank, None]
        count[:, 0] += ok[:, rank]
        for column, k in enumerate(peer_ks, start=1):
            if min(k, k_max) == rank + 1:
                out[:, column * f : (column + 1) * f] = total / np.maximum(count, 1.0)
        if peer_hop and min(peer_hop, k_max) == rank + 1:
            hop_count = np.maximum(count, 1.0)  # the same peers count in the second hop
            hop_means = total / hop_count
    if hop_means is not None:
        hop = min(peer_hop, k_max)
        total[:] = 0.0
        for rank in range(hop):  # the same gathers again, over the peers' own means
            total += hop_means[neighbours[:, rank]] * ok[:, rank, None]
        out[:, -f:] = total / hop_count
    return out


def predict(model: PeerRidge, features: np.ndarray) -> np.ndarray:
    """One era's scores, float64 (N,), in the features' row order (a level per era: rank them)."""
    if features.shape[1] != model.n_features:
        raise ValueError(
            f"the peer ridge was fitted on {model.n_features} features; this era has {features.shape[1]}"
        )
    return design(features, model.peer_ks, model.peer_hop).astype(np.float64) @ model.beta


@dataclasses.dataclass
class _Moments:
    """Running sums of the centred eras: Z'Z and Z'y in float64, and how much went in."""

    gram: np.ndarray
    cross: np.ndarray
    eras: int = 0
    rows: int = 0

    @classmethod
    def zeros(cls, p: int) -> _Moments:
        return cls(np.zeros((p, p)), np.zeros(p))

    def add(self, z: np.ndarray, y: np.ndarray) -> None:
        """One era's rows: z (n, p) float32, centred here in place (the caller's own copy), y (n,)."""
        z -= z.mean(axis=0, dtype=np.float64).astype(np.float32)
        y = (y - y.mean(dtype=np.float64)).astype(np.float32)
        self.gram += z.T @ z  # float32 products of one era, summed over eras in float64
        self.cross += y @ z
        self.eras += 1
        self.rows += y.size

    def solve(self, config: PeerRidgeConfig, n_features: int) -> PeerRidge:
        if not self.rows:
            raise ValueError("no rows with a known target in the eras given to the peer ridge")
        p = self.gram.shape[0]
        system = self.gram + np.eye(p) * (config.ridge_lambda * np.trace(self.gram) / p)
        beta = np.linalg.solve(system, self.cross)
        return PeerRidge(beta, tuple(config.peer_ks), float(config.ridge_lambda), n_features, config.peer_hop)


def _era_design(
    store: EraStore, era: str, target_index: int, config: PeerRidgeConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(design of every stock of the era, target) of one era read from the store.

    The peers are the era's stocks whatever their targets (as live sees them); only the rows
    with a known target enter the sums. The era's slice is freed when this returns.
    """
    data = store.era(era)
    return design(data.features, config.peer_ks, config.peer_hop), data.targets[:, target_index]


def _add_era(moments: _Moments, z: np.ndarray, target: np.ndarray) -> None:
    keep = ~np.isnan(target)
    if keep.sum() >= 2:  # one row centres to zero: nothing to learn from it
        moments.add(z[keep], target[keep])  # z[keep]: a copy, centred in place


def fit_peer_ridge(
    store: EraStore, eras: Sequence[str], target_index: int, config: PeerRidgeConfig
) -> PeerRidge:
    """The peer ridge fitted on `eras`, streamed from the store one era at a time."""
    n_features = len(store.features)
    moments = _Moments.zeros(n_features * blocks(config.peer_ks, config.peer_hop))
    for era in eras:
        _add_era(moments, *_era_design(store, era, target_index, config))
    return moments.solve(config, n_features)


def fold_predictions(
    store: EraStore,
    plan,  # model_core.cv.FoldPlan
    target_index: int,
    config: PeerRidgeConfig,
    log: Callable[[str], None] = lambda _message: None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(out-of-fold, test) predictions, made as model_core.baseline's for the LightGBM: fold k's
    ridge fits fold k's training eras and predicts its validation eras; the test block is
    predicted by one fitted on the last fold's training and validation eras (before the gap).

    The expanding folds' training sets are prefixes of one era order (the test one is the whole
    of it), so one pass reads each era once, keeps one running sum and solves each fold's ridge
    when its last training era has gone in; a validation era read later in the pass is predicted
    from the same design. Training sets that are not such prefixes are fitted one by one.
    """
    jobs = [(f"fold {f.index}", f.train_eras, f.validation_eras) for f in plan.folds]
    if plan.test_eras:
        last = plan.folds[-1]
        jobs.append(("test block", tuple({*last.train_eras, *last.validation_eras}), plan.test_eras))
    order = sorted({era for _, train, _ in jobs for era in train})
    nested = all(sorted(train) == order[: len(train)] for _, train, _ in jobs)
    predictions: list[dict[str, np.ndarray]] = [{} for _ in jobs]
    if nested:
        models = _one_pass(store, order, jobs, target_index, config, predictions, log)
    else:
        models = [fit_peer_ridge(store, sorted(train), target_index, config) for _, train, _ in jobs]
    for model, (name, train, predicted), done in zip(models, jobs, predictions, strict=True):
        for era in predicted:
            if era not in done:
                done[era] = predict(model, store.era(era).features)
        if not nested:
            log(f"peer ridge {name}: {len(train)} training eras")
    oof = {era: p for done in predictions[: len(plan.folds)] for era, p in done.items()}
    return oof, (predictions[-1] if plan.test_eras else {})


def _one_pass(store, order, jobs, target_index, config, predictions, log) -> list[PeerRidge]:
    """Each job's ridge from one running sum over `order`, solved when the job's prefix ends."""
    n_features = len(store.features)
    moments = _Moments.zeros(n_features * blocks(config.peer_ks, config.peer_hop))
    ends = {}
    for j, (_, train, _) in enumerate(jobs):
        ends.setdefault(len(train), []).append(j)
    wanted = {era: j for j, (_, _, predicted) in enumerate(jobs) for era in predicted}
    models: list[PeerRidge | None] = [None] * len(jobs)
    for position, era in enumerate(order, start=1):
        z, target = _era_design(store, era, target_index, config)
        j = wanted.get(era)
        if j is not None and models[j] is not None:  # a later fold's training era, out of fold here
            predictions[j][era] = z.astype(np.float64) @ models[j].beta
        _add_era(moments, z, target)
        del z
        for j in ends.get(position, []):
            models[j] = moments.solve(config, n_features)
            log(f"peer ridge {jobs[j][0]}: {position} training eras, {moments.rows:,} rows")
    return models


def save_peer_ridge(model: PeerRidge, path: Path) -> None:
    """numpy's own .npz (no pickle), written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            beta=np.asarray(model.beta, dtype=np.float64),
            peer_ks=np.asarray(model.peer_ks, dtype=np.int64),
            ridge_lambda=np.float64(model.ridge_lambda),
            n_features=np.int64(model.n_features),
            peer_hop=np.int64(model.peer_hop),
        )


def load_peer_ridge(path: Path, n_features: int | None = None) -> PeerRidge:
    """The saved model; with `n_features`, a model fitted on another feature count is refused."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no peer ridge model here")
    with np.load(path, allow_pickle=False) as saved:
        missing = {"beta", "peer_ks", "ridge_lambda", "n_features"} - set(saved.files)
        if missing:
            raise ValueError(f"{path}: not a peer ridge model (missing {sorted(missing)})")
        model = PeerRidge(
            beta=saved["beta"],
            peer_ks=tuple(int(k) for k in saved["peer_ks"]),
            ridge_lambda=float(saved["ridge_lambda"]),
            n_features=int(saved["n_features"]),
            peer_hop=int(saved["peer_hop"]) if "peer_hop" in saved.files else 0,
        )
    if model.beta.shape != (model.n_features * blocks(model.peer_ks, model.peer_hop),):
        raise ValueError(f"{path}: {model.beta.shape[0]} slopes do not fit {model.n_features} features")
    if n_features is not None and n_features != model.n_features:
        raise ValueError(
            f"{path}: the peer ridge was fitted on {model.n_features} features, the model version has {n_features}"
        )
    return model
