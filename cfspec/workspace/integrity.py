"""Are the files `cfspec generate` left for a (pair, seed) whole? The one check evaluate, export
and report share, so they cannot disagree about a damaged run folder.

A (pair, seed) is damaged when one of its files is:

* a PNG (`<seed>_0.png`, `<seed>_1.png`, and the pair's `photo.png` where the line records a
  photo) that is empty, not a PNG, cut short (no IEND chunk at its end), does not decode
  completely (Pillow's `verify()`, then a full `load()`), is not the size its manifest line
  records, or differs in size from the other image of the pair;
* its `.npz` (when there is one) that is empty, not a zip archive, cut short (no end-of-archive
  record), has a member that fails its CRC or does not load as an array (`np.load(...,
  allow_pickle=False)`: an archive holding pickles is refused too), or lacks `latents` or
  `attention`.

A missing file is not damage: `read_manifest` reports it (a missing PNG drops the line, a
missing `.npz` is a warning). Each damaged file is one `damaged-file` error on that file, saying
what is wrong and how to remake it; the stage leaves the (pair, seed) out, says how in a note
(evaluate does not score it, export does not export it, the report shows it as damaged) and
exits 1. Generate writes every file atomically, so damage comes from outside: a full disk, a
copy cut short, a hand edit. Pillow and numpy are imported when a check runs.
"""

from __future__ import annotations

import io
import lzma
import os
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cfspec.diagnostics.records import Diagnostic, DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.workspace.layout import PHOTO_FILE
from cfspec.workspace.manifest_lines import Generated

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the empty IEND chunk every PNG ends with
ZIP_MAGIC = b"PK\x03\x04"
ZIP_END = b"PK\x05\x06"  # the end-of-central-directory record, in a zip's last 64 KiB + 22 bytes
ZIP_END_SEARCH = 65_536 + 22
# What the stages read from a .npz (evaluate: both; the report: the attention).
NPZ_ARRAYS = ("latents", "attention")
# No member of a generate .npz comes near this (SDXL's latents: 0.5 MB): a bigger one is not
# unpacked, so a planted archive cannot fill the memory.
NPZ_MEMBER_LIMIT = 256 * 1024 * 1024
# What reading a damaged archive may raise, from numpy, zipfile, zlib and lzma (a flipped bit
# can turn a member "encrypted" or "LZMA": RuntimeError, NotImplementedError, LZMAError); the
# byte-flipping test in tests/test_damaged_files.py holds this list to account.
NPZ_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, EOFError, KeyError, RuntimeError, MemoryError, zipfile.BadZipFile,
    zlib.error, lzma.LZMAError, struct.error)
# ... and reading a damaged PNG, from Pillow (its chunk reader raises SyntaxError).
PNG_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, SyntaxError, EOFError, MemoryError, struct.error, zlib.error)


@dataclass(frozen=True)
class Damage:
    """One damaged file of a (pair, seed)."""

    id: str
    seed: int
    path: Path
    problem: str  # what is wrong, e.g. "truncated: 1,234 bytes and no IEND chunk at its end"


@dataclass
class RunCheck:
    """What `check_generated` found: the damaged files, and one diagnostic for each."""

    damage: list[Damage] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def damaged(self, item: Generated) -> list[Damage]:
        return [d for d in self.damage if (d.id, d.seed) == (item.id, item.seed)]

    def ok(self, item: Generated) -> bool:
        return not self.damaged(item)

    def keys(self) -> set[tuple[str, int]]:
        return {(d.id, d.seed) for d in self.damage}


def check_generated(out: Path, items: Iterable[Generated], consequence: str) -> RunCheck:
    """Check every file of each (pair, seed) in `items`; `consequence` says in the diagnostics
    what the stage does with a damaged one ("not scored", "not exported", ...)."""
    found = RunCheck()
    for item in items:
        for damage in item_damage(item):
            found.damage.append(damage)
            found.diagnostics.append(_diagnostic(out, damage, consequence))
    return found


def item_damage(item: Generated) -> list[Damage]:
    """The damaged files of one (pair, seed), in the order image_0, image_1, photo, .npz."""
    recorded = (item.line.integer("width"), item.line.integer("height"))
    expected = recorded if None not in recorded else None
    damage: list[Damage] = []
    sizes: list[tuple[int, int]] = []
    for path in (item.image_0, item.image_1):
        problem, size = png_problem(path, expected)  # type: ignore[arg-type]
        if problem is not None:
            damage.append(Damage(item.id, item.seed, path, problem))
        elif size is not None:
            sizes.append(size)
    if len(sizes) == 2 and sizes[0] != sizes[1]:
        damage.append(Damage(item.id, item.seed, item.image_1, (
            f"wrong size: {_px(sizes[1])}, but {item.image_0.name} beside it is "
            f"{_px(sizes[0])} (the two images of a pair are made together, at one size)")))
    if item.photo is not None:  # resized to the model's size when it was inverted
        problem, _ = png_problem(item.photo, expected)  # type: ignore[arg-type]
        if problem is not None:
            damage.append(Damage(item.id, item.seed, item.photo, problem))
    if item.extras is not None:
        problem = npz_problem(item.extras)
        if problem is not None:
            damage.append(Damage(item.id, item.seed, item.extras, problem))
    return damage


