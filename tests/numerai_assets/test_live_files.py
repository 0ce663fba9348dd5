"""Live files are read by feature name: the model's features, whatever else the file has and in
whatever order; a feature the model needs that the file lacks is an error naming it and the file."""

import dagster as dg
import polars as pl
import pytest

from model_core import schema
from model_core.clean import clean_live_frame
from model_core.errors import DataContractError
from model_core.inference import EnsembleSpec
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import current_model_dir
from tests.numerai_assets.tiny import tiny_definitions
from tournament_sim.layout import round_file
from tournament_sim.versions import LATEST_VERSION


def _predict(home, server, instance, round_number: int) -> dg.ExecuteInProcessResult:
    """raw_round -> live_predictions for the round (a dry run: nothing is uploaded)."""
    defs, _ = tiny_definitions(home, server.url, None)
    instance.add_dynamic_partitions("numerai_round", [str(round_number)])
    job = defs.resolve_job_def("live_round")
    return job.execute_in_process(
        instance=instance,
        partition_key=str(round_number),
        raise_on_error=False,
        asset_selection=[dg.AssetKey("raw_round"), dg.AssetKey("live_predictions")],
    )


def _predictions(home, round_number: int) -> pl.DataFrame:
    return pl.read_parquet(HomeLayout(home).live_predictions_path(round_number)).sort(schema.ID)


def test_extra_and_reordered_columns_are_ignored(
    trained_home, tournament, tournament_state, server, instance
):
    current = tournament_state.current.number
    assert _predict(trained_home, server, instance, current).success
    before = _predictions(trained_home, current)

    served = round_file(tournament, current, LATEST_VERSION, schema.LIVE_FILE)
    frame = pl.read_parquet(served)
    extra = frame.with_columns(
        pl.lit(3, dtype=pl.Int8).alias("feature_from_a_later_version"), pl.lit("x").alias("note")
    )
    extra.select(list(reversed(extra.columns))).write_parquet(served)  # every column elsewhere
    assert _predict(trained_home, server, instance, current).success
    assert _predictions(trained_home, current).equals(before)


def test_a_missing_feature_is_named_with_the_file(
    trained_home, tournament, tournament_state, server, instance
):
    current = tournament_state.current.number
    spec = EnsembleSpec.load(current_model_dir(HomeLayout(trained_home)))
    dropped = spec.features[3]
    served = round_file(tournament, current, LATEST_VERSION, schema.LIVE_FILE)
    pl.read_parquet(served).drop(dropped).write_parquet(served)

    result = _predict(trained_home, server, instance, current)
    assert not result.success
    [failure] = result.get_step_failure_events()
    text = failure.event_specific_data.error.to_string()
    assert f"{LATEST_VERSION}/live.parquet: missing feature column(s) {dropped}" in text, text
    # the same rule where the live predictions read the file, whoever fetched it
    with pytest.raises(DataContractError, match=rf"{served}: missing feature column\(s\) {dropped}"):
        clean_live_frame(served, spec.features)
