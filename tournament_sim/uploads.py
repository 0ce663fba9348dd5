"""The upload side of the simulated API: upload URLs (`submission_upload_auth`,
`diagnosticsUploadAuth`), the PUT targets behind them, and the files accepted by
`create_submission` and `createDiagnostics`, each recorded in a JSON-lines file.

Submissions are PUT to `/uploads/<round>/<model_id>/<key>` and stored there under
`DIR/uploads/` (recorded in `DIR/uploads/submissions.jsonl`, listed by `list_submissions`).
Diagnostics uploads are PUT to `/uploads/diagnostics/<model_id>/<key>` and wait under
`DIR/diagnostics/pending/` until `createDiagnostics` accepts them as `DIR/diagnostics/<id>.csv`
(recorded in `DIR/diagnostics/diagnostics.jsonl`, listed by `list_diagnostics`).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import re
import threading
import uuid
from pathlib import Path
from typing import Any

from model_core import schema
from tournament_sim.graphql_common import (
    ROUND_NOT_OPEN,
    GraphQLError,
    RequestContext,
    model_name,
    require_auth,
    require_model,
    require_tournament,
    round_is_open,
)
from tournament_sim.layout import DIAGNOSTICS_DIR, UPLOADS_DIR, SimState

UPLOADS_PREFIX = "/uploads/"
SUBMISSIONS_FILE = "submissions.jsonl"
DIAGNOSTICS_FILE = "diagnostics.jsonl"
DIAGNOSTICS_URL_PART = "diagnostics"  # /uploads/diagnostics/<model_id>/<key>
PENDING_DIR = "pending"  # DIR/diagnostics/pending/<model_id>/<key>: PUT, not yet accepted

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
_RECORDS_LOCK = threading.Lock()  # one server process appends; threads must not interleave lines


def resolve_upload_auth(ctx: RequestContext, state: SimState, variables: dict[str, Any]) -> dict[str, str]:
    model_id, key = _new_upload_key(ctx, state, variables, "submission_upload_auth")
    url = f"{ctx.base_url}{UPLOADS_PREFIX}{state.current.number}/{model_id}/{key}"
    return {"filename": key, "url": url}


def resolve_diagnostics_upload_auth(
    ctx: RequestContext, state: SimState, variables: dict[str, Any]
) -> dict[str, str]:
    model_id, key = _new_upload_key(ctx, state, variables, "diagnosticsUploadAuth")
    url = f"{ctx.base_url}{UPLOADS_PREFIX}{DIAGNOSTICS_URL_PART}/{model_id}/{key}"
    return {"filename": key, "url": url}


def _new_upload_key(
    ctx: RequestContext, state: SimState, variables: dict[str, Any], operation: str
) -> tuple[str, str]:
    require_auth(state, ctx.authorization)
    require_tournament(variables)
    model_id = require_model(state, variables.get("modelId"))
    original = variables.get("filename")
    if not isinstance(original, str) or not original:
        raise GraphQLError(f"{operation}: argument filename (String!) is required")
    # A fresh key per upload, as the real API issues a fresh object name: two uploads never collide.
    return model_id, f"{uuid.uuid4().hex}_{_sanitise(original)}"


def resolve_create_submission(
    ctx: RequestContext, state: SimState, variables: dict[str, Any]
) -> dict[str, str]:
    model_id, key, stored = _uploaded(ctx, state, variables, find_upload, "")
    if not round_is_open(state):
        raise GraphQLError(ROUND_NOT_OPEN)
    content = stored.read_bytes()
    rows = validate_submission_csv(content)
    record = {
        "submission_id": str(uuid.uuid4()),
        "round": state.current.number,
        **_upload_fields(ctx, state, model_id, key, stored, content, rows),
    }
    append_submission(ctx.sim_dir, record)
    return {"id": record["submission_id"]}


def resolve_create_diagnostics(
    ctx: RequestContext, state: SimState, variables: dict[str, Any]
) -> dict[str, str]:
    """Accept a diagnostics upload: checked like a submission (id, prediction in [0, 1]), kept as
    `DIR/diagnostics/<id>.csv`. Numerai scores it on the validation eras later; the stand-in does not."""
    model_id, key, pending = _uploaded(ctx, state, variables, _pending_diagnostics, "diagnostics of ")
    content = pending.read_bytes()
    rows = validate_submission_csv(content, what="diagnostics upload")
    diagnostics_id = str(uuid.uuid4())
    stored = Path(ctx.sim_dir) / DIAGNOSTICS_DIR / f"{diagnostics_id}.csv"
    pending.replace(stored)  # a key is accepted once
    record = {
        "diagnostics_id": diagnostics_id,
        **_upload_fields(ctx, state, model_id, key, stored, content, rows),
    }
    _append_record(Path(ctx.sim_dir) / DIAGNOSTICS_DIR / DIAGNOSTICS_FILE, record)
    return {"id": diagnostics_id}


def _uploaded(ctx: RequestContext, state: SimState, variables: dict[str, Any], find, what: str):
    """(model id, key, the PUT file) that a create mutation names, after the credentials, the
    tournament and the model are checked; `find(sim_dir, model_id, key)` locates the file."""
    require_auth(state, ctx.authorization)
    require_tournament(variables)
    model_id = require_model(state, variables.get("modelId"))
    key = variables.get("filename")
    found = find(ctx.sim_dir, model_id, key) if isinstance(key, str) else None
    if found is None:
        raise GraphQLError(f"file not found: {key!r} was not uploaded for {what}model {model_id}")
    return model_id, key, found


def upload_path(sim_dir: Path, state: SimState, relative: str) -> Path | None:
    """Where a PUT to `/uploads/<round>/<model_id>/<key>` (a submission) or to
    `/uploads/diagnostics/<model_id>/<key>` is stored, or None if the name is not valid."""
    parts = relative.split("/")
    if len(parts) != 3:
        return None
    first, model_id, key = parts
    if model_id not in state.models.values() or not _SAFE_KEY.match(key):
        return None
    if first == DIAGNOSTICS_URL_PART:
        return Path(sim_dir) / DIAGNOSTICS_DIR / PENDING_DIR / model_id / key
    if not first.isdigit():
        return None
    return Path(sim_dir) / UPLOADS_DIR / first / model_id / key


def find_upload(sim_dir: Path, model_id: str, key: str) -> Path | None:
    # The key is unique (uuid4), so it names one upload whichever round it was PUT in.
    if not _SAFE_KEY.match(key):
        return None
    matches = sorted((Path(sim_dir) / UPLOADS_DIR).glob(f"*/{model_id}/{key}"))
    return matches[0] if matches else None


def _pending_diagnostics(sim_dir: Path, model_id: str, key: str) -> Path | None:
    if not _SAFE_KEY.match(key):
        return None
    path = Path(sim_dir) / DIAGNOSTICS_DIR / PENDING_DIR / model_id / key
    return path if path.is_file() else None


def _sanitise(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip("._-")
    return (cleaned or "predictions.csv")[:100]


def validate_submission_csv(content: bytes, what: str = "submission") -> int:
    """Minimal checks the real API also makes; returns the number of rows. `what` names the file."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise GraphQLError(f"{what} is not UTF-8 text: {err}") from err
    reader = csv.reader(io.StringIO(text))
    header = [column.strip() for column in next(reader, [])]
    missing = [column for column in (schema.ID, schema.PREDICTION) if column not in header]
    if missing:
        raise GraphQLError(f"{what} header {header} lacks column(s) {missing}")
    id_at, prediction_at = header.index(schema.ID), header.index(schema.PREDICTION)
    rows = 0
    for line_number, row in enumerate(reader, start=2):
        if not row:
            continue
        _check_row(row, f"{what} line {line_number}", id_at, prediction_at)
        rows += 1
    if rows == 0:
        raise GraphQLError(f"{what} has no rows")
    return rows


