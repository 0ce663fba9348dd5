"""An era backfill in one action from the UI: the `launch_era_backfill` job.

Jobs -> launch_era_backfill -> Launchpad: its default config is a valid example (`eras: last 4`);
write any selection of `numerai_assets.shared.era_selection` (`0575:0700`, `0575`,
`0575:0600, 0650`, `last 52`, `test`, `resolved`, `all`) and launch. The run checks the text
against the registered `numerai_era` partitions (a bad one fails the run with one line naming it
and the registered first..last era, and nothing is recorded), then records the very backfill
`numerai-pipeline backfill --eras` records (`numerai_assets.backfill.launch.record_backfill`):
listed under Backfills, its runs predicting and scoring the eras, NUMERAI_BACKFILL_ERAS_PER_RUN
to a run. The run's output carries the backfill's id and link, and the eras' splits; in-sample
eras get a warning in its log.

The dagster-daemon executes the recorded backfill (`dagster dev`, docker-compose, Kubernetes all
run one). Without one the backfill waits in the instance, and the run's log says so with the
command that runs it here instead: `numerai-pipeline backfill --id <id> --wait`.
"""

import dagster as dg
from pydantic import Field

from numerai_assets.backfill.launch import (
    UI_PATH,
    daemon_running,
    era_title,
    expected_runs,
    record_backfill,
)
from numerai_assets.backfill.splits import load_era_splits
from numerai_assets.shared.era_selection import ERA_PARTITIONS, era_ranges, select_eras
from numerai_assets.shared.partitions import era_partitions
from numerai_assets.shared.resources import NumeraiHome

ERA_ASSETS = ("era_predictions", "era_scores")  # numerai_assets.backfill.assets.BACKFILL_ASSETS

LAUNCH_JOB = "launch_era_backfill"
DEFAULT_ERAS = "last 4"  # valid in any instance with eras, and cheap: one run
ERAS_HELP = (
    "Eras to predict and score with the current model version, comma-separated: an inclusive range "
    "0575:0700, one era 0575, 'last N' (the N newest), a split of the current model version (train, "
    "validation, test, unresolved, resolved) or 'all'."
)


class EraBackfillRequest(dg.Config):
    eras: str = Field(default=DEFAULT_ERAS, description=ERAS_HELP)


def build_record_op(eras_per_run: int) -> dg.OpDefinition:
    """The op that checks the eras and records their backfill (NUMERAI_BACKFILL_ERAS_PER_RUN is
    `eras_per_run`, the assets' backfill policy: how many runs the daemon will make)."""

    @dg.op(out=dg.Out(dg.Nothing), description="Check the eras, then record their multi-run backfill.")
    def record_era_backfill(
        context: dg.OpExecutionContext, config: EraBackfillRequest, numerai_home: NumeraiHome
    ):
        registered = context.instance.get_dynamic_partitions(ERA_PARTITIONS)
        try:
            splits = load_era_splits(numerai_home.layout)
            eras = select_eras(registered, config.eras, splits=splits.splits, label="eras")
        except (ValueError, FileNotFoundError) as err:
            raise dg.Failure(description=str(err), allow_retries=False) from None
        graph = _era_asset_graph()
        backfill_id = record_backfill(
            context.instance,
            graph,
            dict.fromkeys(ERA_ASSETS, eras),
            era_title(eras),
            launched_by=f"{LAUNCH_JOB} run {context.run_id}",
            description=splits.summary(eras),
        )
        runs = expected_runs(eras, registered, eras_per_run)
        _log(context, backfill_id, eras, runs, splits)
        return dg.Output(None, metadata=_metadata(context, backfill_id, eras, runs, splits))

    return record_era_backfill


def _era_asset_graph():
    """The era assets as a backfill row sees them: their keys and their partitions (all that
    recording needs; the daemon plans the runs from the code location's own graph)."""
    specs = [dg.AssetSpec(asset, partitions_def=era_partitions) for asset in ERA_ASSETS]
    return dg.Definitions(assets=specs).resolve_asset_graph()


def _log(context: dg.OpExecutionContext, backfill_id: str, eras: list[str], runs: int, splits) -> None:
    context.log.info(
        f"backfill {backfill_id}: {era_title(eras)}, {len(eras)} eras in {runs} run(s) "
        f"(UI: {UI_PATH.format(backfill_id=backfill_id)}); {splits.summary(eras)}"
    )
    for line in (splits.note, splits.in_sample_warning(eras)):
        if line:
            context.log.warning(line)
    if not daemon_running(context.instance):
        context.log.warning(
            f"no dagster-daemon serves this instance: backfill {backfill_id} waits until one starts "
            f"(dagster dev, dagster-daemon run), or run it here: numerai-pipeline backfill --id {backfill_id} --wait"
        )


def _metadata(context, backfill_id: str, eras: list[str], runs: int, splits) -> dict:
    return {
        "backfill_id": backfill_id,
        "backfill": dg.MetadataValue.url(UI_PATH.format(backfill_id=backfill_id)),
        "eras": len(eras),
        "era_range": era_ranges(eras),
        "expected_runs": runs,
        "model_version": splits.model_version,
        "in_sample_eras": sum(splits.in_sample(era) for era in eras),
        "era_splits": dg.MetadataValue.md(splits.table(eras)),
        "daemon_running": daemon_running(context.instance),
    }


def build_launch_job(eras_per_run: int) -> dg.JobDefinition:
    record_era_backfill = build_record_op(eras_per_run)

    @dg.job(
        name=LAUNCH_JOB,
        description="An era backfill in one action: edit `eras` in the Launchpad (a range such as "
        "0575:0700, a list, 'last N', a split) and launch; the run records the multi-run backfill of "
        "era_predictions and era_scores, listed under Backfills.",
        config={"ops": {"record_era_backfill": {"config": {"eras": DEFAULT_ERAS}}}},
    )
    def launch_era_backfill():
        record_era_backfill()

    return launch_era_backfill
