"""Atomic writes: readers see the old version or the new one, never half of either.

Files are written to a temporary sibling and renamed; directories are published by swapping a
symlink (rename of a symlink is atomic on POSIX, rename of a non-empty directory is not).

Every temporary (a `.tmp` file, a `.staging` directory, a `.link` symlink) has an owner: beside
it, `<temporary>.lock` is created and `flock`-ed before the temporary exists and removed only
after it is gone. The kernel drops the lock when the owning process dies, however it dies
(SIGKILL, OOM), so a later writer of the same target (`sweep_abandoned`, called on entry) removes
what a dead process left and never what a live one (of any container sharing the files) holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_SUFFIX = ".lock"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    with owned_temp(path.parent, f"{path.name}.", ".tmp") as tmp:
        yield tmp
        os.replace(tmp, path)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


@contextlib.contextmanager
def staging_dir(parent: Path, prefix: str, log: Callable[[str], None] | None = None) -> Iterator[Path]:
    """A fresh directory under `parent`, owned by this process while the block runs.

    Publish it (`publish_dir`) inside the block: whatever is still at the staging name when the
    block ends, normally or by an error, is removed. Staging left by dead runs with the same
    prefix is removed on entry (and reported to `log`).
    """
    # the random part has no "-", so publish_dir can recover the prefix
    with owned_temp(Path(parent), f"{prefix}-", ".staging", log) as path:
        path.mkdir()
        yield path


@contextlib.contextmanager
def owned_temp(
    parent: Path, prefix: str, suffix: str, log: Callable[[str], None] | None = None
) -> Iterator[Path]:
    """A fresh name `parent/.<prefix><random><suffix>` that this process owns while the block runs.

    The caller creates the file, directory or link there (and usually renames it away); on exit
    whatever is left at the name is removed, then the lock. On entry, temporaries of the same
    prefix and suffix whose owner died are removed.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    sweep_abandoned(parent, f".{glob.escape(prefix)}*{glob.escape(suffix)}", log)
    while True:
        path = parent / f".{prefix}{uuid.uuid4().hex[:12]}{suffix}"
        with contextlib.suppress(FileExistsError):
            fd = _claim(_lock_of(path))
            break
    try:
        yield path
    finally:
        _remove(path)
        _lock_of(path).unlink(missing_ok=True)
        os.close(fd)


def sweep_abandoned(parent: Path, pattern: str, log: Callable[[str], None] | None = None) -> list[Path]:
    """Remove the temporaries in `parent` matching `pattern` (a glob of names) whose owner is dead.

    Dead: its lock file is not locked, or it has none (left by a version without owners). A
    temporary whose lock is held by a live process is left alone. Returns what was removed.
    """
    parent = Path(parent)
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for lock in sorted(parent.glob(pattern + LOCK_SUFFIX)):
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue  # its owner finished meanwhile
        try:
            if not _try_lock(fd, lock):
                continue  # a live process owns it
            owned = lock.with_name(lock.name.removesuffix(LOCK_SUFFIX))
            if os.path.lexists(owned):
                _remove(owned)
                removed.append(owned)
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
    # an owner creates its lock before the temporary and removes it after: no lock, no owner
    for path in sorted(parent.glob(pattern)):
        if not os.path.lexists(_lock_of(path)):
            _remove(path)
            removed.append(path)
    for path in removed:
        (log or _quiet)(f"removed {path}, left by a run that died")
    return removed


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
    with owned_temp(link.parent, f"{link.name}.", ".link") as tmp_link:
        os.symlink(target, tmp_link)
        os.replace(tmp_link, link)


def _quiet(_message: str) -> None:
    pass


def _lock_of(path: Path) -> Path:
    return path.with_name(path.name + LOCK_SUFFIX)


def _claim(lock: Path) -> int:
    """Create `lock` and hold its flock; FileExistsError if the name is taken."""
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            return fd  # a filesystem without locks: sweepers cannot lock it either, so they leave it
        if _still_linked(fd, lock):
            return fd
        # a sweeper took it for a dead one between our open and flock, and removed it: again
        os.close(fd)


def _try_lock(fd: int, lock: Path) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held by a live process (or a filesystem without locks: keep it, to be safe)
        return False
    return _still_linked(fd, lock)  # else another sweeper removed it meanwhile


def _still_linked(fd: int, lock: Path) -> bool:
    try:
        return os.stat(lock).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
