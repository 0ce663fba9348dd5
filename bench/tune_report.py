"""Score what `bench/tune.py` saved, per validation era (numerai_corr on `target`), against a base
variation: each run's first output, the mean of its heads when it has several, and the rank
average of every pair of runs (what averaging two seeds or two settings would give).

    .venv/bin/python bench/tune_report.py --store HOME/clean_eras/current --base A
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.tune import DEFAULT_OUT
from model_core.era_store import EraStore
from model_core.metrics import era_numerai_corr


def ranks(values: np.ndarray) -> np.ndarray:
    return (np.argsort(np.argsort(values, kind="stable"), kind="stable") + 0.5) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--base", required=True, help="the variation the others are compared with")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--pairs", action="store_true", help="also every pair's rank average")
    args = parser.parse_args()

    runs = {p.stem: dict(np.load(p)) for p in sorted(args.out.glob("*.npz"))}
    if args.base not in runs:
        raise SystemExit(f"{args.out}: no {args.base}.npz (have {sorted(runs)})")
    store = EraStore(args.store)
    eras = list(runs[args.base])
    targets = {era: store.era(era).targets[:, store.target_index("target")] for era in eras}

    def scores(preds: dict[str, np.ndarray]) -> np.ndarray:
        return np.array([era_numerai_corr(preds[era], targets[era]) for era in eras])

    rows = {name: scores({e: run[e][:, 0] for e in eras}) for name, run in runs.items()}
    for name, run in runs.items():
        if run[eras[0]].shape[1] > 1:
            rows[f"{name} (mean of heads)"] = scores({e: sum(ranks(c) for c in run[e].T) for e in eras})
    if args.pairs:
        for a, b in itertools.combinations(runs, 2):
            rows[f"{a} + {b}"] = scores({e: ranks(runs[a][e][:, 0]) + ranks(runs[b][e][:, 0]) for e in eras})

    base = rows[args.base]
    print(f"validation eras {eras[0]}..{eras[-1]} ({len(eras)}); base {args.base}\n")
    print("| variation | settings | best epoch | CORR mean | Sharpe | - base (± SE) |")
    print("| :-- | :-- | --: | --: | --: | --: |")
    for name, corr in rows.items():
        meta_path = args.out / f"{name}.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        settings = " ".join(meta.get("settings", [])) + (f" seed {meta['seed']}" if meta else "")
        diff = corr - base
        versus = (
            "-" if name == args.base else f"{diff.mean():+.4f} ± {diff.std(ddof=1) / np.sqrt(len(diff)):.4f}"
        )
        print(
            f"| {name} | {settings.strip()} | {meta.get('best_epoch', '-')} | {corr.mean():.4f} "
            f"| {corr.mean() / corr.std():.2f} | {versus} |"
        )


if __name__ == "__main__":
    main()
