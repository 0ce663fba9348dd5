"""The operations of the simulated Numerai GraphQL API, resolved from numerapi's fixed query texts.

numerapi 3.1.1 sends a handful of literal query strings; this module recognises them by their
top-level field (`listDatasets`, `dataset(`, `rounds(`, `account {`, `submission_upload_auth`,
`create_submission`, `diagnosticsUploadAuth`, `createDiagnostics`) and answers with the shapes
numerapi reads. It is not a GraphQL engine: selections are not projected, and anything else is
refused with a GraphQL error.

It also owns the URL <-> file mapping the HTTP layer serves (`/files/...` downloads and
`/uploads/...` PUT targets), so the names handed out and the names served cannot drift apart.
Diagnostics uploads are PUT to `/uploads/diagnostics/<model_id>/<key>` and wait under
`DIR/diagnostics/pending/` until `createDiagnostics` accepts them as `DIR/diagnostics/<id>.csv`
(recorded in `DIR/diagnostics/diagnostics.jsonl`, listed by `list_diagnostics`).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import math
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_core import schema
from tournament_sim.layout import (
    DIAGNOSTICS_DIR,
    ROUNDS_DIR,
    TOURNAMENT_ID,
    UPLOADS_DIR,
    SimState,
    load_state,
    round_dir,
)

FILES_PREFIX = "/files/"
UPLOADS_PREFIX = "/uploads/"
SUBMISSIONS_FILE = "submissions.jsonl"
DIAGNOSTICS_FILE = "diagnostics.jsonl"
DIAGNOSTICS_URL_PART = "diagnostics"  # /uploads/diagnostics/<model_id>/<key>
PENDING_DIR = "pending"  # DIR/diagnostics/pending/<model_id>/<key>: PUT, not yet accepted
NOT_AUTHENTICATED = "You must be authenticated to perform this action"
ROUND_NOT_OPEN = "Current round not open for submissions"

# Files of a dataset version the server hands out, and the per-round files ("v5.2/live.parquet"
# always means the live file of the requested round).
DATASET_FILES = schema.REQUIRED_DATASET_FILES + schema.OPTIONAL_DATASET_FILES
ROUND_FILES = schema.ROUND_FILES + schema.OPTIONAL_ROUND_FILES

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
_FIRST_FIELD = re.compile(r"\{\s*([A-Za-z_]\w*)")
_RECORDS_LOCK = threading.Lock()  # one server process appends; threads must not interleave lines


class GraphQLError(Exception):
    """An error the API reports in the response's `errors` list (HTTP 200)."""


@dataclass(frozen=True)
class RequestContext:
    sim_dir: Path
    base_url: str  # "http://host:port" as the client reached us; download/upload URLs are built on it
    authorization: str | None  # the raw Authorization header; never logged


Resolver = Callable[[RequestContext, SimState, dict[str, Any]], Any]


# ---------------------------------------------------------------------------------------------
# Operations


def resolve_list_datasets(ctx: RequestContext, state: SimState, variables: dict[str, Any]) -> list[str]:
    _require_tournament(variables)
    number = resolve_round(state, variables.get("round"))
    version_dir = ctx.sim_dir / state.dataset_version
    names = [name for name in DATASET_FILES if (version_dir / name).is_file()]
    names += [name for name in ROUND_FILES if (round_dir(ctx.sim_dir, number) / name).is_file()]
    return [schema.dataset_file(state.dataset_version, name) for name in names]


def resolve_dataset(ctx: RequestContext, state: SimState, variables: dict[str, Any]) -> str:
    _require_tournament(variables)
    filename = variables.get("filename")
    if not isinstance(filename, str):
        raise GraphQLError("dataset: argument filename (String!) is required")
    number = resolve_round(state, variables.get("round"))
    version, _, name = filename.partition("/")
    if version != state.dataset_version or name not in DATASET_FILES + ROUND_FILES:
        raise GraphQLError(
            f"dataset {filename!r} not found (version {state.dataset_version} has: {_names()})"
        )
    relative = f"{ROUNDS_DIR}/{number}/{name}" if name in ROUND_FILES else f"{version}/{name}"
    if not (ctx.sim_dir / relative).is_file():
        raise GraphQLError(f"dataset {filename!r} for round {number} not found")
    return f"{ctx.base_url}{FILES_PREFIX}{relative}"


