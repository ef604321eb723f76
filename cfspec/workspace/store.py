"""What generation leaves in OUT: images, per-image extras and the manifest; resuming from it.

* `OUT/images/<id>/<seed>_0.png`, `<seed>_1.png`: the factual and the counterfactual image.
* `OUT/images/<id>/<seed>.npz`: what evaluation needs: `latents` (2, C, h, w) final latents,
  `attention` (2, h', w') the changed words' cross-attention (max-normalised), `mask` (h, w) the
  LocalBlend mask, `tokens_0`/`tokens_1` and `blend_0`/`blend_1` (the real token positions).
* `OUT/manifest.jsonl`: one line per finished (pair, seed), with every parameter: `guidance` is
  the scale that image used; a run that samples it also records `guidance_range` [lo, hi], and
  every line `drawn`, the values drawn for it (`guidance`, `cross_replace`, `self_replace`; only
  those that were sampled). Resuming matches the range, not the drawn value, which the range,
  the pair and the seed determine.

A later line for the same (pair, seed) supersedes an earlier one. Before a run overwrites files
that an earlier line describes with other parameters, it appends a tombstone (that line again,
with `"superseded": true`), so a kill between the new files and their line never leaves a last
line that claims files it did not make. Compaction drops superseded lines and tombstones.

Every file is written to a temp file in its own folder and moved into place with os.replace, and
a manifest line is appended only after its files are in place, so a run killed at any moment
loses only the images in flight and never leaves a torn file where a finished one belongs.
Several processes append to the manifest under an exclusive file lock; a torn last line (a
process killed mid-write) is skipped on reading, and the final compaction rewrites the manifest
with one line per (pair, seed), in pairs.jsonl order.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from cfspec.workspace.atomic import atomic_write
from cfspec.workspace.layout import IMAGES_DIR, MANIFEST_FILE, image_paths, photo_path
from cfspec.workspace.manifest_lines import ManifestLine
from cfspec.workspace.pairs import Pair

# Where LocalBlend starts, as a fraction of the schedule, for each `--p2p-compat` profile:
# cfspec follows the null-text notebook (0.2); the Prompt-to-Prompt notebook blends from the
# first step.
BLEND_START = {"cfspec": 0.2, "published": 0.0}


def pair_folder(out_dir: Path, pair_id: str) -> Path:
    """OUT/images/<id>, created under workspace.outdir's symlink policy (a link there is followed
    only when it is yours)."""
    from cfspec.workspace.outdir import output_dir

    return output_dir(out_dir, IMAGES_DIR, pair_id)


def remove_stale_temps(folder: Path, seed: int) -> None:
    """Temp files a killed run left for this (pair, seed); only the job's owner calls this."""
    if folder.is_dir():
        for stale in folder.glob(f".{seed}_*.tmp"):
            stale.unlink(missing_ok=True)
        for stale in folder.glob(f".{seed}.npz.*.tmp"):
            stale.unlink(missing_ok=True)


def save_png(target: Path, image: Any) -> None:
    def write(handle: IO[bytes]) -> None:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        handle.write(buffer.getvalue())

    atomic_write(target, write)


def save_npz(target: Path, arrays: dict[str, Any]) -> None:
    import numpy as np

    def write(handle: IO[bytes]) -> None:
        np.savez_compressed(handle, **arrays)

    atomic_write(target, write)


