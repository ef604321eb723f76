"""The output folder rules every stage follows: which symlinks are followed, how a folder is
swapped in whole, and what an I/O failure tells the user. Standard library only.

Symlink policy (one place, `output_dir`): OUT itself may be a symlink (it is the user's own
argument). Below it, a symlinked *folder* (OUT/images, OUT/images/<id>, OUT/dataset, an export's
-o DIR) is followed only when the link belongs to the user running cfspec: a link to a scratch
disk that you made is fine, a link someone else planted is refused. A *file* is never written
through a symlink: `workspace.atomic` replaces the link itself, and the manifest is appended to
with O_NOFOLLOW (`cfspec.workspace.store`).
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path

from cfspec.workspace.atomic import file_mode

_PROBE = ".cfspec-probe."


class UnsafePathError(OSError):
    """A path cfspec would write through is a link it does not trust."""


def output_dir(root: Path, *parts: str) -> Path:
    """root/parts..., every folder below root checked by the symlink policy, created if
    missing. Raises UnsafePathError for a symlink owned by someone else, and OSError (e.g.
    NotADirectoryError) when a file stands where a folder belongs."""
    path = root
    for part in parts:
        path = path / part
        check_link(path)
        try:
            path.mkdir(exist_ok=True)
        except FileExistsError:
            raise NotADirectoryError(errno.ENOTDIR, "a file stands where cfspec needs a folder",
                                     str(path)) from None
    return path


def prepare_out(out: Path, *parts: str) -> Path:
    """What each stage calls before its work: OUT/parts... created under the symlink policy and
    proved writable, so a read-only or hostile OUT fails before the first image or model."""
    folder = output_dir(out, *parts)
    check_writable(folder)
    return folder


def check_link(path: Path) -> None:
    """Refuse `path` when it is a symlink that the user running cfspec does not own."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if os.path.islink(path) and info.st_uid != os.getuid():
        raise UnsafePathError(
            errno.EPERM, f"a symbolic link owned by uid {info.st_uid}, not by you (uid "
            f"{os.getuid()}); cfspec follows only your own links inside OUT: remove it, or make "
            "it yourself if it should point elsewhere", str(path))


def check_writable(folder: Path) -> None:
    """Create and remove a probe file in `folder`: fail now, before any work, if it cannot be
    written (read-only, no permission, a file in the way)."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file stands where cfspec needs a folder",
                                 str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{_PROBE}*.tmp"):  # a killed run's probe
        stale.unlink(missing_ok=True)
    fd, probe = tempfile.mkstemp(prefix=_PROBE, suffix=".tmp", dir=folder)
    os.close(fd)
    Path(probe).unlink(missing_ok=True)  # another process's clean-up may have come first


def describe_os_error(error: OSError) -> str:
    """`PATH: what happened (what to do)` for an I/O failure of a stage."""
    where = error.filename or "OUT"
    what = error.strerror or str(error)
    if isinstance(error, UnsafePathError):
        return f"{where}: {what}"
    if isinstance(error, PermissionError) or error.errno == errno.EROFS:
        hint = "make it writable, or choose another output folder"
    elif isinstance(error, (NotADirectoryError, IsADirectoryError, FileExistsError)):
        hint = "move what is in the way, or choose another output folder"
    elif error.errno == errno.ENOSPC:
        hint = "free some space; re-running resumes"
    else:
        hint = "fix the path, or choose another output folder"
    return f"{where}: {what} ({hint})"


# --- swapping a whole folder in ------------------------------------------------------------------

_STAGING = ".cfspec-new-"
_RETIRED = ".cfspec-old-"


def staging_dir(target: Path) -> Path:
    """An empty folder beside `target` to build its next version in (removed by
    `remove_stale_staging` if a run is killed before the swap)."""
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}{_STAGING}", dir=target.parent))
    os.chmod(staged, file_mode() | 0o111)  # mkdtemp gives 0700; a dataset is shared like a file
    return staged


def remove_stale_staging(target: Path) -> None:
    """What a killed run left beside `target`: unfinished or retired versions. If a kill came
    between the two renames of the fallback swap, the old version is put back first."""
    prefix = f".{target.name}"
    leftovers = sorted(p for p in target.parent.glob(f"{prefix}.cfspec-*")
                       if p.name.startswith((prefix + _STAGING, prefix + _RETIRED)))
    for path in leftovers:
        if not os.path.lexists(target) and path.name.startswith(prefix + _RETIRED):
            os.rename(path, target)
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def replace_dir(staged: Path, target: Path) -> None:
    """Put the finished folder `staged` at `target` in one rename; the old `target` stays
    complete until then and is deleted after. Linux exchanges the two atomically; elsewhere
    the old folder is renamed aside first (a kill between the renames is repaired by the next
    run's `remove_stale_staging`)."""
    if not os.path.lexists(target):
        os.rename(staged, target)
        return
    if _exchange(staged, target):
        shutil.rmtree(staged)  # it now holds the old version
        return
    retired = staged.with_name(staged.name.replace(_STAGING, _RETIRED))
    os.rename(target, retired)
    os.rename(staged, target)
    shutil.rmtree(retired)


def _exchange(first: Path, second: Path) -> bool:
    """renameat2(RENAME_EXCHANGE): swap two paths atomically. False where unsupported."""
    try:
        rename = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):  # no renameat2 (not Linux, old libc)
        return False
    at_fdcwd, rename_exchange = -100, 2
    if rename(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))
