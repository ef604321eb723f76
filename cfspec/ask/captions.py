"""The captions `cfspec ask` works on, each with a path-safe id (the importers' id policy):
a text file (one caption a line), caption pairs as JSON Lines or JSON (the COCO-CF shapes the
importers read; the factual caption is asked about), or captions given on the command line."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from cfspec.diagnostics.records import Diagnostic
from cfspec.diagnostics.source import SourceFile

_PATHLIKE = re.compile(r"(^[./~]|/|\.(txt|jsonl|ndjson|json|md)$)", re.I)


class CaptionError(Exception):
    """An argument that names no readable file (a usage error)."""


@dataclass(frozen=True)
class Caption:
    item_id: str
    text: str
    origin: str  # file:line, or "command line"


@dataclass
class Captions:
    items: list[Caption] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)  # unreadable rows


def read_captions(args: list[str]) -> Captions:
    """Every caption named by `args`; rows that cannot be read become diagnostics (pointing
    into the file), the others go on. Ids taken twice get `-2`, `-3`."""
    from cfspec.importers import detect, item_id_for, read_source, safe_id

    out = Captions()
    for arg in args:
        path = Path(arg)
        if arg != "-" and not path.is_file():
            if path.exists():
                raise CaptionError(f"{arg}: not a file")
            if _PATHLIKE.search(arg) and " " not in arg.strip():
                raise CaptionError(f"{arg}: no such file (a caption given on the command "
                                   "line has spaces in it)")
            text = " ".join(arg.split())
            if not text:
                raise CaptionError("an empty caption")
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
            words = safe_id("_".join(text.lower().split()[:4]), "caption")
            out.items.append(Caption(f"{words}_{digest}", text, "command line"))
            continue
        try:
            read = read_source(arg)
        except OSError as error:
            raise CaptionError(f"{arg}: {error.strerror or error}") from None
        if not isinstance(read, SourceFile):
            out.diagnostics += read.diagnostics
            continue
        stem = safe_id(Path(read.name).stem, "captions")
        stripped = read.text.lstrip()
        if stripped[:1] in ("{", "[") and detect(read.text) == "coco-cf":
            _pairs(read, stem, out)
        elif stripped[:1] in ("{", "["):
            raise CaptionError(f"{arg}: JSON without caption keys (`caption_0`, "
                               "`original_caption`, `caption`); give caption pairs, or a text "
                               "file with one caption a line")
        else:
            lines = read.text.splitlines()
            many = sum(1 for x in lines if x.strip()) > 1
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    item_id, _ = item_id_for(None, stem, number if many else None)
                    out.items.append(Caption(item_id, " ".join(line.split()),
                                             f"{read.name}:{number}"))
    _unique(out.items)
    return out


def _pairs(source: SourceFile, stem: str, out: Captions) -> None:
    from cfspec.importers import coco_cf, item_id_for
    from cfspec.importers.answer import Failure

    records = coco_cf.read(source)
    many = sum(1 for r in records if r.number > 0) > 1
    for record in records:
        if isinstance(record, Failure):
            out.diagnostics += record.diagnostics
            continue
        item_id, _ = item_id_for(record.raw_id, stem, record.span.line if many else None)
        assert record.prompt is not None
        out.items.append(Caption(item_id, record.prompt.text,
                                 f"{source.name}:{record.span.line}"))


def _unique(items: list[Caption]) -> None:
    taken: set[str] = set()
    for i, item in enumerate(items):
        name, n = item.item_id, 2
        while name.lower() in taken:
            name, n = f"{item.item_id}-{n}", n + 1
        taken.add(name.lower())
        if name != item.item_id:
            items[i] = Caption(name, item.text, item.origin)
