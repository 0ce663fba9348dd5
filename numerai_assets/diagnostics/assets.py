"""The current ensemble on the held-out test eras: metrics, plots, importance, attention; and,
optionally, the same predictions uploaded to Numerai's own diagnostics."""

import dagster as dg

from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.resources import DiagnosticsKnobs, NumeraiHome
from numerai_assets.shared.warehouse import Warehouse

# Which models these figures are from (the issue a user asks first: "is this what I submit?").
SOURCE_NOTE = {
    "figures_from": "the cross-validated fold models (and the LightGBM trained before the test gap): "
    "none of them trained on the test eras",
    "live_uses": "the candidate chosen out of fold (see model_choice), refit on every resolved era "
    "(refit_model_k, refit_lgbm, refit_peer_ridge): not scored here, since they trained on these eras",
}


def build_diagnostics_asset(with_baseline: bool) -> dg.AssetsDefinition:
    @dg.asset(
        name="validation_diagnostics",
        group_name="diagnostics",
        deps=["ensemble_weights", "live_model", *(["baseline_lgbm"] if with_baseline else [])],
        kinds={"html", "duckdb"},
    )
    def validation_diagnostics(
        context: dg.AssetExecutionContext,
        numerai: NumeraiAPI,
        numerai_home: NumeraiHome,
        diagnostics: DiagnosticsKnobs,
        warehouse: Warehouse,
    ):
        """Per-era CORR, FNC, BMC, MMC, CWMM, payout estimate (the round's multipliers), exposure and
        churn of the ensemble, the equal-weight blend, each fold model and the baseline; plots,
        permutation importance, attention; an HTML report."""
        from numerai_assets.diagnostics import report
        from numerai_assets.diagnostics.evaluate import diagnose_current, record_diagnostics
        from numerai_assets.shared.dataset_versions import current_model_dataset_dir
        from numerai_assets.shared.model_versions import current_model_dir
        from numerai_assets.shared.payout_settings import current_payout_settings

        layout = numerai_home.layout
        result = diagnose_current(
            layout,
            current_model_dir(layout),
            current_model_dataset_dir(layout),  # the benchmarks of the version the model was trained on
            diagnostics.benchmark_model,
            context.log.info,
            payout=current_payout_settings(numerai, context.log.warning),
        )
        images = report.pictures(result)
        html = report.write_report(result, layout.report_dir(result.model_version), images)
        record_diagnostics(warehouse, result)
        context.log.info(f"report: {html}")
        return dg.MaterializeResult(metadata={**report.metadata(result, images, html), **SOURCE_NOTE})

    return validation_diagnostics


@dg.asset(group_name="diagnostics", deps=["validation_diagnostics"], kinds={"csv"})
def numerai_diagnostics(
    context: dg.AssetExecutionContext,
    numerai: NumeraiAPI,
    numerai_home: NumeraiHome,
    diagnostics: DiagnosticsKnobs,
    warehouse: Warehouse,
):
    """With NUMERAI_UPLOAD_DIAGNOSTICS=true, the test-block predictions validation_diagnostics scored,
    uploaded to Numerai's own diagnostics; the id is kept with the model version. Status `off`,
    `uploaded`, `already_uploaded` or `failed: <reason>`: a failure is a warning, never a failed run."""
    from numerai_assets.diagnostics.upload import upload_current

    result = upload_current(
        numerai,
        warehouse,
        numerai_home.layout,
        diagnostics.upload_diagnostics,
        diagnostics.model_name,
        context.log,
    )
    return dg.MaterializeResult(metadata=result.metadata())
