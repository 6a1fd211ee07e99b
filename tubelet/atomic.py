"""Atomic writes: a file or a directory appears whole under its name or not at all (temp name, fsync, rename).

Every writer of results, checkpoints, catalogs and models goes through here, so a kill at any moment leaves
either the old content or the new one, never a half-written file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tubelet.errors import TubeletError


def fsync_dir(path: str | Path) -> None:
    """Make a rename inside `path` durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def _writable_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TubeletError(f"{path.parent}: cannot create directory ({e.strerror or e})") from None


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, durable: bool = True) -> Iterator[IO]:
    """Open a temp file beside `path` for writing; on a clean exit it is fsynced and renamed onto `path`,
    on an exception it is removed and `path` is left as it was."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes only ('w' or 'wb'), not {mode!r}")
    path = Path(path)
    _writable_parent(path)
    if path.is_dir():
        raise TubeletError(f"{path}: is a directory, expected a file path")
    tmp = _temp_name(path)
    try:
        f = open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    except OSError as e:
        raise TubeletError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        with f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write(path: str | Path, data: str | bytes, *, durable: bool = True) -> Path:
    """Write `data` (text as UTF-8, or bytes) to `path` atomically; returns the path."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w", durable=durable) as f:
        f.write(data)
    return Path(path)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temp directory beside `path`; on a clean exit it replaces `path` whole (an existing
    directory there is swapped out and removed), on an exception it is removed."""
    path = Path(path)
    _writable_parent(path)
    tmp = _temp_name(path)
    try:
        tmp.mkdir()
    except OSError as e:
        raise TubeletError(f"{path.parent}: cannot write ({e.strerror or e})") from None
    try:
        yield tmp
        if path.exists():
            old = _temp_name(path)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)
