"""`numerai-pipeline`: the simulated tournament, ingestion and the demo, from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_core.errors import DataContractError
from numerai_assets.cli.backfills import BackfillError
from numerai_assets.cli.code_location import CodeLocationError
from numerai_assets.cli.live_runs import LiveRunError
from numerai_assets.cli.runs import RunFailedError
from numerai_assets.cli.schedule_tick import ScheduleTickError
from numerai_assets.cli.ticks import RunNotQueuedError
from numerai_assets.shared.numerai_api import NumeraiAPIError
from numerai_assets.shared.settings import SettingsError
from tournament_sim.server import PortInUseError
from tournament_sim.versions import LATEST_VERSION, VERSIONS

EXPECTED_ERRORS = (
    DataContractError,
    NumeraiAPIError,
    SettingsError,
    RunFailedError,
    CodeLocationError,
    LiveRunError,
    ScheduleTickError,
    RunNotQueuedError,
    BackfillError,
    FileNotFoundError,
    ValueError,
    PortInUseError,
)


def _sim_generate(args: argparse.Namespace) -> None:
    from tournament_sim.generate import generate_tournament

    state = generate_tournament(
        Path(args.dir),
        args.scale,
        args.seed,
        data_version=args.data_version,
        live_era_label=args.live_era,
        progress=lambda m: print(m, flush=True),
    )
    print(
        f"simulated tournament in {args.dir}: {state.dataset_version}, "
        f"rounds {state.first_round}..{state.last_round}, current {state.current.number}"
    )


def _sim_add_version(args: argparse.Namespace) -> None:
    from tournament_sim.generate import add_version
    from tournament_sim.layout import offered_versions

    add_version(Path(args.dir), args.data_version, progress=lambda m: print(m, flush=True))
    print(f"simulated tournament in {args.dir}: offers {', '.join(offered_versions(Path(args.dir)))}")


def _sim_serve(args: argparse.Namespace) -> None:
    from tournament_sim.server import FaultConfig, serve_forever

    faults = FaultConfig(fail_first=args.fail_first, error_rate=args.error_rate, delay_s=args.delay)
    serve_forever(Path(args.dir), args.port, faults)


def _sim_advance(args: argparse.Namespace) -> None:
    from tournament_sim.server import advance_round

    print(f"round {advance_round(Path(args.dir), args.window_minutes)} is open")


def _sim_close(args: argparse.Namespace) -> None:
    from tournament_sim.server import close_round

    close_round(Path(args.dir))
    print("the current round is closed for submissions")


def _ingest(args: argparse.Namespace) -> None:
    from numerai_assets.cli.runs import ingest, persistent_instance
    from numerai_assets.cli.summary import print_ingest_summary
    from numerai_assets.definitions import build_definitions
    from numerai_assets.shared.settings import load_settings

    settings = load_settings()
    instance = persistent_instance(settings.home)
    print_ingest_summary(ingest(build_definitions(settings), instance, with_round=not args.no_round))


def _train(args: argparse.Namespace) -> None:
    from numerai_assets.cli.runs import persistent_instance, train
    from numerai_assets.cli.summary import print_training_summary
    from numerai_assets.shared.settings import load_settings

    settings = load_settings()
    print_training_summary(train(persistent_instance(settings.home)))


def _submit(args: argparse.Namespace) -> None:
    from numerai_assets.cli.live_runs import submit
    from numerai_assets.cli.runs import persistent_instance
    from numerai_assets.cli.summary import print_receipt
    from numerai_assets.definitions import build_definitions
    from numerai_assets.shared.settings import load_settings

    settings = load_settings()
    print_receipt(
        submit(build_definitions(settings), persistent_instance(settings.home), args.round, args.force)
    )


def _status(args: argparse.Namespace) -> None:
    from numerai_assets.cli.live_runs import status
    from numerai_assets.definitions import build_definitions
    from numerai_assets.shared.settings import load_settings

    settings = load_settings()
    for label, value in status(build_definitions(settings), settings):
        print(f"{label:<16} {value}")


def _backfill(args: argparse.Namespace) -> None:
    from numerai_assets.cli.backfills import backfill_command, resume_command

    if args.id:
        resume_command(args.id)
    else:
        backfill_command(args.eras, args.wait, rounds_spec=args.rounds)


def _demo(args: argparse.Namespace) -> None:
    from numerai_assets.cli.demo import run_demo

    run_demo(Path(args.dir), scale=args.scale, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="numerai-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("sim", help="the simulated tournament").add_subparsers(
        dest="sim_command", required=True
    )
    gen = sim.add_parser("generate", help="write a Numerai-shaped tournament under DIR/<data version>")
    gen.add_argument("dir")
    gen.add_argument("--scale", default="tiny", choices=["tiny", "demo", "full"])
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument(
        "--data-version", default=LATEST_VERSION, choices=list(VERSIONS), help="the dataset version to write"
    )
    gen.add_argument(
        "--live-era", default="number", choices=["number", "X"], help="how live files label their era"
    )
    gen.set_defaults(func=_sim_generate)
    add = sim.add_parser(
        "add-version", help="add another dataset version of the same tournament (same world, rounds kept)"
    )
    add.add_argument("dir")
    add.add_argument(
        "--data-version", default=LATEST_VERSION, choices=list(VERSIONS), help="the dataset version to add"
    )
    add.set_defaults(func=_sim_add_version)
    serve = sim.add_parser("serve", help="serve the Numerai API stand-in on 127.0.0.1")
    serve.add_argument("dir")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--fail-first", type=int, default=0, help="answer the first N requests with HTTP 500")
    serve.add_argument(
        "--error-rate", type=float, default=0.0, help="share of later requests answered with 500"
    )
    serve.add_argument("--delay", type=float, default=0.0, help="seconds added to every answer")
    serve.set_defaults(func=_sim_serve)
    adv = sim.add_parser("advance-round", help="open the next round")
    adv.add_argument("dir")
    adv.add_argument("--window-minutes", type=float, default=60.0)
    adv.set_defaults(func=_sim_advance)
    close = sim.add_parser("close-round", help="close the current round for submissions")
    close.add_argument("dir")
    close.set_defaults(func=_sim_close)

    ing = commands.add_parser("ingest", help="download and clean the data through Dagster (DAGSTER_HOME)")
    ing.add_argument("--no-round", action="store_true", help="skip the current round's live file")
    ing.set_defaults(func=_ingest)

    trn = commands.add_parser("train", help="the weekly training job (ingest -> folds) through Dagster")
    trn.set_defaults(func=_train)

    sub = commands.add_parser("submit", help="predict, check and upload the open round through Dagster")
    sub.add_argument("--round", type=int, default=None, help="round number (default: the open round)")
    sub.add_argument("--force", action="store_true", help="upload even if the ledger has this round")
    sub.set_defaults(func=_submit)

    stat = commands.add_parser("status", help="current round, last submission, model version, next training")
    stat.set_defaults(func=_status)

    bfl = commands.add_parser(
        "backfill",
        help="a Dagster backfill of historical eras (predictions, scores) or rounds (live files, predictions)",
    )
    target = bfl.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--eras",
        help="eras: an inclusive range 0575:0700, one era, a comma list, 'last N', a split "
        "(train, validation, test, unresolved, resolved) or 'all'",
    )
    target.add_argument("--rounds", help="inclusive round range, e.g. 1001:1004: live files and predictions")
    target.add_argument(
        "--id", help="a recorded backfill (e.g. launched from the UI): follow it, or run it here if no daemon"
    )
    bfl.add_argument("--wait", action="store_true", help="follow it to the end (runs it here if no daemon)")
    bfl.set_defaults(func=_backfill)

    demo = commands.add_parser("demo", help="the whole loop on the simulated tournament")
    demo.add_argument("--dir", default=".numerai-demo")
    demo.add_argument("--scale", default="demo", choices=["tiny", "demo", "full"])
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except Exception as err:
        # Dagster wraps an asset's error; show the user the one that says what was wrong.
        cause = getattr(err, "user_exception", None) or err
        if not isinstance(cause, EXPECTED_ERRORS):
            raise
        print(f"error: {cause}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
