"""Text -> syntax tree. Lark's LALR parser builds our AST directly (no intermediate parse
tree). When it fails, `recovery.py` parses the file again to report every syntax error, each a
`syntax-error` diagnostic that says what was expected in words a user knows (never a traceback
or an `__ANON` terminal), with a did-you-mean for a misspelt keyword."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, cast

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedInput

from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.gcpause import gc_paused
from cfspec.lang import ast, tables
from cfspec.lang.tables import grammar_path  # where it lived before: importers read it here

__all__ = ["collecting_comments", "grammar_path", "parse", "parse_partial"]


def _span(token: Token) -> Span:
    return Span(token.line, token.column, token.end_line, token.end_column,  # type: ignore[arg-type]
                token.start_pos, token.end_pos)  # type: ignore[arg-type]


# Spans of nodes are built straight from their first and last tokens: `_span(a).to(_span(b))`
# would make three Span objects (frozen dataclasses, slow to construct) where one will do.


def _between(first: Token, last: Token) -> Span:
    """From the start of token `first` to the end of token `last`."""
    return Span(first.line, first.column, last.end_line, last.end_column,  # type: ignore[arg-type]
                first.start_pos, last.end_pos)  # type: ignore[arg-type]


def _until(first: Token, end: Span) -> Span:
    """From the start of token `first` to the end of span `end`."""
    return Span(first.line, first.column, end.end_line, end.end_column,  # type: ignore[arg-type]
                first.start_pos, end.end)  # type: ignore[arg-type]


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/"}
# One escape: a UTF-16 surrogate pair written as two \u escapes (JSON's way to spell a character
# outside the BMP), a single \uXXXX, or a backslash and any other character.
_ESCAPE_RE = re.compile(
    r"\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|(.))",
    re.S,
)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(token: Token) -> ast.Text:
    # A lone surrogate written literally (text read with surrogateescape) is U+FFFD too, as
    # when it is written as an escape below; one character for one, so offsets stay exact.
    inner = _LONE_SURROGATE.sub("\ufffd", token.value[1:-1])
    if "\\" not in inner:
        return ast.Text(inner, _span(token))
    # Unescape and remember where each character came from, so spans inside strings stay exact:
    # offsets[i] is the column offset (from the opening quote) of value[i]. Runs between escapes
    # are copied whole, so a long string with a few escapes costs little more than one without.
    chars: list[str] = []
    offsets: list[int] = []
    position = 0
    for m in _ESCAPE_RE.finditer(inner):
        start = m.start()
        if start > position:
            chars.append(inner[position:start])
            offsets.extend(range(1 + position, 1 + start))
        high, low, code, other = m.groups()
        if high is not None:
            chars.append(chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00))
            offsets.append(1 + start)
        elif code is not None:
            # A lone surrogate is no character: it cannot be printed or written as UTF-8 (to a
            # report, pairs.jsonl, a dataset), so it becomes U+FFFD here, once, for every stage.
            point = int(code, 16)
            chars.append("\ufffd" if 0xD800 <= point <= 0xDFFF else chr(point))
            offsets.append(1 + start)
        elif other in _ESCAPES:
            chars.append(_ESCAPES[other])
            offsets.append(1 + start)
        else:  # an unknown escape is kept as written: two characters, two offsets
            chars.append("\\" + other)
            offsets.extend((1 + start, 2 + start))
        position = m.end()
    if position < len(inner):
        chars.append(inner[position:])
        offsets.extend(range(1 + position, 1 + len(inner)))
    offsets.append(1 + len(inner))  # sentinel: the closing quote
    return ast.Text("".join(chars), _span(token), tuple(offsets))


def _number(token: Token) -> ast.Number:
    return ast.Number(float(token), token.value, _span(token))


def _name(token: Token) -> ast.Name:
    return ast.Name(token.value, _span(token))


@dataclass(frozen=True, slots=True)
class _Ask:
    """`ask "..."` while a var_decl is built: told apart from the description, also a string."""

    text: ast.Text


class _Builder(Transformer[Token, Any]):
    """One method per grammar rule; each receives its children (tokens and built nodes)."""

    def start(self, children: list[ast.Spec]) -> tuple[ast.Spec, ...]:
        return tuple(children)

    def spec(self, c: list[Any]) -> ast.Spec:
        return ast.Spec(_name(c[1]), tuple(c[3:-1]), _between(c[0], c[-1]))

    def id_decl(self, c: list[Any]) -> ast.IdDecl:
        return ast.IdDecl(_text(c[1]), _between(c[0], c[1]))

    def prompt_decl(self, c: list[Any]) -> ast.PromptDecl:
        return ast.PromptDecl(_text(c[1]), _between(c[0], c[1]))

    def image_decl(self, c: list[Any]) -> ast.ImageDecl:
        return ast.ImageDecl(_text(c[1]), _between(c[0], c[1]))

    def kind(self, c: list[Any]) -> ast.Name:
        return _name(c[1])

    def description(self, c: list[Any]) -> ast.Text:
        return _text(c[0])

    def ask(self, c: list[Any]) -> _Ask:
        return _Ask(_text(c[1]))

    def var_decl(self, c: list[Any]) -> ast.Variable:
        kind = c[2] if isinstance(c[2], ast.Name) else None
        rest = c[4:] if kind else c[3:]
        words = rest[0] if isinstance(rest[0], ast.NoneValue) else _text(rest[0])
        description = next((r for r in rest[1:] if isinstance(r, ast.Text)), None)
        ask = next((r.text for r in rest[1:] if isinstance(r, _Ask)), None)
        end = (ask or description or words).span
        return ast.Variable(_name(c[1]), words, kind, description, _until(c[0], end), ask)

    def edge(self, c: list[Any]) -> ast.Edge:
        if len(c) > 3:
            description = c[3]
            span = _until(c[0], description.span)
        else:
            description = None
            span = _between(c[0], c[2])
        arrow = "->" if c[1] == "->" else "→"
        return ast.Edge(_name(c[0]), _name(c[2]), arrow, description, span)

    def counterfactual(self, c: list[Any]) -> ast.Counterfactual:
        return ast.Counterfactual(_name(c[1]), tuple(c[3:-1]), _between(c[0], c[-1]))

    def counterfactual_set(self, c: list[Any]) -> ast.CounterfactualSet:
        return ast.CounterfactualSet(_name(c[1]), tuple(c[3:-1]), _between(c[0], c[-1]))

    def grid_stmt(self, c: list[Any]) -> ast.Grid:
        items = tuple(x for x in c if isinstance(x, (ast.Assignment, ast.Choice)))
        return ast.Grid(items, _between(c[0], c[-1]))

    def choice(self, c: list[Any]) -> ast.Choice:
        # NAME IN LSQB (value (COMMA value)*)? RSQB: values are Text tokens or NoneValue nodes
        values = tuple(x if isinstance(x, ast.NoneValue) else _text(x)
                       for x in c[3:-1] if not (isinstance(x, Token) and x.type == "COMMA"))
        return ast.Choice(_name(c[0]), values, _between(c[0], c[-1]))

    def do_stmt(self, c: list[Any]) -> ast.Do:
        assignments = tuple(x for x in c if isinstance(x, ast.Assignment))
        return ast.Do(assignments, _between(c[0], c[-1]))

    def set_stmt(self, c: list[Any]) -> ast.SetWords:
        return ast.SetWords(c[1], _until(c[0], c[1].span))

    def assignment(self, c: list[Any]) -> ast.Assignment:
        value = c[2] if isinstance(c[2], ast.NoneValue) else _text(c[2])
        return ast.Assignment(_name(c[0]), value, _until(c[0], value.span))

    def none(self, c: list[Any]) -> ast.NoneValue:
        return ast.NoneValue(_span(c[0]))

    def edit_block(self, c: list[Any]) -> ast.Edit:
        edit_type = c[1] if isinstance(c[1], ast.Name) else None
        items = tuple(x for x in c[1:] if not isinstance(x, (Token, ast.Name)))
        return ast.Edit(edit_type, items, _between(c[0], c[-1]))

    def edit_type(self, c: list[Any]) -> ast.Name:
        return _name(c[0])

    def cross_replace(self, c: list[Any]) -> ast.CrossReplace:
        word = _text(c[1]) if len(c) == 3 else None
        return ast.CrossReplace(word, c[-1], _until(c[0], c[-1].span))

    def self_replace(self, c: list[Any]) -> ast.SelfReplace:
        return ast.SelfReplace(c[1], _until(c[0], c[1].span))

    def steps(self, c: list[Any]) -> ast.Steps:
        if len(c) == 1:
            return ast.Steps(_number(c[0]), None, _span(c[0]))
        return ast.Steps(_number(c[1]), _number(c[3]), _between(c[0], c[-1]))

    def uniform(self, c: list[Any]) -> ast.Uniform:
        return ast.Uniform(_number(c[2]), _number(c[4]), _between(c[0], c[-1]))

    def words(self, c: list[Any]) -> tuple[ast.Text, ...]:
        return tuple(_text(t) for t in c)

    def blend(self, c: list[Any]) -> ast.Blend:
        words_1 = c[3] if len(c) > 2 else None
        end = words_1[-1].span if words_1 else c[1][-1].span
        return ast.Blend(c[1], words_1, _until(c[0], end))

    def threshold(self, c: list[Any]) -> ast.Threshold:
        return ast.Threshold(_number(c[1]), _between(c[0], c[1]))

    def blend_start(self, c: list[Any]) -> ast.BlendStart:
        return ast.BlendStart(_number(c[1]), _between(c[0], c[1]))

    def reweight(self, c: list[Any]) -> ast.Reweight:
        return ast.Reweight(_text(c[1]), _number(c[2]), _between(c[0], c[2]))


@functools.cache
def _lark() -> Lark:
    # The tables ship with the package (tables.py says why: never lark's cache=True, which
    # unpickles a file from the shared temp dir). The grammar's strictness (no shift/reduce
    # conflicts, no colliding terminals) is checked by the tests, which have interegular.
    text = grammar_path().read_text(encoding="utf-8")
    options: dict[str, Any] = {"transformer": _Builder(),
                               "lexer_callbacks": {"COMMENT": _collect_comment}}
    built = tables.shipped(text)
    if built is not None:
        # What lark's standalone parsers load their tables with (Lark.load takes no options).
        return Lark._load_from_dict(built["data"], built["memo"], **options)
    return Lark(text, parser="lalr", **options)


# The comments of the parse running in this thread (or task), gathered by the lexer's callback:
# `ask --jobs N` parses from a thread pool, so each parse call has a list of its own.
_comments: ContextVar[list[Token] | None] = ContextVar("cfspec_comments", default=None)


def _collect_comment(token: Token) -> Token:
    found = _comments.get()
    if found is not None:
        found.append(token)
    return token


@contextmanager
def collecting_comments() -> Iterator[list[Token]]:
    """The comment tokens `_lark()`'s lexer meets in this thread while the block runs."""
    found: list[Token] = []
    previous = _comments.set(found)
    try:
        yield found
    finally:
        _comments.reset(previous)


