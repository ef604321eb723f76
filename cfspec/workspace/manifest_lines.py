"""Reading back OUT/manifest.jsonl: `read_manifest`, one `ManifestLine` per line and the
`Generated` (pair, seed)s with their files. The shared line checks are
`cfspec.workspace.reading`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Diagnostic
from cfspec.workspace.layout import (
    IMAGES_DIR,
    MANIFEST_FILE,
    PHOTO_FILE,
    image_paths,
    photo_path,
)
from cfspec.workspace.pairs import Pair
from cfspec.workspace.reading import (
    LineReport,
    StageError,
    check_id_seed,
    finite,
    is_int,
    json_lines,
    read_text,
    stale_prompt,
)


@dataclass(frozen=True)
class ManifestLine:
    """One line of manifest.jsonl: a finished (pair, seed) and every setting that made it."""

    id: str
    seed: int
    # As recorded (model, scheduler, steps, guidance, dtype, size, ...): provenance shows every
    # key, including ones a later generate adds, so they stay a name -> JSON value table.
    settings: dict[str, object]

    @property
    def superseded(self) -> bool:
        """A tombstone: a run began to overwrite this (pair, seed) with other parameters."""
        return self.settings.get("superseded") is True

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "seed": self.seed, **self.settings}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ManifestLine:
        return cls(data["id"], data["seed"],
                   {k: v for k, v in data.items() if k not in ("id", "seed")})

    def text(self, name: str) -> str | None:
        value = self.settings.get(name)
        return value if isinstance(value, str) else None

    def integer(self, name: str) -> int | None:
        value = self.settings.get(name)
        return value if is_int(value) else None  # type: ignore[return-value]

    def number(self, name: str) -> float | None:
        return finite(self.settings.get(name))

    @property
    def records_photo(self) -> bool:
        """Made from a photo: generate inverted the pair's photo and kept it as
        OUT/images/<id>/photo.png, which the line names (`photo`) with the `inversion`."""
        return "photo" in self.settings

    def inversion_method(self) -> str | None:
        """How the photo was inverted (`null-text`, ...); None without a photo."""
        found = self.settings.get("inversion")
        method = found.get("method") if isinstance(found, dict) else None
        return method if isinstance(method, str) else None

    def drawn(self) -> Drawn:
        """The guidance this (pair, seed) was made with, and the settings generate drew for it
        (`"drawn": {"guidance"?, "cross_replace"?, "self_replace"?}`, only the sampled keys;
        absent when nothing was sampled). A value that is not a finite number counts as not
        drawn (`read_manifest` warns about it)."""
        found = self.settings.get("drawn")
        values = found if isinstance(found, dict) else {}
        return Drawn(self.number("guidance"), finite(values.get("guidance")) is not None,
                     finite(values.get("cross_replace")), finite(values.get("self_replace")))


# The settings generate may draw per (pair, seed), as its manifest's `drawn` names them.
DRAWN_KEYS = ("guidance", "cross_replace", "self_replace")


@dataclass(frozen=True)
class Drawn:
    """How one (pair, seed) was made, where generate may have sampled it."""

    guidance: float | None  # the effective guidance, drawn or fixed; None: not recorded
    guidance_drawn: bool  # True: sampled for this (pair, seed)
    cross_replace: float | None  # the drawn x of the cross-attention window [0, x]; None: fixed
    self_replace: float | None  # the drawn x of the self-attention window [0, x]; None: fixed

    def sampled(self) -> dict[str, float]:
        """Only what was drawn: name -> value, in DRAWN_KEYS order."""
        values = {"guidance": self.guidance if self.guidance_drawn else None,
                  "cross_replace": self.cross_replace, "self_replace": self.self_replace}
        return {k: v for k, v in values.items() if v is not None}


def _drawn_problem(record: Mapping[str, Any]) -> str | None:
    """Why a manifest line's `drawn` is not what generate writes, or None."""
    if "drawn" not in record:
        return None
    drawn = record["drawn"]
    if not isinstance(drawn, dict):
        return f"expected an object of setting -> number, got {json.dumps(drawn)[:60]}"
    unknown = sorted(set(drawn) - set(DRAWN_KEYS))
    if unknown:
        return f"unknown drawn setting(s) {', '.join(map(repr, unknown))}; skipped"
    bad = [k for k, v in drawn.items() if finite(v) is None]
    if bad:
        return f"{bad[0]!r} is {json.dumps(drawn[bad[0]])[:40]}, not a finite number; skipped"
    return None


