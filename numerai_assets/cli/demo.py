"""`make demo`: the service on the simulated tournament, start to end, on this machine."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from tournament_sim.layout import load_state


def run_demo(workdir: Path, scale: str = "demo", seed: int = 0) -> None:
    from tournament_sim.generate import generate_tournament
    from tournament_sim.server import SimServer

    workdir = Path(workdir).resolve()
    sim_dir = workdir / "sim"
    started = time.perf_counter()
    # Everything afresh every time (seconds at demo scale): the rounds it opens are open for the
    # next hour, and a ledger left by an earlier demo would hold rounds this new stand-in never saw.
    for stale in (sim_dir, workdir / "home", workdir / "dagster"):
        shutil.rmtree(stale, ignore_errors=True)
    print(f"[demo] generating the {scale!r} simulated tournament in {sim_dir} (seed {seed})", flush=True)
    generate_tournament(
        sim_dir,
        scale,
        seed,
        progress=lambda m: print(f"[sim] {m}", flush=True),
    )
    state = load_state(sim_dir)
    with SimServer(sim_dir) as server:
        print(f"[demo] Numerai API stand-in at {server.url}", flush=True)
        # The simulator's credentials open nothing but the loopback stand-in.
        os.environ.update(
            {
                "NUMERAI_API_URL": server.url,
                "NUMERAI_HOME": str(workdir / "home"),
                "DAGSTER_HOME": str(workdir / "dagster"),
                "NUMERAI_PUBLIC_ID": state.public_id,
                "NUMERAI_SECRET_KEY": state.secret_key,
                "NUMERAI_MODEL_NAME": next(iter(state.models)),
            }
        )
        # A short training profile so the demo ends in minutes on 2 cores, and a round sensor
        # that may tick every 5 s (the daemon's rule: one tick per interval); a variable the user
        # set wins. The weekly job uses the defaults of the README.
        os.environ.setdefault("NUMERAI_MAX_EPOCHS", "3")
        os.environ.setdefault("NUMERAI_ROUND_POLL_S", "5")
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        # Dagster's defaults (local storage), without the telemetry banner.
        (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        # Imported only now: the code location reads its settings from the environment at import.
        from numerai_assets.cli.code_location import code_location
        from numerai_assets.cli.runs import persistent_instance
        from numerai_assets.definitions import build_definitions
        from numerai_assets.shared.settings import load_settings

        settings = load_settings()
        instance = persistent_instance(settings.home)
        with code_location(instance) as workspace:
            _play(build_definitions(settings), settings, instance, workspace, state.current.number, sim_dir)
    print(f"\n[demo] done in {time.perf_counter() - started:.0f}s; the stand-in is stopped.")
    print(browse_instructions(workspace_dir=workdir, sim_dir=sim_dir, api_url=server.url, port=server.port))


def _play(defs, settings, instance, workspace, first_round: int, sim_dir: Path) -> None:
    """The weekly schedule's tick, then the round sensor's ticks (through the instance), and their runs."""
    from numerai_assets.cli.live_runs import status
    from numerai_assets.cli.round_sensor import tick_round_sensor
    from numerai_assets.cli.runs import training_summary
    from numerai_assets.cli.schedule_tick import tick_training_schedule
    from numerai_assets.cli.summary import print_ingest_summary, print_receipt, print_training_summary
    from tournament_sim.rounds import advance_round
    from tournament_sim.server import list_submissions

    print(
        "\n[demo] the weekly_training job: ingest -> folds (multiprocess executor) -> ensemble "
        "-> baseline -> diagnostics, from the weekly schedule's latest tick, as the daemon's",
        flush=True,
    )
    [result] = tick_training_schedule(instance, workspace).results
    summary = training_summary(result)
    print_ingest_summary(summary)
    print_training_summary(summary)

    print(f"\n[demo] round {first_round} is open: the round sensor's tick, as the daemon's", flush=True)
    tick = tick_round_sensor(instance, workspace)
    for receipt in tick.receipts:
        print_receipt(receipt)
    tick = tick_round_sensor(instance, workspace)
    print(f"[demo] the sensor again, same round: {tick.skip_message}")
    opened = advance_round(sim_dir)
    print(f"\n[demo] round {opened} opens: the sensor's next tick", flush=True)
    tick = tick_round_sensor(instance, workspace)
    for receipt in tick.receipts:
        print_receipt(receipt)
    landed = list_submissions(sim_dir)
    print(f"\n[demo] the stand-in received {len(landed)} submissions: rounds {[r['round'] for r in landed]}")
    print("\n== status ==")
    for label, value in status(defs, settings):
        print(f"{label:<16} {value}")


def browse_instructions(workspace_dir: Path, sim_dir: Path, api_url: str, port: int) -> str:
    """How to open the demo's instance in the UI with its sensor and schedule on the stand-in."""
    cli = Path(sys.executable).parent / "numerai-pipeline"
    return "\n".join(
        [
            "[demo] browse the runs in the Dagster UI (under the weekly_training and live_round jobs, the",
            "[demo] weekly schedule's tick and the round sensor's ticks, each with its run): start the stand-in",
            "[demo] again, then the UI, from this directory:",
            f"    {cli} sim serve {sim_dir} --port {port} &",
            f"    NUMERAI_API_URL={api_url} DAGSTER_HOME={workspace_dir / 'dagster'} "
            f"NUMERAI_HOME={workspace_dir / 'home'} make dev",
            "[demo] With that NUMERAI_API_URL the round sensor and the weekly schedule ask that stand-in, never",
            "[demo] Numerai (with the stand-in stopped, the sensor's ticks say the API failed); so does a run",
            f"[demo] re-executed from the UI. `{cli} sim advance-round {sim_dir}` opens the next",
            "[demo] round, which the sensor then predicts and submits as a dry run (no credentials are passed on).",
            "[demo] weekly_training_schedule stays running, as its code declares: its page lists the demo's tick",
            "[demo] and training run, and the next tick (NUMERAI_TRAINING_CRON, UTC), which the daemon of",
            "[demo] `make dev` starts if it is still up then.",
        ]
    )
