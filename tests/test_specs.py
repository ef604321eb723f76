"""The bundled specs: every top-level specs/*.scm lints clean, and the spec for each reference
COCO caption pair renders caption_0 as its factual prompt and caption_1 as its first
counterfactual (for the cake pair, whose spec leads with `man`, its `baker` counterfactual)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from cfspec.diagnostics.source import SourceFile
from cfspec.lang import ast
from cfspec.lang.config import Config
from cfspec.lang.model import build
from cfspec.lint import check, lint

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SPEC_FILES = sorted(SPECS.glob("*.scm"))  # top level only: specs/invalid/ holds bad fixtures

# The reference pairs (id, caption_0, caption_1), copied from
# shared/data/reference/coco_counterfactual_pairs.jsonl so the test runs without shared/;
# test_pairs_match_reference_file checks the copy where that file is present.
PAIRS: list[tuple[str, str, str]] = [
    (
        "158956_0",
        "A woman is cutting into a cake with a large knife.",
        "A baker is cutting into a cake with a large knife.",
    ),
    (
        "164602_4",
        "A man and woman brushing their teeth and taking a selfie photo with a camera in a "
        "bathroom mirror.",
        "A man and woman brushing their teeth and taking a selfie photo",
    ),
    (
        "60823_0",
        "Some cows that are wandering around a lot of pigeons.",
        "Some people that are wandering around a lot of pigeons.",
    ),
    (
        "279714_2",
        "A baseball bat is in a window looking out over the street.",
        "A baseball bat is in a box looking out over the street.",
    ),
    (
        "375763_0",
        "A very cute flock of sheep in a grassy field.",
        "A very cute pair of sheep in a grassy field.",
    ),
    (
        "490171_3",
        "A man in a wet suit riding on a surfboard with a dog.",
        "A man in a wet suit riding on a horse with a dog.",
    ),
    (
        "474021_0",
        "A couple of guys playing on the nintendo wii at a gathering.",
        "A couple of guys playing on the nintendo wii at a party.",
    ),
    (
        "183437_3",
        "a large elephant that has people sitting on top.",
        "a large elephant that has children sitting on top.",
    ),
    (
        "42296_0",
        "a polar bear partially submerged in a body of water",
        "a polar bear partially submerged in a body of ice",
    ),
    (
        "414638_0",
        "A white plate with a sliced up piece of food on top of it.",
        "A white board with a sliced up piece of food on top of it.",
    ),
    (
        "430961_2",
        "A baseball player lunges and reaches back with the ball.",
        "A football player lunges and reaches back with the ball.",
    ),
    (
        "119452_0",
        "a spotty banana sitting on top of an orange and some other fruit",
        "a spotty apple sitting on top of an orange and some other fruit",
    ),
]

# Pairs whose caption_1 is not the spec's first counterfactual: id -> counterfactual name.
NAMED_COUNTERFACTUAL = {"158956_0": "baker"}

REFERENCE_FILE = Path("shared/data/reference/coco_counterfactual_pairs.jsonl")


@cache
def specs_by_id() -> dict[str, list[tuple[str, ast.Spec]]]:
    found: dict[str, list[tuple[str, ast.Spec]]] = {}
    for path in SPEC_FILES:
        parsed = check(SourceFile.read(path), Config())
        assert parsed.module is not None, f"{path.name} does not parse"
        for spec in parsed.module.specs:
            found.setdefault(spec.spec_id, []).append((path.name, spec))
    return found


def test_specs_are_bundled() -> None:
    assert len(SPEC_FILES) >= len(PAIRS)


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_spec_lints_clean(path: Path) -> None:
    result = lint([str(path)], Config())
    assert result.diagnostics == [], [
        f"{d.span.line}: {d.code} {d.message}" for d in result.diagnostics
    ]


def test_spec_ids_are_unique() -> None:
    shared = {
        i: [name for name, _ in entries] for i, entries in specs_by_id().items() if len(entries) > 1
    }
    assert shared == {}


def test_pairs_match_reference_file() -> None:
    candidates = [ROOT / REFERENCE_FILE, ROOT.parent / REFERENCE_FILE]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        pytest.skip(f"{REFERENCE_FILE} is not available")
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    assert [(r["id"], r["caption_0"], r["caption_1"]) for r in rows] == PAIRS


@pytest.mark.parametrize(("pair_id", "caption_0", "caption_1"), PAIRS, ids=[p[0] for p in PAIRS])
def test_reference_pair_renders(pair_id: str, caption_0: str, caption_1: str) -> None:
    entries = specs_by_id().get(pair_id, [])
    assert len(entries) == 1, f"expected one spec with id {pair_id!r}, found {len(entries)}"
    name, spec = entries[0]
    model = build(spec)

    assert model.prompt_0 is not None, name
    assert model.prompt_0.text == caption_0, name

    assert model.counterfactuals, f"{name} has no counterfactual"
    wanted = NAMED_COUNTERFACTUAL.get(pair_id)
    if wanted is None:
        cm = model.counterfactuals[0]
    else:
        cm = next(c for c in model.counterfactuals if c.node.name.text == wanted)
    assert cm.prompt_1 is not None, name
    assert cm.prompt_1.text == caption_1, f"{name}: counterfactual `{cm.node.name.text}`"


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.name)
def test_bundled_spec_is_formatted(path: Path) -> None:
    from cfspec.fmt import format_source

    text = path.read_text(encoding="utf-8")
    formatted, problems = format_source(SourceFile(str(path), text))
    assert problems == [] and formatted == text
