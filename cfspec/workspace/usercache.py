"""The user's own cache folder, for what must persist between runs and must never be shared.

torch keeps compiled kernels and pickled FX graphs in `<tempdir>/torchinductor_<user>` and loads
them back: on a shared machine (a cluster login node, a lab server) another user who creates
that folder first decides what the next `cfspec generate` runs. cfspec points torch at
`<user cache>/cfspec/torchinductor` instead (XDG_CACHE_HOME or ~/.cache on Linux,
~/Library/Caches on macOS, %LOCALAPPDATA% on Windows), created private (0700), and refuses a
folder that another user owns or others can write. A variable the user set wins.
Standard library only: the GPU stages and `ask`'s local backend call it before importing torch.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
from pathlib import Path


class UnsafeCacheError(OSError):
    """A cache folder someone else could have written to."""


def user_cache_root() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def private_dir(path: Path) -> Path:
    """`path`, created 0700 if missing; UnsafeCacheError when another user owns it or others
    may write to it (then nothing in it is trusted)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeCacheError(f"{path} is not a folder (a link or a file): remove it")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise UnsafeCacheError(
            f"{path} belongs to another user (uid {info.st_uid}); cfspec will not use a cache "
            f"others control: remove it, or set XDG_CACHE_HOME to a folder of your own")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeCacheError(f"{path} is writable by others: chmod 700 {path}, or remove it")
    return path


def cfspec_cache(name: str) -> Path:
    """`<user cache>/cfspec/<name>`, private."""
    return private_dir(private_dir(user_cache_root() / "cfspec") / name)


def private_torch_caches() -> None:
    """Point torch's compile caches at the user's private cache, unless the user chose one.
    Without torch installed there is nothing to point (and no folder to make: the command is
    about to say which extra it needs)."""
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ and importlib.util.find_spec("torch"):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cfspec_cache("torchinductor"))
