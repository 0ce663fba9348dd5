"""Recording an era backfill in the instance, as the UI's "Materialize -> Launch backfill" does.

One function for both doors: `numerai-pipeline backfill --eras` (numerai_assets.cli.backfills)
and the UI's `launch_era_backfill` job (numerai_assets.backfill.launcher). `record_backfill` adds
a REQUESTED `PartitionBackfill` row (listed on the UI's backfills page); the dagster-daemon's
backfill loop turns it into runs tagged `dagster/backfill=<id>`, each over a range of up to
NUMERAI_BACKFILL_ERAS_PER_RUN eras (`BackfillPolicy.multi_run`). Without a daemon the row waits,
or `numerai-pipeline backfill --id <id> --wait` does the daemon's part for it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

import dagster as dg

from numerai_assets.shared.era_selection import era_ranges, key_ranges

# The runs' console stays quiet (the CLI's progress bar, then one line per failed run, say it
# all); their event logs keep everything, in the UI.
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
LAUNCHED_BY_TAG = "numerai/launched_by"
UI_PATH = "/runs/b/{backfill_id}"
DAEMON_SILENT_S = 90.0  # a daemon with no heartbeat for longer is taken as stopped


def era_title(eras: Sequence[str]) -> str:
    """'eras 0058..0064' (or 'eras 0001..0004, 0010' for a list with gaps)."""
    return f"eras {era_ranges(eras)}"


def expected_runs(eras: Sequence[str], ordered: Sequence[str], eras_per_run: int) -> int:
    """Runs the backfill policy makes: each contiguous range of eras in chunks of eras_per_run."""
    spans = key_ranges(eras, ordered)
    return sum(math.ceil((ordered.index(b) - ordered.index(a) + 1) / eras_per_run) for a, b in spans)


def record_backfill(
    instance: dg.DagsterInstance,
    asset_graph,
    partitions: Mapping[str, Sequence[str]],
    title: str,
    *,
    launched_by: str,
    description: str | None = None,
) -> str:
    """Add a REQUESTED asset backfill of `partitions` (asset -> keys) to the instance, as the UI
    does; returns its id. asset_graph: the code location's (`Definitions.resolve_asset_graph()`)."""
    from numerai_assets.shared import dagster_private as private

    selectors = []
    for asset, keys in partitions.items():
        key = dg.AssetKey(asset)
        partitions_def = asset_graph.get(key).partitions_def
        ordered = partitions_def.get_partition_keys(dynamic_partitions_store=instance)
        unknown = sorted(set(keys) - set(ordered))
        if unknown:
            raise ValueError(f"{asset}: partitions {unknown[:10]} are not registered in this instance")
        ranges = [private.PartitionRangeSelector(start=a, end=b) for a, b in key_ranges(keys, ordered)]
        selectors.append(
            private.PartitionsByAssetSelector(
                asset_key=key, partitions=private.PartitionsSelector(ranges=ranges)
            )
        )
    with dg.partition_loading_context(dynamic_partitions_store=instance):  # dynamic keys live there
        backfill = private.PartitionBackfill.from_partitions_by_assets(
            backfill_id=private.make_new_backfill_id(),
            asset_graph=asset_graph,
            backfill_timestamp=time.time(),
            tags={LAUNCHED_BY_TAG: launched_by},
            dynamic_partitions_store=instance,
            partitions_by_assets=selectors,
            title=title,
            description=description,
            run_config=RUN_CONFIG,
        )
    instance.add_backfill(backfill)
    return backfill.backfill_id


def daemon_running(instance: dg.DagsterInstance) -> bool:
    """Whether a dagster-daemon serves this instance: the backfill daemon (and the run queue's,
    when the instance queues runs) heart-beat within the last DAEMON_SILENT_S seconds."""
    from numerai_assets.shared import dagster_private as private

    statuses = private.get_daemon_statuses(
        instance,
        [private.BackfillDaemon.daemon_type(), private.QueuedRunCoordinatorDaemon.daemon_type()],
        ignore_errors=True,
        heartbeat_tolerance_seconds=DAEMON_SILENT_S,
    )
    return all(status.healthy is not False for status in statuses.values()) and any(
        status.healthy for status in statuses.values()
    )
