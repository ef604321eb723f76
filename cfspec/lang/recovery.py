"""Syntax-error recovery: every syntax error in a file, each reported once, with a did-you-mean
for a misspelt keyword. Runs only after the fast parse has failed, so a clean file never pays
for it.

It drives lark's LALR tables one token at a time, lexing with the contextual lexer of the state
the parser is in. It remembers the parser's state where the current statement began (an item of
`scm {...}`, or a statement of a block: `do(...)`, `set`, `prompt`, `edit {...}`, an edit
setting) and where the one before it began; inside `do(...)` or a `[...]` of values, where the
list began and its last `,`. At an error it tries, in order:

1. a misspelt keyword: the unexpected word, or the word that began the statement
   (`counterfacual camel {` fails at `camel`), is close to a keyword the parser accepts there,
   and reading it as that keyword lets the parse go on;
2. a missing `}`: the unexpected token starts a line no deeper than the open block's first
   line, and closing the block lets the parse go on;
3. a missing `{`, `)`, `]` or `=`: reading on as if it were there lets the parse go on;
4. a statement cut short at the end of a line (`W ->`, then `var X = "x"` read as the edge's
   target): a later line of this statement or the one before starts with a word that can begin
   a statement, and reading on from it gets as far as the error (a keyword) or past it (a name).
   The error is reported at the end of the short line;
5. otherwise it drops what the error is in. In a list, the element: it skips to the next `,` or
   the closing bracket (brackets in between matched) and goes on from the list as it stood
   before the element. Elsewhere, or when the list cannot go on so, the statement: back to where
   it began, then on to the next token that can begin a statement there (a keyword, a name at
   the start of a later line, or the `}` that closes the block; braces in between matched).

A character that starts no token is reported and skipped; an unterminated or single-quoted
string is read as a string to the end of its line.

No cascades: after an error (reported or not) no other is reported until three tokens have been
read cleanly (yacc's rule), or until the parse surely starts something new: a keyword that
begins a statement where the parse went on normally, or after a skip, at the start of a line no
deeper than the block's statements (or later on the error's line); or two tokens into the list
element after a dropped one. So one mistake gives one diagnostic, and two mistakes in one
statement or on neighbouring lines give two. Reporting stops after MAX_ERRORS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedToken

from cfspec.diagnostics.records import Edit, Fix, Label
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.lang.wording import (
    KEYWORDS,
    as_keyword,
    closest_keyword,
    expected_words,
    found,
    hint_for_token,
    message_for_character,
)

MAX_ERRORS = 50
# Errors in all, reported or not: past this many the rest of a file is noise, not syntax.
MAX_RECOVERIES = 500
# Tokens skipped in all while looking for a place to go on from.
MAX_SKIPPED = 20_000
QUIET_TOKENS = 3
# After a dropped list element, tokens of the next element to read cleanly (a name and its `=`
# or `in`) before errors are reported again: the `,` before it was a sure place to go on from.
ELEMENT_QUIET = 2
# Tokens a statement cut short (and the one after it) may span: replaying more would make
# recovery quadratic in a long statement, and a statement that long was not cut short.
CUT_WINDOW = 100

# Tokens that begin an item of some block (a name begins an edge), or close one.
_ITEM_START = frozenset(
    "SCM ID PROMPT IMAGE VAR NAME COUNTERFACTUAL COUNTERFACTUALS DO SET EDIT CROSS_REPLACE "
    "SELF_REPLACE BLEND THRESHOLD BLEND_START REWEIGHT RBRACE".split())


@dataclass
class _Snapshot:
    states: list[Any]
    values: list[Any]
    braces: list[Token]
    lists: list[_List]
    read: int  # how many tokens of the statement had been read


@dataclass
class _List:
    """An open `(...)` or `[...]`: where a broken element of it can be dropped back to."""
    closer: str  # the closing bracket's terminal
    start: _Snapshot | None = None  # just after the opening bracket
    # The last `,` read: (its place on the parser's stacks, the token, how many tokens of the
    # statement came before it). Below it every element so far is complete; a mark, not a
    # snapshot, so that a long list is not copied at each `,`.
    comma: tuple[int, Token, int] | None = None


_CLOSER = {"LPAR": "RPAR", "LSQB": "RSQB"}
_NESTING = {"LPAR": 1, "LSQB": 1, "LBRACE": 1, "RPAR": -1, "RSQB": -1, "RBRACE": -1}


# Punctuation a parse may go on without, tried in this order when it is the one thing missing.
# (Not `->`: `banana W = ...` is more likely a wrong keyword than an edge without its arrow.)
_INSERTABLE = ("LBRACE", "RPAR", "RSQB", "EQUAL")
_SPELLING = {"LBRACE": "{", "RPAR": ")", "RSQB": "]", "EQUAL": "="}


def _line(token: Token) -> int:
    return token.line or 0


def _column(token: Token) -> int:
    return token.column or 0


def _copy_values(values: list[Any]) -> list[Any]:
    """A copy of the parser's value stack that later parsing cannot change: lark grows the
    list of a block's items in place (a left-recursive `item*` reuses its children's list), so
    each tree gets a list of its own. Tokens and AST nodes are immutable."""
    return [Tree(v.data, list(v.children)) if isinstance(v, Tree) else v for v in values]


def _span(token: Token) -> Span:
    return Span(token.line, token.column, token.end_line, token.end_column,  # type: ignore[arg-type]
                token.start_pos, token.end_pos)  # type: ignore[arg-type]


# (span, message, label=..., labels=..., notes=..., help=...) -> the Diagnostic reported
Report = Callable[..., Any]


class Recovery:
    """One recovering parse of one file. `run()` returns what the parser built (the specs it
    could read; None if even that failed) and reports every error through `report`."""

    def __init__(self, lark: Any, source: SourceFile, report: Report) -> None:
        self.source = source
        self.report = report
        self.stopped = False  # too many errors: the rest of the file was not read
        interactive = lark.parse_interactive(source.text)
        self.state = interactive.parser_state
        self.lexer = interactive.lexer_thread.lexer
        self.lex_state = interactive.lexer_thread.state
        self.table = self.state.parse_conf.states
        self.braces: list[Token] = []
        self.indent: dict[int, int] = {}  # a block's `{` offset -> its first statement's column
        self.lists: list[_List] = []  # the open `(...)` and `[...]`, innermost last
        # The state where the current statement began, and the tokens read since; the same for
        # the statement before it (a statement cut short shows only in the one after it).
        self.since_snapshot: list[Token] = []
        self.snapshot = self._take()
        self.previous: tuple[_Snapshot, list[Token]] | None = None
        self.quiet = 0
        self.cascading = False  # the last error was one the quiet rule held back
        self.reported = 0
        self.recoveries = 0
        self.skipped = 0
        self.skipping = False
        self.last: Token | None = None

    # --- the parser's state ---------------------------------------------------------------

    def _take(self) -> _Snapshot:
        return _Snapshot(list(self.state.state_stack), _copy_values(self.state.value_stack),
                         list(self.braces), list(self.lists), len(self.since_snapshot))

    def _restore(self, snap: _Snapshot) -> None:
        # In place: the contextual lexer reads the state's position through this object.
        self.state.state_stack[:] = snap.states
        self.state.value_stack[:] = _copy_values(snap.values)
        self.braces[:] = snap.braces
        self.lists[:] = snap.lists

    def _go_back(self, snap: _Snapshot) -> None:
        """Drop what was read after `snap` in this statement, and go on from there."""
        self._restore(snap)
        del self.since_snapshot[snap.read :]

    def _accepts(self, *tokens: Token, snap: _Snapshot | None = None) -> bool:
        """Whether these tokens would be read without an error (the state is left alone)."""
        saved = self._take()
        if snap is not None:
            self._restore(snap)
        try:
            for token in tokens:
                self.state.feed_token(token, token.type == "$END")
            return True
        except Exception:  # noqa: BLE001 - a trial that fails in any way is no way on
            return False
        finally:
            self._restore(saved)

    def _synthetic(self, type_: str, value: str, offset: int) -> Token:
        """A token the user did not write, zero characters wide at `offset`."""
        line, column = self.source.position(offset)
        return Token(type_, value, offset, line, column, line, column, offset)

    def _row(self) -> dict[str, Any]:
        return self.table[self.state.position]  # type: ignore[no-any-return]

    # --- tokens ---------------------------------------------------------------------------

    def _next(self) -> Token | None:
        """The next token, lexed for the parser's state; None at the end of the file. A
        character that starts no token is reported and skipped."""
        while True:
            # While skipping, any token of the grammar will do: the root lexer knows them all.
            lexer = self.lexer.root_lexer if self.skipping else \
                self.lexer.lexers[self.state.position]
            try:
                return lexer.next_token(self.lex_state, self.state)  # type: ignore[no-any-return]
            except EOFError:
                return None
            except UnexpectedCharacters as error:
                if self.source.text.startswith("{{", self.lex_state.line_ctr.char_pos):
                    self._bad_character(error)
                    continue
                try:  # a token of the grammar, out of place here: the parser will say so
                    return self.lexer.root_lexer.next_token(self.lex_state, self.state)
                except EOFError:
                    return None
                except UnexpectedCharacters:
                    pass
                token = self._bad_character(error)
                if token is not None:
                    return token

    def _bad_character(self, error: UnexpectedCharacters) -> Token | None:
        text = self.source.text
        line_ctr = self.lex_state.line_ctr
        offset = line_ctr.char_pos
        char = text[offset]
        self.recoveries += 1
        message, help_text = message_for_character(self.source, offset, char)
        notes = [f"expected {expected_words(error.allowed)} here"] if error.allowed else []
        self._report(self.source.span(offset, offset + 1), message, notes=notes, help=help_text)
        eol = text.find("\n", offset)
        eol = len(text) if eol == -1 else eol
        repaired: Token | None = None
        if char in "\"'":
            # The string as far as it goes on this line: read on as if it were closed there.
            close = text.find(char, offset + 1, eol) if char == "'" else -1
            end = close + 1 if close != -1 else eol
            inner = text[offset + 1 : close if close != -1 else eol]  # as written: spans stay
            repaired = Token("STRING", f'"{inner}"', offset, line_ctr.line, line_ctr.column)
            skip = end - offset
        elif text.startswith("{{", offset):
            close = text.find("}}", offset, eol)
            skip = (close + 2 if close != -1 else eol) - offset
        else:
            skip = 1
        line_ctr.feed(text[offset : offset + skip])
        self.quiet = QUIET_TOKENS
        if repaired is not None:
            repaired.end_line, repaired.end_column = line_ctr.line, line_ctr.column
            repaired.end_pos = line_ctr.char_pos
            if repaired.type in self._row():
                return repaired
        return None

    # --- reporting ------------------------------------------------------------------------

    def _report(self, span: Span, message: str, **kwargs: Any) -> None:
        if self.quiet or self.reported >= MAX_ERRORS:
            self.quiet = max(self.quiet, QUIET_TOKENS)  # yacc: quiet again from this error
            self.cascading = True
            return
        self.cascading = False
        self.reported += 1
        self.quiet = QUIET_TOKENS
        self.report(span, message, label=kwargs.pop("label", "here"), **kwargs)

    def _accepted(self) -> set[str]:
        return {t for t in self._row() if t.isupper()
                and self._accepts(Token(t, KEYWORDS.get(t, "")))}

    # --- the parse ------------------------------------------------------------------------

    def run(self) -> Any:
        while self.reported < MAX_ERRORS and self.recoveries < MAX_RECOVERIES:
            token = self._next()
            if token is None:
                return self._finish()
            self._feed(token)
        self.stopped = True
        return None

    def _feed(self, token: Token) -> None:
        if token.type in _ITEM_START and ("RBRACE" in self._row() or "SCM" in self._row()):
            self.previous = (self.snapshot, self.since_snapshot)
            self.since_snapshot = []
            self.snapshot = self._take()
            if self.braces:  # where this block's statements start, for `_skip`
                self.indent.setdefault(self.braces[-1].start_pos or 0, _column(token))
        try:
            self.state.feed_token(token)
        except UnexpectedToken:
            self._error(token)
            return
        if token.type == "COMMA" and self.lists:
            self.lists[-1].comma = (len(self.state.value_stack) - 1, token,
                                    len(self.since_snapshot))
        if not self.since_snapshot and token.type in KEYWORDS:
            self.quiet = 0  # a statement surely starts here: errors from here on are new
        self._fed(token)

    def _push(self, *tokens: Token) -> None:
        """Read tokens known to be accepted (a repair, or a place to go on from)."""
        for token in tokens:
            self.state.feed_token(token)
            self._fed(token)

    def _fed(self, token: Token) -> None:
        self.since_snapshot.append(token)
        if token.type == "LBRACE":
            self.braces.append(token)
        elif token.type == "RBRACE" and self.braces:
            self.braces.pop()
        elif token.type in _CLOSER and self.last is not None and self.last.type in ("DO", "IN"):
            self.lists.append(_List(_CLOSER[token.type]))
            self.lists[-1].start = self._take()
        elif self.lists and token.type == self.lists[-1].closer:
            self.lists.pop()
        self.quiet = max(0, self.quiet - 1)
        self.last = token

    def _error(self, token: Token) -> None:
        self.recoveries += 1
        expected = self._accepted()
        if (self._misspelt_here(token, expected) or self._misspelt_before(token)
                or self._missing_brace(token, expected) or self._unclosed_before(token)
                or self._missing_token(token, expected) or self._cut_short(token)):
            return
        message = f"expected {expected_words(expected)}, found {found(token)}"
        help_text = hint_for_token(self.source, token, expected)
        self._report(_span(token), message, help=help_text)
        if not self._drop_element(token):
            self._skip(token, _line(token))

    def _misspelt_here(self, token: Token, expected: set[str]) -> bool:
        """`edit refin {`: the unexpected word is a misspelt keyword."""
        keyword = closest_keyword(str(token), expected)
        if keyword is None:
            return False
        fixed = Token.new_borrow_pos(keyword, str(token), token)
        if not self._accepts(fixed):
            return False
        self._misspelt(token, keyword)
        self._push(fixed)
        return True

    def _misspelt(self, word: Token, keyword: str) -> None:
        spelling = KEYWORDS[keyword]
        # Safe: the parser reads on only with the word as this keyword (as a name it failed),
        # and it is the closest one the parser accepts there.
        fix = Fix(f"Change to `{spelling}`", (Edit(_span(word), spelling),))
        self._report(_span(word), f"unknown keyword `{word}`; did you mean `{spelling}`?",
                     label="not a keyword", help=f"write `{spelling}`", fix=fix)

    def _misspelt_before(self, token: Token) -> bool:
        """`counterfacual camel {`: the word that began the item read as a name (the start of
        an edge), so the error comes one token later."""
        if len(self.since_snapshot) != 1 or self.since_snapshot[0].type != "NAME":
            return False
        word = self.since_snapshot[0]
        snap = self.snapshot
        saved = self._take()
        self._restore(snap)
        keyword = closest_keyword(str(word), {t for t in self._row() if t in KEYWORDS})
        fixed = Token.new_borrow_pos(keyword, str(word), word) if keyword else None
        if fixed is None or not self._accepts(fixed, token):
            self._restore(saved)
            return False
        self.since_snapshot = []
        self._misspelt(word, fixed.type)
        self._push(fixed, token)
        return True

    def _missing_brace(self, token: Token, expected: set[str]) -> bool:
        """A block left open: the token starts a line no deeper than the block's first line,
        and would be read once the block is closed."""
        if "RBRACE" not in expected or token.type == "RBRACE" or not self._deep_enough(token):
            return False
        opener = self.braces[-1]
        close = self._synthetic("RBRACE", "}", token.start_pos)  # type: ignore[arg-type]
        if not self._accepts(close, token):
            return False
        self._report(_span(token), f"expected `}}`, found {found(token)}",
                     labels=[Label(_span(opener), "this `{` is not closed")],
                     help="close the block with `}` before this line")
        self._push(close, token)
        return True

    def _missing_token(self, token: Token, expected: set[str]) -> bool:
        """`counterfactual c do(...)`, `do(W = "x" }`: a punctuation token left out. Reading on
        as if it were there keeps the rest of the item."""
        for missing in _INSERTABLE:
            if missing not in expected:
                continue
            inserted = self._synthetic(missing, _SPELLING[missing], token.start_pos or 0)
            if not self._accepts(inserted, token):
                continue
            message = f"expected {expected_words(expected)}, found {found(token)}"
            self._report(_span(token), message, help=f"insert `{_SPELLING[missing]}` before "
                         f"{found(token)}")
            self._push(inserted, token)
            return True
        return False

    def _unclosed_before(self, token: Token) -> bool:
        """`scm b {` inside an unclosed spec: `scm` began the item, read as a name (an edge's
        start), so the error comes one token later."""
        if len(self.since_snapshot) != 1 or self.since_snapshot[0].type != "NAME" \
                or not self.braces:
            return False
        word = self.since_snapshot[0]
        fixed = as_keyword(word)
        saved = self._take()
        self._restore(self.snapshot)
        if fixed is word or not self._deep_enough(word):
            self._restore(saved)
            return False
        opener = self.braces[-1]
        close = self._synthetic("RBRACE", "}", word.start_pos)  # type: ignore[arg-type]
        if not self._accepts(close, fixed, token):
            self._restore(saved)
            return False
        self.since_snapshot = []
        self._report(_span(word), f"expected `}}`, found {found(word)}",
                     labels=[Label(_span(opener), "this `{` is not closed")],
                     help="close the block with `}` before this line")
        self._push(close, fixed, token)
        return True

    def _cut_short(self, token: Token) -> bool:
        """`W ->`, then `var X = "x"` on the next line: the statement stops at the end of a line,
        and the parser read the start of the next line (`var`, here the edge's target) as its
        rest. Go on from that line; for a name, only if that reads past the error."""
        windows: list[tuple[_Snapshot, list[Token], list[Token]]] = [
            (self.snapshot, self.since_snapshot, [])]
        if self.previous is not None:
            windows.insert(0, (*self.previous, self.since_snapshot))
        for snap, read, later in windows:
            if len(read) + len(later) > CUT_WINDOW:
                continue
            for i in range(1, len(read)):
                if not _line(read[0]) < _line(read[i]) >= _line(token) - 1 \
                        or not self._starts_line(read[i]):
                    continue
                resume = as_keyword(read[i])
                rest = [resume, *read[i + 1 :], *later]
                end = self._synthetic("RBRACE", "}", read[i].start_pos or 0)
                eof = self._synthetic("$END", "", read[i].start_pos or 0)
                if (self._accepts(*read[:i], end, snap=snap)  # a whole statement before
                        or self._accepts(*read[:i], eof, snap=snap)
                        or not self._accepts(*rest, snap=snap)
                        or resume.type not in KEYWORDS and not self._accepts(*rest, token,
                                                                             snap=snap)):
                    continue
                self._restore(snap)
                for t in read[:i]:
                    self.state.feed_token(t)
                expected = self._accepted()
                self._restore(snap)
                self._report(_span(read[i - 1]), f"expected {expected_words(expected)}, "
                             "found the end of the line", label="the line ends here")
                self.snapshot, self.since_snapshot, self.previous = snap, [], None
                for t in (*rest, token):
                    self._feed(t)
                return True
        return False

    def _drop_element(self, token: Token) -> bool:
        """Inside a list, drop the element the error is in: skip to the next `,` or the closing
        bracket, and go on from the list as it was before the element."""
        if not self.lists:
            return False
        frame = self.lists[-1]
        row = self._row()
        complete = "COMMA" in row or frame.closer in row  # the error came after an element
        depth = 0
        next_token: Token | None = token
        self.skipping = True
        try:
            while next_token is not None and self.skipped < MAX_SKIPPED:
                kind = next_token.type
                if depth == 0 and kind in ("COMMA", frame.closer) or depth < 0 or (
                        kind in KEYWORDS and self._starts_line(next_token)):
                    break
                depth += _NESTING.get(kind, 0)
                self.skipped += 1
                next_token = self._next()
        finally:
            self.skipping = False
        if next_token is None or depth != 0 or next_token.type not in ("COMMA", frame.closer):
            self._skip(next_token, _line(token))
            return True
        if (complete or self._before_comma(frame)) and self._accepts(next_token):
            self._feed(next_token)
        elif next_token.type == "COMMA" and frame.comma is None and frame.start is not None:
            self._go_back(frame.start)  # the first element is broken: as if it were not there
        elif frame.start is not None and self._accepts(next_token, snap=frame.start):
            self._go_back(frame.start)
            self._feed(next_token)
        else:
            self._skip(self._next(), _line(token))  # the statement cannot go on: drop it all
            return True
        if next_token.type == "COMMA":
            self.quiet = ELEMENT_QUIET
        return True

    def _before_comma(self, frame: _List) -> bool:
        """Go back to just before the list's last `,`, if the parser still stands on it."""
        if frame.comma is None:
            return False
        depth, comma, read = frame.comma
        values = self.state.value_stack
        if len(values) <= depth or values[depth] is not comma:
            return False
        # lark's state stack holds one state more than its value stack: the start state.
        del self.state.state_stack[depth + 1 :], values[depth:], self.since_snapshot[read:]
        del self.lists[self.lists.index(frame) + 1 :]
        return True

    def _deep_enough(self, token: Token) -> bool:
        """Whether `token` starts a line no deeper than the innermost open block's first line
        (so the block was most likely meant to end before it)."""
        if not self.braces:
            return False
        first_line = self.source.line_text(self.braces[-1].line)  # type: ignore[arg-type]
        indent = len(first_line) - len(first_line.lstrip())
        return self._starts_line(token) and _column(token) <= indent + 1

    def _skip(self, token: Token | None, error_line: int) -> None:
        """Drop the statement the error is in and skip to a token that can go on from its
        start (a name only on a line after `error_line`)."""
        read = self.since_snapshot
        first, wrong = (read[0] if read else token), token
        self._restore(self.snapshot)
        indent = _column(first) if first else 0
        if self.braces:
            indent = min(indent, self.indent.get(self.braces[-1].start_pos or 0, indent))
        self.since_snapshot = []
        self.quiet = max(self.quiet, QUIET_TOKENS)
        depth = 0
        self.skipping = True
        try:
            while token is not None and self.skipped < MAX_SKIPPED:
                if depth == 0 and self._resumes(token, error_line):
                    self._push(token)
                    if token.type in KEYWORDS and first and not self.cascading and (
                            token is not wrong and _line(token) == _line(first)
                            or self._starts_line(token) and _column(token) <= indent):
                        self.quiet = 0  # surely a new statement of this block
                    return
                if token.type == "LBRACE":
                    depth += 1
                elif token.type == "RBRACE" and depth:
                    depth -= 1
                self.skipped += 1
                token = self._next()
        finally:
            self.skipping = False
        if token is not None:
            self.recoveries = MAX_RECOVERIES  # too much to skip: stop reading

    def _starts_line(self, token: Token) -> bool:
        return not self.source.line_text(_line(token))[: _column(token) - 1].strip()

    def _resumes(self, token: Token, error_line: int) -> bool:
        if token.type not in self._row():
            return False
        if token.type in KEYWORDS or token.type == "RBRACE" or (
                token.type == "NAME" and token.line > error_line):  # type: ignore[operator]
            return self._accepts(token)
        return False

    def _finish(self) -> Any:
        end = len(self.source.text)
        eof = self._synthetic("$END", "", end)
        try:
            return self.state.feed_token(eof, True)
        except UnexpectedToken:
            pass
        expected = self._accepted()
        span = self.source.span(max(0, end - 1), end) if end else self.source.span(0, 0)
        labels = [Label(_span(b), "this `{` is not closed") for b in self.braces[-1:]]
        self._report(span, f"unexpected end of file; expected {expected_words(expected)}",
                     labels=labels, help="a block is not closed: every `{` needs its `}`")
        # Close what is open, so the specs read so far come back.
        for snap in (self._take(), self.snapshot):
            self._restore(snap)
            closes = [self._synthetic("RBRACE", "}", end) for _ in range(len(self.braces) + 1)]
            for n in range(len(closes) + 1):
                if self._accepts(*closes[:n], eof):
                    for t in closes[:n]:
                        self.state.feed_token(t)
                    return self.state.feed_token(eof, True)
        return None

