"""Report of the era backfill benchmark (bench/backfill.py): the fit of total time against eras,
the table of runs and the RESULTS.md section text.
"""

from __future__ import annotations

import argparse

from backfill_home import HISTORY_ERAS, N_FOLDS
from common import command_line, load_average, machine_description, markdown_table, today

CONTENDED_SHARE = 0.10  # others' share of the CPUs during a row above which the row is flagged CONTENDED


def fit_line(results: list[dict]) -> tuple[float, float]:
    """Least squares total_s = a + b * eras over the glue rows: (a, b)."""
    import numpy as np

    x = np.array([r["eras"] for r in results], dtype=float)
    y = np.array([r["total_s"] for r in results])
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def report(args: argparse.Namespace, results: list[dict], quiet: str, setup_s: float) -> str:
    glue = [r for r in results if r["kind"] == "glue"]
    a, b = fit_line(glue) if len(glue) >= 2 else (float("nan"), float("nan"))
    header = [
        "run",
        "eras",
        "total (s)",
        "model load (s)",
        "per era (s)",
        "predict (s/era)",
        "score (s/era)",
        "first era (s)",
        "peak RSS (MiB)",
        "others' CPU",
    ]
    rows = [
        [
            "glue" if r["kind"] == "glue" else "Dagster step",
            str(r["eras"]),
            f"{r['total_s']:.1f}",
            f"{r['load_s']:.2f}",
            f"{r['per_era_s']:.2f}",
            f"{r['predict_s']:.2f}",
            f"{r['score_s']:.2f}",
            "–" if r["first_era_s"] != r["first_era_s"] else f"{r['first_era_s']:.2f}",
            f"{r['peak_rss_mib']:,.0f}",
            f"{r['others']:.0%}" + (" CONTENDED" if r["contended"] else ""),
        ]
        for r in results
    ]
    flagged = [f"{r['kind']} {r['eras']}" for r in results if r["contended"]]
    return "\n".join(
        [
            "## Era backfill (bench/backfill.py)",
            "",
            f"- date: {today()}",
            f"- command: `{command_line()}`",
            f"- machine: {machine_description()}",
            f"- other load: {quiet}; "
            + (
                f"CONTENDED rows (others took > {CONTENDED_SHARE:.0%} of the CPUs): {', '.join(flagged)}"
                if flagged
                else f"others took at most {max(r['others'] for r in results):.0%} of the CPUs during any row"
            )
            + f"; load average at the end {load_average()}",
            f"- workload: synthetic eras of {args.stocks:,} stocks x {args.features:,} int8 features "
            f"(random 0..4) in a temporary era store ({setup_s:.0f} s to write), {HISTORY_ERAS} earlier "
            f"eras for a full temporal context; an untrained ensemble of {N_FOLDS} default-size fold "
            "models (d_model 64, 2 layers, 4 heads, 8 lags, prior `bias`), CPU inference; a benchmark "
            "and a meta model file cover every era (BMC and MMC computed); no FNC (backfills skip it)",
            f"- fit over the glue rows: total = {a:.1f} s + {b:.2f} s x eras",
            "",
            *markdown_table(header, rows),
            "",
            "glue = one backfill run in its own process through `numerai_assets.backfill.eras."
            "backfill_eras`, what the era_predictions / era_scores step calls: the ensemble, era store, "
            "temporal context and references loaded once (model load), then each era predicted (file "
            "written) and scored. per era = (total - model load) / eras. first era = the first era's "
            "predict + score (warm-up). Dagster step = the real asset step in a ranged run through "
            "`dagster.materialize` (run bookkeeping, warehouse upsert, per-era materialisations and the "
            "diagnostics plots included); its predict / score come from the step's metadata. "
            "total excludes the interpreter and imports. others' CPU = share of all CPUs' time other "
            "processes used during the row (above "
            f"{CONTENDED_SHARE:.0%}: CONTENDED, wall times pessimistic).",
            "",
        ]
    )
