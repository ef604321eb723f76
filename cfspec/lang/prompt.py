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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# Words and punctuation, the unit of every comparison. Apostrophes and hyphens stay in words.
WORD_RE = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*|[^\w\s]", re.UNICODE)
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
        return not any(ch.isalnum() for ch in self.text)


@dataclass(frozen=True, slots=True)
class BoundPrompt:
    text: str
    words: tuple[Word, ...]
    # For rendered prompts: each slot of the frame, in order, as (variable, first word, end word)
    # word indices; an emptied slot has first == end. None for literal counterfactual prompts.
    slots: tuple[tuple[str, int, int], ...] | None = None

    def words_of(self, variable: str) -> tuple[Word, ...]:
        return tuple(w for w in self.words if w.variable == variable)


def normalize(word: str) -> str:
    """Case-, punctuation- and inflection-insensitive form of a word, for finding words: a
    noun and its plural get the same key (`horse`/`horses`, `bus`/`buses`, `knife`/`knives`,
    `baby`/`babies`, `man`/`men`), and so do most verb forms (`cut`/`cuts`). Keys are for
    comparing, not for showing: `horse` is `hors`."""
    w = _NON_WORD.sub("", word.lower())
    if len(w) < 3 or w in FUNCTION_WORDS:
        return w
    w = _IRREGULAR.get(w, w)
    if w.endswith("men") and len(w) > 4 and w not in _NOT_MEN:
        w = w[:-3] + "man"  # firemen, policewomen
    if w.endswith("s") and not w.endswith(("ss", "us")) and w not in _SINGULAR_S:
        w = w[:-1]
    # What is left of a plural and its singular: `horse`/`horse(s)` -> `hors`, `box(es)` ->
    # `box`, `babie(s)`/`baby` -> `babi`, `knive(s)`/`knife` -> `knif`.
    if len(w) > 3 and w.endswith("e") and w[:-1] not in FUNCTION_WORDS:  # note(s) is not `not`
        w = w[:-1]
    if len(w) > 2 and w.endswith("y"):
        w = w[:-1] + "i"
    if len(w) > 2 and w.endswith("v"):
        w = w[:-1] + "f"
    return w


_NON_WORD = re.compile(r"[^\w]")
# Words that are never inflected nouns; kept as they are so that they stay recognizable.
FUNCTION_WORDS = frozenset(
    "a an the is are was were be been being of in on at to with and or for from by into onto "
    "over under up down out off it its that this these those some any there their his her hers "
    "them they he she him has have had very not no as so but if then than which who whom what "
    "while when where how one ones other another each every all both few more most such own "
    "same just also only can could will would should may might do does did doing e g eg "
    "here near next behind above below across through around".split()
)
_IRREGULAR = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "feet": "foot",
    "teeth": "tooth", "geese": "goose", "mice": "mouse", "oxen": "ox", "cacti": "cactus",
    "fungi": "fungus", "octopi": "octopus", "dice": "die", "lice": "louse", "criteria":
    "criterion", "phenomena": "phenomenon", "quizzes": "quiz",
}
_NOT_MEN = frozenset("specimen abdomen omen stamen regimen acumen yemen hymen amen".split())
# Singular words that end in `s` (words in `ss` and `us`, `bus`, `-ous`, are kept anyway).
_SINGULAR_S = frozenset(
    "gas lens canvas atlas iris tennis news series species means pants jeans shorts scissors "
    "trousers christmas chaos always perhaps yes bias alias texas paris chess "
    "physics mathematics athletics gymnastics politics economics measles diabetes".split()
)


def plural_noun(word: str) -> bool:
    """Whether a noun is plural by its form: `dogs`, `boxes`, `men`, `children`; not `bus`,
    `glass`, `news` or `tennis`. For agreement (`cfspec.lang.agreement`), never for finding
    words."""
    w = exact(word)
    if w in _IRREGULAR:
        return True
    return len(w) > 2 and w.endswith("s") and not w.endswith(("ss", "us", "is")) \
        and w not in _SINGULAR_S and w not in FUNCTION_WORDS


