"""The operations of the simulated Numerai GraphQL API, resolved from numerapi's fixed query texts.

numerapi 3.1.1 sends a handful of literal query strings; this module recognises them by their
top-level field (`listDatasets`, `dataset(`, `rounds(`, `account {`, `submission_upload_auth`,
`create_submission`, `diagnosticsUploadAuth`, `createDiagnostics`) and answers with the shapes
numerapi reads. It is not a GraphQL engine: selections are not projected, and anything else is
refused with a GraphQL error.

It also owns the URL -> file mapping of the downloads the HTTP layer serves (`/files/...`), so the
names handed out and the names served cannot drift apart. The upload operations and their files
are tournament_sim/uploads.py's; what every operation checks is tournament_sim/graphql_common.py's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from model_core import schema
from tournament_sim.graphql_common import (
    ROUND_NOT_OPEN,
    GraphQLError,
    RequestContext,
    Resolver,
    require_auth,
    require_tournament,
    round_is_open,
)
from tournament_sim.layout import (
    ROUNDS_DIR,
    TOURNAMENT_ID,
    SimState,
    load_state,
    offered_versions,
    round_file,
)
from tournament_sim.uploads import (
    resolve_create_diagnostics,
    resolve_create_submission,
    resolve_diagnostics_upload_auth,
    resolve_upload_auth,
)

FILES_PREFIX = "/files/"

# Files of a dataset version the server hands out, and the per-round files ("v5.3/live.parquet"
# always means v5.3's live file of the requested round). Every offered version is served.
DATASET_FILES = schema.REQUIRED_DATASET_FILES + schema.OPTIONAL_DATASET_FILES
ROUND_FILES = schema.ROUND_FILES + schema.OPTIONAL_ROUND_FILES

_FIRST_FIELD = re.compile(r"\{\s*([A-Za-z_]\w*)")


# ---------------------------------------------------------------------------------------------
# Operations


def resolve_list_datasets(ctx: RequestContext, state: SimState, variables: dict[str, Any]) -> list[str]:
    """The files of every offered version, each with its round files of the requested round."""
    require_tournament(variables)
    number = resolve_round(state, variables.get("round"))
    names = []
    for version in offered_versions(ctx.sim_dir):
        present = [name for name in DATASET_FILES if (ctx.sim_dir / version / name).is_file()]
        present += [name for name in ROUND_FILES if round_file(ctx.sim_dir, number, version, name).is_file()]
        names += [schema.dataset_file(version, name) for name in present]
    return names


def resolve_dataset(ctx: RequestContext, state: SimState, variables: dict[str, Any]) -> str:
    require_tournament(variables)
    filename = variables.get("filename")
    if not isinstance(filename, str):
        raise GraphQLError("dataset: argument filename (String!) is required")
    number = resolve_round(state, variables.get("round"))
    version, _, name = filename.partition("/")
    offered = offered_versions(ctx.sim_dir)
    if version not in offered:
        raise GraphQLError(
            f"dataset {filename!r} not found: version {version!r} is not offered "
            f"(offered versions: {', '.join(offered) or 'none'})"
        )
    if name not in DATASET_FILES + ROUND_FILES:
        raise GraphQLError(f"dataset {filename!r} not found (version {version} has: {_names()})")
    if name in ROUND_FILES:
        path = round_file(ctx.sim_dir, number, version, name)
    else:
        path = ctx.sim_dir / version / name
    if not path.is_file():
        raise GraphQLError(f"dataset {filename!r} for round {number} not found")
    return f"{ctx.base_url}{FILES_PREFIX}{path.relative_to(ctx.sim_dir).as_posix()}"


def resolve_rounds(ctx: RequestContext, state: SimState, variables: dict[str, Any]) -> list[dict[str, Any]]:
    require_tournament(variables)
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
# Rounds


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


def _names() -> str:
    return ", ".join(DATASET_FILES + ROUND_FILES)


# ---------------------------------------------------------------------------------------------
# Files: what the URLs handed out point to


def download_path(sim_dir: Path, relative: str) -> Path | None:
    """The file behind `/files/<relative>`, or None: only the dataset files of an offered version
    (`<version>/<name>`) and their round files (`rounds/<n>/<version>/<name>`), never oracle/."""
    parts = relative.split("/")
    offered = offered_versions(sim_dir)
    dataset_file = len(parts) == 2 and parts[0] in offered and parts[1] in DATASET_FILES
    round_file = (
        len(parts) == 4
        and parts[0] == ROUNDS_DIR
        and parts[1].isdigit()
        and parts[2] in offered
        and parts[3] in ROUND_FILES
    )
    if not (dataset_file or round_file):
        return None
    path = Path(sim_dir, *parts)
    return path if path.is_file() else None
