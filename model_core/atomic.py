"""Atomic writes: readers see the old version or the new one, never half of either.

Files are written to a temporary sibling and renamed; directories are published by swapping a
symlink (rename of a symlink is atomic on POSIX, rename of a non-empty directory is not).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def staging_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A fresh directory under `parent`, removed on error (kept on success for the caller to publish)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    # mkdtemp's random part has no "-", so publish_dir can recover the prefix
    path = Path(tempfile.mkdtemp(dir=parent, prefix=f".{prefix}-", suffix=".staging"))
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def publish_dir(staged: Path, link: Path) -> Path:
    """Point the symlink `link` at `staged` (made by `staging_dir` in the same parent), atomically.

    Versions made with the same prefix that are neither the new one nor the one `link` pointed at
    before are deleted: the previous version is kept so that a run still reading it (training
    beside an ingest) is not pulled from under its feet.
    """
    staged, link = Path(staged), Path(link)
    final = staged.with_name(staged.name.removeprefix(".").removesuffix(".staging"))
    prefix = final.name.rsplit("-", 1)[0] + "-"
    os.replace(staged, final)
    previous = link.resolve() if link.is_symlink() else None
    swap_symlink(link, final.name)
    for version in final.parent.iterdir():
        is_version = version.is_dir() and not version.is_symlink() and version.name.startswith(prefix)
        if is_version and version not in (final, previous):
            shutil.rmtree(version, ignore_errors=True)
    return final


def swap_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` (a name relative to the link's folder), replacing it atomically."""
    link = Path(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp_link = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.link")
    os.symlink(target, tmp_link)
    os.replace(tmp_link, link)
