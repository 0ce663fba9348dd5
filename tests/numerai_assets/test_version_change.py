"""Numerai releases a new dataset version between two weekly runs: live keeps feeding the current
model its own version's live file until the next weekly run ingests the new version and retrains;
when the old version is withdrawn before that, live stops with a message saying what to do.

The real weekly job (dagster.materialize) and live job (the CLI's in-process run) against the
stand-in; the new version is added with the simulator's own `add_version`."""

import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from model_core.era_store import EraStore
from model_core.inference import EnsembleSpec
from numerai_assets.cli.live_runs import LiveRunError, submit
from numerai_assets.live.predict import DATASET_VERSION_KEY, VERSION_KEY
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.model_versions import current_model_dir
from numerai_assets.shared.warehouse import Warehouse
from tests.numerai_assets.tiny import TRAINED_ASSETS, point_code_location_at, tiny_definitions
from tournament_sim.generate import add_version, generate_tournament
from tournament_sim.layout import load_state
from tournament_sim.rounds import advance_round
from tournament_sim.server import SimServer, list_submissions

MODEL = "sim_model"


@pytest.fixture(scope="session")
def tiny_v52_tournament(tmp_path_factory) -> Path:
    """The tiny tournament as it was before v5.3: v5.2 only."""
    path = tmp_path_factory.mktemp("tiny_v52")
    generate_tournament(path, "tiny", seed=7, data_version="v5.2")
    return path


def _train(home: Path, server: SimServer, tournament: Path, instance) -> dict:
    """The weekly job; returns the metadata of the assets that record the dataset version."""
    defs, resources = tiny_definitions(home, server.url, load_state(tournament), model_name=MODEL)
    result = dg.materialize(
        list(defs.assets), resources=resources, instance=instance, selection=TRAINED_ASSETS
    )
    assert result.success
    metadata = {}
    for name in ("raw_dataset", "clean_eras", "cv_folds", "ensemble_weights"):
        [event] = result.asset_materializations_for_node(name)
        metadata[name] = {k: getattr(v, "value", v) for k, v in event.metadata.items()}
    return metadata


@pytest.fixture
def live_env(monkeypatch):
    """`submit` runs the live job of the code location, which reads its settings from NUMERAI_*."""

    def point_at(home: Path, server: SimServer, tournament: Path) -> None:
        point_code_location_at(monkeypatch, home, server.url, load_state(tournament), MODEL)

    return point_at


def _submit(home: Path, server: SimServer, tournament: Path, instance) -> dict:
    defs, _ = tiny_definitions(home, server.url, load_state(tournament), model_name=MODEL)
    return submit(defs, instance)


def _predicted_from(layout: HomeLayout, round_number: int) -> tuple[str, str]:
    """(model version, dataset version) the round's live predictions record."""
    metadata = pq.read_schema(layout.live_predictions_path(round_number)).metadata
    return metadata[VERSION_KEY].decode(), metadata[DATASET_VERSION_KEY].decode()


def _round_versions(home: Path, round_number: int) -> list[str]:
    """The dataset versions of the round the home holds (a published symlink each)."""
    return sorted(p.name for p in (home / "rounds" / str(round_number)).iterdir() if p.is_symlink())


def _live_downloads(server: SimServer, round_number: int) -> set[str]:
    """The dataset versions of the round's live file the service downloaded."""
    paths = [path for _, path, _, status in server.request_log if status in (200, 206)]
    return {v for v in ("v5.2", "v5.3") if any(f"rounds/{round_number}/{v}/live.parquet" in p for p in paths)}


def test_a_new_version_reaches_live_only_through_the_next_weekly_run(
    tiny_v52_tournament, tmp_path, instance, live_env
):
    tournament = Path(shutil.copytree(tiny_v52_tournament, tmp_path / "tournament"))
    home = tmp_path / "home"
    layout = HomeLayout(home.resolve())
    first = load_state(tournament).current.number
    with SimServer(tournament) as server:
        live_env(home, server, tournament)
        # week 1: only v5.2 exists
        trained = _train(home, server, tournament, instance)
        assert trained["raw_dataset"]["dataset_version"] == "v5.2"
        assert (
            trained["cv_folds"]["dataset_version"] == trained["ensemble_weights"]["dataset_version"] == "v5.2"
        )
        old_model = current_model_dir(layout).name
        assert EnsembleSpec.load(current_model_dir(layout)).dataset_version == "v5.2"
        assert _submit(home, server, tournament, instance)["status"] == "uploaded"
        assert _predicted_from(layout, first) == (old_model, "v5.2")

        # Numerai releases v5.3; the next round opens before the weekly run
        add_version(tournament, "v5.3")
        second = advance_round(tournament)
        assert _submit(home, server, tournament, instance)["model_version"] == old_model
        assert _predicted_from(layout, second) == (old_model, "v5.2")
        assert _live_downloads(server, second) == {"v5.2"}
        assert _round_versions(home, second) == ["v5.2"]

        # v5.2 is withdrawn before the weekly run: live stops and says what to do, uploads nothing
        shutil.rmtree(tournament / "v5.2")
        third = advance_round(tournament)
        with pytest.raises(
            LiveRunError,
            match=rf"round {third}: model version {old_model} was trained on v5\.2, which the API no longer "
            r"offers \(it offers v5\.3\): run the weekly training \(`numerai-pipeline train`\)",
        ):
            _submit(home, server, tournament, instance)
        assert [s["round"] for s in list_submissions(tournament)] == [first, second]

        # week 2: the weekly run ingests v5.3 and retrains; live follows the new model's version
        trained = _train(home, server, tournament, instance)
        assert trained["raw_dataset"]["dataset_version"] == trained["clean_eras"]["dataset_version"] == "v5.3"
        assert (
            trained["cv_folds"]["dataset_version"] == trained["ensemble_weights"]["dataset_version"] == "v5.3"
        )
        new_model = current_model_dir(layout).name
        assert new_model != old_model and EraStore(layout.clean_eras_current).dataset_version == "v5.3"
        assert _submit(home, server, tournament, instance)["model_version"] == new_model
        assert _predicted_from(layout, third) == (new_model, "v5.3")
        assert _live_downloads(server, third) == {"v5.3"} and _round_versions(home, third) == ["v5.3"]
    assert [s["round"] for s in list_submissions(tournament)] == [first, second, third]
    rows = Warehouse(path=str(layout.warehouse_path)).query(
        "SELECT model_version, dataset_version FROM model_versions ORDER BY created_at"
    )
    assert rows.rows() == [(old_model, "v5.2"), (new_model, "v5.3")]
