"""Inference: the one function that scores an era, used by validation, backfill and live alike.

An ensemble is the fold models of one model version plus their weights. Scoring an era runs
every fold model on the era's int8 features (with the era's temporal context, built by the
same `TemporalContext` rule as in training), ranks each model's scores within the era and takes
the weighted mean of the ranks. Ranks make the blend independent of each model's scale, and the
result lies in (0, 1], which is what a submission needs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from model_core.atomic import write_text_atomic
from model_core.baseline import load_lgbm, predict_lgbm
from model_core.batches import live_batch
from model_core.candidates import (
    BLEND,
    CANDIDATES,
    LGBM,
    PEER_RIDGE,
    TRANSFORMER,
    blend_ranks,
    legacy_blend_weights,
    members_used,
)
from model_core.ensemble import blend, equal_weights, rank_within_era
from model_core.model import EraTransformer
from model_core.peer_ridge import load_peer_ridge
from model_core.peer_ridge import predict as predict_peer_ridge
from model_core.train import CPU, load_trained

ENSEMBLE_FILE = "ensemble.json"


@dataclasses.dataclass(frozen=True)
class EnsembleSpec:
    """What `ensemble.json` in a model version's folder says: which checkpoints, which weights."""

    model_version: str
    checkpoints: list[str]  # file names in the version's folder, one per fold, in fold order
    weights: list[float]  # fitted on out-of-fold validation results only
    equal_weights: list[float]
    temporal_lags: int
    feature_set: str
    features: list[str]  # in model input order; live files are read by these names
    previous_version: str | None = None
    dataset_version: str | None = None  # the era store's ("v5.3"): the version live files must be of
    created_at: str = ""
    oof: dict = dataclasses.field(default_factory=dict)  # per fold: mean / sharpe of its validation CORR
    # What predicts live (DESIGN.md section 6, "Selection and refit"): the chosen candidate, made
    # of models refit on every resolved era. Empty / None: the fold models predict live.
    candidate: str = TRANSFORMER  # transformer | lgbm | peer_ridge | blend
    live_checkpoints: list[str] = dataclasses.field(default_factory=list)  # refits, equal weights
    lgbm_model: str | None = None  # LightGBM text model file in the version's folder
    blend_weight: float = 1.0  # weight of the transformer in the blend
    choice: dict = dataclasses.field(default_factory=dict)  # model_core.candidates.Choice.to_dict()
    peer_ridge_model: str | None = None  # the peer ridge's .npz in the version's folder
    # member -> weight in the blend; empty in files written before the peer ridge, whose blend was
    # the transformer (blend_weight) and the LightGBM (the rest)
    blend_weights: dict = dataclasses.field(default_factory=dict)

    def save(self, folder: Path) -> Path:
        path = Path(folder) / ENSEMBLE_FILE
        write_text_atomic(path, json.dumps(dataclasses.asdict(self), indent=2))
        return path

    def member_weights(self) -> dict[str, float]:
        """The blend's weight of each member (old files: derived from blend_weight)."""
        return dict(self.blend_weights) or legacy_blend_weights(self.blend_weight)

    @classmethod
    def load(cls, folder: Path) -> EnsembleSpec:
        path = Path(folder) / ENSEMBLE_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path}: no ensemble here (materialise ensemble_weights first)")
        return cls(**json.loads(path.read_text()))