@contextlib.contextmanager
def _locked(handle: IO[Any]) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): single-process runs only
        yield
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def append_record(manifest: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line under an exclusive lock, starting a new line if a killed writer left
    a torn one, and fsync before returning: the line is there once this returns. Never through
    a symlink or into a file linked from elsewhere (a hard link): both are refused."""
    line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with _open_for_append(manifest) as handle, _locked(handle):
        handle.seek(0, os.SEEK_END)
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = "\n" + line
        handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def _open_for_append(manifest: Path) -> IO[bytes]:
    from cfspec.workspace.outdir import UnsafePathError

    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(manifest, flags, 0o666)
    except OSError as error:
        if manifest.is_symlink():
            raise UnsafePathError(errno.ELOOP, "a symbolic link; cfspec never appends through "
                                  "one: remove it (re-running generate rebuilds the manifest "
                                  "from what it then makes)", str(manifest)) from error
        raise
    if os.fstat(fd).st_nlink > 1:
        os.close(fd)
        raise UnsafePathError(errno.EMLINK, "a file with other hard links; cfspec never appends "
                              "to a file shared with another path: remove it", str(manifest))
    return os.fdopen(fd, "a+b")


def read_records(manifest: Path) -> list[ManifestLine]:
    """Every whole, parseable line; torn or foreign lines are skipped. (Resume needs only this;
    the later stages read the manifest with diagnostics, `records.read_manifest`.)"""
    if not manifest.is_file():
        return []
    records = []
    # split("\n"), not splitlines(): a prompt may hold U+2028, U+2029 or U+0085 unescaped.
    for line in manifest.read_text(encoding="utf-8", errors="replace").split("\n"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("id"), str) \
                and isinstance(record.get("seed"), int):
            records.append(ManifestLine.from_json(record))
    return records


def setting_changes(line: ManifestLine, params: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The run settings this manifest line was made with other values of: name -> (old, new).
    Empty when a run with `params` would make the same images of the same pair."""
    record = line.settings
    changes: dict[str, tuple[Any, Any]] = {}
    # Every parameter the run records (stages.options.GenerateOptions.manifest_params) must
    # match; height/width only when the run names them; a sampled guidance matches on its
    # `guidance_range` instead, the value each line drew following from it.
    keys = dict.fromkeys("guidance" if key == "guidance_range" else key for key in params
                         if key not in ("height", "width"))
    for key in keys:
        if key == "guidance":
            old, new = _guidance(record), _guidance(params)
        else:
            old, new = record.get(key), params.get(key)
        if old != new:
            changes[key] = (old, new)
    for key in ("height", "width"):  # compared only when the run names them
        if params.get(key) is not None and record.get(key) != params[key]:
            changes[key] = (record.get(key), params[key])
    return changes


def _guidance(settings: Mapping[str, Any]) -> Any:
    """A fixed scale, or the range a sampled one is drawn from (not the draw)."""
    sampled = settings.get("guidance_range")
    if isinstance(sampled, list):
        return _Range(sampled)
    return settings.get("guidance") if sampled is None else sampled


class _Range(tuple[Any, ...]):
    """A sampled guidance's [lo, hi], compared as the numbers and shown as the option."""

    def __str__(self) -> str:
        return f"uniform({', '.join(str(x) for x in self)})"


def same_pair(line: ManifestLine, pair: Pair) -> bool:
    """Was this line made for the pair as pairs.jsonl now has it (prompts and edit)?"""
    record = line.settings
    return (record.get("prompt_0") == pair.prompt_0 and record.get("prompt_1") == pair.prompt_1
            and record.get("edit") == pair.edit)


def matches(line: ManifestLine, params: dict[str, Any], pair: Pair) -> bool:
    """Was this manifest line made by a run with these parameters, for this very pair?"""
    return not setting_changes(line, params) and same_pair(line, pair)


def latest(records: Iterable[ManifestLine]) -> dict[tuple[str, int], ManifestLine]:
    """The last line per (id, seed): a later line supersedes an earlier one."""
    return {(line.id, line.seed): line for line in records}


def tombstone(record: ManifestLine) -> ManifestLine:
    """Appended before a run overwrites files that `record` (the last line for that pair and
    seed) describes with other parameters: until the new line follows, that (pair, seed)
    counts as not done. It repeats the old line, so readers that do not know the flag see a
    well-formed line."""
    return ManifestLine(record.id, record.seed, {**record.settings, "superseded": True})


def finished(out_dir: Path, last: dict[tuple[str, int], ManifestLine],
             pairs: dict[str, Pair], params: dict[str, Any]) -> set[tuple[str, int]]:
    """(id, seed) whose last manifest line matches this run and whose files are all in place
    (the photo.png the line records included: every seed of the pair is remade without it)."""
    done: set[tuple[str, int]] = set()
    for (pair_id, seed), record in last.items():
        pair = pairs.get(pair_id)
        if pair is None or record.superseded or not matches(record, params, pair):
            continue
        photo = [photo_path(out_dir, pair_id)] if record.records_photo else []
        if all(p.is_file() for p in (*image_paths(out_dir, pair_id, seed), *photo)):
            done.add((pair_id, seed))
    return done


def replaced_by(out_dir: Path, last: dict[tuple[str, int], ManifestLine],
                jobs: Iterable[tuple[str, int]], params: dict[str, Any]
                ) -> dict[tuple[str, int], dict[str, tuple[Any, Any]]]:
    """The (id, seed)s among `jobs` (what a run is about to generate) whose images are on disk
    and were made with other run settings than `params`: the run would overwrite them. Each
    with its changes (`setting_changes`). A pair whose spec changed (its prompts or edit) but
    not the settings is not counted: its images are redone as the spec now asks."""
    found = {}
    for key in jobs:
        record = last.get(key)
        if record is None or record.superseded:
            continue
        changes = setting_changes(record, params)
        if changes and any(p.is_file() for p in image_paths(out_dir, *key)):
            found[key] = changes
    return found


def describe_replacements(replaced: Mapping[tuple[str, int], Mapping[str, tuple[Any, Any]]]
                          ) -> list[str]:
    """One line per setting that differs, `name: old -> new` (several old values joined by
    `or`), in the order the run's parameters are recorded in."""
    olds: dict[str, list[Any]] = {}
    news: dict[str, Any] = {}
    for changes in replaced.values():
        for name, (old, new) in changes.items():
            if old not in olds.setdefault(name, []):
                olds[name].append(old)
            news[name] = new
    return [f"{name}: {' or '.join(_shown(v) for v in olds[name])} -> {_shown(news[name])}"
            for name in olds]


def _shown(value: Any) -> str:
    return "(not recorded)" if value is None else str(value)


def compact(manifest: Path, order: list[str]) -> int:
    """Rewrite the manifest atomically: the last line per (id, seed) unless that is a tombstone,
    in pairs.jsonl order then by seed (pairs no longer listed go last). Returns the count."""
    if not manifest.exists():
        return 0
    last = latest(read_records(manifest))
    last = {k: r for k, r in last.items() if not r.superseded}
    rank = {pair_id: n for n, pair_id in enumerate(order)}
    keys = sorted(last, key=lambda k: (rank.get(k[0], len(rank)), k[0], k[1]))
    text = "".join(json.dumps(last[k].to_json(), ensure_ascii=False, sort_keys=True) + "\n"
                   for k in keys)
    for stale in manifest.parent.glob(f".{MANIFEST_FILE}.*.tmp"):
        stale.unlink(missing_ok=True)
    atomic_write(manifest, lambda handle: handle.write(text.encode("utf-8")))
    return len(keys)