@dataclass(frozen=True)
class Generated:
    """One finished (pair, seed) of the manifest, with its files (all inside OUT/images)."""

    id: str
    seed: int
    line: ManifestLine
    image_0: Path
    image_1: Path
    extras: Path | None  # None: the .npz is missing (latent and background metrics skipped)
    photo: Path | None = None  # OUT/images/<id>/photo.png where the line records a photo


def _inside(root: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def read_manifest(out: Path, pairs: Mapping[str, Pair]
                  ) -> tuple[dict[str, dict[int, Generated]], list[Diagnostic]]:
    """OUT/manifest.jsonl, validated: id -> seed -> Generated (the last line per (id, seed)).

    A line is skipped, and reported, when it is not JSON (a warning: a killed writer tears
    lines), names a pair pairs.jsonl no longer has (warning), has a bad seed, was made for other
    prompts than pairs.jsonl's (an older compile), names a photo elsewhere than the pair's
    photo.png, or its PNGs (that photo.png included) are missing or lie outside OUT (errors). A
    missing .npz is a warning; the Generated then has `extras=None`."""
    path = out / MANIFEST_FILE
    if not path.is_file():
        raise StageError(_no_manifest(out, path))
    report = LineReport(path, read_text(path), "invalid-manifest")
    found: dict[str, dict[int, Generated]] = {}
    images_root = out / IMAGES_DIR
    for number, record in json_lines(path, report, torn_ok=True):
        if not check_id_seed(record, number, report, pairs):
            continue
        pair_id, seed = record["id"], record["seed"]
        line = ManifestLine.from_json(record)
        if line.superseded:
            # A run killed while regenerating with new parameters: these files may be
            # half-replaced, so the (pair, seed) counts as not generated until a run finishes it.
            found.get(pair_id, {}).pop(seed, None)
            continue
        pair = pairs[pair_id]
        if stale_prompt(record, number, report, pair, f"cfspec generate {out}"):
            continue
        png_0, png_1, npz = image_paths(out, pair_id, seed)
        photo = photo_path(out, pair_id) if line.records_photo else None
        expected = f"{IMAGES_DIR}/{pair_id}/{PHOTO_FILE}"
        if photo is not None and record["photo"] != expected:
            report.add(number, "photo", f"expected {json.dumps(expected)} (where generate keeps "
                       f"the photo), got {json.dumps(record['photo'])[:80]}; skipped",
                       help=f"re-run `cfspec generate {out}`")
            continue
        named = {"image_0": png_0, "image_1": png_1, "photo": photo}
        missing = [(key, p) for key, p in named.items() if p is not None and not p.is_file()]
        if missing:
            report.add(number, missing[0][0], f"{missing[0][1]} is missing",
                       help=f"re-run `cfspec generate {out}`: it remakes a (pair, seed) with "
                       "a file missing")
            continue
        outside = [p for p in (png_0, png_1, npz, photo)
                   if p is not None and p.exists() and not _inside(images_root, p)]
        if outside:
            report.add(number, None, f"{outside[0]} resolves outside {images_root}; refused")
            continue
        drawn = _drawn_problem(record)
        if drawn is not None:
            report.add(number, "drawn", drawn, severity=Severity.WARNING)
        extras: Path | None = npz
        if not npz.is_file():
            report.add(number, "extras", f"{npz} is missing: latent and background metrics are "
                       "skipped for this seed", severity=Severity.WARNING)
            extras = None
        found.setdefault(pair_id, {})[seed] = Generated(pair_id, seed, line, png_0, png_1, extras,
                                                        photo)
    ordered = {pid: dict(sorted(seeds.items())) for pid, seeds in found.items()}
    return ordered, report.items


def _no_manifest(out: Path, path: Path) -> str:
    """Why there is nothing to read, saying what was found: images without a manifest are a
    generate run stopped before it finished its first (pair, seed)."""
    images = out / IMAGES_DIR
    found = sorted(images.glob("*/*.png")) if images.is_dir() else []
    if not found:
        return f"{path}: not found (run `cfspec generate {out}` first)"
    folders = len({p.parent for p in found})
    return (f"{path}: not found, but {images} holds {len(found)} image(s) in {folders} pair "
            "folder(s): a `cfspec generate` run stopped before it recorded its first finished "
            f"(pair, seed); run `cfspec generate {out}` again to finish (it resumes)")
