"""How a set of images was made, read back from what the stages recorded: the manifest's
generation settings (read generically, so a setting generate adds later is carried too), the
models with random weights, the pairs' edit settings and the spec files' SHA-256. Shared by the
HTML report and the Croissant metadata of `export --to hf`."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

# manifest keys that describe one image, not how the set was made
PER_IMAGE = frozenset({"id", "seed", "image_0", "image_1", "extras", "prompt_0", "prompt_1",
                       "edit", "tokens_0", "tokens_1", "notes", "superseded", "drawn", "photo"})
# the settings shown first, in this order; the rest follow by name
SETTING_ORDER = ("model", "scheduler", "steps", "guidance", "height", "width", "dtype",
                 "blend_start", "eta", "cfspec")


def is_random_weight(name: str) -> bool:
    """The built-in random-weight models: `tiny` (and `tiny-*`) and `random-*`."""
    base = name.strip().lower()
    return base == "tiny" or base.startswith(("tiny-", "random-"))


def settings(records: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[Any, int]]]:
    """Every setting of the manifest lines but the per-image ones: name -> [(value, how many
    lines have it)], most common first; the known names first, then the rest by name."""
    found: dict[str, Counter[str]] = {}
    for record in records:
        for key, value in _inversion_as_method(_sampled_as_range(record)).items():
            if key not in PER_IMAGE:
                found.setdefault(str(key), Counter())[_key(value)] += 1
    order = [k for k in SETTING_ORDER if k in found] + sorted(
        k for k in found if k not in SETTING_ORDER)
    return {key: [(json.loads(text), n) for text, n in found[key].most_common()]
            for key in order}


def _sampled_as_range(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A line whose guidance was drawn (`guidance_range`) shows the range it was drawn from, not
    its own draw: a setting describes how the set was made, and thousands of distinct draws
    would list one value per image. The draws themselves are per-image (`drawn`)."""
    span = record.get("guidance_range")
    if not (isinstance(span, list) and len(span) == 2):
        return record
    shown = {k: v for k, v in record.items() if k != "guidance_range"}
    shown["guidance"] = f"uniform({span[0]:g}, {span[1]:g}) per factual image and seed"
    return shown


def _inversion_as_method(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A photo pair's `inversion` ({method, key, source}) shows as its method: the key and the
    source file are the photo's own, one per pair."""
    inversion = record.get("inversion")
    if not isinstance(inversion, dict):
        return record
    return {**record, "inversion": inversion.get("method")}


def _key(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def edit_settings(edits: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[Any, int]]]:
    """The pairs' Prompt-to-Prompt settings, without what names words or tokens (the token
    alignment, LocalBlend and equalizer words): name -> [(value, how many pairs)]."""
    found: dict[str, Counter[str]] = {}
    for edit in edits:
        for key, value in edit.items():
            if key == "alignment":
                continue
            if isinstance(value, dict):
                value = {k: v for k, v in value.items()
                         if not k.startswith(("words", "tokens"))}
            found.setdefault(str(key), Counter())[_key(value)] += 1
    return {key: [(json.loads(text), n) for text, n in counter.most_common()]
            for key, counter in found.items()}


def random_models(models: Sequence[str], clip_models: Sequence[str]) -> list[str]:
    """`role name` of each random-weight model that made or scored a set."""
    return ([f"diffusion model {m}" for m in models if is_random_weight(m)]
            + [f"CLIP model {m} (evaluate)" for m in clip_models if is_random_weight(m)])


def file_sha256(path: Path) -> str | None:
    """The SHA-256 of a regular file, or None when it is not one or cannot be read (a spec
    recorded relative to another working directory, or since moved)."""
    try:
        if not path.is_file():
            return None
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def spec_hashes(specs: Iterable[str]) -> list[dict[str, Any]]:
    """`[{path, sha256, pairs}]` for each spec file named in pairs.jsonl's `spec` field, as
    recorded (relative to the current directory); sha256 is null when it is not readable."""
    counts = Counter(specs)
    return [{"path": spec, "sha256": file_sha256(Path(spec)), "pairs": counts[spec]}
            for spec in sorted(counts)]
