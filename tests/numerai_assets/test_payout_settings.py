"""The current round's payout settings through the real NumeraiAPI resource and the stand-in:
read from the round when it says how it pays, else the documented defaults and one warning."""

from pathlib import Path

import pytest

from model_core.payout import DOCUMENTED_DEFAULTS, PayoutSettings
from numerai_assets.shared.numerai_api import NumeraiAPI
from numerai_assets.shared.payout_settings import current_payout_settings
from tests.conftest import FAKE_CURRENT_ROUND
from tournament_sim.layout import load_state, save_state
from tournament_sim.score_configs import ScoreConfig
from tournament_sim.server import SimServer, close_round

FROM_ROUND = PayoutSettings(0.75, 2.5, 0.1, 0.125, f"round {FAKE_CURRENT_ROUND}")


def _api(url: str) -> NumeraiAPI:
    return NumeraiAPI(api_url=url, retries=2, backoff_s=0.01)


def _settings(url: str) -> tuple[PayoutSettings, list[str]]:
    warnings: list[str] = []
    return current_payout_settings(_api(url), warnings.append), warnings


def _set_configs(sim_dir: Path, configs: list[ScoreConfig]) -> None:
    state = load_state(sim_dir)
    state.score_configs = configs
    save_state(sim_dir, state)


def test_the_open_rounds_multipliers_are_used(sim_server: SimServer):
    assert _api(sim_server.url).list_rounds(limit=1)[0]["number"] == FAKE_CURRENT_ROUND
    assert _settings(sim_server.url) == (FROM_ROUND, [])


def test_between_rounds_the_newest_listed_round_is_used(sim_server: SimServer, sim_dir: Path):
    close_round(sim_dir)
    assert _settings(sim_server.url) == (FROM_ROUND, [])


def test_no_score_configs_gives_the_defaults_and_one_warning(sim_server: SimServer, sim_dir: Path):
    _set_configs(sim_dir, [])
    settings, warnings = _settings(sim_server.url)
    assert settings == DOCUMENTED_DEFAULTS
    assert warnings == [
        f"list_rounds: round {FAKE_CURRENT_ROUND} has no roundScoreConfigs with isPayout; payout estimated "
        "with the documented defaults CORR x0.5 + MMC x2, clip 0.05"
    ]


def test_no_payout_mmc_config_gives_the_defaults_and_names_it(sim_server: SimServer, sim_dir: Path):
    _set_configs(sim_dir, [ScoreConfig("v2_corr20", "CORR20", True, 0.75, 0, 2, 0.1)])
    settings, [warning] = _settings(sim_server.url)
    assert settings == DOCUMENTED_DEFAULTS
    assert f"round {FAKE_CURRENT_ROUND} has no payout config for MMC" in warning


def test_an_unreachable_api_gives_the_defaults_and_one_warning():
    settings, [warning] = _settings("http://127.0.0.1:9")
    assert settings == DOCUMENTED_DEFAULTS
    assert warning.startswith("list_rounds: the Numerai API at http://127.0.0.1:9 is unreachable")
    assert warning.endswith("payout estimated with the documented defaults CORR x0.5 + MMC x2, clip 0.05")


@pytest.mark.parametrize("status", ["open", None])
def test_list_rounds_goes_through_the_retried_call(sim_server: SimServer, status):
    rounds = _api(sim_server.url).list_rounds(status=status)
    assert [r["number"] for r in rounds][:1] == [FAKE_CURRENT_ROUND]