def _check_row(row: list[str], where: str, id_at: int, prediction_at: int) -> None:
    if len(row) <= max(id_at, prediction_at) or not row[id_at]:
        raise GraphQLError(f"{where}: missing id or prediction")
    try:
        value = float(row[prediction_at])
    except ValueError as err:
        raise GraphQLError(f"{where}: prediction {row[prediction_at]!r} is not a number") from err
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise GraphQLError(f"{where}: prediction {value} is outside [0, 1]")


def append_submission(sim_dir: Path, record: dict[str, Any]) -> None:
    _append_record(Path(sim_dir) / UPLOADS_DIR / SUBMISSIONS_FILE, record)


def _append_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _RECORDS_LOCK, path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def list_submissions(sim_dir: Path) -> list[dict[str, Any]]:
    """Every accepted create_submission, oldest first (repeats for a round/model included)."""
    return _read_records(Path(sim_dir) / UPLOADS_DIR / SUBMISSIONS_FILE)


def list_diagnostics(sim_dir: Path) -> list[dict[str, Any]]:
    """Every accepted createDiagnostics, oldest first; `path` (relative to DIR) is the stored CSV."""
    return _read_records(Path(sim_dir) / DIAGNOSTICS_DIR / DIAGNOSTICS_FILE)


def _upload_fields(
    ctx: RequestContext, state: SimState, model_id: str, key: str, stored: Path, content: bytes, rows: int
) -> dict[str, Any]:
    """What every accepted upload's record says: whose, which key, where it is kept, what it held."""
    return {
        "model_id": model_id,
        "model_name": model_name(state, model_id),
        "key": key,
        "path": stored.relative_to(ctx.sim_dir).as_posix(),
        "rows": rows,
        "sha256": hashlib.sha256(content).hexdigest(),
        "time": dt.datetime.now(dt.UTC).isoformat(),
    }
