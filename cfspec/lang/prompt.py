"""Prompts as words bound to variables.

A spec's prompt is either a template (`"A {{ W }} is cutting a {{ C }}"`) or a literal caption in
which each variable's words are found (`"A woman is cutting a cake"`). Either way it becomes a
`Frame`: literal text interleaved with slots, one slot per variable occurrence. Rendering a frame
with a set of words per variable gives a `BoundPrompt`: the text plus every word labelled with
the variable it came from. Minimal-change, edit-word and article checks, and the compiler, all
work on bound prompts.

Only `{{ VAR }}` and `{{ VAR | filter }}` are template syntax here; anything else is reported
(`template-error`), so a prompt can never run code.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cfspec.lang.words import (
    Opcode,
    align,
    exact,
    is_punctuation,
    normalize,
    phrase_places,
    split_words,
    written_alike,
)

_PLACEHOLDER_RE = re.compile(r"\{\{(.*?)\}\}", re.S)
_OTHER_SYNTAX_RE = re.compile(r"\{%|%\}|\{#|#\}|\{\{|\}\}")
# A whole `{% ... %}` statement or `{# ... #}` comment is one error, not one per delimiter.
_BLOCK_RE = re.compile(r"\{%.*?%\}|\{#.*?#\}|\{%|%\}|\{#|#\}|\{\{|\}\}", re.S)
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def article_for(word: str) -> str:
    """'a' or 'an' before `word`, by sound, with the common exceptions."""
    w = word.lower()
    if not w:
        return "a"
    if re.match(r"(hour|honest|honou?r|heir)", w):
        return "an"
    if re.match(r"(uni|use|usu|uti|ure|eu|ewe|one|once|u[bcfhjkqrstn][aeiou])", w):
        return "a"
    if len(w) == 1:  # letters: "an x-ray", "a b"
        return "an" if w in "aefhilmnorsx" else "a"
    return "an" if w[0] in "aeiou" else "a"


def _with_article(words: str) -> str:
    return f"{article_for(words.split()[0])} {words}" if words.strip() else ""


FILTERS: dict[str, Callable[[str], str]] = {
    "a": _with_article,  # {{ K | a }} -> "a fork" / "an apple"
    "an": _with_article,
    "capitalize": lambda s: s[:1].upper() + s[1:],
    "lower": str.lower,
    "upper": str.upper,
}


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a variable's words go. `start`/`end` are offsets in the prompt string."""

    variable: str
    filters: tuple[str, ...]
    start: int
    end: int
    name_start: int  # offsets of the variable's name inside the placeholder, for diagnostics
    name_end: int
    # In a literal caption: the words as the caption writes them (`Horses`) and the variable's
    # words they were found for (`horse`). While the variable keeps those words, the caption's
    # own writing is rendered: the factual prompt is the caption, every character of it.
    written: str | None = None
    found_for: str | None = None


@dataclass(frozen=True, slots=True)
class TemplateError:
    start: int
    end: int
    message: str
    help: str


@dataclass(frozen=True, slots=True)
class Frame:
    pieces: tuple[str | Slot, ...]
    is_template: bool

    @property
    def slots(self) -> tuple[Slot, ...]:
        return tuple(p for p in self.pieces if isinstance(p, Slot))

    @property
    def placed(self) -> set[str]:
        return {s.variable for s in self.slots}


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    variable: str | None  # the variable these characters came from, if any
    start: int  # offsets in BoundPrompt.text
    end: int

    @property
    def key(self) -> str:
        """For finding words: case-, punctuation- and plural-insensitive."""
        return normalize(self.text)

    @property
    def exact(self) -> str:
        """For comparing prompts: case- and punctuation-insensitive, but `dog` != `dogs`."""
        return exact(self.text)

    @property
    def is_punctuation(self) -> bool:
        return is_punctuation(self.text)


@dataclass(frozen=True, slots=True)
class BoundPrompt:
    text: str
    words: tuple[Word, ...]
    # For rendered prompts: each slot of the frame, in order, as (variable, first word, end word)
    # word indices; an emptied slot has first == end. None for literal counterfactual prompts.
    slots: tuple[tuple[str, int, int], ...] | None = None

    def words_of(self, variable: str) -> tuple[Word, ...]:
        return tuple(w for w in self.words if w.variable == variable)



def is_template(text: str) -> bool:
    return _OTHER_SYNTAX_RE.search(text) is not None


