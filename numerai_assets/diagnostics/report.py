"""Diagnostics as a user reads them: Dagster metadata (plots, tables, plain numbers) and one HTML page.

Plain numbers go in the metadata so the Dagster UI plots them across materialisations; the
pictures go in as small embedded PNGs; the same pictures and tables make the self-contained HTML
report under NUMERAI_HOME/reports/<model version>/.
"""

from __future__ import annotations

import math
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from model_core.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from model_core.inline_chart import Panel
from numerai_assets.diagnostics.evaluate import Diagnostics
from numerai_assets.shared.payout_report import ERA_COLUMNS, era_rows, payout_metadata, payout_note
from numerai_assets.shared.ui_metadata import era_score_table, inline_chart, table

ROLLING_WINDOW = 20
# The per-era table on the asset page: the payout columns and the two a backfill does not compute.
PER_ERA_COLUMNS = {**ERA_COLUMNS, "FNC": "fnc", "max_exposure": "max_feature_exposure"}
METRIC_COLUMNS = {
    "corr mean": "corr_mean",
    "corr std": "corr_std",
    "sharpe": "corr_sharpe",
    "max drawdown": "corr_max_drawdown",
    "FNC": "fnc_mean",
    "BMC": "bmc_mean",
    "MMC": "mmc_mean",
    "CWMM": "cwmm_mean",
    "payout": "payout_mean",
    "payout sharpe": "payout_sharpe",
    "max exposure": "max_feature_exposure_mean",
    "churn corr": "churn_corr_mean",
}


def metrics_rows(diagnostics: Diagnostics) -> list[list[object]]:
    return [
        [name, *(summary.get(key, math.nan) for key in METRIC_COLUMNS.values())]
        for name, summary in diagnostics.summary.items()
    ]


def pictures(diagnostics: Diagnostics) -> dict[str, bytes]:
    from model_core import plots

    corrs = {name: [s.corr for s in rows] for name, rows in diagnostics.scores.items()}
    blends = {k: v for k, v in corrs.items() if not k.startswith("fold_")}
    out = {
        "cumulative_corr": plots.cumulative_corr_png(diagnostics.eras, corrs),
        "per_era_corr": plots.per_era_corr_png(diagnostics.eras, corrs["ensemble"]),
        "rolling_sharpe": plots.rolling_sharpe_png(diagnostics.eras, blends, ROLLING_WINDOW),
    }
    if diagnostics.importance:
        out["importance"] = plots.importance_png(diagnostics.importance)
    if diagnostics.cross_attention is not None:
        out["cross_attention"] = plots.cross_attention_png(diagnostics.cross_attention)
    if diagnostics.temporal_attention is not None:
        out["temporal_attention"] = plots.temporal_attention_png(diagnostics.temporal_attention)
    return out


def write_report(diagnostics: Diagnostics, report_dir: Path, images: dict[str, bytes]) -> Path:
    """index.html (self-contained), the PNGs, and per-era scores as CSV; every file written atomically."""
    from model_core.report import ReportSection, render_html

    header = ["model", *METRIC_COLUMNS]
    sections = [
        ReportSection(
            "Held-out test eras",
            text=f"{len(diagnostics.eras)} eras, {diagnostics.eras[0]}..{diagnostics.eras[-1]}; "
            f"ensemble weights {', '.join(f'{w:.3f}' for w in diagnostics.weights)}",
            tables=[(header, metrics_rows(diagnostics))],
            images=[
                (k, images[k]) for k in ("cumulative_corr", "per_era_corr", "rolling_sharpe") if k in images
            ],
        ),
        ReportSection(
            "Per era: the ensemble's CORR20, MMC, CWMM, BMC and payout estimate",
            text=payout_note(diagnostics.payout),
            tables=[(list(ERA_COLUMNS), era_rows(diagnostics.scores["ensemble"]))],
        ),
        ReportSection(
            "Feature importance",
            text="Drop in mean CORR when a feature group's values are shuffled within the era.",
            images=[(k, images[k]) for k in ("importance",) if k in images],
            tables=[(["group", "importance"], [[g, v] for g, v in diagnostics.importance.items()])],
        ),
        ReportSection(
            "Attention",
            text=attention_text(diagnostics),
            images=[(k, images[k]) for k in ("cross_attention", "temporal_attention") if k in images],
            tables=[(RELIANCE_HEADER, reliance_rows(diagnostics))] if diagnostics.reliance else [],
        ),
    ]
    html = render_html(f"numerai-tournament: model version {diagnostics.model_version}", sections)
    report_dir.mkdir(parents=True, exist_ok=True)
    for name, png in images.items():
        write_bytes_atomic(report_dir / f"{name}.png", png)
    with atomic_path(report_dir / "era_scores.csv") as tmp:
        era_scores_frame(diagnostics).write_csv(tmp)
    path = report_dir / "index.html"
    write_text_atomic(path, html)
    return path


RELIANCE_HEADER = ["model", "corr", "corr alone", "reliance"]
RELIANCE_TEXT = (
    "Reliance: mean test CORR with the other stocks of each era (explicit peers, cross-stock "
    "attention) minus the CORR of the same model scoring every stock alone."
)


def reliance_rows(diagnostics: Diagnostics) -> list[list[object]]:
    return [[name, r["corr"], r["corr_alone"], r["reliance"]] for name, r in diagnostics.reliance.items()]


def attention_text(diagnostics: Diagnostics) -> str:
    stats = diagnostics.attention_stats
    reliance = f" {RELIANCE_TEXT}" if diagnostics.reliance else ""
    if not stats:
        return f"This model has no cross-stock attention.{reliance}"
    return (
        f"Era {diagnostics.attention_era}, the heaviest-weighted fold model. Stocks are grouped into "
        "deciles of their prediction; each row shows where that decile's attention goes. "
        + ", ".join(f"{k}: {v:.3f}" for k, v in stats.items())
        + reliance
    )


