"""Where the simulated tournament keeps its files, and the state shared by `generate`, `serve`
and `advance-round`.

    DIR/
      v5.2/, v5.3/, ...          one per dataset version, exactly the Numerai layout (features.json,
                                 train.parquet, validation.parquet, ...); the stand-in offers every
                                 version whose features.json is there (`offered_versions`)
      rounds/<n>/<version>/      one live era per round and version: live.parquet
                                 (+ live_benchmark_models.parquet); see `round_file`
      oracle/<name>.parquet      the oracle's predictions (id, era, prediction), outside the versions
      uploads/<n>/<model>/...    every submission the stand-in received
      diagnostics/<id>.csv       every diagnostics upload it accepted (+ diagnostics.jsonl)
      sim_state.json             current round, its window, the account and its models

The server re-reads `sim_state.json` on every request, so `advance-round` (another process)
only has to rewrite it atomically.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from model_core.schema import FEATURES_JSON

STATE_FILE = "sim_state.json"
ROUNDS_DIR = "rounds"
ORACLE_DIR = "oracle"
UPLOADS_DIR = "uploads"
DIAGNOSTICS_DIR = "diagnostics"
VERSION_DIR = re.compile(r"^v(\d+)\.(\d+)$")  # "v5.2"
TOURNAMENT_ID = 8  # numerapi's NumerAPI uses tournament 8 (Classic)

# Stand-in credentials. They are not secrets: they only open the loopback simulator.
SIM_PUBLIC_ID = "SIMPUBLICID"
SIM_SECRET_KEY = "SIMSECRETKEY"


@dataclasses.dataclass
class RoundWindow:
    number: int
    open_time: str  # ISO 8601, UTC
    close_staking_time: str


@dataclasses.dataclass
class Recipe:
    """How a generated tournament was drawn: `sim add-version` redraws the same world from it."""

    scale: dict[str, Any]  # the Scale's fields (Scale.to_record())
    seed: int
    live_era_label: str


@dataclasses.dataclass
class SimState:
    dataset_version: str  # the newest version written; the stand-in serves every offered version
    first_round: int
    last_round: int  # the last round that has a generated live file
    current: RoundWindow
    models: dict[str, str]  # model name -> model id (uuid string)
    public_id: str = SIM_PUBLIC_ID
    secret_key: str = SIM_SECRET_KEY
    recipe: Recipe | None = None  # None: a replay, or a state written before versions could be added

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> SimState:
        raw = json.loads(text)
        raw["current"] = RoundWindow(**raw["current"])
        raw["recipe"] = Recipe(**raw["recipe"]) if raw.get("recipe") else None
        return cls(**raw)


def round_window(number: int, window_minutes: float, now: dt.datetime | None = None) -> RoundWindow:
    """A round that opened a minute ago and closes for staking `window_minutes` from now."""
    now = now or dt.datetime.now(dt.UTC)
    return RoundWindow(
        number=number,
        open_time=(now - dt.timedelta(minutes=1)).isoformat(),
        close_staking_time=(now + dt.timedelta(minutes=window_minutes)).isoformat(),
    )


def round_file(sim_dir: Path, number: int, version: str, name: str) -> Path:
    """A per-round file of one dataset version: DIR/rounds/<number>/<version>/<name>."""
    return Path(sim_dir) / ROUNDS_DIR / str(number) / version / name


def offered_versions(sim_dir: Path) -> list[str]:
    """The dataset versions present: `v<int>.<int>` directories holding a features.json (written
    last, so a version being written is not offered yet), oldest first (v5.10 after v5.9)."""
    found = []
    for path in Path(sim_dir).iterdir():
        match = VERSION_DIR.match(path.name)
        if match and (path / FEATURES_JSON).is_file():
            found.append((int(match.group(1)), int(match.group(2)), path.name))
    return [name for *_, name in sorted(found)]


def load_state(sim_dir: Path) -> SimState:
    path = Path(sim_dir) / STATE_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no simulated tournament here (run `numerai-pipeline sim generate` first)"
        )
    return SimState.from_json(path.read_text())


def save_state(sim_dir: Path, state: SimState) -> None:
    write_text_atomic(Path(sim_dir) / STATE_FILE, state.to_json())


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
