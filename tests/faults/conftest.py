"""Fixtures of the fault tests (the tiny tournament and its server come from tests/conftest.py):
a home after one good `numerai-pipeline ingest`, made once and copied for each test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults.harness import cli_env, run_cli
from tournament_sim.server import SimServer


@pytest.fixture(scope="session")
def ingested(tiny_tournament, tmp_path_factory) -> Path:
    """home/ and dagster/ after a good `numerai-pipeline ingest` of the tiny tournament (read only)."""
    root = tmp_path_factory.mktemp("ingested")
    with SimServer(tiny_tournament) as running:  # an ingest only downloads: nothing is written there
        done = run_cli(["ingest"], cli_env(root, running.url), root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.fixture
def ingested_env(ingested, tmp_path, server) -> dict[str, str]:
    """The CLI's environment for a private copy of `ingested`, pointed at this test's server."""
    shutil.copytree(ingested / "home", tmp_path / "home", symlinks=True)
    shutil.copytree(ingested / "dagster", tmp_path / "dagster")
    return cli_env(tmp_path, server.url)
