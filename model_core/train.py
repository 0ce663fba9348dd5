"""Training one fold: one readable loop.

AdamW; mixed precision written out (bf16 autocast on CPU or CUDA, fp16 + GradScaler on CUDA);
optional gradient checkpointing; clipping; early stopping on the validation eras' mean per-era
numerai_corr; a checkpoint written atomically after every epoch, from which a killed run resumes
and ends where an uninterrupted one would (the data order and dropout are seeded per epoch).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from model_core.atomic import atomic_path
from model_core.batches import EraBatches
from model_core.knobs import default
from model_core.losses import make_loss
from model_core.metrics import era_numerai_corr, summarise_corrs
from model_core.model import EraTransformer, ModelConfig

CHECKPOINT_FORMAT = 1
CPU = torch.device("cpu")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = default("max_epochs")
    learning_rate: float = default("learning_rate")
    weight_decay: float = 0.05
    loss: str = default("loss")
    patience: int = default("patience")  # epochs without a better validation CORR before stopping
    # The learning rate warms up linearly over the first epoch, then decays by `lr_decay` per
    # epoch. The schedule depends on the epoch only (never on max_epochs), so a refit run for
    # the epoch count the folds chose follows exactly the path the folds took.
    lr_decay: float = default("lr_decay")
    grad_clip: float = 1.0
    precision: str = default("precision")  # fp32 | bf16 | fp16 (fp16 needs CUDA)
    gradient_checkpointing: bool = default("gradient_checkpointing")
    seed: int = default("seed")

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision {self.precision!r}: expected fp32, bf16 or fp16")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError(f"lr_decay {self.lr_decay}: expected 0 < lr_decay <= 1")


@dataclasses.dataclass(frozen=True)
class EpochReport:
    epoch: int  # 1-based
    train_loss: float
    val_corr_mean: float
    val_corr_sharpe: float
    rows_per_s: float
    seconds: float
    improved: bool


@dataclasses.dataclass(frozen=True)
class TrainResult:
    best_epoch: int
    best_val_corr: float
    history: list[EpochReport]
    epochs_run: int
    stopped_early: bool
    checkpoint: Path
    device: str


def resolve_device(spec: str, fold_index: int = 0) -> torch.device:
    """`auto` | `cpu` | `cuda` | `cuda:N`; with several GPUs, fold k goes to GPU k mod n."""
    if spec == "cpu" or (spec == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} asked for, but CUDA is not available on this machine")
    if spec.startswith("cuda:"):
        return torch.device(spec)
    return torch.device(f"cuda:{fold_index % torch.cuda.device_count()}")


def train_fold(
    model_config: ModelConfig,
    config: TrainConfig,
    train_batches: EraBatches,
    val_batches: EraBatches | None,
    checkpoint: Path,
    device: torch.device = CPU,
    progress: Callable[[EpochReport], None] | None = None,
) -> TrainResult:
    """Train until max_epochs or early stopping; resumes from `checkpoint` when it exists.

    val_batches None is a refit: no early stopping, exactly max_epochs epochs (the count the
    folds chose), and the last epoch's weights are the model's.
    """
    if config.precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; use bf16 on CPU")
    torch.manual_seed(config.seed)
    model = EraTransformer(dataclasses.replace(model_config, checkpointing=config.gradient_checkpointing)).to(
        device
    )
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.learning_rate)
    scaler = torch.amp.GradScaler("cuda", enabled=config.precision == "fp16")
    loss_fn = make_loss(config.loss)
    state = _resume(checkpoint, model, optimizer, model_config, config)
    steps_per_epoch = max(1, len(train_batches))
    # Subsampled eras differ every epoch, so only whole eras can keep their peers.
    train_peers = PeerCache(model_config.peer_knn, enabled=train_batches.max_stocks is None)
    val_peers = PeerCache(model_config.peer_knn)

    while state["epoch"] < config.max_epochs and state["bad_epochs"] < config.patience:
        epoch = state["epoch"]
        torch.manual_seed(config.seed * 10_007 + epoch)  # dropout draws depend on the epoch only
        train_batches.set_epoch(epoch)
        started = time.perf_counter()
        model.train()
        losses = []
        for step, batch in enumerate(train_batches):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, epoch, step / steps_per_epoch)
            batch = batch.to(device)
            with _autocast(device, config.precision):
                peers = train_peers.for_batch(batch)
                scores = model(batch.features, batch.mask, batch.context, peers=peers)  # (E, N, O)
            loss = loss_fn(scores.float(), batch.targets[..., : scores.shape[-1]], batch.mask)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
        seconds = time.perf_counter() - started
        if val_batches is None:  # a refit: every epoch is the best so far, the last one is kept
            summary = {"mean": float("nan"), "sharpe": float("nan")}
            improved = True
        else:
            summary = summarise_corrs(evaluate(model, val_batches, device, config.precision, val_peers))
            improved = summary["mean"] > state["best_val_corr"] or state["best_epoch"] == 0
        if improved:
            state.update(best_val_corr=summary["mean"], best_epoch=epoch + 1, bad_epochs=0)
            state["best_model"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            state["bad_epochs"] += 1
        report = EpochReport(
            epoch=epoch + 1,
            train_loss=float(np.mean(losses)) if losses else float("nan"),
            val_corr_mean=summary["mean"],
            val_corr_sharpe=summary["sharpe"],
            rows_per_s=train_batches.rows / seconds if seconds > 0 else float("nan"),
            seconds=seconds,
            improved=improved,
        )
        state["history"].append(dataclasses.asdict(report))
        state["epoch"] = epoch + 1
        _save(checkpoint, model, optimizer, model_config, config, state)
        if progress:
            progress(report)

    return TrainResult(
        best_epoch=state["best_epoch"],
        best_val_corr=state["best_val_corr"],
        history=[EpochReport(**h) for h in state["history"]],
        epochs_run=state["epoch"],
        stopped_early=state["bad_epochs"] >= config.patience,
        checkpoint=Path(checkpoint),
        device=str(device),
    )


class PeerCache:
    """Each era's k most similar stocks, found once per training run instead of once per epoch.

    The peers come from the raw features only (no weights, no targets), so an era's are the same
    every epoch; finding them is most of a per-row model's step at 2,000+ stocks. Kept on the CPU
    as int16/int32 indices (n x k per era: ~0.4 MB at 2,000 stocks and k = 100).
    """

    def __init__(self, k: int, enabled: bool = True):
        self.k, self.enabled = k, enabled and k > 0
        self.eras: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def for_batch(self, batch) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(neighbours (E, N, k) long, ok (E, N, k) bool) of the batch, or None (the model finds them)."""
        if not self.enabled:
            return None
        from model_core.layers import nearest_stocks

        E, N = batch.mask.shape
        parts = []
        for e, era in enumerate(batch.eras):
            n = int(batch.mask[e].sum())
            if era not in self.eras:
                index, ok, _ = nearest_stocks(
                    batch.features[e : e + 1, :n], batch.mask[e : e + 1, :n], self.k
                )
                small = torch.int16 if n < 2**15 else torch.int32
                self.eras[era] = (index[0].to(torch.device("cpu"), small), ok[0].cpu())
            parts.append(self.eras[era])
        k = parts[0][0].shape[1] if parts else 0
        index = torch.zeros(E, N, k, dtype=torch.long)
        ok = torch.zeros(E, N, k, dtype=torch.bool)
        for e, (era_index, era_ok) in enumerate(parts):
            if era_index.shape[1] != k:  # an era smaller than k + 1 stocks found fewer peers
                return None
            index[e, : era_index.shape[0]] = era_index.long()
            ok[e, : era_ok.shape[0]] = era_ok
        device = batch.mask.device
        return index.to(device), ok.to(device)


