"""Glue for numerai_diagnostics: the current version's test-block predictions to Numerai's own diagnostics.

Optional (NUMERAI_UPLOAD_DIAGNOSTICS, off by default) and never in the weekly job's way: whatever
goes wrong (no API key, the API refuses or keeps failing, no predictions file, the warehouse) ends
as status "failed: <reason>" and a warning, never an exception. The file is the one
validation_diagnostics scores (the cross-validated fold models' predictions of the held-out test
eras, `TEST_PREDICTIONS`), written as the CSV Numerai expects (id, prediction), uploaded for the
model that submissions use (NUMERAI_MODEL_NAME, or the account's only model). Numerai's id is
kept in the warehouse (`numerai_diagnostics`), so a rerun of the same version does not upload again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from model_core import schema
from model_core.atomic import atomic_path
from numerai_assets.shared.home import DIAGNOSTICS_CSV, TEST_PREDICTIONS, HomeLayout
from numerai_assets.shared.model_versions import current_version
from numerai_assets.shared.numerai_api import ModelChoiceError, NumeraiAPI, NumeraiAPIError
from numerai_assets.shared.warehouse import Warehouse

STATUS_OFF = "off"
STATUS_UPLOADED = "uploaded"
STATUS_ALREADY_UPLOADED = "already_uploaded"
FAILED = "failed: "  # + the reason
NO_CREDENTIALS = "no API key (NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY are not set)"


class Log(Protocol):
    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...


@dataclasses.dataclass(frozen=True)
class DiagnosticsUpload:
    status: str  # off | uploaded | already_uploaded | failed: <reason>
    model_version: str | None = None
    model_name: str | None = None
    diagnostics_id: str | None = None
    rows: int | None = None
    path: Path | None = None

    def metadata(self) -> dict[str, Any]:
        """The asset's metadata: the status always, the rest when known."""
        fields = {
            "status": self.status,
            "model_version": self.model_version,
            "model_name": self.model_name,
            "diagnostics_id": self.diagnostics_id,
            "rows": self.rows,
            "path": None if self.path is None else str(self.path),
        }
        return {key: value for key, value in fields.items() if value is not None}


class _Failed(Exception):
    """A reason to give up, with what was known by then."""

    def __init__(self, reason: str, known: dict[str, Any]) -> None:
        super().__init__(reason)
        self.known = known


def upload_current(
    api: NumeraiAPI,
    warehouse: Warehouse,
    layout: HomeLayout,
    enabled: bool,
    model_name: str | None,
    log: Log,
) -> DiagnosticsUpload:
    """Upload the current version's test-block predictions, or say why not; never raises."""
    if not enabled:
        log.info("NUMERAI_UPLOAD_DIAGNOSTICS is off: nothing uploaded to Numerai's diagnostics")
        return DiagnosticsUpload(STATUS_OFF)
    try:
        result = _upload(api, warehouse, layout, model_name)
    except _Failed as failed:
        return _failed(log, str(failed), failed.known)
    except Exception as err:  # anything else too: the weekly job must go on
        return _failed(log, _reason(err), {"model_version": current_version(layout)})
    log.info(
        f"Numerai diagnostics of model version {result.model_version} ({result.model_name}): "
        f"{result.status}, id {result.diagnostics_id}"
    )
    return result


def _upload(
    api: NumeraiAPI, warehouse: Warehouse, layout: HomeLayout, wanted: str | None
) -> DiagnosticsUpload:
    version = current_version(layout)
    known: dict[str, Any] = {"model_version": version}
    if not api.has_credentials:
        raise _Failed(NO_CREDENTIALS, known)
    if version is None:
        raise _Failed("no current model version (materialise the weekly_training job first)", known)
    try:
        name, model_id = api.resolve_model(wanted)
        known["model_name"] = name
        stored = warehouse.numerai_diagnostics_id(version, model_id)
        if stored is not None:
            return DiagnosticsUpload(STATUS_ALREADY_UPLOADED, version, name, stored)
        path, rows, digest = write_diagnostics_csv(layout.model_dir(version))
        known |= {"rows": rows, "path": path}
        diagnostics_id = api.upload_diagnostics(path, model_id)
    except (NumeraiAPIError, ModelChoiceError, OSError) as err:
        raise _Failed(_reason(err), known) from err
    known["diagnostics_id"] = diagnostics_id
    try:
        warehouse.record_numerai_diagnostics(version, model_id, name, diagnostics_id, rows, digest, str(path))
    except Exception as err:
        raise _Failed(
            f"uploaded as {diagnostics_id}, but the warehouse did not record it: {_reason(err)}", known
        ) from err
    return DiagnosticsUpload(STATUS_UPLOADED, version, name, diagnostics_id, rows, path)


def write_diagnostics_csv(model_dir: Path) -> tuple[Path, int, str]:
    """TEST_PREDICTIONS of `model_dir` as Numerai's CSV (id, prediction); (path, rows, sha256)."""
    source = model_dir / TEST_PREDICTIONS
    if not source.exists():
        raise FileNotFoundError(
            f"{source}: no test-block predictions (materialise validation_diagnostics first)"
        )
    frame = pl.read_parquet(source, columns=[schema.ID, schema.PREDICTION])
    path = model_dir / DIAGNOSTICS_CSV
    with atomic_path(path) as tmp:
        frame.write_csv(tmp)
    return path, frame.height, hashlib.sha256(path.read_bytes()).hexdigest()


def _failed(log: Log, reason: str, known: dict[str, Any]) -> DiagnosticsUpload:
    log.warning(f"Numerai diagnostics not uploaded: {reason}. The weekly job goes on.")
    fields = {key: value for key, value in known.items() if key in DiagnosticsUpload.__dataclass_fields__}
    return DiagnosticsUpload(status=f"{FAILED}{reason}", **fields)


def _reason(err: Exception) -> str:
    """What went wrong, in one line. Our errors say it themselves; others are named by their type."""
    if isinstance(err, (NumeraiAPIError, ModelChoiceError, FileNotFoundError)):
        text = str(err)
    else:
        text = f"{type(err).__name__}: {err}"
    return " ".join(text.split())
