"""The generate stage's writer thread (cfspec.gpu.generate.writer): tasks run in order, a
failure stops the rest and reaches the caller, the queue is bounded, and a generate run killed
while the writer is mid-way (the loop already on the next batch) resumes to the same files."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cfspec.gpu.generate.writer import Writer


def test_tasks_run_in_order_and_all_before_close_returns() -> None:
    done: list[int] = []
    with Writer(depth=2) as writer:
        for n in range(20):
            writer.submit(lambda n=n: done.append(n))
    assert done == list(range(20))


def test_a_failing_task_stops_the_rest_and_is_raised_as_it_was() -> None:
    done: list[int] = []

    def fail() -> None:
        raise OSError(28, "No space left on device")

    writer = Writer(depth=8)
    writer.submit(lambda: done.append(1))
    writer.submit(fail)
    writer.submit(lambda: done.append(3))  # after the failure: dropped, not written
    with pytest.raises(OSError, match="No space left"):  # the CLI reports an OSError as one
        writer.close()
    assert done == [1]


def test_submit_blocks_while_the_queue_is_full() -> None:
    started, go = threading.Event(), threading.Event()
    done: list[int] = []

    def slow() -> None:
        started.set()
        go.wait()
        done.append(1)

    writer = Writer(depth=1)
    writer.submit(slow)
    started.wait()  # the worker holds task 1; the queue is empty
    writer.submit(lambda: done.append(2))  # fills the queue
    helper = threading.Thread(target=writer.submit, args=(lambda: done.append(3),))
    helper.start()
    helper.join(timeout=0.2)
    assert helper.is_alive()  # a third task waits for room: finished images do not pile up
    go.set()
    helper.join()
    writer.close()
    assert done == [1, 2, 3]


def test_leaving_on_an_error_still_writes_what_was_handed_over() -> None:
    done: list[int] = []
    with pytest.raises(KeyboardInterrupt), Writer(depth=4) as writer:
        writer.submit(lambda: done.append(1))
        writer.submit(lambda: done.append(2))
        raise KeyboardInterrupt
    assert done == [1, 2]


def test_generate_killed_while_the_writer_records_a_pair(tmp_path: Path) -> None:
    """One pair per batch: when the first pair's manifest line is being written, the loop is
    already on the next pair. A SIGKILL there, then a re-run, gives the clean run's files."""
    for module in ("torch", "diffusers", "transformers", "accelerate"):
        pytest.importorskip(module)
    from test_export import PAIRS
    from test_kill import RUN_ARGS, clean_run, kill_and_check, subprocess_rerun

    from cfspec.workspace.pairs import Pair, write_pairs

    base = tmp_path / "base"
    write_pairs(base, PAIRS[:3])
    args = ["generate", "out", "--batch-pairs", "1", *RUN_ARGS]
    steps, expected = clean_run(base, tmp_path, args)
    # Per pair: two PNGs and the .npz (fsync, replace each), then the manifest line's fsync.
    npz = [n for n, (name, path) in enumerate(steps, 1)
           if name == "replace" and ".0.npz." in path]
    assert len(npz) == 3, steps
    first_line = npz[0] + 1  # the first pair's manifest line, synced
    second_png = npz[0] + 3  # the second pair's first PNG, moved into place

    def loadable(out: Path) -> None:
        from cfspec.workspace.manifest_lines import read_manifest

        if (out / "manifest.jsonl").exists():
            read_manifest(out, {p["id"]: Pair.from_json(p) for p in PAIRS[:3]})

    kill_and_check(base, tmp_path, args, [first_line, second_png], loadable,
                   subprocess_rerun(args), expected)
