"""The current ensemble on the held-out test eras: metrics, plots, importance, attention."""

import dagster as dg

from numerai_assets.defs.knobs import DiagnosticsKnobs
from numerai_assets.defs.resources import NumeraiHome
from numerai_assets.warehouse import Warehouse


def build_diagnostics_asset(with_baseline: bool) -> dg.AssetsDefinition:
    @dg.asset(
        name="validation_diagnostics",
        group_name="diagnostics",
        deps=["ensemble_weights", *(["baseline_lgbm"] if with_baseline else [])],
        kinds={"html", "duckdb"},
    )
    def validation_diagnostics(
        context: dg.AssetExecutionContext,
        numerai_home: NumeraiHome,
        diagnostics: DiagnosticsKnobs,
        warehouse: Warehouse,
    ):
        """Per-era CORR, FNC, BMC, MMC, exposure and churn of the ensemble, the equal-weight blend,
        each fold model and the baseline; plots, permutation importance, attention; an HTML report."""
        from numerai_assets import diagnostics_report as report
        from numerai_assets.model_versions import current_model_dir
        from numerai_assets.validation import diagnose_current

        layout = numerai_home.layout
        result = diagnose_current(
            layout,
            current_model_dir(layout),
            layout.raw_dataset_dir(numerai_home.dataset_version),
            diagnostics.benchmark_model,
            context.log.info,
        )
        images = report.pictures(result)
        html = report.write_report(result, layout.report_dir(result.model_version), images)
        rows = [
            {**vars(score), "model_version": result.model_version, "model": name, "split": "test"}
            for name, scores in result.scores.items()
            for score in scores
        ]
        warehouse.upsert_era_scores(rows)
        warehouse.upsert_model_version(
            result.model_version,
            test_eras=f"{result.eras[0]}..{result.eras[-1]}",
            ensemble_corr=result.summary["ensemble"]["corr_mean"],
            equal_weight_corr=result.summary["equal_weight"]["corr_mean"],
        )
        context.log.info(f"report: {html}")
        return dg.MaterializeResult(metadata=report.metadata(result, images, html))

    return validation_diagnostics
