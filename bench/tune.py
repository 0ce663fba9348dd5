"""Choose model settings on validation eras only: train one variation on the early eras of an era
store, score it per era on later validation eras, save its predictions for `bench/tune_report.py`.

The split stays clear of the eras a replay reports: by default it trains on eras up to 316 and
validates on 333..402 of the `eval` replay's served data (the replay holds out 407..446). Each
call trains one variation (settings as NUMERAI_* knob names, e.g. `--set peer_knn=50`), one
seed, and writes `<out>/<name>.npz` (every output of the model per validation era) and
`<out>/<name>.json` (the per-epoch validation CORR).

    .venv/bin/python bench/tune.py --store HOME/clean_eras/current --name k50 --set peer_knn=50
    .venv/bin/python bench/tune_report.py --store HOME/clean_eras/current
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_core.batches import EraBatches, TemporalContext
from model_core.era_store import EraStore
from model_core.train import load_trained, train_fold
from numerai_assets.training.resources import TrainingKnobs

DEFAULT_OUT = Path(__file__).resolve().parent / ".cache" / "tune"


def split(store: EraStore, train_end: int, val_start: int, val_end: int) -> tuple[list[str], list[str]]:
    """Resolved eras up to train_end, and from val_start to val_end (era labels are numbers)."""
    resolved = store.resolved_eras()
    train = [e for e in resolved if int(e) <= train_end]
    val = [e for e in resolved if val_start <= int(e) <= val_end]
    if not train or not val:
        raise SystemExit(
            f"{store.path}: no eras for train <= {train_end} or validation {val_start}..{val_end}"
        )
    return train, val


def knobs_from(settings: list[str], seed: int) -> TrainingKnobs:
    """`name=value` pairs onto the service's training knobs, typed like the defaults."""
    defaults = TrainingKnobs()
    values = {}
    for pair in settings:
        name, _, value = pair.partition("=")
        if not hasattr(defaults, name):
            raise SystemExit(f"--set {pair}: {name!r} is not a training knob")
        kind = type(getattr(defaults, name))
        values[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return TrainingKnobs(seed=seed, **values)


def temporal_context(store: EraStore, lags: int) -> TemporalContext | None:
    """The home's feature returns (next to clean_eras), as the service reads them."""
    if lags == 0:
        return None
    import polars as pl

    path = store.path.parent.parent / "features" / "feature_returns.parquet"
    return TemporalContext(pl.read_parquet(path), lags, all_eras=store.eras)


@torch.no_grad()
def predict(checkpoint: Path, store: EraStore, eras: list[str], context) -> dict[str, np.ndarray]:
    """Every output of the trained model for each era, (n, outputs) float32."""
    model, _ = load_trained(checkpoint)
    model.eval()
    out = {}
    for era in eras:
        data = store.era(era)
        ctx = None if context is None else torch.from_numpy(context.for_era(era)[None])
        mask = torch.ones(1, len(data.ids), dtype=torch.bool)
        out[era] = model(torch.from_numpy(data.features)[None], mask, ctx)[0].float().numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="a clean_eras folder (an era store)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--targets", default="target", help="comma-separated: the first is scored, others are aux heads"
    )
    parser.add_argument("--set", dest="settings", action="append", default=[], help="knob=value (repeatable)")
    parser.add_argument("--train-end", type=int, default=316)
    parser.add_argument("--val-start", type=int, default=333)
    parser.add_argument("--val-end", type=int, default=402)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    store = EraStore(args.store)
    train, val = split(store, args.train_end, args.val_start, args.val_end)
    knobs = knobs_from(args.settings, args.seed)
    targets = args.targets.split(",")
    context = temporal_context(store, knobs.temporal_lags)
    model_config = dataclasses.replace(knobs.to_model_config(len(store.features)), n_outputs=len(targets))
    batches = {
        "train": EraBatches(
            store,
            train,
            eras_per_batch=knobs.eras_per_batch,
            targets=targets,
            shuffle=True,
            seed=args.seed,
            context=context,
        ),
        "val": EraBatches(store, val, eras_per_batch=knobs.eras_per_batch, targets=targets, context=context),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.out / f"{args.name}.pt"
    checkpoint.unlink(missing_ok=True)  # a fresh run, not a resume of an older variation
    started = time.perf_counter()

    def progress(epoch) -> None:
        print(
            f"{args.name} epoch {epoch.epoch}: validation CORR {epoch.val_corr_mean:.4f}, {epoch.rows_per_s:,.0f} rows/s",
            flush=True,
        )

    result = train_fold(
        model_config, knobs.to_train_config(), batches["train"], batches["val"], checkpoint, progress=progress
    )
    seconds = time.perf_counter() - started
    np.savez(args.out / f"{args.name}.npz", **predict(checkpoint, store, val, context))
    summary = {
        "name": args.name, "seed": args.seed, "settings": args.settings, "targets": targets,
        "train_eras": [train[0], train[-1], len(train)], "val_eras": [val[0], val[-1], len(val)],
        "best_epoch": result.best_epoch, "best_val_corr": result.best_val_corr, "seconds": round(seconds),
        "history": [h.val_corr_mean for h in result.history],
    }  # fmt: skip
    (args.out / f"{args.name}.json").write_text(json.dumps(summary, indent=1))
    print(
        f"{args.name}: best epoch {result.best_epoch}, validation CORR {result.best_val_corr:.4f}, {seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
