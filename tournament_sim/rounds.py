"""Round control of the simulated tournament.

Run by the CLI in another process than the server; the server re-reads the state per request.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from model_core import schema
from tournament_sim.layout import load_state, offered_versions, round_file, round_window, save_state


def advance_round(sim_dir: Path, window_minutes: float = 60.0) -> int:
    """Open the next round for `window_minutes`; returns its number."""
    state = load_state(sim_dir)
    number = state.current.number + 1
    # Every offered version serves the round, so each needs its live file.
    live = [round_file(sim_dir, number, version, schema.LIVE_FILE) for version in offered_versions(sim_dir)]
    missing = [str(path) for path in live if not path.is_file()]
    if number > state.last_round or missing or not live:
        raise ValueError(
            f"cannot open round {number}: no live file was generated for it "
            f"(last_round={state.last_round}, missing {', '.join(missing) or 'every version'})"
        )
    state.current = round_window(number, window_minutes)
    save_state(sim_dir, state)
    return number


def reopen_round(sim_dir: Path, window_minutes: float = 60.0) -> int:
    """Open the current round again for `window_minutes` from now; returns its number. The replay
    bench serves its first held-out round before `train`, which may take longer than a window."""
    state = load_state(sim_dir)
    state.current = round_window(state.current.number, window_minutes)
    save_state(sim_dir, state)
    return state.current.number


def close_round(sim_dir: Path) -> None:
    """Close the current round for staking now, so check_round_open() answers False."""
    state = load_state(sim_dir)
    now = dt.datetime.now(dt.UTC)
    state.current.close_staking_time = (now - dt.timedelta(seconds=1)).isoformat()
    if dt.datetime.fromisoformat(state.current.open_time) > now:
        state.current.open_time = state.current.close_staking_time
    save_state(sim_dir, state)
