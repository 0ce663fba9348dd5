"""The service under test in the replay benchmark (bench/replay.py), run exactly as a user runs it:
`numerai-pipeline sim serve DIR` in a subprocess, then `numerai-pipeline train`, then per round
`numerai-pipeline submit` and `numerai-pipeline sim advance-round DIR`. Nothing of the service is
imported; its uploads are read back from what the stand-in received (DIR/uploads/).

The weekly job prints its held-out test block as a markdown table after a line
`== held-out test eras <first>..<last> (<n>) ==` (numerai_assets summary); `parse_test_block`
reads the `corr mean` (and `BMC`) of each model row of that table.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from model_core import schema
from tournament_sim.layout import load_state
from tournament_sim.replay import ReplayManifest
from tournament_sim.rounds import reopen_round
from tournament_sim.uploads import list_submissions

TEST_BLOCK_HEADING = re.compile(r"^== held-out test eras (?P<eras>.+) ==\s*$")
CANDIDATES_HEADING = re.compile(r"^== candidates, chosen by (?P<metric>.+) ==\s*$")
BLEND_WEIGHTS_LINE = re.compile(r"^blend weights \(fitted out of fold\): (?P<weights>.+)$")
DAGSTER_YAML = "telemetry:\n  enabled: false\n"
SERVER_START_S = 60.0


def pipeline_command() -> str:
    """The console script of the interpreter running this benchmark (the project's venv)."""
    script = Path(sys.executable).with_name("numerai-pipeline")
    if not script.is_file():
        raise FileNotFoundError(f"{script}: run the benchmark with the project's venv (make setup)")
    return str(script)


@dataclasses.dataclass
class ServiceRun:
    env: dict[str, str]  # the NUMERAI_* settings given beyond the stand-in's URL and key
    train_s: float
    submit_s: dict[int, float]  # round -> wall seconds of `numerai-pipeline submit`
    advance_s: float  # all `sim advance-round` calls together
    predictions: dict[int, pd.Series]  # round -> uploaded prediction per id
    test_eras: str | None  # as printed by `train`, e.g. "0311..0362 (52)"
    test_block: dict[str, dict[str, float]]  # model row -> column -> value, as printed
    candidates: dict[str, dict[str, float]]  # candidate -> oof/test corr and sharpe, as printed
    blend_weights: dict[str, float]  # member -> its weight in the blend, as printed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def stand_in(replay_dir: Path, log: Path) -> Iterator[str]:
    """`numerai-pipeline sim serve DIR` on a free loopback port; yields its URL; SIGTERM at exit."""
    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        server = subprocess.Popen(
            [pipeline_command(), "sim", "serve", str(replay_dir), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the stand-in exited ({server.returncode}): {log.read_text()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stand-in did not answer on {url} within {SERVER_START_S:.0f} s")
            time.sleep(0.2)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def service_env(
    replay_dir: Path, service_dir: Path, url: str, extra: dict[str, str], drop: frozenset[str] = frozenset()
) -> dict[str, str]:
    """The process environment of the CLI: ours without any NUMERAI_* / DAGSTER_HOME of the
    caller (nor the names in `drop`), the stand-in's URL and key, a fresh home and Dagster
    instance, then `extra`."""
    state = load_state(replay_dir)
    dagster_home = service_dir / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NUMERAI_") and k != "DAGSTER_HOME" and k not in drop
    }
    return base | {
        "NUMERAI_API_URL": url,
        "NUMERAI_PUBLIC_ID": state.public_id,
        "NUMERAI_SECRET_KEY": state.secret_key,
        "NUMERAI_HOME": str(service_dir / "home"),
        "DAGSTER_HOME": str(dagster_home),
        "NUMERAI_MODEL_NAME": next(iter(state.models)),
        **extra,
    }


def run_cli(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> float:
    """Run `numerai-pipeline ARGS` (stdout to `log`, stderr to `log`.err); its wall seconds."""
    started = time.perf_counter()
    with log.open("w") as out, log.with_suffix(".err").open("w") as err:
        done = subprocess.run(
            [pipeline_command(), *args], env=env, cwd=cwd, stdout=out, stderr=err, check=False
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join(log.with_suffix(".err").read_text().splitlines()[-15:])
        raise RuntimeError(
            f"`numerai-pipeline {' '.join(args)}` failed ({done.returncode}), see {log}:\n{tail}"
        )
    return seconds


def run_service(
    replay_dir: Path,
    manifest: ReplayManifest,
    service_dir: Path,
    extra: dict[str, str],
    drop: frozenset[str] = frozenset(),
) -> ServiceRun:
    service_dir.mkdir(parents=True, exist_ok=True)
    rounds = sorted(int(n) for n in manifest.rounds)
    with stand_in(replay_dir, service_dir / "stand_in.log") as url:
        env = service_env(replay_dir, service_dir, url, extra, drop)
        print(f"[replay] service: train ({url}, NUMERAI_HOME={env['NUMERAI_HOME']})", flush=True)
        train_s = run_cli(["train"], env, service_dir, service_dir / "train.log")
        printed = (service_dir / "train.log").read_text()
        test_eras, test_block = parse_test_block(printed)
        candidates = parse_candidates(printed)
        blend_weights = parse_blend_weights(printed)
        corr = test_block.get("ensemble", {}).get("corr mean", math.nan)
        chosen = next((name for name, row in candidates.items() if row.get("chosen") == 1.0), "?")
        weights = ", ".join(f"{name} {w:.2f}" for name, w in blend_weights.items()) or "not printed"
        print(
            f"[replay] service: trained in {train_s:.0f} s; test block {test_eras}: transformer ensemble "
            f"CORR {corr:.4f}; chosen candidate {chosen}; blend weights {weights}",
            flush=True,
        )
        submit_s, advance_s = {}, 0.0
        for k, number in enumerate(rounds):
            if k:
                advance_s += run_cli(
                    ["sim", "advance-round", str(replay_dir)], env, service_dir, service_dir / "advance.log"
                )
            else:
                # The first round opened with the replay files, before `train`: on a loaded machine
                # training outlasts its one-hour window, so it opens again now (as a live round would be).
                reopen_round(replay_dir)
            submit_s[number] = run_cli(["submit"], env, service_dir, service_dir / f"submit_{number}.log")
            print(f"[replay] service: round {number} submitted in {submit_s[number]:.0f} s", flush=True)
    return ServiceRun(
        env=extra,
        train_s=train_s,
        submit_s=submit_s,
        advance_s=advance_s,
        predictions=uploaded_predictions(replay_dir, rounds, env["NUMERAI_MODEL_NAME"]),
        test_eras=test_eras,
        test_block=test_block,
        candidates=candidates,
        blend_weights=blend_weights,
    )


def uploaded_predictions(replay_dir: Path, rounds: list[int], model_name: str) -> dict[int, pd.Series]:
    """The stand-in's record of accepted submissions: exactly one per round, all for the model the
    service submits as; each upload read back as a Series of predictions by id."""
    state = load_state(replay_dir)
    model_id = next(i for name, i in state.models.items() if name.lower() == model_name.lower())
    records = list_submissions(replay_dir)
    per_round = collections.Counter(r["round"] for r in records if r["model_id"] == model_id)
    if per_round != collections.Counter(rounds) or len(records) != len(rounds):
        raise RuntimeError(
            f"expected exactly one submission per round {rounds[0]}..{rounds[-1]} for model {model_id}, "
            f"the stand-in recorded {dict(sorted(per_round.items()))} ({len(records)} in all)"
        )
    out = {}
    for record in records:
        frame = pd.read_csv(replay_dir / record["path"], dtype={schema.ID: str})
        out[int(record["round"])] = frame.set_index(schema.ID)[schema.PREDICTION]
    return out


def parse_test_block(text: str) -> tuple[str | None, dict[str, dict[str, float]]]:
    """The table after `== held-out test eras ... ==` in the train command's output:
    (the eras as printed, {model: {column: value}}); (None, {}) when it is not there."""
    return parse_table(text, TEST_BLOCK_HEADING, "eras")


def parse_candidates(text: str) -> dict[str, dict[str, float]]:
    """The table after `== candidates, chosen by ... ==`: {candidate: {column: value}}, where
    `chosen` is 1.0 for the chosen one (NaN for the others)."""
    return parse_table(text, CANDIDATES_HEADING, "metric")[1]


def parse_blend_weights(text: str) -> dict[str, float]:
    """The line `blend weights (fitted out of fold): transformer 0.45, lgbm 0.10, ...` after the
    candidates table: {member: weight}; {} when it is not there."""
    for line in text.splitlines():
        match = BLEND_WEIGHTS_LINE.match(line.strip())
        if match:
            pairs = (item.rsplit(" ", 1) for item in match["weights"].split(", "))
            return {name: _number(value) for name, value in pairs}
    return {}


def parse_table(text: str, heading: re.Pattern, group: str) -> tuple[str | None, dict[str, dict[str, float]]]:
    lines = text.splitlines()
    for k, line in enumerate(lines):
        match = heading.match(line.strip())
        if not match:
            continue
        table = []
        after = lines[k + 1 :]
        # A note may sit between the heading and its table (the payout multipliers): skip to the table.
        start = next((i for i, row in enumerate(after[:6]) if row.strip().startswith("|")), 0)
        for row in after[start:]:
            if not row.strip().startswith("|"):
                break
            table.append([cell.strip() for cell in row.strip().strip("|").split("|")])
        if len(table) < 3:
            break
        header, rows = table[0], table[2:]  # table[1] is the --- separator
        return match[group], {
            row[0]: dict(zip(header[1:], map(_number, row[1:]), strict=False)) for row in rows
        }
    return None, {}


def _number(cell: str) -> float:
    if cell == "yes":
        return 1.0
    try:
        return float(cell)
    except ValueError:
        return math.nan  # "–": not computed