def resolve_rounds(ctx: RequestContext, state: SimState, variables: dict[str, Any]) -> list[dict[str, Any]]:
    _require_tournament(variables)
    # numerapi asks for `number: 0` (an alias of the current round) as a literal in the query.
    if variables.get("number") not in (None, 0):
        raise GraphQLError("unsupported by the simulator: rounds(number != 0)")
    if not round_is_open(state):
        raise GraphQLError(ROUND_NOT_OPEN)
    current = state.current
    return [
        {
            "number": current.number,
            "openTime": current.open_time,
            "closeStakingTime": current.close_staking_time,
        }
    ]


def resolve_account(ctx: RequestContext, state: SimState, variables: dict[str, Any]) -> dict[str, Any]:
    require_auth(state, ctx.authorization)
    models = [
        {"id": model_id, "name": name, "tournament": TOURNAMENT_ID} for name, model_id in state.models.items()
    ]
    return {"username": "simulated", "models": models}


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
    _require_tournament(variables)
    model_id = require_model(state, variables.get("modelId"))
    original = variables.get("filename")
    if not isinstance(original, str) or not original:
        raise GraphQLError(f"{operation}: argument filename (String!) is required")
    # A fresh key per upload, as the real API issues a fresh object name: two uploads never collide.
    return model_id, f"{uuid.uuid4().hex}_{_sanitise(original)}"


def resolve_create_submission(
    ctx: RequestContext, state: SimState, variables: dict[str, Any]
) -> dict[str, str]:
    require_auth(state, ctx.authorization)
    _require_tournament(variables)
    model_id = require_model(state, variables.get("modelId"))
    key = variables.get("filename")
    stored = find_upload(ctx.sim_dir, model_id, key) if isinstance(key, str) else None
    if stored is None:
        raise GraphQLError(f"file not found: {key!r} was not uploaded for model {model_id}")
    if not round_is_open(state):
        raise GraphQLError(ROUND_NOT_OPEN)
    content = stored.read_bytes()
    rows = validate_submission_csv(content)
    record = {
        "submission_id": str(uuid.uuid4()),
        "round": state.current.number,
        "model_id": model_id,
        "model_name": _model_name(state, model_id),
        "key": key,
        "path": stored.relative_to(ctx.sim_dir).as_posix(),
        "rows": rows,
        "sha256": hashlib.sha256(content).hexdigest(),
        "time": dt.datetime.now(dt.UTC).isoformat(),
    }
    append_submission(ctx.sim_dir, record)
    return {"id": record["submission_id"]}


def resolve_create_diagnostics(
    ctx: RequestContext, state: SimState, variables: dict[str, Any]
) -> dict[str, str]:
    """Accept a diagnostics upload: checked like a submission (id, prediction in [0, 1]), kept as
    `DIR/diagnostics/<id>.csv`. Numerai scores it on the validation eras later; the stand-in does not."""
    require_auth(state, ctx.authorization)
    _require_tournament(variables)
    model_id = require_model(state, variables.get("modelId"))
    key = variables.get("filename")
    pending = _pending_diagnostics(ctx.sim_dir, model_id, key) if isinstance(key, str) else None
    if pending is None:
        raise GraphQLError(f"file not found: {key!r} was not uploaded for diagnostics of model {model_id}")
    content = pending.read_bytes()
    rows = validate_submission_csv(content, what="diagnostics upload")
    diagnostics_id = str(uuid.uuid4())
    stored = Path(ctx.sim_dir) / DIAGNOSTICS_DIR / f"{diagnostics_id}.csv"
    pending.replace(stored)  # a key is accepted once
    record = {
        "diagnostics_id": diagnostics_id,
        "model_id": model_id,
        "model_name": _model_name(state, model_id),
        "key": key,
        "path": stored.relative_to(ctx.sim_dir).as_posix(),
        "rows": rows,
        "sha256": hashlib.sha256(content).hexdigest(),
        "time": dt.datetime.now(dt.UTC).isoformat(),
    }
    _append_record(Path(ctx.sim_dir) / DIAGNOSTICS_DIR / DIAGNOSTICS_FILE, record)
    return {"id": diagnostics_id}


