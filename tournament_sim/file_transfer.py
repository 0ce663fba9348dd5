"""Moving files over HTTP for the API stand-in: byte ranges of a download, chunked reads, and
uploads written atomically."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHUNK_SIZE = 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive for `bytes=N-` / `bytes=N-M`; None = whole file; "unsatisfiable"."""
    match = _RANGE.match(header.strip()) if header else None
    if match is None:
        return None  # absent or a form we do not serve (multi-range, suffix): answer the whole file
    start = int(match.group(1))
    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return start, end


def read_span(handle: Any, start: int, length: int) -> Iterator[bytes]:
    handle.seek(start)
    while length > 0:
        chunk = handle.read(min(CHUNK_SIZE, length))
        if not chunk:
            return
        length -= len(chunk)
        yield chunk


def write_chunks_atomic(target: Path, chunks: Iterator[bytes]) -> None:
    """Write `chunks` to `target` through a temp file, so no half-written upload is ever seen."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