def parse_template(text: str) -> tuple[Frame, list[TemplateError]]:
    """Split a template into literal text and slots; report anything that is not
    `{{ NAME }}` or `{{ NAME | filter | ... }}`."""
    errors: list[TemplateError] = []
    pieces: list[str | Slot] = []
    position = 0
    for match in _PLACEHOLDER_RE.finditer(text):
        literal = text[position : match.start()]
        _check_literal(literal, position, errors)
        pieces.append(literal)
        position = match.end()
        slot = _parse_placeholder(match, errors)
        if slot is not None:
            pieces.append(slot)
    tail = text[position:]
    _check_literal(tail, position, errors)
    pieces.append(tail)
    return Frame(tuple(p for p in pieces if p != ""), True), errors


def _check_literal(literal: str, offset: int, errors: list[TemplateError]) -> None:
    for m in _BLOCK_RE.finditer(literal):
        token = m.group()
        if token[:2] in ("{%", "%}"):
            message, hint = "template statements (`{% ... %}`) are not allowed in prompts", (
                "write the words in the prompt, or use {{ VAR }} placeholders"
            )
        elif token[:2] in ("{#", "#}"):
            message, hint = "template comments are not allowed in prompts", (
                "put comments after `#` outside the string"
            )
        else:
            message, hint = f"unbalanced `{token}` in the prompt template", (
                "every placeholder is written {{ VAR }}"
            )
        errors.append(TemplateError(offset + m.start(), offset + m.end(), message, hint))


def _parse_placeholder(match: re.Match[str], errors: list[TemplateError]) -> Slot | None:
    inner = match.group(1)
    base = match.start(1)
    parts = inner.split("|")
    name_part = parts[0]
    name = name_part.strip()
    if not _IDENT_RE.fullmatch(name):
        errors.append(
            TemplateError(
                match.start(),
                match.end(),
                f"`{{{{{inner}}}}}` is not a variable placeholder",
                "placeholders hold a variable name and optional filters: {{ W }} or {{ W | a }}",
            )
        )
        return None
    name_start = base + len(name_part) - len(name_part.lstrip())
    filters: list[str] = []
    offset = base + len(name_part) + 1
    for part in parts[1:]:
        flt = part.strip()
        if flt not in FILTERS:
            close = difflib.get_close_matches(flt, FILTERS, n=1)
            hint = f"did you mean `{close[0]}`?" if close else ""
            start = offset + len(part) - len(part.lstrip())  # the filter's name, not its spaces
            errors.append(
                TemplateError(
                    start,
                    start + len(flt) if flt else offset + len(part),
                    f"unknown filter `{flt}`",
                    (hint + " " if hint else "") + "filters: " + ", ".join(sorted(FILTERS)),
                )
            )
            return None
        filters.append(flt)
        offset += len(part) + 1
    name_end = name_start + len(name)
    return Slot(name, tuple(filters), match.start(), match.end(), name_start, name_end)


@dataclass(frozen=True, slots=True)
class Binding:
    """Where a variable's words were found in a literal prompt (offsets), if anywhere."""

    variable: str
    start: int
    end: int


def bind_literal(text: str, variables: Mapping[str, str]) -> tuple[Frame, dict[str, Binding]]:
    """Find each variable's words in a literal prompt, case-, punctuation- and
    plural-insensitively, longest word sequences first, without overlaps."""
    tokens = split_words(text)
    texts = [t[0] for t in tokens]
    taken = [False] * len(tokens)
    bindings: dict[str, Binding] = {}
    order = sorted(variables.items(), key=lambda kv: -len(split_words(kv[1])))
    for name, words in order:
        for place in phrase_places(texts, words):
            first, last = place[0], place[-1]
            if not any(taken[first : last + 1]):
                taken[first : last + 1] = [True] * (last + 1 - first)
                bindings[name] = Binding(name, tokens[first][1], tokens[last][2])
                break
    pieces: list[str | Slot] = []
    position = 0
    for b in sorted(bindings.values(), key=lambda b: b.start):
        pieces.append(text[position : b.start])
        pieces.append(Slot(b.variable, (), b.start, b.end, b.start, b.end,
                           text[b.start : b.end], variables[b.variable]))
        position = b.end
    pieces.append(text[position:])
    return Frame(tuple(p for p in pieces if p != ""), False), bindings


# Marks an emptied slot (`do(X = none)`) while a prompt is joined; never in a finished prompt.
REMOVED = "\ue000"
_CLOSES = ",.;:!?)"


