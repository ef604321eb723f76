"""A writer thread: the generate stage hands it finished pairs and goes back to the GPU.

PNG encoding (zlib), .npz writes and fsyncs take about as long as a fast GPU takes to make the
images; on the loop's thread they would leave the GPU idle. Here they run on one thread, in
the order they were handed over, so each pair's files are written and synced before its
manifest line, exactly as before: a kill at any point still leaves only complete, recorded
pairs and temp files the next run removes (tests/test_kill.py). The queue is bounded, so
finished images never pile up in memory faster than the disk takes them. Standard library
only.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType

Task = Callable[[], None]


class Writer:
    """Runs tasks on one thread, in order. `submit` blocks while `depth` tasks wait; a task
    that raises stops the thread from running any later one, and its exception is raised again,
    as it was, from the next `submit` or from `close` (leaving the `with` block): callers catch
    an OSError (a full disk) or a KeyboardInterrupt as if the write had run on their thread."""

    def __init__(self, depth: int = 2, name: str = "cfspec-writer") -> None:
        self._queue: queue.Queue[Task | None] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._closed = False
        # A daemon: a main thread that dies (Ctrl-C twice) does not hang on it.
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            task = self._queue.get()
            if task is None:
                return
            if self._error is None:  # after a failure, the rest are dropped, not written
                try:
                    task()
                except BaseException as error:  # reported to the main thread
                    self._error = error

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, task: Task) -> None:
        if self._closed:
            raise RuntimeError("the writer is closed")
        self._raise()
        self._queue.put(task)

    def close(self) -> None:
        """Wait until every task handed over has run; raise the first failure."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.close()
            return
        # Leaving on an error (or Ctrl-C): what was handed over is still written, so a re-run
        # has less to do; the writer's own failure, if any, is secondary then.
        try:
            self.close()
        except BaseException:  # noqa: S110 - the error already leaving the block wins
            pass
