"""Backfill: the current ensemble's predictions and scores for any range of eras.

`era_predictions` and `era_scores` are partitioned by the `numerai_era` partitions that clean_eras
registers, with `BackfillPolicy.multi_run(NUMERAI_BACKFILL_ERAS_PER_RUN)`: a backfill of n eras is
ceil(n / N) runs, each loading the ensemble once for its whole range of eras.

The two assets are one step (a multi-asset) so that an era the data lacks fails alone: the step
records a materialisation per era it wrote, for each asset, and only then fails, naming the
missing eras. (As two steps, the failing predictions step would skip the scores of every era of
the run.) Each asset is still selectable on its own: scores alone re-score the prediction files.
"""

import functools
import math

import dagster as dg

from model_core.payout import DOCUMENTED_DEFAULTS
from numerai_assets.backfill.era_table import backfill_tables
from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.partitions import era_partitions
from numerai_assets.shared.payout_report import payout_metadata, payout_note
from numerai_assets.shared.resources import DiagnosticsKnobs, NumeraiHome
from numerai_assets.shared.warehouse import Warehouse

BACKFILL_JOB = "era_backfill"
ERA_PREDICTIONS = "era_predictions"
ERA_SCORES = "era_scores"
BACKFILL_ASSETS = (ERA_PREDICTIONS, ERA_SCORES)


def build_backfill_assets(eras_per_run: int) -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        name="era_predictions_and_scores",
        specs=[
            dg.AssetSpec(
                ERA_PREDICTIONS,
                group_name="backfill",
                deps=["clean_eras", "feature_returns", "ensemble_weights"],
                kinds={"parquet"},
                skippable=True,
                description="The current ensemble's predictions of the era (id, era, prediction), under "
                "NUMERAI_HOME/models/<version>/era_predictions/. Each era's metadata: its split (train, "
                "validation, test, unresolved) and in_sample (the predicting models trained on it). "
                "A range in one action: the launch_era_backfill job.",
            ),
            dg.AssetSpec(
                ERA_SCORES,
                group_name="backfill",
                deps=[ERA_PREDICTIONS, "raw_dataset"],
                kinds={"duckdb"},
                skippable=True,
                description="CORR20, MMC, CWMM, BMC, the payout estimate (the round's multipliers) and max "
                "feature exposure of the era's predictions, in the warehouse (era_scores, split "
                "'backfill', in_sample when the predicting models trained on the era: an overstated "
                "score); the cumulative view of every backfilled era.",
            ),
        ],
        partitions_def=era_partitions,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=eras_per_run),
        can_subset=True,
    )
    def era_predictions_and_scores(
        context: dg.AssetExecutionContext,
        numerai: NumeraiAPI,
        numerai_home: NumeraiHome,
        diagnostics: DiagnosticsKnobs,
        warehouse: Warehouse,
    ):
        """Predict and score the run's range of eras, the ensemble loaded once."""
        from numerai_assets.backfill import eras
        from numerai_assets.shared.dataset_versions import current_model_dataset_dir
        from numerai_assets.shared.payout_settings import current_payout_settings

        selected = {key.to_user_string() for key in context.selected_asset_keys}
        layout, score = numerai_home.layout, ERA_SCORES in selected
        result = eras.backfill_eras(
            layout,
            current_model_dataset_dir(layout),  # the version the current model was trained on
            diagnostics.benchmark_model,
            context.partition_keys,
            predict=ERA_PREDICTIONS in selected,
            score=score,
            log=context.log.info,
            payout=current_payout_settings(numerai, context.log.warning) if score else DOCUMENTED_DEFAULTS,
        )
        _warn_in_sample(context, result)
        kept_test = eras.store_scores(warehouse, result)
        if kept_test:
            context.log.info(f"eras {', '.join(kept_test)} keep their held-out test scores (with FNC)")
        if ERA_PREDICTIONS in selected:
            yield from _events(ERA_PREDICTIONS, result, _prediction_metadata, _predictions_summary(result))
        if score:
            yield from _score_events(result, eras.backfill_view(warehouse, layout, result.model_version))
        _raise_for_failed_eras(result)

    return [era_predictions_and_scores]


def build_backfill_job():
    """Both backfill assets over era partitions, for the UI's job page and `dagster job backfill`."""
    return dg.define_asset_job(
        BACKFILL_JOB, selection=list(BACKFILL_ASSETS)
    )  # partitioned by era, from the assets


def _warn_in_sample(context: dg.AssetExecutionContext, result) -> None:
    """A warning in the run log when the run's eras are in-sample for the predicting models."""
    for line in (result.splits.note, result.splits.in_sample_warning(result.eras)):
        if line:
            context.log.warning(line)