def close_gaps(text: str) -> tuple[str, list[int]]:
    """Take out the REMOVED marks, each with one whitespace character, so a removed variable
    leaves no double gap: the whitespace before it goes when what follows is whitespace,
    punctuation or the end; at the very start, the whitespace after it goes. Any whitespace
    counts (a tab, a newline, U+3000), one character of it, and a `\r\n` line break is one
    character here: half of it would leave a lone `\r`. Every other character is kept as
    written: a caption's own spacing is its own. Returns the text and, for each input offset
    (and the end), its offset in the result."""
    keep = [ch != REMOVED for ch in text]
    for m, ch in enumerate(text):
        if ch != REMOVED:
            continue
        before = next((i for i in range(m - 1, -1, -1) if keep[i]), None)
        after = next((i for i in range(m + 1, len(text)) if keep[i]), None)
        if before is not None and text[before].isspace() and (
                after is None or text[after].isspace() or text[after] in _CLOSES):
            keep[before] = False
            if text[before] == "\n" and before > 0 and text[before - 1] == "\r":
                keep[before - 1] = False
        elif before is None and after is not None and text[after].isspace():
            keep[after] = False
            if text[after:after + 2] == "\r\n":
                keep[after + 1] = False
    where, n = [], 0
    for k in keep:
        where.append(n)
        n += k
    where.append(n)
    return "".join(ch for ch, k in zip(text, keep, strict=True) if k), where


def render(frame: Frame, values: Mapping[str, str | None]) -> BoundPrompt:
    """Fill each slot with its variable's words (`None`: removed) and label every word.

    This is the one prompt renderer: lint, compile, import and the report all read the prompts
    it makes, so what is checked is what is written to pairs.jsonl. The literal text is kept
    exactly as written, whitespace included (newlines, `\r\n`, U+2028 ...); only a removed
    variable takes one whitespace character with it (`close_gaps`).
    """
    out: list[str] = []
    raw_spans: list[tuple[int, int, str]] = []  # every slot, emptied ones too, in raw offsets
    length = 0
    for piece in frame.pieces:
        if isinstance(piece, str):
            out.append(piece)
            length += len(piece)
            continue
        words = values.get(piece.variable)
        if piece.written is not None and words == piece.found_for:
            words = piece.written
        if words is None:
            raw_spans.append((length, length, piece.variable))
            out.append(REMOVED)
            length += 1
            continue
        for name in piece.filters:
            words = FILTERS[name](words)
        raw_spans.append((length, length + len(words), piece.variable))
        out.append(words)
        length += len(words)
    text, where = close_gaps("".join(out))
    spans = [(where[s], where[e], v) for s, e, v in raw_spans]
    found = split_words(text)
    labelled: list[Word] = []
    for word, start, end in found:
        variable = next((v for s, e, v in spans if start < e and end > s), None)
        labelled.append(Word(word, variable, start, end))
    slots = []
    for s, e, v in spans:
        inside = [i for i, (_, a, b) in enumerate(found) if a < e and b > s]
        if inside:
            slots.append((v, inside[0], inside[-1] + 1))
        else:
            at = next((i for i, (_, a, _) in enumerate(found) if a >= s), len(found))
            slots.append((v, at, at))
    return BoundPrompt(text, tuple(labelled), tuple(slots))



@dataclass(frozen=True, slots=True)
class Artefact:
    """A difference in writing between two captions, as character offsets in each."""

    kind: str  # "spacing", "case" or "writing"
    start_0: int
    end_0: int
    start_1: int
    end_1: int


