"""The model knobs, each declared once: name, type, default, range and one line of doc.

The config dataclasses (`CleanConfig`, `CVConfig`, `ModelConfig`, `TrainConfig`, `WeightConfig`,
`BaselineConfig`, `PeerRidgeConfig`) take their defaults from here, and so does the service: `numerai_assets`' pydantic
`Settings` (environment variable `NUMERAI_<NAME>`), its Dagster resources and the README's tables
are built from these declarations, so a default cannot differ between the layers. A knob's name is
the setting's name; the dataclass field it feeds may be named otherwise (`purge_gap` is
`CVConfig.gap_eras`).

Plain Python: no torch, no pydantic, no environment. `group` says which README table lists it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal


@dataclasses.dataclass(frozen=True)
class Knob:
    name: str  # the setting's name (environment variable NUMERAI_<NAME>)
    type: Any  # its Python type, as annotated in Settings
    default: Any
    doc: str  # one line: the README's "meaning"
    group: str  # the README table it is listed in
    ge: float | None = None  # range: value >= ge, > gt, <= le, < lt (None: no bound)
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    pattern: str | None = None  # a regular expression a string value must match
    shown: str | None = None  # the README's "default" when the value itself says little (e.g. None)


KNOBS: tuple[Knob, ...] = (
    # Data (CleanConfig).
    Knob(
        "feature_set",
        str,
        "all",
        "a set of `features.json` (`small`, `medium`, `all`, `quantum`, a group such as `serenity`) "
        "or several, comma-separated (`medium,quantum`: their union)",
        "data",
        pattern=r"^\s*\w+(\s*,\s*\w+)*\s*$",
    ),
    Knob(
        "clean_eras_per_chunk",
        int,
        2,
        "eras decoded per read while cleaning (peak memory is about this many raw eras; more does not go faster)",
        "data",
        ge=1,
        le=1000,
    ),
    # Where training runs (model_core.train.resolve_device).
    Knob(
        "device",
        str,
        "auto",
        "`auto`, `cpu`, `cuda`, `cuda:N`",
        "execution",
        pattern=r"^(auto|cpu|cuda|cuda:\d+)$",
    ),
    # Folds (CVConfig).
    Knob(
        "n_folds",
        int,
        4,
        "purged expanding-window folds, one model each (`fold_model_0..N-1`)",
        "training",
        ge=1,
        le=32,
    ),
    Knob(
        "test_eras",
        int,
        52,
        "held-out eras at the end; no fold trains or early-stops on them",
        "training",
        ge=1,
    ),
    Knob("min_train_eras", int, 52, "training eras of the first fold, at least", "training", ge=1),
    Knob(
        "purge_gap",
        int | None,
        None,
        "eras between train and validation/test (16 when a 60-day target is used)",
        "training",
        ge=0,
        shown="8 or 16",
    ),
    # The training loop (TrainConfig) and its batches (EraBatches).
    # 12, not 20: on the eval tournament's fold 0 (62 training eras) validation CORR went 0.0401
    # at epoch 12 to 0.0423 at 20, +5% for 1.7x the time, and larger folds peak sooner.
    Knob(
        "max_epochs",
        int,
        12,
        "epochs per fold, at most: early stopping on validation CORR ends them (refits take the folds' median best)",
        "training",
        ge=1,
        le=1000,
    ),
    Knob(
        "patience",
        int,
        3,
        "epochs without a better validation CORR before stopping",
        "training",
        ge=1,
        le=100,
    ),
    Knob(
        "loss",
        str,
        "pearson",
        "`pearson`, `mse`, `sharpe`, or a mix such as `mix:pearson=0.7,mse=0.3`",
        "training",
        pattern=r"^(pearson|mse|sharpe|mix:.+)$",
    ),
    # The model (ModelConfig).
    Knob("d_model", int, 64, "model width", "training", ge=8, le=2048),
    Knob("n_layers", int, 2, "cross-sectional layers", "training", ge=0, le=32),
    Knob("n_heads", int, 4, "attention heads", "training", ge=1, le=64),
    Knob(
        "temporal_lags",
        int,
        0,
        "K resolved eras of feature returns for the regime encoder (0 = off)",
        "training",
        ge=0,
        le=256,
    ),
    Knob(
        "similarity_prior",
        Literal["bias", "knn", "none"],
        "bias",
        "`bias` (logits + feature similarity), `knn` (attend to the k most similar), `none`",
        "training",
    ),
    Knob(
        "cross_stock",
        bool,
        False,
        "attention across the stocks of an era (`false` = a per-row model)",
        "training",
    ),
    Knob(
        "peer_knn",
        int,
        100,
        "> 0: each stock's input also gets the mean embedding of its k most similar stocks (explicit peers)",
        "training",
        ge=0,
        le=1024,
    ),
    Knob(
        "feature_dropout",
        float,
        0.5,
        "share of feature values hidden (as missing) in training",
        "training",
        ge=0.0,
        lt=1.0,
    ),
    Knob(
        "learning_rate", float, 2e-3, "AdamW peak learning rate (weight decay 0.05)", "training", gt=0, le=1.0
    ),
    Knob(
        "lr_decay",
        float,
        0.85,
        "learning rate factor per epoch after a one-epoch warm-up (1 = constant)",
        "training",
        gt=0.0,
        le=1.0,
    ),
    # Two seeds: on validation eras (bench/tune.py, eval scale) the rank average of two seeds
    # scored +0.0016 +- 0.0002 CORR over one (2%), for one more refit (~8 min on 2 cores).
    Knob(
        "refit_seeds",
        int,
        2,
        "transformer refits for live (seeds), each on every resolved era",
        "training",
        ge=1,
        le=16,
    ),
    Knob("eras_per_batch", int, 4, "eras per optimisation step (padded)", "training", ge=1, le=256),
    Knob(
        "max_stocks",
        int | None,
        None,
        "subsample stocks per training era (bounds memory on huge eras)",
        "training",
        ge=16,
    ),
    Knob(
        "precision",
        Literal["fp32", "bf16", "fp16"],
        "fp32",
        "`fp32`, `bf16` (autocast, CPU or GPU), `fp16` (CUDA, with GradScaler)",
        "training",
    ),
    Knob(
        "gradient_checkpointing",
        bool,
        False,
        "recompute blocks in backward (less memory, more time)",
        "training",
    ),
    Knob("seed", int, 0, "seeds for data order, dropout and initialisation", "training"),
    # The ensemble (WeightConfig) and the LightGBM baseline (BaselineConfig).
    Knob(
        "ensemble_shrinkage",
        float,
        0.5,
        "ensemble weights: 0 = fitted on out-of-fold CORR, 1 = equal weights",
        "diagnostics",
        ge=0.0,
        le=1.0,
    ),
    Knob(
        "baseline_estimators",
        int,
        2000,
        "trees of the LightGBM candidate (the example scripts' value)",
        "diagnostics",
        ge=1,
        le=100_000,
    ),
    # The peer ridge candidate (PeerRidgeConfig). On validation eras of the eval tournament
    # (train <= era 316, validate 333..402) ks 30,100,300, the hop over 10 peers and lambda 3
    # scored best (README).
    Knob(
        "peer_ridge_ks",
        str,
        "30,100,300",
        "peer counts of the peer ridge candidate, increasing: its columns are a stock's features and, per k, "
        "the mean features of its k most similar stocks of the era (each k adds as many columns as features)",
        "diagnostics",
        pattern=r"^\s*\d+(\s*,\s*\d+)*\s*$",
    ),
    Knob(
        "peer_ridge_hop",
        int,
        10,
        "the peer ridge's second-hop block: the mean, over a stock's h nearest peers, of their own h-peer "
        "mean features (as many columns as features; 0 = off)",
        "diagnostics",
        ge=0,
        le=100_000,
    ),
    Knob(
        "peer_ridge_lambda",
        float,
        3.0,
        "ridge penalty of the peer ridge candidate, relative: lambda x the mean diagonal of the Gram matrix",
        "diagnostics",
        gt=0.0,
        le=1e6,
    ),
    # The weekly choice (model_core.candidates).
    Knob(
        "selection_metric",
        Literal["corr", "sharpe", "payout"],
        "corr",
        "what the out-of-fold comparison of the candidates maximises: mean CORR, its Sharpe, or the "
        "mean payout score over the eras with meta model values (CORR below 20 such eras)",
        "diagnostics",
    ),
    Knob(
        "candidate",
        Literal["auto", "transformer", "lgbm", "peer_ridge", "blend"],
        "auto",
        "`auto` (the best out of fold) or the candidate to submit whatever the figures say",
        "diagnostics",
    ),
)

KNOBS_BY_NAME: dict[str, Knob] = {knob.name: knob for knob in KNOBS}


def default(name: str) -> Any:
    """The declared default of knob `name` (what the config dataclasses use)."""
    return KNOBS_BY_NAME[name].default