# Checked in order; the regexes match numerapi's literal queries (whitespace-tolerant).
OPERATIONS: tuple[tuple[str, re.Pattern[str], Resolver], ...] = (
    ("listDatasets", re.compile(r"\blistDatasets\b"), resolve_list_datasets),
    ("submission_upload_auth", re.compile(r"\bsubmission_upload_auth\s*\("), resolve_upload_auth),
    ("create_submission", re.compile(r"\bcreate_submission\s*\("), resolve_create_submission),
    (
        "diagnosticsUploadAuth",
        re.compile(r"\bdiagnosticsUploadAuth\s*\("),
        resolve_diagnostics_upload_auth,
    ),
    ("createDiagnostics", re.compile(r"\bcreateDiagnostics\s*\("), resolve_create_diagnostics),
    ("dataset", re.compile(r"\bdataset\s*\("), resolve_dataset),
    ("rounds", re.compile(r"\brounds\s*\("), resolve_rounds),
    ("account", re.compile(r"\baccount\s*\{"), resolve_account),
)


def execute(
    ctx: RequestContext, query: str, variables: dict[str, Any] | None
) -> tuple[str | None, dict[str, Any]]:
    """Resolve one request; returns (operation name, response body). GraphQL errors become `errors`."""
    operation, resolver = identify_operation(query)
    if resolver is None:
        return operation, graphql_error(f"unsupported by the simulator: {operation or '<no field>'}")
    state = load_state(ctx.sim_dir)  # re-read on every request: advance-round runs in another process
    try:
        data = resolver(ctx, state, dict(variables or {}))
    except GraphQLError as err:
        return operation, graphql_error(str(err))
    return operation, {"data": {operation: data}}


def identify_operation(query: str) -> tuple[str | None, Resolver | None]:
    for name, pattern, resolver in OPERATIONS:
        if pattern.search(query):
            return name, resolver
    first = _FIRST_FIELD.search(query)
    return (first.group(1) if first else None), None


def graphql_error(message: str) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message}]}


# ---------------------------------------------------------------------------------------------
# Rounds, credentials, models


def round_is_open(state: SimState, now: dt.datetime | None = None) -> bool:
    now = now or dt.datetime.now(dt.UTC)
    opens = dt.datetime.fromisoformat(state.current.open_time)
    closes = dt.datetime.fromisoformat(state.current.close_staking_time)
    return opens <= now < closes


def resolve_round(state: SimState, requested: Any) -> int:
    """The round a data request is about: the current one by default (None or 0, as numerapi sends)."""
    if requested in (None, 0):
        return state.current.number
    if not isinstance(requested, int) or isinstance(requested, bool):
        raise GraphQLError(f"round must be an integer, got {requested!r}")
    if not state.first_round <= requested <= state.current.number:
        raise GraphQLError(
            f"round {requested} not found (rounds {state.first_round}..{state.current.number} are available)"
        )
    return requested


def require_auth(state: SimState, authorization: str | None) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    public_id, _, secret_key = token.partition("$")
    if scheme != "Token" or not public_id or not secret_key:
        raise GraphQLError(NOT_AUTHENTICATED)
    # compare_digest: no timing hints, even on a loopback toy
    good_id = hmac.compare_digest(public_id.encode(), state.public_id.encode())
    good_key = hmac.compare_digest(secret_key.encode(), state.secret_key.encode())
    if not (good_id and good_key):
        raise GraphQLError(f"{NOT_AUTHENTICATED} (the API key was not accepted)")


def require_model(state: SimState, model_id: Any) -> str:
    if model_id not in state.models.values():
        raise GraphQLError(f"model {model_id!r} is not one of this account's models ({sorted(state.models)})")
    return model_id


def _model_name(state: SimState, model_id: str) -> str:
    return next(name for name, known in state.models.items() if known == model_id)


def _require_tournament(variables: dict[str, Any]) -> None:
    tournament = variables.get("tournament")
    if tournament not in (None, TOURNAMENT_ID):
        raise GraphQLError(
            f"tournament {tournament} not found (the simulator runs tournament {TOURNAMENT_ID})"
        )


def _names() -> str:
    return ", ".join(DATASET_FILES + ROUND_FILES)


# ---------------------------------------------------------------------------------------------
# Files: what the URLs handed out point to


def download_path(sim_dir: Path, state: SimState, relative: str) -> Path | None:
    """The file behind `/files/<relative>`, or None: only dataset and round files, never oracle/."""
    parts = relative.split("/")
    dataset_file = len(parts) == 2 and parts[0] == state.dataset_version and parts[1] in DATASET_FILES
    round_file = len(parts) == 3 and parts[0] == ROUNDS_DIR and parts[1].isdigit() and parts[2] in ROUND_FILES
    if not (dataset_file or round_file):
        return None
    path = Path(sim_dir, *parts)
    return path if path.is_file() else None


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


# ---------------------------------------------------------------------------------------------
# Submissions


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
