"""What a trained transformer (fold_model_k, refit_model_k) shows on its asset page: the
per-epoch table, the training curve (an inline chart), the eras it trained and stopped on, and
the settings it trained with."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import dagster as dg

from model_core.inline_chart import Panel
from numerai_assets.shared.ui_metadata import era_span, inline_chart, table

EPOCH_COLUMNS = {
    "epoch": "int",
    "train_loss": "float",
    "val_corr_mean": "float",
    "val_corr_sharpe": "float",
    "learning_rate": "float",
    "seconds": "float",
    "rows_per_s": "float",
    "best_so_far": "bool",
}
REFIT_EPOCH_COLUMNS = {k: v for k, v in EPOCH_COLUMNS.items() if not k.startswith(("val_", "best"))}
SETTING_COLUMNS = {"part": "string", "setting": "string", "value": "string"}


def epoch_rows(history: Sequence, train_config) -> list[dict]:
    """One row per epoch of a TrainResult's history; the learning rate each epoch ended with
    (model_core.train.learning_rate: warm-up in the first epoch, then lr_decay per epoch)."""
    from model_core.train import learning_rate

    return [
        {
            "epoch": h.epoch,
            "train_loss": h.train_loss,
            "val_corr_mean": h.val_corr_mean,
            "val_corr_sharpe": h.val_corr_sharpe,
            "learning_rate": learning_rate(train_config, h.epoch - 1, 1.0),
            "seconds": h.seconds,
            "rows_per_s": round(h.rows_per_s),
            "best_so_far": h.improved,
        }
        for h in history
    ]


def settings_rows(model_config, train_config, batches: dict[str, object]) -> list[dict]:
    """The model config, the training loop's config and the batch knobs, one setting a row."""
    parts = {
        "model": model_config.to_dict(),
        "training": dataclasses.asdict(train_config),
        "batches": batches,
    }
    return [
        {"part": part, "setting": name, "value": str(value)}
        for part, values in parts.items()
        for name, value in values.items()
    ]


def fold_metadata(run) -> dict:
    """fold_model_k's metadata from a folds.FoldRun."""
    result, fold = run.result, run.fold
    history = result.history
    curve = [
        Panel(
            "validation CORR", {"val CORR": [h.val_corr_mean for h in history]}, marker=result.best_epoch - 1
        ),
        Panel("train loss", {"loss": [h.train_loss for h in history]}),
    ]
    return {
        "model_version": run.model_version,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "val_corr_mean": result.best_val_corr,
        "val_corr_sharpe": history[result.best_epoch - 1].val_corr_sharpe,
        "rows_per_s": round(sum(h.rows_per_s for h in history) / len(history), 1),
        "train_rows": run.rows,
        "device": result.device,
        "training_curve": inline_chart(
            f"fold {fold.index} training curve", curve, f"epochs 1..{len(history)}, best {result.best_epoch}"
        ),
        "epochs": table(epoch_rows(history, run.train_config), EPOCH_COLUMNS),
        "train_eras": era_span(fold.train_eras),
        "validation_eras": era_span(fold.validation_eras),
        "purge_gap": run.gap,
        "settings": table(settings_rows(run.model_config, run.train_config, run.batches), SETTING_COLUMNS),
        "checkpoint": dg.MetadataValue.path(str(result.checkpoint)),
    }


def refit_curve_and_tables(
    result, train_config, model_config, batches: dict, fold_best: Sequence[int]
) -> dict:
    """A transformer refit's epochs: no validation eras, so the count is the folds' choice."""
    history = result.history
    curve = [Panel("train loss", {"loss": [h.train_loss for h in history]})]
    return {
        "epochs_from": f"fixed by cross-validation: the median of the folds' best epochs {list(fold_best)}; "
        "no validation eras, no early stopping",
        "training_curve": inline_chart("refit training curve", curve, f"epochs 1..{len(history)}"),
        "epochs": table(epoch_rows(history, train_config), REFIT_EPOCH_COLUMNS),
        "settings": table(settings_rows(model_config, train_config, batches), SETTING_COLUMNS),
    }
