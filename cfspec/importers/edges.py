"""Edges as LLMs write them, for every importer: `A → B: why`, `A -> B (why)`, `A => B`,
`A ⇒ B`, `A --> B`, LaTeX `$A \\rightarrow B$`, chains `A -> B -> C`, reversed `B <- A` and
two-way `A <-> B` (two edges, so the cycle is reported rather than hidden).

Scanning works on one line (a line of free text, or one JSON string) and returns offsets into
it; the callers turn them into positions in the input file. Sloppy arrows (`- >`, `—>`, `==>`)
are recognised so that the error can say what was meant, but only `--fix` accepts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NOT_LETTER = r"(?![A-Za-z])"
ARROW = re.compile(
    rf"""
    (?P<both><-+>|<=+>|↔|⇔|⟷|\\(?:long)?leftrightarrow{_NOT_LETTER}
        |\\(?:Long)?Leftrightarrow{_NOT_LETTER})
  | (?P<back><-{{1,2}}(?!-)|←|⟵|⇐|\\(?:long)?leftarrow{_NOT_LETTER}
        |\\(?:Long)?Leftarrow{_NOT_LETTER}|\\gets{_NOT_LETTER})
  | (?P<sloppy>-+[ \t]+-*>|[—–―]+-*>|={{2,}}>|~+>)
  | (?P<latex>\\(?:long)?rightarrow{_NOT_LETTER}|\\(?:Long)?Rightarrow{_NOT_LETTER}
        |\\to{_NOT_LETTER}|\\implies{_NOT_LETTER}|\\mapsto{_NOT_LETTER})
  | (?P<plain>-+>|=>|→|⇒|⟶|⟹|➔|➝|➞|⇨)
    """,
    re.X,
)

# Around a name: markdown emphasis, code ticks, quotes, math dollars and LaTeX wrappers.
_WRAP = " \t$*`\"'“”‘’_}{"
_LATEX_OPEN = re.compile(
    r"\\(?:text|mathrm|mathit|mathbf|textbf|textit|operatorname|mathsf)\s*\{", re.I
)
_WORD = r"[^\W_][\w'’-]*"
_WORD_RE = re.compile(_WORD)
_BLANKS = re.compile(r"[ \t]+")
_HEAD = re.compile(rf"(?P<name>{_WORD}(?:[ \t]+{_WORD})*)")
_TAIL = re.compile(rf"(?P<name>{_WORD}(?:[ \t]+{_WORD})*)$")
_MAX_NAME_WORDS = 3
# Words that do not occur inside a variable's name, only in prose around it.
_PROSE = frozenset(
    "because causes cause caused leads lead to is are was were which that since as by for with "
    "in on of and or so then affects affect influences influence determines determine "
    "enables enable means when while where who".split()
)
_ARTICLES = ("the ", "a ", "an ")
_DELIMITERS_AFTER = ":(,;[{$*`\"'“”‘’}=|"
_DELIMITERS_BEFORE = "$(:.;,[{*`\"'“”‘’=|>)"
_BULLET = re.compile(r"\s*(?:[-*•+]|\d+[.)])\s*$")


@dataclass(frozen=True, slots=True)
class RawEdge:
    """One edge found in a line; offsets index that line (or JSON string value)."""

    source: str
    target: str
    source_at: tuple[int, int]
    target_at: tuple[int, int]
    arrow: str  # as written
    arrow_at: tuple[int, int]
    kind: str  # plain | latex | back | both | sloppy
    description: str | None
    description_at: tuple[int, int] | None

    @property
    def start(self) -> int:
        return min(self.source_at[0], self.target_at[0])

    @property
    def end(self) -> int:
        return max(self.source_at[1], self.target_at[1])


@dataclass(frozen=True, slots=True)
class BrokenEdge:
    """An arrow without a variable on one side (a truncated or mangled edge)."""

    start: int
    end: int
    message: str


@dataclass(frozen=True, slots=True)
class Scan:
    edges: tuple[RawEdge, ...]
    broken: tuple[BrokenEdge, ...]
    stopped_at: int  # where the edges end and only description follows


def clean_name(raw: str) -> str:
    """A name as written, without wrappers, LaTeX commands and a leading article."""
    name = _LATEX_OPEN.sub("", raw).strip(_WRAP)
    name = _BLANKS.sub(" ", name)
    lowered = name.lower()
    for article in _ARTICLES:
        if lowered.startswith(article) and len(name) > len(article):
            return name[len(article):]
    return name


def _head(line: str, lo: int, hi: int) -> tuple[int, int] | None:
    """The name right after an arrow: offsets in `line`, or None."""
    pos = lo
    while pos < hi:
        m = _LATEX_OPEN.match(line, pos, hi)
        if m:
            pos = m.end()
        elif line[pos] in _WRAP:
            pos += 1
        else:
            break
    m = _HEAD.match(line, pos, hi)
    if not m:
        return None
    words = list(_WORD_RE.finditer(m.group("name")))
    rest = line[m.end():hi].lstrip(_WRAP)
    delimited = not rest or rest[0] in _DELIMITERS_AFTER or rest[0] in "-–—" \
        or rest[0] == "." and (len(rest) == 1 or rest[1].isspace()) or ARROW.match(rest)
    keep = len(words)
    if not delimited or keep > _MAX_NAME_WORDS:
        keep = 1
    for i, w in enumerate(words[1:keep], start=1):
        if w.group().lower() in _PROSE:
            keep = i
            break
    return m.start(), m.start() + words[keep - 1].end()


def _tail(line: str, lo: int, hi: int) -> tuple[int, int] | None:
    """The name right before an arrow: offsets in `line`, or None."""
    end = hi
    while end > lo and line[end - 1] in _WRAP:
        end -= 1
    m = _TAIL.search(line, lo, end)
    if not m:
        return None
    words = list(_WORD_RE.finditer(m.group("name")))
    before = line[lo:m.start()].rstrip(" \t")
    delimited = not before or before[-1] in _DELIMITERS_BEFORE or bool(_BULLET.fullmatch(before))
    keep = len(words)
    if not delimited or keep > _MAX_NAME_WORDS:
        keep = 1
    chosen = words[len(words) - keep:]
    for i in range(len(chosen) - 1, 0, -1):
        if chosen[i - 1].group().lower() in _PROSE:
            chosen = chosen[i:]
            break
    return m.start() + chosen[0].start(), m.end()


def _description(line: str, lo: int, hi: int) -> tuple[str, tuple[int, int]] | None:
    """The explanation after an edge: after `:`/`-`, or in parentheses."""
    pos = lo
    while pos < hi and line[pos] in " \t$*`}:;,.-–—=|":
        pos += 1
    end = hi
    while end > pos and line[end - 1] in " \t;,$":
        end -= 1
    if pos >= end:
        return None
    if line[pos] == "(":
        depth = 0
        for i in range(pos, end):
            depth += {"(": 1, ")": -1}.get(line[i], 0)
            if depth == 0:
                if line[pos + 1:i].strip():
                    return line[pos + 1:i].strip(), (pos + 1, i)
                break
    text = line[pos:end].strip()
    return (text, (pos, end)) if text else None


def _introduces(line: str, at: int) -> bool:
    """Whether what follows a target introduces its description: `:`, `(`, a dash."""
    rest = line[at:].lstrip(_WRAP)
    return rest[:1] in (":", "(", "-", "–", "—", "=", "|") or not rest.strip()


def scan(line: str, *, chain_only: bool = False) -> Scan:
    """Every edge in `line`. With `chain_only` (one JSON edge string), edges after the first
    continue only as a chain `A -> B -> C`; an arrow inside its description is prose. In free
    text, an edge followed by `:` owns the rest of the line as its description."""
    arrows = list(ARROW.finditer(line))
    edges: list[RawEdge] = []
    broken: list[BrokenEdge] = []
    stopped = len(line)
    for k, arrow in enumerate(arrows):
        seg_lo = arrows[k - 1].end() if k else 0
        seg_hi = arrows[k + 1].start() if k + 1 < len(arrows) else len(line)
        source = _tail(line, seg_lo, arrow.start())
        target = _head(line, arrow.end(), seg_hi)
        if source is None or target is None:
            side = "before" if source is None else "after"
            broken.append(BrokenEdge(arrow.start(), arrow.end(),
                                     f"no variable {side} the arrow `{arrow.group()}`"))
            continue
        # Where this edge's description ends: at the next edge's source, unless the next
        # arrow's source is this target (a chain), or the rest of the line is the description.
        nxt = _tail(line, arrow.end(), arrows[k + 1].start()) if k + 1 < len(arrows) else None
        chained = nxt is not None and nxt[0] == target[0]
        # `A -> B, B -> C` in one string: a list of edges, not a description.
        listed = nxt is not None and not line[target[1]:nxt[0]].strip(_WRAP + ",;")
        colon = line[target[1]:seg_hi].lstrip(_WRAP)[:1] == ":"
        last = k + 1 >= len(arrows) or (chain_only and not (chained or listed)) \
            or (colon and not chained)
        if chained:
            described = None
        elif not chain_only and not _introduces(line, target[1]):
            described = None  # `A -> B, and then ...`: prose, not this edge's explanation
        elif last:
            described = _description(line, target[1], len(line))
        else:
            described = _description(line, target[1], nxt[0] if nxt else seg_hi)
        kind = arrow.lastgroup or "plain"
        s_name = clean_name(line[source[0]:source[1]])
        t_name = clean_name(line[target[0]:target[1]])
        if kind == "back":
            s_name, t_name, source, target = t_name, s_name, target, source
        description, desc_at = described if described else (None, None)
        edges.append(RawEdge(s_name, t_name, source, target, arrow.group(),
                             (arrow.start(), arrow.end()), kind, description, desc_at))
        if kind == "both":
            edges.append(RawEdge(t_name, s_name, target, source, arrow.group(),
                                 (arrow.start(), arrow.end()), kind, description, desc_at))
        if last and k + 1 < len(arrows):
            stopped = max(source[1], target[1])
            break
    return Scan(tuple(edges), tuple(broken), stopped)
