"""pairs.jsonl on disk: validated against pair.schema.json when written and when read.

Writing is atomic (a temp file in OUT, then os.replace), so a killed run never leaves half a
file, and never touches anything outside OUT.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

from cfspec.diagnostics.records import Diagnostic, DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.questions.record import Question
from cfspec.workspace.atomic import write_text_atomic
from cfspec.workspace.layout import PAIRS_FILE
from cfspec.workspace.photos import Photo


@dataclass(frozen=True)
class Assignment:
    """`variable` set from `before` to `after` (None: absent in that prompt)."""

    variable: str
    before: str | None
    after: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Assignment:
        return cls(data["variable"], data["from"], data["to"])

    def to_json(self) -> dict[str, str | None]:
        return {"variable": self.variable, "from": self.before, "to": self.after}


# The Prompt-to-Prompt edit map of a pair, as pair.schema.json's `edit` has it (checked
# against the schema before a Pair is made): typed views of the same JSON, so pairs.jsonl
# reads and writes unchanged. A window is [start, end], fractions of the schedule.
Window = list[float]


class CrossReplace(TypedDict):
    default: Window
    words: dict[str, Window]  # per-word windows, by the word
    default_set: NotRequired[bool]  # False: only per-word windows were given


class LocalBlend(TypedDict):
    words_0: list[str]
    words_1: list[str]
    tokens_0: list[int]
    tokens_1: list[int]
    threshold: float
    start: NotRequired[float]  # absent: generate's --blend-start


class Equalizer(TypedDict):
    words: list[str]
    values: list[float]
    tokens: list[list[int]]  # each word's token positions


class Draw(TypedDict):
    uniform: Window  # [low, high]: x ~ U(low, high)


class Sample(TypedDict, total=False):
    cross_replace: Draw
    self_replace: Draw


class Alignment(TypedDict):
    source: Literal["clip", "words"]
    tokens_0: list[str]
    tokens_1: list[str]
    # refine: per counterfactual token, the factual one it maps to (-1: none); replace and
    # reweight: [factual token, counterfactual token, weight] cells
    token_map: list[Any]
    words: NotRequired[list[list[int]]]
    inserted: NotRequired[list[int]]


class EditMap(TypedDict):
    type: Literal["replace", "refine", "reweight"]
    cross_replace_steps: CrossReplace
    self_replace_steps: Window
    local_blend: LocalBlend
    equalizer: Equalizer
    alignment: Alignment
    sample: NotRequired[Sample]  # settings generate draws per (pair, seed)


@dataclass(frozen=True)
class Pair:
    """One line of pairs.jsonl, as every stage after compile reads it."""

    id: str  # path-safe (workspace.layout): OUT/images/<id>/
    spec: str  # the .scm file it was compiled from, as recorded
    counterfactual: str
    prompt_0: str  # factual
    prompt_1: str  # counterfactual
    intervention: tuple[Assignment, ...]
    descendant_changes: tuple[Assignment, ...]
    edit: EditMap  # the Prompt-to-Prompt edit: type, windows, LocalBlend, equalizer, alignment
    scm: tuple[str, ...]  # edges `A → B: description`, before the intervention
    scm_aug: tuple[str, ...]  # and after it
    spec_name: str | None = None
    # [start, end) offsets of the changed and the LocalBlend words in each prompt
    # (`changed_0`, `changed_1`, `blend_0`, `blend_1`); None in a file from before compile
    # wrote them.
    word_spans: dict[str, list[list[int]]] | None = None
    # Yes/no questions about the images, per variable (cfspec.questions); empty in a file from
    # before compile wrote them.
    questions: tuple[Question, ...] = ()
    # The factual photo (`image "..."` in the spec): the factual image is its inversion, not a
    # generated one. None: the spec names no photo.
    image: Photo | None = None

    def to_json(self) -> dict[str, Any]:
        """The pairs.jsonl record (key order as compile writes it)."""
        data: dict[str, Any] = {"id": self.id, "spec": self.spec}
        if self.spec_name is not None:
            data["spec_name"] = self.spec_name
        data.update(counterfactual=self.counterfactual, prompt_0=self.prompt_0,
                    prompt_1=self.prompt_1)
        if self.image is not None:
            data["image"] = self.image.to_json()
        data.update(                    intervention=[a.to_json() for a in self.intervention],
                    descendant_changes=[a.to_json() for a in self.descendant_changes],
                    edit=self.edit)
        if self.word_spans is not None:
            data["word_spans"] = self.word_spans
        data.update(scm=list(self.scm), scm_aug=list(self.scm_aug),
                    questions=[q.to_json() for q in self.questions])
        return data

    def prompt(self, which: int) -> str:
        """prompt_0 (factual) or prompt_1 (counterfactual)."""
        return self.prompt_1 if which else self.prompt_0

    @property
    def edit_type(self) -> str:
        return self.edit["type"]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Pair:
        """From a record that passed `schema_errors`."""
        return cls(
            id=data["id"], spec=data["spec"], counterfactual=data["counterfactual"],
            prompt_0=data["prompt_0"], prompt_1=data["prompt_1"],
            intervention=tuple(Assignment.from_json(a) for a in data["intervention"]),
            descendant_changes=tuple(Assignment.from_json(a)
                                     for a in data.get("descendant_changes", [])),
            edit=data["edit"], scm=tuple(data["scm"]), scm_aug=tuple(data["scm_aug"]),
            spec_name=data.get("spec_name"), word_spans=data.get("word_spans"),
            questions=tuple(Question.from_json(q) for q in data.get("questions", [])),
            image=Photo.from_json(data["image"]) if "image" in data else None,
        )


@functools.cache
def pair_schema() -> dict[str, Any]:
    schema_file = resources.files("cfspec.workspace").joinpath("pair.schema.json")
    text = schema_file.read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(pair_schema())


def schema_errors(pair: Any) -> list[str]:
    """Readable problems with one pair record: `edit.type: 'x' is not one of [...]`."""
    errors = sorted(_validator().iter_errors(pair), key=lambda e: list(e.absolute_path))
    out = []
    for error in errors:
        where = ".".join(str(p) for p in error.absolute_path) or "(the line)"
        out.append(f"{where}: {error.message}")
    if not out:  # what a JSON schema cannot say: a sampled range's bounds in order
        for name, spec in ((pair.get("edit") or {}).get("sample") or {}).items():
            low, high = spec["uniform"]
            if low > high:
                out.append(f"edit.sample.{name}: uniform [{low}, {high}] must have low <= high")
        # ... and word spans inside their prompt
        for name, spans in (pair.get("word_spans") or {}).items():
            size = len(pair["prompt_1" if name.endswith("1") else "prompt_0"])
            bad = next((s for s in spans if not s[0] < s[1] <= size), None)
            if bad is not None:
                out.append(f"word_spans.{name}: {bad} is not a span of a word in the "
                           f"{size}-character prompt")
        out += question_order_errors(pair.get("questions") or [])
    return out


def question_order_errors(questions: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the schema cannot say about questions: ids unique, parents asked before."""
    out, seen = [], set()
    for n, question in enumerate(questions):
        late = [p for p in question["parents"] if p not in seen]
        if question["id"] in seen:
            out.append(f"questions.{n}.id: {question['id']!r} is used twice")
        elif late:
            out.append(f"questions.{n}.parents: {late} must be questions listed before "
                       f"{question['id']!r}")
        seen.add(question["id"])
    return out