class Ensemble:
    """The models of one model version, loaded once, and how they are blended.

    members "live": what is submitted, the chosen candidate made of the refit models (the fold
    models when the version has no refits). members "folds": the transformer fold models with
    their fitted weights, the cross-validated models whose test-block figures are reported.
    """

    def __init__(self, folder: Path, device: torch.device = CPU, members: str = "live"):
        spec = EnsembleSpec.load(folder)
        if len(spec.checkpoints) != len(spec.weights):
            raise ValueError(
                f"ensemble {spec.model_version}: {len(spec.checkpoints)} checkpoints but "
                f"{len(spec.weights)} weights"
            )
        if members not in ("live", "folds"):
            raise ValueError(f"members {members!r}: expected 'live' or 'folds'")
        if spec.candidate not in CANDIDATES:
            raise ValueError(f"ensemble {spec.model_version}: unknown candidate {spec.candidate!r}")
        self.spec, self.device = spec, device
        self.folder = Path(folder)
        live = members == "live" and bool(spec.live_checkpoints or spec.lgbm_model or spec.peer_ridge_model)
        self.candidate = spec.candidate if live else TRANSFORMER
        self.blend_weights = spec.member_weights() if self.candidate == BLEND else {}
        used = members_used(self.candidate, self.blend_weights)
        names, self.weights = spec.checkpoints, list(spec.weights)
        if live and spec.live_checkpoints:
            names, self.weights = spec.live_checkpoints, list(equal_weights(len(spec.live_checkpoints)))
        self.models: list[EraTransformer] = []
        if TRANSFORMER in used:
            self.models = [load_trained(self.folder / c, device)[0] for c in names]
        self.lgbm = self.peer_ridge = None
        if LGBM in used:
            if not spec.lgbm_model:
                raise ValueError(f"ensemble {spec.model_version}: candidate {spec.candidate} has no LightGBM")
            self.lgbm = load_lgbm(self.folder / spec.lgbm_model)
        if PEER_RIDGE in used:
            if not spec.peer_ridge_model:
                raise ValueError(
                    f"ensemble {spec.model_version}: candidate {spec.candidate} has no peer ridge"
                )
            self.peer_ridge = load_peer_ridge(self.folder / spec.peer_ridge_model, len(spec.features))

    @property
    def model_version(self) -> str:
        return self.spec.model_version

    @torch.no_grad()
    def predict_members(
        self, features: np.ndarray, context: np.ndarray | None, cross_stock: bool | None = None
    ) -> list[np.ndarray]:
        """Each fold model's raw scores of one era: features (N, F) int8, context (K, F) or None.

        The era is copied into one batch for all the models, and its stock graph is built once
        and shared by the models whose graph it is.
        """
        batch = _era_batch(self.models, features, context, self.device)
        graphs: dict[tuple, object] = {}
        out = []
        for model in self.models:
            graph = None
            if (model.config.cross_stock if cross_stock is None else cross_stock) and model.config.n_layers:
                if model.graph_key not in graphs:
                    graphs[model.graph_key] = model.stock_graph(batch.features, batch.mask)
                graph = graphs[model.graph_key]
            out.append(_scores(model, batch, cross_stock, graph))
        return out

    def predict(
        self, features: np.ndarray, context: np.ndarray | None, weights: Sequence[float] | None = None
    ) -> np.ndarray:
        """The ensemble's predictions of one era, in (0, 1]: weighted mean of within-era ranks
        (weights: of the transformer members, default the version's), then the candidate's blend."""
        if self.candidate == LGBM:
            return rank_within_era(predict_lgbm(self.lgbm, features))
        if self.candidate == PEER_RIDGE:
            return rank_within_era(predict_peer_ridge(self.peer_ridge, features))
        members: dict[str, np.ndarray] = {}
        if self.models:
            fold_scores = self.predict_members(features, context)
            members[TRANSFORMER] = blend(fold_scores, self.weights if weights is None else weights)
        if self.candidate == TRANSFORMER:
            return members[TRANSFORMER]
        if self.lgbm is not None:
            members[LGBM] = predict_lgbm(self.lgbm, features)
        if self.peer_ridge is not None:
            members[PEER_RIDGE] = predict_peer_ridge(self.peer_ridge, features)
        return blend_ranks(members, self.blend_weights)


@torch.no_grad()
def predict_era(
    model: EraTransformer,
    features: np.ndarray,
    context: np.ndarray | None,
    device: torch.device = CPU,
    cross_stock: bool | None = None,
    graph=None,
) -> np.ndarray:
    """One model's scores for the N stocks of one era, float64 (N,), in the features' row order.

    context must come from `TemporalContext.for_era` (lag 1 first) when the model has a temporal
    encoder, and is ignored when it has none. graph: `model.stock_graph` of these features, when
    another model of the ensemble already built it.
    """
    return _scores(model, _era_batch([model], features, context, device), cross_stock, graph)


def _era_batch(models: Sequence[EraTransformer], features: np.ndarray, context: np.ndarray | None, device):
    """One era as a batch of one, with the context when any of `models` reads it."""
    if features.shape[0] == 0:
        raise ValueError("cannot predict an era with no rows")
    lags = max(m.config.temporal_lags for m in models)
    if lags == 0:
        context = None
    elif context is None:
        raise ValueError(f"this model reads {lags} lags of context; none given")
    return live_batch(features, context).to(device)


def _scores(model: EraTransformer, batch, cross_stock: bool | None, graph) -> np.ndarray:
    """A model without a temporal encoder ignores the batch's context."""
    model.eval()
    scores = model(
        batch.features, batch.mask, batch.context, cross_stock=cross_stock, graph=graph
    )  # (1, N, O)
    return scores[0, :, 0].float().cpu().numpy().astype(np.float64)
