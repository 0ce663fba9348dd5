"""A tiny tournament from the real generator, served by the real stand-in, for asset, CLI and
fault tests. Registered once, in tests/conftest.py, so the session fixtures are built once."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.resources import NumeraiHome
from tests.numerai_assets.tiny import TRAINED_ASSETS, tiny_definitions
from tournament_sim.generate import generate_tournament
from tournament_sim.layout import SimState, load_state
from tournament_sim.server import SimServer


@pytest.fixture(scope="session")
def tiny_tournament(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny_tournament")
    generate_tournament(path, "tiny", seed=7)  # the simulator's newest version (v5.3)
    return path


@pytest.fixture
def tournament(tiny_tournament, tmp_path) -> Path:
    """A private copy, so tests that advance rounds or damage files do not affect others."""
    return Path(shutil.copytree(tiny_tournament, tmp_path / "tournament"))


@pytest.fixture
def tournament_state(tournament) -> SimState:
    return load_state(tournament)


@pytest.fixture
def server(tournament) -> Iterator[SimServer]:
    with SimServer(tournament) as running:
        yield running


@pytest.fixture
def api(server, tournament_state) -> NumeraiAPI:
    return NumeraiAPI(
        api_url=server.url,
        public_id=tournament_state.public_id,
        secret_key=tournament_state.secret_key,
        retries=3,
        backoff_s=0.01,
    )


@pytest.fixture
def home(tmp_path) -> NumeraiHome:
    return NumeraiHome(home=str(tmp_path / "home"), feature_set="medium")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@dataclasses.dataclass(frozen=True)
class Trained:
    home: Path  # NUMERAI_HOME after the whole weekly job ran on the tiny tournament
    metadata: dict[str, dict]  # asset name -> its materialisation metadata (plain values)


@pytest.fixture(scope="session")
def trained(tiny_tournament, tmp_path_factory) -> Trained:
    """The weekly job (ingest -> diagnostics), once per session, through dagster.materialize.

    Tests that write must work on `trained_home` (a private copy), never on this one.
    """
    root = tmp_path_factory.mktemp("trained")
    tournament = Path(shutil.copytree(tiny_tournament, root / "tournament"))
    with SimServer(tournament) as running, dg.instance_for_test() as test_instance:
        defs, resources = tiny_definitions(root / "home", running.url, load_state(tournament))
        result = dg.materialize(
            list(defs.assets), resources=resources, instance=test_instance, selection=TRAINED_ASSETS
        )
        metadata = {}
        for name in TRAINED_ASSETS:
            [event] = result.asset_materializations_for_node(name)
            metadata[name] = {k: getattr(v, "value", v) for k, v in event.metadata.items()}
    return Trained(root / "home", metadata)


@pytest.fixture
def trained_home(trained, tmp_path) -> Path:
    """A private copy of the trained home (paths inside it are relative, so the copy stands alone)."""
    return Path(shutil.copytree(trained.home, tmp_path / "trained_home", symlinks=True))
