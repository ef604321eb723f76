"""Which photo an imported row is about, and what the written spec says of it.

Datasets name a row's photo two ways: SugarCrepe gives its COCO file name (`filename`), and
COCO-Counterfactuals' ids are COCO image ids (`158956_0` is a caption of image 158956). With
`cfspec import --images DIR`, the row's photo is looked for in DIR, by that file name or by
the COCO image id whatever the folder's naming (`000000158956.jpg` as in COCO 2017,
`COCO_val2014_000000158956.jpg` as in 2014, `158956.png`), and a photo found is written as
`image "<absolute path>"`: the spec then lints and compiles anywhere. A photo not found, or
any photo without `--images`, is written as a comment naming the file (`# image "..."`):
a spec whose photo is missing must not be an error for a user who only wants the captions,
and uncommenting the line (or importing with `--images`) makes it the spec's photo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cfspec.importers.jsonpos import JObj, JStr

# Columns that hold a row's image file name (SugarCrepe's `filename`).
FILENAME_KEYS = ("filename", "file_name", "image_file", "image_filename")
# COCO-Counterfactuals: `<COCO image id>_<caption number>`.
_COCO_CAPTION_ID = re.compile(r"^(\d+)_\d+$")
_TRAILING_NUMBER = re.compile(r"(\d+)$")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


def coco_image_id(raw_id: str | None = None, file_name: str | None = None) -> int | None:
    """The COCO image id a row names: the number its file name ends with
    (`COCO_val2014_000000158956.jpg` -> 158956), else the first part of a COCO-CF id
    (`158956_0` -> 158956); None when neither says."""
    if file_name is not None:
        found = _TRAILING_NUMBER.search(Path(file_name).stem)
        if found:
            return int(found.group(1))
    if raw_id is not None:
        found = _COCO_CAPTION_ID.match(raw_id.strip())
        if found:
            return int(found.group(1))
    return None


def coco_2017_name(image_id: int) -> str:
    """COCO 2017's file name of an image: its id in 12 digits (`000000158956.jpg`)."""
    return f"{image_id:012d}.jpg"


def row_file_name(item: JObj) -> str | None:
    """The image file name a row's cells give (SugarCrepe's `filename`), else None. A name
    without an image's suffix names no image (SocialCounterfactuals' `filename` is its id)."""
    found = item.get(*FILENAME_KEYS)
    if found is None or not isinstance(found[1], JStr):
        return None
    name = found[1].value.strip()
    return name if Path(name).suffix.lower() in IMAGE_SUFFIXES else None


@dataclass
class PhotoFolder:
    """`--images DIR`, read once: its image files by name and by the COCO id their name ends
    with (the first in name order when two share one)."""

    root: Path
    by_name: dict[str, Path] = field(default_factory=dict)
    by_id: dict[int, Path] = field(default_factory=dict)

    @classmethod
    def scan(cls, root: Path) -> PhotoFolder:
        """Every image file under `root` (by suffix: a COCO folder holds 100,000 photos, and
        lint judges the one each spec names). OSError for the caller."""
        folder = cls(root.resolve())
        for path in sorted(p for p in folder.root.rglob("*")
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
            folder.by_name.setdefault(path.name, path)
            image_id = coco_image_id(file_name=path.name)
            if image_id is not None:
                folder.by_id.setdefault(image_id, path)
        return folder

    def find(self, file_name: str | None, image_id: int | None) -> Path | None:
        """The photo of a row: its file name as given, else its COCO image id."""
        if file_name is not None and Path(file_name).name in self.by_name:
            return self.by_name[Path(file_name).name]
        return self.by_id.get(image_id) if image_id is not None else None


@dataclass(frozen=True)
class PhotoLine:
    """What the spec says of its photo: `image "..."` (`path`), or a comment (`note`)."""

    path: str | None = None
    note: str | None = None


def photo_line(raw_id: str | None, file_name: str | None, folder: PhotoFolder | None
               ) -> PhotoLine:
    """The spec's photo line for a row with id `raw_id` and image file name `file_name`
    (None: the dataset gives none)."""
    image_id = coco_image_id(raw_id, file_name)
    if file_name is None and image_id is None:
        return PhotoLine()
    if folder is not None:
        found = folder.find(file_name, image_id)
        if found is not None:
            return PhotoLine(path=str(found))
    name = Path(file_name).name if file_name is not None else coco_2017_name(image_id or 0)
    said = ("the dataset's file name" if file_name is not None
            else f"COCO 2017's name for image {image_id}")
    if folder is not None:
        return PhotoLine(note=f'image "{name}": {said}, not found in {folder.root}')
    return PhotoLine(note=f'image "{name}": {said}; import with --images DIR to use the photo')