def exact(word: str) -> str:
    return re.sub(r"[^\w]", "", word.lower()) or word


def split_words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(text)]


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
    keys = [normalize(t[0]) for t in tokens]
    taken = [False] * len(tokens)
    bindings: dict[str, Binding] = {}
    order = sorted(variables.items(), key=lambda kv: -len(split_words(kv[1])))
    for name, words in order:
        wanted = [normalize(w) for w, _, _ in split_words(words)]
        wanted = [w for w in wanted if w]
        if not wanted:
            continue
        n = len(wanted)
        for i in range(len(tokens) - n + 1):
            if keys[i : i + n] == wanted and not any(taken[i : i + n]):
                for j in range(i, i + n):
                    taken[j] = True
                bindings[name] = Binding(name, tokens[i][1], tokens[i + n - 1][2])
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


# Above this many differing words in the middle, the middle is one change: the alignment is
# quadratic in it, and a caption that long is already `prompt-too-long` anyway.
_MAX_ALIGNED = 300

Opcode = tuple[str, int, int, int, int]
ARTICLES = frozenset({"a", "an"})


def align(a: list[str], b: list[str]) -> list[Opcode]:
    """How two captions' words correspond, as a person reads them, as difflib-style opcodes.

    The common start and end are matched first; the middle is aligned with the fewest edits
    (Levenshtein: a substitution costs as much as an insertion or a deletion), a substitution
    preferred where two alignments cost the same. A change is one contiguous run of changed
    words: `stop sign` -> `traffic light` is one change, and an unchanged word between two
    changes keeps them two (`woman ... rainy` -> `man ... snowy`); punctuation does not part
    words, so an unchanged comma inside a run stays in it (`red, white` -> `blue, green`). Two
    things that change places around unchanged words are two changes (`dog sitting behind a
    shoe` -> `shoe sitting behind a dog`), although substituting every word costs as little. A
    word repeated elsewhere in the caption cannot pull the alignment apart. Linear beyond
    `_MAX_ALIGNED` differing words, where the middle is one change."""
    n, m = len(a), len(b)
    head = 0
    while head < n and head < m and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and tail < m - head and a[n - 1 - tail] == b[m - 1 - tail]:
        tail += 1
    ops: list[Opcode] = []
    if head:
        ops.append(("equal", 0, head, 0, head))
    a_mid, b_mid = a[head : n - tail], b[head : m - tail]
    if a_mid or b_mid:
        if len(a_mid) + len(b_mid) > _MAX_ALIGNED or not a_mid or not b_mid:
            middle: list[Opcode] = [(_tag(n - tail - head, m - tail - head), head, n - tail,
                                     head, m - tail)]
        else:
            middle = [(tag, i1 + head, i2 + head, j1 + head, j2 + head)
                      for tag, i1, i2, j1, j2 in _fewest_edits(a_mid, b_mid)]
        for op in middle:
            ops += _split_swap(op, a, b)
    if tail:
        ops.append(("equal", n - tail, n, m - tail, m))
    return ops


_MAX_SWAP = 24  # words of one change searched for two things that change places


def _split_swap(op: Opcode, a: list[str], b: list[str]) -> list[Opcode]:
    """A change `X M Y` -> `Y M X` (M unchanged, X and Y any words, plurals aside) as the two
    changes it is: X -> Y and Y -> X around the kept M."""
    tag, i1, i2, j1, j2 = op
    n = i2 - i1
    if tag != "replace" or n != j2 - j1 or n < 3 or n > _MAX_SWAP:
        return [op]
    old, new = a[i1:i2], b[j1:j2]
    keys_old, keys_new = [normalize(w) for w in old], [normalize(w) for w in new]
    for x in range(1, n - 1):  # X = old[:x]
        for y in range(1, n - x):  # Y = old[n - y:], M = old[x:n - y]
            m = n - x - y
            if old[x:x + m] == new[y:y + m] and keys_old[:x] == keys_new[n - x:] \
                    and keys_old[n - y:] == keys_new[:y] and keys_old[:x] != keys_old[n - y:]:
                return [("replace", i1, i1 + x, j1, j1 + y),
                        ("equal", i1 + x, i1 + x + m, j1 + y, j1 + y + m),
                        ("replace", i2 - y, i2, j2 - x, j2)]
    return [op]


