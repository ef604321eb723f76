"""Run a cfspec command that SIGKILLs itself at a chosen file-system step: a real kill (no
cleanup handler runs, temp files stay), at a deterministic point rather than after a sleep.

    python tests/killpoints.py LOG N cfspec-arguments...

Every os.fsync, os.replace, os.rename, os.unlink, os.rmdir and os.link on a path under the
working directory (relative paths included: shutil.rmtree works relative to a folder fd) is an
*event*: its name and path are appended to LOG, and just before event number N (1-based) the
process kills itself with SIGKILL, so the step never happens. N = 0 never kills: that run
lists the events to choose from. The test runs the command with the working directory set to
its tmp folder, so libraries' own caches elsewhere do not shift the count.

`run_cfspec` and `events` are the helpers the kill tests use.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WATCHED = ("fsync", "replace", "rename", "unlink", "rmdir", "link")


def _install(log: Path, kill_at: int) -> None:
    cwd = os.getcwd()
    count = 0

    def watch(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            nonlocal count
            target = args[0] if args else ""
            where = os.fspath(target) if isinstance(target, (str, os.PathLike)) else "<fd>"
            if not os.path.isabs(where) or where.startswith(cwd + os.sep):
                count += 1
                with open(log, "a", encoding="utf-8") as handle:
                    handle.write(f"{count}\t{name}\t{os.path.relpath(where, cwd)}\n")
                if count == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)

        return wrapper

    for name in WATCHED:
        setattr(os, name, watch(name, getattr(os, name)))


def run_cfspec(cwd: Path, args: Sequence[str], kill_at: int = 0, log: str = "events.log",
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`cfspec ARGS` in a subprocess with cwd `cwd`, killed at event `kill_at` (0: never).
    The event log is written to cwd/../<log> (outside the folder the test compares)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1",
           "TOKENIZERS_PARALLELISM": "false", **(extra_env or {}),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log_path = cwd.parent / log
    log_path.unlink(missing_ok=True)
    return subprocess.run(
        [sys.executable, str(HERE / "killpoints.py"), str(log_path), str(kill_at), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


def events(cwd: Path, log: str = "events.log") -> list[tuple[str, str]]:
    """(name, path) of each event the last `run_cfspec` in `cwd` logged, in order."""
    path = cwd.parent / log
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [(name, path) for _, name, path in (line.split("\t") for line in lines)]


def main() -> None:
    log, kill_at, *args = sys.argv[1:]
    _install(Path(log), int(kill_at))
    from cfspec.cli.app import app

    app(args, prog_name="cfspec")


if __name__ == "__main__":
    main()
