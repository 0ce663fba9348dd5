"""Report of the quality benchmark (bench/quality.py): the results and per-fold tables, the verdict
against the LightGBM, and the RESULTS.md section text.
"""

from __future__ import annotations

import numpy as np
from common import command_line, load_average, machine_description, markdown_table, today
from quality_data import LGBM_PARAMS, Scored
from quality_ensemble import BATCH_FIELDS, SEED_STRIDE

TARGET_CORR_NOTE = "the ensemble's CORR mean and Sharpe at or above the LightGBM's"


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def results_table(rows: list[Scored]) -> list[str]:
    header = [
        "model",
        "features",
        "CORR mean",
        "std",
        "Sharpe",
        "max drawdown",
        "attention reliance",
        "val CORR",
        "train s",
        "train CPU s",
        "others' CPU",
    ]
    lines = []
    for r in rows:
        s = r.summary
        lines.append(
            [
                r.name + (f" ({r.note})" if r.note else ""),
                r.feature_set,
                fmt(s["mean"]),
                fmt(s["std"]),
                fmt(s["sharpe"], 3),
                fmt(s["max_drawdown"]),
                fmt(r.reliance, 3),
                fmt(r.val_corr),
                "-" if r.train_s is None else f"{r.train_s:.0f}",
                "-" if r.cpu_s is None else f"{r.cpu_s:.0f}",
                "-" if r.others is None else f"{r.others:.0%}",
            ]
        )
    return markdown_table(header, lines)


def folds_table(ensembles: list[dict]) -> list[str]:
    header = [
        "ensemble",
        "fold",
        "seed",
        "train eras",
        "epochs (best)",
        "val CORR",
        "val CORR per epoch",
        "test CORR",
        "s",
        "rows/s",
    ]
    rows = [
        [
            f"{e['feature_set']}/{e['name']}",
            str(f["fold"]),
            str(f["seed"]),
            str(f["train_eras"]),
            f"{f['epochs_run']} ({f['best_epoch']})",
            fmt(f["val_corr"]),
            " ".join(f"{v:.3f}" for v in f["val_history"]),
            fmt(f["test_corr"]),
            f"{f['seconds']:.0f}",
            f"{f['rows_per_s']:,.0f}",
        ]
        for e in ensembles
        for f in e["folds"]
    ]
    return markdown_table(header, rows)


def paired(a: Scored, b: Scored) -> str:
    """Per-era difference a - b: mean, its standard error and t (the eras are the same)."""
    diff = np.asarray(a.corrs) - np.asarray(b.corrs)
    diff = diff[~np.isnan(diff)]
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    return f"per-era difference {diff.mean():+.4f} +- {se:.4f} (t = {diff.mean() / se:+.1f})"


def beats(a: Scored, b: Scored) -> bool:
    return a.summary["mean"] >= b.summary["mean"] and a.summary["sharpe"] >= b.summary["sharpe"]


def verdict(main: Scored, lgbm: dict[str, Scored], tried: list[Scored]) -> list[str]:
    """The target line, then every tried variation against the LightGBM of its own feature set."""
    b = lgbm[main.feature_set]
    m, r = main.summary, b.summary
    lines = [
        f"**Target ({TARGET_CORR_NOTE}): {'met' if beats(main, b) else 'NOT met'}** on the "
        f"`{main.feature_set}` feature set: the ensemble scores CORR {m['mean']:.4f} (Sharpe "
        f"{m['sharpe']:.2f}) against the LightGBM's {r['mean']:.4f} (Sharpe {r['sharpe']:.2f}) on the "
        f"same {len(main.corrs)} test eras; {paired(main, b)}.",
        "",
    ]
    for t in tried:
        ref = lgbm[t.feature_set]
        lines.append(
            f"- {t.name} (`{t.feature_set}`): CORR {t.summary['mean']:.4f}, Sharpe {t.summary['sharpe']:.2f} "
            f"vs LightGBM `{t.feature_set}` {ref.summary['mean']:.4f} / {ref.summary['sharpe']:.2f}: "
            f"{'at or above it on both' if beats(t, ref) else 'not at or above it on both'}; {paired(t, ref)}"
        )
    return lines


def report(
    args, rows: list[Scored], ensembles: list[dict], main: Scored, lgbm: dict[str, Scored], tried, context
) -> str:
    base = ", ".join(f"{k}={v}" for k, v in sorted(args.base.items())) or "TrainConfig / ModelConfig defaults"
    lines = [
        f"## Quality on the {args.scale} tournament (bench/quality.py)",
        "",
        f"- date: {today()}",
        f"- command: `{command_line()}`",
        f"- machine: {machine_description()}",
        f"- other load: {context['quiet']}; load average at the end {load_average()}",
        f"- data: `{args.scale}` tournament, seed {args.seed}; {context['data']}",
        f"- ensemble settings (all ensembles, on top of the defaults): {base}; eras_per_batch "
        f"{args.base.get('eras_per_batch', BATCH_FIELDS['eras_per_batch'])}; one model per fold (`seeds=k`: k "
        f"per fold, TrainConfig seed + {SEED_STRIDE} j), data order seeded by that seed + the fold index; "
        "ensemble = mean of the models' per-era ranks; the ablations and variations change only what "
        "their name says",
        f"- LightGBM: {', '.join(f'{k}={v}' for k, v in LGBM_PARAMS.items())}; trained on the "
        f"{context['lgbm_eras']} eras before the gap (last fold's train + validation eras), MISSING -> 2",
        f"- total wall time of the run: {context['total_s'] / 60:.1f} min",
        "",
        *results_table(rows),
        "",
        "CORR = Numerai's per-era CORR (`numerai_tools.scoring.numerai_corr`) on `target`, over the test "
        "eras; Sharpe = mean / std (ddof 0); max drawdown of the cumulative per-era CORR. Attention "
        "reliance = per-era correlation between the ensemble's scores and the same fold models' "
        "scores with cross-stock mixing switched off at inference (`model(..., cross_stock=False)`), "
        "averaged over the test eras: near 1 means the attention across stocks is not used. "
        '"mixing off at inference" is that second set of scores, scored. val CORR = mean over the '
        "folds of the best validation CORR (each fold's own validation eras, before the test block: "
        "the figure to choose settings by; the test eras are kept for this report). train s = wall "
        "seconds of `train_fold` over the ensemble's folds (validation passes included); train CPU s "
        "= this process's CPU time over the same (all threads); others' CPU = share of all CPUs' "
        "time that other processes used meanwhile (/proc/stat minus ours): well above 0, the "
        "machine was shared and the wall seconds are pessimistic.",
        "",
        *verdict(main, lgbm, tried),
        "",
        "<details><summary>per fold</summary>",
        "",
        *folds_table(ensembles),
        "",
        "</details>",
        "",
    ]
    if args.notes:
        lines += [*args.notes, ""]
    return "\n".join(lines)
