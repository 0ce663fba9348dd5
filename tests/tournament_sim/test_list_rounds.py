"""numerapi's list_rounds against the stand-in on 127.0.0.1: every field its query asks for, the
rounds' score configs from sim_state.json, the filters; the current-round query unchanged."""

from __future__ import annotations

import decimal
import inspect
import json
import re
from pathlib import Path

import numerapi
import pytest

from tests.conftest import FAKE_CURRENT_ROUND, FAKE_FIRST_ROUND
from tests.tournament_sim.test_server import client
from tournament_sim.layout import STATE_FILE, load_state, save_state
from tournament_sim.server import SimServer, close_round


def _query_fields() -> tuple[set[str], set[str]]:
    """(round fields, score config fields) that numerapi 3.1.1's list_rounds query selects."""
    source = inspect.getsource(numerapi.NumerAPI.list_rounds)
    selection = source.split("limit: $limit) {", 1)[1].split('"""', 1)[0]
    configs = selection.split("roundScoreConfigs {", 1)[1].split("}", 1)[0]
    outer = selection.replace(configs, "")
    return set(re.findall(r"\b\w+\b", outer)) - {"roundScoreConfigs"}, set(re.findall(r"\b\w+\b", configs))


def test_list_rounds_answers_every_field_with_the_state_score_configs(sim_server: SimServer) -> None:
    rounds = client().list_rounds()
    assert [r["number"] for r in rounds] == list(range(FAKE_CURRENT_ROUND, FAKE_FIRST_ROUND - 1, -1))
    round_fields, config_fields = _query_fields()
    assert len(round_fields) == 14 and len(config_fields) == 21  # the parse found the query
    for round_info in rounds:
        assert set(round_info) == round_fields | {"roundScoreConfigs"}
        assert round_info["payoutFactor"] == decimal.Decimal("0.125")  # numerapi parsed the string
        for config in round_info["roundScoreConfigs"]:
            assert set(config) == config_fields
    paying = {c["name"]: c for c in rounds[0]["roundScoreConfigs"] if c["isPayout"]}
    assert {name: c["defaultMultiplier"] for name, c in paying.items()} == {"v2_corr20": 0.75, "mmc": 2.5}
    assert {c["clipThreshold"] for c in paying.values()} == {0.1}
    assert [c["name"] for c in rounds[0]["roundScoreConfigs"] if not c["isPayout"]] == ["bmc"]


def test_list_rounds_filters(sim_server: SimServer, sim_dir: Path) -> None:
    api = client()
    assert [r["number"] for r in api.list_rounds(number=FAKE_FIRST_ROUND)] == [FAKE_FIRST_ROUND]
    assert [r["number"] for r in api.list_rounds(number=0)] == [FAKE_CURRENT_ROUND]  # numerapi's alias
    assert [r["number"] for r in api.list_rounds(limit=1)] == [FAKE_CURRENT_ROUND]  # newest first
    assert [r["number"] for r in api.list_rounds(status="open")] == [FAKE_CURRENT_ROUND]
    assert [r["number"] for r in api.list_rounds(status="resolving")] == [FAKE_FIRST_ROUND]
    assert api.list_rounds(status="resolved") == []  # a week old: not resolved yet
    assert api.list_rounds(target="no such target") == []
    close_round(sim_dir)
    assert api.list_rounds(status="open") == []
    assert [r["number"] for r in api.list_rounds(status="resolving")] == [
        FAKE_CURRENT_ROUND,
        FAKE_FIRST_ROUND,
    ]
    with pytest.raises(ValueError, match="not a RoundStatus"):
        api.list_rounds(status="finished")


def test_rounds_without_score_configs(sim_server: SimServer, sim_dir: Path) -> None:
    state = load_state(sim_dir)
    state.score_configs = []
    save_state(sim_dir, state)
    assert all(r["roundScoreConfigs"] == [] for r in client().list_rounds())


def test_a_state_file_from_before_score_configs_loads_with_the_defaults(
    tmp_path: Path, sim_dir: Path
) -> None:
    raw = json.loads((sim_dir / STATE_FILE).read_text())
    del raw["score_configs"], raw["payout_factor"]
    (tmp_path / STATE_FILE).write_text(json.dumps(raw))
    state = load_state(tmp_path)
    assert [c.name for c in state.score_configs] == ["v2_corr20", "mmc", "bmc"]
    assert state.payout_factor == "0.125"


def test_the_current_round_query_is_unchanged(sim_server: SimServer, sim_dir: Path) -> None:
    api = client()
    assert api.get_current_round() == FAKE_CURRENT_ROUND
    assert api.check_round_open()
    close_round(sim_dir)
    with pytest.raises(ValueError, match="not open"):
        api.get_current_round()
    assert not api.check_round_open()
    assert [r["number"] for r in api.list_rounds(limit=1)] == [FAKE_CURRENT_ROUND]  # still listed