def _raise_for_failed_eras(result) -> None:
    """Fail the step, naming the eras the data lacked, after every written era was recorded."""
    error = result.error()
    if error is not None:
        raise dg.Failure(
            description=str(error),
            metadata={"failed_eras": sorted(error.failed), "written_eras": len(error.done)},
            allow_retries=False,
        )


def _events(asset: str, result, per_era, summary: dict):
    """One materialisation per era written; the run's summary rides on the last one (the one the
    asset page shows), so a 52-era run does not store 52 copies of the plots."""
    done = [d for d in result.done if per_era(d) is not None]
    for i, era_done in enumerate(done):
        metadata = {"model_version": result.model_version, **_split_metadata(result, era_done.era)}
        metadata.update(per_era(era_done))
        if i == len(done) - 1:
            metadata.update(summary)
        yield dg.AssetMaterialization(asset_key=asset, partition=era_done.era, metadata=metadata)


def _score_events(result, view):
    per_era = functools.partial(_score_metadata, payout=payout_metadata(result.payout))
    yield from _events(ERA_SCORES, result, per_era, _scores_summary(result, view))


def _split_metadata(result, era: str) -> dict:
    """What the era is to the model version (train / validation / test / unresolved) and whether
    the predicting models trained on it: shown with each era partition in the UI."""
    return {"split": result.splits.split(era), "in_sample": result.splits.in_sample(era)}


def _prediction_metadata(era_done) -> dict | None:
    if era_done.predictions_path is None:
        return None
    return {
        "rows": era_done.rows,
        "seconds": round(era_done.predict_seconds, 3),
        "path": dg.MetadataValue.path(str(era_done.predictions_path)),
    }


def _score_metadata(era_done, payout: dict) -> dict | None:
    """The era's scores (those it has); the multipliers beside its payout estimate."""
    if era_done.scores is None:
        return None
    names = ("corr", "mmc", "cwmm", "bmc", "payout", "max_feature_exposure")
    scores = {name: float(era_done.scores[name]) for name in names if not math.isnan(era_done.scores[name])}
    return scores | (payout if "payout" in scores else {})


def _run_summary(result, part: str) -> dict:
    return {
        "run_eras": len(result.eras),
        "run_era_range": f"{result.eras[0]}..{result.eras[-1]}",
        "run_eras_written": len(result.done),
        "seconds_per_era": round(result.seconds_per_era(part), 3),
        "model_load_seconds": round(result.load_seconds, 2),
        "run_in_sample_eras": sum(result.splits.in_sample(era) for era in result.eras),
        "era_splits": dg.MetadataValue.md(result.splits.table(result.eras)),
    }


def _predictions_summary(result) -> dict:
    return _run_summary(result, "predict")


def _scores_summary(result, view) -> dict:
    from model_core.report import markdown_image, markdown_table

    summary = _run_summary(result, "score")
    keys = ("corr_mean", "corr_sharpe", "corr_max_drawdown", "bmc_mean", "mmc_mean", "cwmm_mean")
    numbers = {
        "run_corr_mean": result.corr_mean(),
        **{key: view.summary[key] for key in (*keys, "payout_mean", "payout_sharpe")},
    }
    summary.update({k: dg.MetadataValue.float(float(v)) for k, v in numbers.items() if not math.isnan(v)})
    summary.update(payout_metadata(result.payout))
    scored = sum(not math.isnan(c) for c in view.corrs)
    summary["backfilled_eras"] = len(view.eras)
    summary["backfilled_era_range"] = f"{view.eras[0]}..{view.eras[-1]}" if view.eras else "none"
    header = [
        "eras",
        "resolved",
        "held-out test",
        "in-sample",
        "corr mean",
        "sharpe",
        "max drawdown",
        "BMC",
        "MMC",
        "CWMM",
    ]
    summary["summary"] = dg.MetadataValue.md(
        markdown_table(
            [*header, "payout mean", "payout sharpe"],
            [
                [
                    summary["backfilled_era_range"],
                    scored,
                    view.splits.count("test"),
                    sum(flag is True for flag in view.in_sample),
                    *(view.summary[k] for k in (*keys, "payout_mean", "payout_sharpe")),
                ]
            ],
        )
        + "\n\nThe backfilled range's payout is each era's as stored: scored with the multipliers "
        "current when it was written. In-sample: eras the predicting models trained on (their "
        "scores overstate live performance); a held-out test era keeps validation_diagnostics' "
        "out-of-sample row."
    )
    summary.update(backfill_tables(view, payout_note(result.payout)))
    summary["plots"] = dg.MetadataValue.md(
        "\n\n".join(markdown_image(png, name.replace("_", " ")) for name, png in view.pictures.items())
    )
    return summary