def _px(size: tuple[int, int]) -> str:
    return f"{size[0]}×{size[1]} px"


def _ends(path: Path, count: int) -> tuple[int, bytes, bytes]:
    """(size in bytes, the first 8 bytes, the last `count` bytes)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(8)
        handle.seek(max(0, size - count))
        return size, head, handle.read(count)


def png_problem(path: Path, expected: tuple[int, int] | None = None
                ) -> tuple[str | None, tuple[int, int] | None]:
    """(what is wrong with the PNG, or None; its (width, height) when it decodes). `expected`:
    the (width, height) the manifest records."""
    from PIL import Image

    try:
        size, head, tail = _ends(path, len(PNG_END))
    except OSError as error:
        return f"cannot be read ({error.strerror or error})", None
    if size == 0:
        return "empty (0 bytes)", None
    if not head.startswith(PNG_MAGIC[:len(head)]) or len(head) < len(PNG_MAGIC):
        return f"not a PNG: it starts with {head!r}, not the PNG signature", None
    if tail != PNG_END:
        return (f"truncated: {size:,} bytes and no IEND chunk at its end (the file was cut "
                "short)"), None
    try:
        with Image.open(path, formats=["PNG"]) as image:
            image.verify()  # chunk structure and CRCs
        with Image.open(path, formats=["PNG"]) as image:
            decoded = (int(image.size[0]), int(image.size[1]))
            if expected is not None and decoded != expected:  # before decoding its pixels
                return (f"wrong size: {_px(decoded)}, but manifest.jsonl records "
                        f"{_px(expected)} for this (pair, seed)"), decoded
            image.load()  # every pixel decoded: the image data is complete
    except PNG_ERRORS + (Image.DecompressionBombError,) as error:
        return f"does not decode as a PNG ({type(error).__name__}: {error})", None
    return None, decoded


def npz_problem(path: Path) -> str | None:
    """What is wrong with a generate `.npz`, or None."""
    import numpy as np

    try:
        size, head, tail = _ends(path, ZIP_END_SEARCH)
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if size == 0:
        return "empty (0 bytes)"
    if not head.startswith(ZIP_MAGIC):
        return f"not an .npz (a zip archive): it starts with {head!r}"
    if ZIP_END not in tail:
        return (f"truncated: {size:,} bytes and no end-of-archive record (the file was cut "
                "short)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            missing = [n for n in NPZ_ARRAYS if f"{n}.npy" not in members]
            if missing:
                return (f"no `{missing[0]}` array (a generate .npz holds "
                        f"{', '.join(NPZ_ARRAYS)})")
            too_big = [i for i in members.values() if i.file_size > NPZ_MEMBER_LIMIT]
            if too_big:
                return (f"{too_big[0].filename} unpacks to {too_big[0].file_size:,} bytes, "
                        f"more than a generate .npz holds ({NPZ_MEMBER_LIMIT:,} at most)")
            for name, info in members.items():
                data = archive.read(info)  # inflated to its end: the CRC is checked
                if name.endswith(".npy"):
                    np.load(io.BytesIO(data), allow_pickle=False)
    except NPZ_ERRORS as error:
        if isinstance(error, ValueError) and "allow_pickle" in str(error):
            return "holds pickled objects, which cfspec never loads"
        return f"corrupt: {type(error).__name__}: {error}"
    return None


def _diagnostic(out: Path, damage: Damage, consequence: str) -> Diagnostic:
    bag = DiagnosticBag(SourceFile(str(damage.path), ""))
    kind = ("photo" if damage.path.name == PHOTO_FILE else
            "image" if damage.path.suffix == ".png" else ".npz")
    return bag.report(
        "damaged-file", bag.source.whole(),
        f"damaged {kind} of pair {damage.id!r}, seed {damage.seed}: {damage.problem}",
        label="this file",
        notes=[f"{damage.id}, seed {damage.seed}: {consequence}"],
        help=(f"delete {damage.path} and run `cfspec generate {out}` again with the options "
              "that made it: generate remakes every (pair, seed) with a file missing, both "
              "images, the .npz and the pair's photo.png, and skips the rest"),
    )