def learning_rate(config: TrainConfig, epoch: int, progress: float) -> float:
    """The rate at `progress` (0..1) through 0-based `epoch`: linear warm-up during the first
    epoch (a cold AdamW step on a fresh embedding is the largest it ever takes), then
    `lr_decay` per epoch. A function of the epoch alone, so fold runs and refits agree."""
    if epoch == 0:
        return config.learning_rate * max(0.05, progress)
    return config.learning_rate * config.lr_decay**epoch


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and embedding tables only: decaying LayerNorm gains, biases and
    the similarity prior's scales pulls them to 0, which is no regularisation but a bias."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    keep = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]


@torch.no_grad()
def evaluate(
    model: EraTransformer,
    batches: EraBatches,
    device: torch.device,
    precision: str = "fp32",
    peers: PeerCache | None = None,
) -> list[float]:
    """numerai_corr of the first output against the first target, per era of `batches`."""
    model.eval()
    corrs = []
    for batch in batches:
        batch = batch.to(device)
        with _autocast(device, precision):
            found = peers.for_batch(batch) if peers is not None else None
            scores = model(batch.features, batch.mask, batch.context, peers=found)[..., 0].float()
        for e in range(scores.shape[0]):
            real = batch.mask[e]
            corrs.append(
                era_numerai_corr(scores[e][real].cpu().numpy(), batch.targets[e, :, 0][real].cpu().numpy())
            )
    return corrs


def load_trained(checkpoint: Path, device: torch.device = CPU) -> tuple[EraTransformer, dict]:
    """The best weights of a checkpoint, in eval mode, and its metadata (configs, history)."""
    saved = torch.load(checkpoint, map_location=device, weights_only=True)
    model = EraTransformer(ModelConfig.from_dict(saved["model_config"])).to(device)
    model.load_state_dict(saved["best_model"])
    model.eval()
    return model, {
        k: saved[k] for k in ("model_config", "train_config", "history", "best_epoch", "best_val_corr")
    }


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _resume(checkpoint: Path, model, optimizer, model_config: ModelConfig, config: TrainConfig) -> dict:
    fresh = {
        "epoch": 0,
        "best_val_corr": -math.inf,
        "best_epoch": 0,
        "bad_epochs": 0,
        "history": [],
        "best_model": None,
    }
    if not Path(checkpoint).exists():
        return fresh
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if saved.get("format") != CHECKPOINT_FORMAT or saved["model_config"] != model_config.to_dict():
        return fresh  # another model: start over rather than load mismatched weights
    if saved["train_config"] != dataclasses.asdict(config):
        return fresh
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    return {k: saved[k] for k in fresh}


def _save(
    checkpoint: Path, model, optimizer, model_config: ModelConfig, config: TrainConfig, state: dict
) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_config": model_config.to_dict(),
        "train_config": dataclasses.asdict(config),
        **state,
    }
    with atomic_path(Path(checkpoint)) as tmp:
        torch.save(payload, tmp)
