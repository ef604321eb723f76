"""Atomic file writes: a temp file beside the target, fsynced, then os.replace'd into place.

Every file cfspec writes (pairs.jsonl, imported .scm files, images, the manifest, metrics,
exports, the report) goes through here, so a run killed at any moment never leaves a torn file
where a finished one belongs, and the temp file such a kill leaves is removed by the next write
of the same target. A target that is a symlink is replaced, never written through.
Standard library only: the lint core and the GPU stages share it.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


@functools.cache
def file_mode() -> int:
    """0666 less the umask: what open() would have given (mkstemp makes files 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(target: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through a temp file beside `target`, fsync it, then os.replace it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), file_mode())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(target: Path, text: str) -> None:
    """UTF-8 text with LF line ends, atomically."""
    atomic_write(target, lambda handle: handle.write(text.encode("utf-8")))


def rewrite_in_place(target: Path, text: str) -> None:
    """Replace the text of an existing file the way black and ruff do: the same inode, so its
    mode (a private 0600 spec stays private), owner, hard links and the symlinks pointing to it
    are kept, and the real file, not the link, is what changes. For `cfspec fmt`, which edits
    the user's own files; outputs cfspec creates go through `atomic_write`.

    The new text is written over the old from the start, then the file is cut to its length: a
    kill between the two leaves the whole new text followed by a tail of the old, never an
    empty or half-old file."""
    data = text.encode("utf-8")
    fd = os.open(target, os.O_WRONLY)  # follows links; fails on a missing file
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(target: Path) -> None:
    """The temp files `atomic_write(target, ...)` leaves when a run is killed mid-write
    (`.<name>.<8 random characters>.tmp`, mkstemp's pattern); other files are left alone."""
    stale = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")
    with os.scandir(target.parent) as entries:
        for entry in entries:
            if stale.fullmatch(entry.name) and not entry.is_dir(follow_symlinks=False):
                Path(entry.path).unlink(missing_ok=True)
