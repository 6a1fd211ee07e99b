"""Uploaded videos: copied in chunks into a fresh file under the server's own work directory (the client names no
path), capped in size, probed as a video before anything uses them, and removed after."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tubelet.data import VideoInfo, probe
from tubelet.data.sources import VIDEO_EXTENSIONS
from tubelet.errors import TubeletError

CHUNK = 1 << 20


class UploadError(TubeletError):
    """An upload that cannot be used; `status` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    """A received video: where the server keeps it, the client's file name (for display only), what probe saw."""

    path: Path
    name: str
    size_bytes: int
    info: VideoInfo

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def scrub(self, message: str) -> str:
        """A message with the server's path of this upload replaced by the client's file name."""
        return message.replace(str(self.path), self.name)


def display_name(client_name: str | None) -> str:
    """The last component of a client's file name, without control characters, at most 120 characters."""
    base = re.split(r"[/\\]", client_name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:120] or "upload"


def receive(src: BinaryIO, client_name: str | None, workdir: Path, max_bytes: int) -> Upload:
    """Copy `src` into a new file in `workdir`, refusing more than `max_bytes`, then probe it as a video."""
    name = display_name(client_name)
    suffix = Path(name).suffix.lower()
    path = workdir / f"{uuid.uuid4().hex}{suffix if suffix in VIDEO_EXTENSIONS else ''}"
    size = 0
    try:
        with open(path, "xb") as out:
            while block := src.read(CHUNK):
                size += len(block)
                if size > max_bytes:
                    raise UploadError(f"{name}: larger than this server's upload limit of "
                                      f"{max_bytes / 2**20:.1f} MiB", 413)
                out.write(block)
        if size == 0:
            raise UploadError(f"{name}: empty file (0 bytes)", 415)
        try:
            info = probe(path)
        except TubeletError as e:
            raise UploadError(str(e).replace(str(path), name), 415) from None
        if not info.has_video or info.duration_s <= 0:
            raise UploadError(f"{name}: not a video (no video stream with a duration)", 415)
        return Upload(path, name, size, info)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def remove_quietly(path: str | os.PathLike) -> None:
    Path(path).unlink(missing_ok=True)