def parse(source: SourceFile, bag: DiagnosticBag) -> ast.Module | None:
    """Parse a file. On syntax errors, report every one of them to `bag` and return None."""
    module, clean = _parse(source, bag)
    return module if clean else None


def parse_partial(source: SourceFile, bag: DiagnosticBag) -> ast.Module | None:
    """Parse a file, reporting every syntax error to `bag`; return what could be read even
    when there are errors (the items around an error are dropped), for an editor that needs
    symbols while the user types. None when nothing could be read."""
    return _parse(source, bag)[0]


def _parse(source: SourceFile, bag: DiagnosticBag) -> tuple[ast.Module | None, bool]:
    # The cyclic garbage collector is paused while parsing: the tree is acyclic, and on a
    # large file each full collection would rescan the whole tree built so far (a 4 MB file
    # parsed in 4.4 s with it, 2.7 s without). Memory is still freed by reference counting.
    clean = True
    with gc_paused(), collecting_comments() as found:
        try:
            specs = cast("tuple[ast.Spec, ...] | None", _lark().parse(source.text))
        except UnexpectedInput:
            # Parse again, slowly, to find every error, not only the first.
            clean = False
            found.clear()
            specs = _recover(source, bag)
    comments = tuple(ast.Comment(t.value, _span(t)) for t in found)
    return (None if specs is None else ast.Module(specs, comments)), clean


def _recover(source: SourceFile, bag: DiagnosticBag) -> tuple[ast.Spec, ...] | None:
    from cfspec.lang.recovery import Recovery

    def report(span: Span, message: str, **kwargs: Any) -> None:
        bag.report("syntax-error", span, message, **kwargs)

    first = len(bag.items)
    recovery = Recovery(_lark(), source, report)
    specs = recovery.run()
    if recovery.stopped and len(bag.items) > first:
        last = bag.items[-1]
        bag.items[-1] = replace(
            last, notes=(*last.notes, "cfspec stops reading the file here: too many errors"))
    return cast("tuple[ast.Spec, ...] | None", specs)
