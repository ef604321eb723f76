"""A spec's factual photo on disk (`image "000000158956.jpg"`): where it points, whether the
file is an image, and the record compile writes into each of the spec's pairs.

One place for each of these: lint judges the file (checks/specs.py), compile records it
(compile/stage.py) and import looks for it (importers/), all through these functions. Torch-
and PIL-free: an image is recognised by its first bytes, never decoded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STDIN_NAME = "<stdin>"  # how lint names a spec read from stdin: its photo is under the cwd

# Each format an image loader (PIL, torchvision) reads, by the bytes its files begin with.
# WebP is a RIFF container whose form type, at byte 8, says WEBP.
_SIGNATURES: tuple[tuple[str, bytes, int], ...] = (
    ("PNG", b"\x89PNG\r\n\x1a\n", 0),
    ("JPEG", b"\xff\xd8\xff", 0),
    ("GIF", b"GIF87a", 0),
    ("GIF", b"GIF89a", 0),
    ("WebP", b"WEBP", 8),
    ("BMP", b"BM", 0),
    ("TIFF", b"II*\x00", 0),
    ("TIFF", b"MM\x00*", 0),
)
HEAD_BYTES = 12  # enough for every signature above
FORMATS = tuple(dict.fromkeys(name for name, _, _ in _SIGNATURES))


def image_format(head: bytes) -> str | None:
    """The format whose signature `head` (a file's first bytes) begins with, else None."""
    for name, magic, at in _SIGNATURES:
        if head.startswith(magic, at) and (at == 0 or head.startswith(b"RIFF")):
            return name
    return None


def resolve(written: str, spec_file: str, images_dir: Path | None = None) -> Path:
    """Where `image "written"` points: an absolute path as it is; a relative one under
    `images_dir` (`--images DIR`) when given, else beside the spec file (under the working
    folder for a spec read from stdin). Made absolute, symbolic links followed."""
    path = Path(written).expanduser()
    if not path.is_absolute():
        if images_dir is not None:
            base = images_dir
        elif spec_file == STDIN_NAME:
            base = Path.cwd()
        else:
            base = Path(spec_file).parent
        path = base / path
    return path.resolve()


@dataclass(frozen=True)
class Photo:
    """A pair's factual photo as pairs.jsonl records it: the file compile found and the
    SHA-256 of its bytes then, so a later stage can tell a photo replaced since."""

    path: str  # absolute
    sha256: str  # hex

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Photo:
        return cls(data["path"], data["sha256"])

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "sha256": self.sha256}


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read in blocks (a photo may be large). OSError for
    the caller."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def photo_of(path: Path) -> Photo:
    """The record of the photo at `path` (resolved). OSError for the caller."""
    return Photo(str(path), sha256_of(path))