def artefacts(text_0: str, text_1: str) -> list[Artefact]:
    """Where two captions are written differently without saying something different: another
    gap between two words that are the same in both (a doubled space, a space before
    punctuation), a word in other case (`a` / `A`), or words that are `written_alike` (an added
    `.`, `They 'll`). Leading and trailing whitespace is not counted: the text encoder strips
    it."""
    w0, w1, ops = _word_ops(text_0, text_1)
    found: list[Artefact] = []
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            for k in range(i2 - i1):
                if k:
                    a0, b0 = w0[i1 + k - 1][2], w0[i1 + k][1]
                    a1, b1 = w1[j1 + k - 1][2], w1[j1 + k][1]
                    if text_0[a0:b0] != text_1[a1:b1]:
                        found.append(Artefact("spacing", a0, b0, a1, b1))
                (word_0, a0, b0), (word_1, a1, b1) = w0[i1 + k], w1[j1 + k]
                if word_0 != word_1:
                    kind = "case" if word_0.lower() == word_1.lower() else "writing"
                    last = found[-1] if found and k else None
                    if last is not None and kind == last.kind == "case" \
                            and last.end_0 == w0[i1 + k - 1][2]:
                        # `A BLACK CAT` -> `A black cat`: one re-cased stretch, one label
                        found[-1] = Artefact(kind, last.start_0, b0, last.start_1, b1)
                    else:
                        found.append(Artefact(kind, a0, b0, a1, b1))
        elif written_alike([w for w, _, _ in w0[i1:i2]], [w for w, _, _ in w1[j1:j2]]):
            found.append(Artefact(
                "writing", w0[i1][1] if i2 > i1 else _at(w0, i1, text_0),
                w0[i2 - 1][2] if i2 > i1 else _at(w0, i1, text_0),
                w1[j1][1] if j2 > j1 else _at(w1, j1, text_1),
                w1[j2 - 1][2] if j2 > j1 else _at(w1, j1, text_1)))
    return found


def says_the_same(text_0: str, text_1: str) -> bool:
    """Two captions that differ in writing at most (`artefacts`), never in content."""
    w0, w1, ops = _word_ops(text_0, text_1)
    return all(tag == "equal" or written_alike([w for w, _, _ in w0[i1:i2]],
                                               [w for w, _, _ in w1[j1:j2]])
               for tag, i1, i2, j1, j2 in ops)


def _word_ops(text_0: str, text_1: str) -> tuple[list[tuple[str, int, int]],
                                                 list[tuple[str, int, int]], list[Opcode]]:
    w0, w1 = split_words(text_0), split_words(text_1)
    return w0, w1, align([exact(w) for w, _, _ in w0], [exact(w) for w, _, _ in w1])


def _at(words: list[tuple[str, int, int]], index: int, text: str) -> int:
    return words[index][1] if index < len(words) else len(text.rstrip())


def bind_words(text: str, reference: BoundPrompt) -> BoundPrompt:
    """Label the words of a literal counterfactual prompt by aligning them with the factual
    prompt: unchanged words keep their variable, changed words get None."""
    words = split_words(text)
    a = [w.exact for w in reference.words]
    b = [exact(w) for w, _, _ in words]
    labels: list[str | None] = [None] * len(words)
    for tag, i1, i2, j1, _ in align(a, b):
        if tag == "equal":
            for k in range(i2 - i1):
                labels[j1 + k] = reference.words[i1 + k].variable
    labelled = zip(words, labels, strict=True)
    return BoundPrompt(text, tuple(Word(w, lab, s, e) for (w, s, e), lab in labelled))


@dataclass(frozen=True, slots=True)
class Change:
    """One contiguous difference between two prompts, in word indices."""

    kind: str  # replace | insert | delete
    before: tuple[Word, ...]
    after: tuple[Word, ...]
    i0: int  # where it sits in the factual words
    i1: int
    j0: int  # and in the counterfactual words
    j1: int


def diff_words(w0: tuple[Word, ...], w1: tuple[Word, ...]) -> list[Change]:
    """Word-level differences, case- and punctuation-insensitive in the words themselves."""
    a = [w.exact for w in w0]
    b = [w.exact for w in w1]
    changes = []
    for tag, i1, i2, j1, j2 in align(a, b):
        if tag != "equal":
            changes.append(Change(tag, w0[i1:i2], w1[j1:j2], i1, i2, j1, j2))
    return changes


def diff(p0: BoundPrompt, p1: BoundPrompt) -> list[Change]:
    """The changes between two prompts. Two prompts rendered from one frame differ exactly in
    their slots, so those are compared slot by slot (a word diff could pair repeated words
    wrongly); a literal counterfactual prompt is diffed word by word."""
    if p0.slots is None or p1.slots is None or len(p0.slots) != len(p1.slots):
        return diff_words(p0.words, p1.words)
    changes = []
    for (_, i0, i1), (_, j0, j1) in zip(p0.slots, p1.slots, strict=True):
        # Inside one slot a word diff is safe: it cannot pair words across slots.
        for c in diff_words(p0.words[i0:i1], p1.words[j0:j1]):
            changes.append(Change(c.kind, c.before, c.after, c.i0 + i0, c.i1 + i0,
                                  c.j0 + j0, c.j1 + j0))
    return changes
