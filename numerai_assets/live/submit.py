"""Glue for the submission asset: write the CSV, validate it, upload it once, keep the ledger.

What the ledger (warehouse table `submissions`, one row per round and model) guarantees:
- a row is written with status `uploading` BEFORE the upload starts and becomes `uploaded`
  (with Numerai's submission id) right after it returns;
- a round whose row says `uploaded` is never uploaded again unless forced;
- a row left at `uploading` means the process died between the upload and the ledger write:
  the upload may or may not have reached Numerai. The next run refuses to guess: it stops with
  an error that says so, and a forced run (`numerai-pipeline submit --force`) uploads again,
  which Numerai accepts (a later upload in the same round replaces the earlier one).
So a round is never uploaded twice without a person or a forced run saying so, and a crash is
never silently taken for success.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from model_core import schema
from model_core.atomic import atomic_path
from numerai_assets.live.predict import live_ids, read_live_predictions
from numerai_assets.shared.home import HomeLayout
from numerai_assets.shared.numerai_api import ModelChoiceError, NumeraiAPI, NumeraiAPIError
from numerai_assets.shared.warehouse import STATUS_UPLOADED, STATUS_UPLOADING, Warehouse

DRY_RUN_MODEL_ID = "dry-run"


class SubmissionError(RuntimeError):
    """The submission cannot go ahead; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Receipt:
    round_number: int
    model_name: str
    model_id: str
    submission_id: str | None  # None for a dry run or a round already submitted
    status: str  # uploaded | already_uploaded | dry_run
    path: Path
    rows: int
    sha256: str
    model_version: str


def resolve_model(api: NumeraiAPI, wanted: str | None) -> tuple[str, str]:
    """(name, id) of the model to submit as: NUMERAI_MODEL_NAME, or the account's only model."""
    try:
        return api.resolve_model(wanted)
    except ModelChoiceError as err:
        raise SubmissionError(str(err)) from None


def write_submission_csv(
    layout: HomeLayout, round_number: int, model_name: str
) -> tuple[Path, int, str, str]:
    """The CSV Numerai expects (id, prediction), checked by numerai-tools; (path, rows, sha256, version)."""
    from numerai_tools.submissions import validate_submission_numerai

    predictions, version = read_live_predictions(layout.live_predictions_path(round_number))
    frame = predictions.select(schema.ID, schema.PREDICTION).to_pandas()
    universe = pd.Series(live_ids(layout, round_number), name=schema.ID)
    _, _, _, invalid = validate_submission_numerai(universe, frame.copy())
    if invalid:
        raise SubmissionError(
            f"round {round_number}: {len(invalid)} ids are not in the live universe: {invalid[:3]}"
        )
    path = layout.submission_path(round_number, model_name)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return path, len(frame), digest, version or "unknown"


def submit_round(
    api: NumeraiAPI,
    warehouse: Warehouse,
    layout: HomeLayout,
    round_number: int,
    model_name: str | None,
    force: bool,
    log: Callable[[str], None],
) -> Receipt:
    if not api.has_credentials:
        path, rows, digest, version = write_submission_csv(
            layout, round_number, model_name or DRY_RUN_MODEL_ID
        )
        warehouse.record_dry_run(
            round_number, DRY_RUN_MODEL_ID, model_name or DRY_RUN_MODEL_ID, digest, rows, version, str(path)
        )
        log(
            f"dry run: no NUMERAI_PUBLIC_ID / NUMERAI_SECRET_KEY, so {path} was written and validated, not uploaded"
        )
        return Receipt(
            round_number,
            model_name or DRY_RUN_MODEL_ID,
            DRY_RUN_MODEL_ID,
            None,
            "dry_run",
            path,
            rows,
            digest,
            version,
        )

    name, model_id = resolve_model(api, model_name)
    path, rows, digest, version = write_submission_csv(layout, round_number, name)
    entry = warehouse.ledger_entry(round_number, model_id)
    if entry and entry["status"] == STATUS_UPLOADED and not force:
        log(
            f"round {round_number} was already submitted as {name} (submission {entry['submission_id']} at "
            f"{entry['finished_at']}); nothing uploaded. Force it with `numerai-pipeline submit --force`."
        )
        return Receipt(
            round_number,
            name,
            model_id,
            entry["submission_id"],
            "already_uploaded",
            path,
            rows,
            digest,
            entry["model_version"],
        )
    if entry and entry["status"] == STATUS_UPLOADING and not force:
        raise SubmissionError(
            f"round {round_number}, model {name}: an upload started at {entry['started_at']} never recorded its end "
            "(the process stopped between the upload and the ledger write), so it may or may not have reached "
            "Numerai. Check the model's page on numer.ai, then run `numerai-pipeline submit --force` to upload again."
        )
    if entry and force:
        warehouse.forget_submission(round_number, model_id)
        log(f"forced: the ledger row of round {round_number} ({entry['status']}) is replaced by a new upload")
    if not api.round_open():
        raise SubmissionError(f"round {round_number} is not open for submissions any more; nothing uploaded")
    current = api.current_round()
    if current != round_number:
        raise SubmissionError(
            f"round {round_number} is not the current round ({current}): Numerai takes uploads for the current round only"
        )
    warehouse.record_upload_started(round_number, model_id, name, digest, rows, version, str(path))
    try:
        submission_id = api.upload(path, model_id)
    except NumeraiAPIError as err:
        if err.rejected:  # Numerai said no: nothing landed, so a plain rerun may try again
            warehouse.forget_submission(round_number, model_id)
        raise  # otherwise the row stays at `uploading`: the upload may have landed
    warehouse.record_upload_finished(round_number, model_id, submission_id)
    log(f"round {round_number}: uploaded {rows} predictions as {name}, submission {submission_id}")
    return Receipt(round_number, name, model_id, submission_id, "uploaded", path, rows, digest, version)