def era_scores_frame(diagnostics: Diagnostics) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"model": name, **{k: v for k, v in vars(s).items()}}
            for name, rows in diagnostics.scores.items()
            for s in rows
        ]
    )


def metadata(diagnostics: Diagnostics, images: dict[str, bytes], report: Path) -> dict:
    from model_core.report import markdown_image, markdown_table

    ensemble = diagnostics.summary["ensemble"]
    header = ["model", *METRIC_COLUMNS]
    numbers = {
        "corr_mean": ensemble["corr_mean"],
        "corr_sharpe": ensemble["corr_sharpe"],
        "corr_std": ensemble["corr_std"],
        "max_drawdown": ensemble["corr_max_drawdown"],
        "fnc_mean": ensemble.get("fnc_mean", math.nan),
        "max_feature_exposure": ensemble.get("max_feature_exposure_mean", math.nan),
        "equal_weight_corr_mean": diagnostics.summary["equal_weight"]["corr_mean"],
    }
    for key in ("bmc_mean", "mmc_mean", "cwmm_mean", "payout_mean", "payout_sharpe", "churn_corr_mean"):
        if not math.isnan(ensemble.get(key, math.nan)):
            numbers[key] = ensemble[key]
    if "baseline_lgbm" in diagnostics.summary:
        numbers["baseline_lgbm_corr_mean"] = diagnostics.summary["baseline_lgbm"]["corr_mean"]
        numbers["baseline_lgbm_corr_sharpe"] = diagnostics.summary["baseline_lgbm"]["corr_sharpe"]
    plots_md = "\n\n".join(
        markdown_image(images[k], k.replace("_", " "))
        for k in ("cumulative_corr", "per_era_corr", "rolling_sharpe")
        if k in images
    )
    importance_md = "\n\n".join(
        [
            *(markdown_image(images[k], "feature group importance") for k in ("importance",) if k in images),
            markdown_table(["group", "importance"], [[g, v] for g, v in diagnostics.importance.items()]),
        ]
    )
    attention_md = "\n\n".join(
        [
            attention_text(diagnostics),
            *(
                markdown_image(images[k], k.replace("_", " "))
                for k in ("cross_attention", "temporal_attention")
                if k in images
            ),
            *([markdown_table(RELIANCE_HEADER, reliance_rows(diagnostics))] if diagnostics.reliance else []),
        ]
    )
    extra = {}
    if diagnostics.reliance:
        numbers["attention_reliance"] = diagnostics.reliance["ensemble"]["reliance"]
        extra["reliance"] = table(
            [dict(zip(_keys(RELIANCE_HEADER), row, strict=True)) for row in reliance_rows(diagnostics)],
            {k: ("string" if k == "model" else "float") for k in _keys(RELIANCE_HEADER)},
        )
    return {
        "model_version": diagnostics.model_version,
        "test_eras": f"{diagnostics.eras[0]}..{diagnostics.eras[-1]} ({len(diagnostics.eras)})",
        **{k: dg.MetadataValue.float(float(v)) for k, v in numbers.items() if not math.isnan(v)},
        "metrics": dg.MetadataValue.table(
            [
                dg.TableRecord(dict(zip(_keys(header), _plain(row), strict=True)))
                for row in metrics_rows(diagnostics)
            ],
            schema=dg.TableSchema.from_name_type_dict(
                {k: ("string" if k == "model" else "float") for k in _keys(header)}
            ),
        ),
        "metrics_md": dg.MetadataValue.md(
            payout_note(diagnostics.payout) + "\n\n" + markdown_table(header, metrics_rows(diagnostics))
        ),
        "cumulative_corr_chart": cumulative_corr_chart(diagnostics),
        "per_era_scores": era_score_table(diagnostics.scores["ensemble"], PER_ERA_COLUMNS),
        "payout_note": payout_note(diagnostics.payout),
        **payout_metadata(diagnostics.payout),
        "plots": dg.MetadataValue.md(plots_md),
        "importance": table(
            [{"group": g, "importance": v} for g, v in diagnostics.importance.items()],
            {"group": "string", "importance": "float"},
        ),
        "feature_importance": dg.MetadataValue.md(importance_md),
        "attention": dg.MetadataValue.md(attention_md),
        **extra,
        "report": dg.MetadataValue.path(str(report)),
    }


def cumulative_corr_chart(diagnostics: Diagnostics) -> dg.MetadataValue:
    """The ensemble's cumulative CORR over the test eras beside the baseline's (or the
    equal-weight blend's), small enough to show in place on the asset page."""
    other = "baseline_lgbm" if "baseline_lgbm" in diagnostics.scores else "equal_weight"
    series = {
        name: list(np.cumsum(np.nan_to_num([s.corr for s in diagnostics.scores[name]], nan=0.0)))
        for name in ("ensemble", other)
    }
    eras = diagnostics.eras
    return inline_chart(
        "cumulative CORR", [Panel("cumulative CORR", series)], f"test eras {eras[0]}..{eras[-1]}"
    )


def _keys(header: list[str]) -> list[str]:
    return [h.replace(" ", "_").lower() for h in header]


def _plain(row: list[object]) -> list[object]:
    """Table cells: NaN becomes None (shown empty), floats rounded for reading."""
    out = []
    for value in row:
        if isinstance(value, float):
            out.append(None if math.isnan(value) else round(value, 5))
        else:
            out.append(value)
    return out