def _is_punct(word: str) -> bool:
    return not any(ch.isalnum() for ch in word)


def _tag(len_a: int, len_b: int) -> str:
    return "replace" if len_a and len_b else "delete" if len_a else "insert"


def _fewest_edits(a: list[str], b: list[str]) -> list[Opcode]:
    """Levenshtein alignment; among equally cheap alignments the one with the fewest changes
    (runs of consecutive edits: `while smiling and` -> `while a child is smiling` is one
    change, not an insertion and a deletion), then, read back from the start, a substitution
    (or a match) before an insertion or a deletion. Consecutive edits are one change; so are
    two changes with only punctuation between them."""
    n, m = len(a), len(b)
    # cost[s][i][j]: edits * big + changes that turn a[i:] into b[j:], where s = 1 when the
    # step before was an edit (so an edit now continues its change instead of opening one).
    big = n + m + 1
    cost = [[[0] * (m + 1) for _ in range(n + 1)] for _ in range(2)]
    for i in range(n, -1, -1):
        for j in range(m, -1, -1):
            for s in (0, 1):
                if i == n and j == m:
                    continue
                step = big + (0 if s else 1)  # one edit; a new change unless one is open
                options = []
                if i < n and j < m:
                    options.append(cost[0][i + 1][j + 1] if a[i] == b[j]
                                   else cost[1][i + 1][j + 1] + step)
                if i < n:
                    options.append(cost[1][i + 1][j] + step)
                if j < m:
                    options.append(cost[1][i][j + 1] + step)
                cost[s][i][j] = min(options)
    # Each step as (same, i, j): a match, or an edit at a[i]/b[j].
    groups: list[list[int]] = []  # [same, i0, i1, j0, j1]
    i = j = s = 0
    while i < n or j < m:
        step = big + (0 if s else 1)
        here = cost[s][i][j]
        if i < n and j < m and a[i] == b[j] and here == cost[0][i + 1][j + 1]:
            same, di, dj = True, 1, 1
        elif i < n and j < m and a[i] != b[j] and here == cost[1][i + 1][j + 1] + step:
            same, di, dj = False, 1, 1
        elif i < n and here == cost[1][i + 1][j] + step:
            same, di, dj = False, 1, 0
        else:
            same, di, dj = False, 0, 1
        if groups and groups[-1][0] == same:
            groups[-1][2] += di
            groups[-1][4] += dj
        else:
            groups.append([same, i, i + di, j, j + dj])
        i, j, s = i + di, j + dj, 0 if same else 1
    # Unchanged punctuation between two changes does not part them: `red, white` -> `blue,
    # green` is one change.
    merged: list[list[int]] = []
    for k, g in enumerate(groups):
        inner = 0 < k < len(groups) - 1 and g[0] and all(_is_punct(w) for w in a[g[1]:g[2]])
        if merged and not merged[-1][0] and (inner or not g[0]):
            merged[-1][2], merged[-1][4] = g[2], g[4]
        else:
            merged.append(list(g))
    return [("equal" if same else _tag(i1 - i0, j1 - j0), i0, i1, j0, j1)
            for same, i0, i1, j0, j1 in merged]


def written_alike(before: Sequence[str], after: Sequence[str]) -> bool:
    """Whether two runs of words differ only in how they are written, not in what they say:
    the same letters and digits in the same order (`They'll` / `They 'll`, `"` / ```` `` ````,
    `St.` / `St .`). Such a change is a caption artefact, never an intervention."""
    return _squash(before) == _squash(after)


def _squash(words: Sequence[str]) -> str:
    return "".join(ch for w in words for ch in w.lower() if ch.isalnum())


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