def dumps(pair: Mapping[str, Any]) -> str:
    """One line, deterministic: re-running a compile gives the same bytes."""
    return json.dumps(pair, ensure_ascii=False, separators=(", ", ": "))


def write_pairs(out_dir: Path, pairs: Sequence[Mapping[str, Any]]) -> Path:
    """Compile's records, checked against the schema, to OUT/pairs.jsonl (atomically)."""
    for pair in pairs:
        problems = schema_errors(pair)
        if problems:  # our own output must match our own schema
            raise AssertionError(f"pair {pair.get('id')!r} breaks pair.schema.json: {problems}")
    target = out_dir / PAIRS_FILE
    write_text_atomic(target, "".join(dumps(pair) + "\n" for pair in pairs))
    return target


def read_pairs(path: Path) -> tuple[list[Pair], list[Diagnostic]]:
    """Read and validate pairs.jsonl. Each bad line is an `invalid-pairs-file` diagnostic that
    names the line and the field; good lines are returned."""
    source = SourceFile(str(path), path.read_text(encoding="utf-8"))
    bag = DiagnosticBag(source)
    pairs: list[Pair] = []
    seen: dict[str, int] = {}
    # split("\n"), not splitlines(): JSON strings may hold U+2028, U+2029 or U+0085 unescaped,
    # and lines are numbered as SourceFile numbers them.
    for number, line in enumerate(source.text.split("\n"), start=1):
        if not line.strip():
            continue
        span = source.line_span(number)
        try:
            pair = json.loads(line)
        except json.JSONDecodeError as error:
            bad = source.span(span.start + error.pos, span.start + error.pos + 1)
            bag.report("invalid-pairs-file", bad, f"line {number} is not JSON: {error.msg}",
                       label="here", help="regenerate it with `cfspec compile`")
            continue
        problems = schema_errors(pair)
        if problems:
            bag.report("invalid-pairs-file", span,
                       f"line {number} does not match pair.schema.json: {problems[0]}",
                       label="this line", notes=problems[1:],
                       help="regenerate it with `cfspec compile`")
            continue
        if pair["id"] in seen:
            bag.report("invalid-pairs-file", span,
                       f"line {number} repeats the id {pair['id']!r} of line {seen[pair['id']]}",
                       label="duplicate id", help="ids must be unique")
            continue
        seen[pair["id"]] = number
        pairs.append(Pair.from_json(pair))
    return pairs, bag.items
