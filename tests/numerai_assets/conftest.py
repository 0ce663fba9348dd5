"""A tiny tournament from the real generator, served by the real stand-in, for asset tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from numerai_assets.defs.resources import NumeraiHome
from numerai_assets.numerai_api import NumeraiAPI
from tournament_sim.generate import generate_tournament
from tournament_sim.layout import SimState, load_state
from tournament_sim.server import SimServer


@pytest.fixture(scope="session")
def tiny_tournament(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny_tournament")
    generate_tournament(path, "tiny", seed=7)
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
