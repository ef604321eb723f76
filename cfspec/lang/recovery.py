"""Syntax-error recovery: every syntax error in a file, each reported once, with a did-you-mean
for a misspelt keyword. Runs only after the fast parse has failed, so a clean file never pays
for it.

It drives lark's LALR tables one token at a time, lexing with the contextual lexer of the state
the parser is in, and remembers the parser's state at the start of the current item (a `var`,
an edge, a `do(...)`, a block). At an error it tries, in order:

1. a misspelt keyword: the unexpected word, or the word that began the item (`counterfacual
   camel {` fails at `camel`), is close to a keyword the parser accepts there, and reading it as
   that keyword lets the parse go on;
2. a missing `}`: the unexpected token starts a line no deeper than the open block's first
   line, and closing the block lets the parse go on;
3. a missing `{`, `)`, `]` or `=`: reading on as if it were there lets the parse go on;
4. otherwise it drops the item: back to the state at the item's start, then it skips to the next
   token that can start an item there (a keyword, a name at the start of a later line, or the
   `}` that closes the block; braces in between are matched). A keyword already read as a
   name at the start of a later line (`var W:` then `var X` on the next) is a place to go on
   from too.

A character that starts no token is reported and skipped; an unterminated or single-quoted
string is read as a string to the end of its line.

After an error no other is reported until three tokens have been read cleanly (yacc's rule):
one mistake, one diagnostic. Reporting stops after MAX_ERRORS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedToken

from cfspec.diagnostics.records import Label
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.lang import parser as p
from cfspec.lang.keywords import keyword_terminals

MAX_ERRORS = 50
# Errors in all, reported or not: past this many the rest of a file is noise, not syntax.
MAX_RECOVERIES = 500
# Tokens skipped in all while looking for a place to go on from.
MAX_SKIPPED = 20_000
QUIET_TOKENS = 3

# Keyword terminals and how they are spelt (from the grammar).
KEYWORDS = keyword_terminals()
# Tokens that begin an item of some block (a name begins an edge), or close one.
_ITEM_START = frozenset(
    {"SCM", "ID", "PROMPT", "VAR", "NAME", "COUNTERFACTUAL", "COUNTERFACTUALS", "DO", "SET",
     "EDIT",
     "CROSS_REPLACE", "SELF_REPLACE", "BLEND", "THRESHOLD", "BLEND_START", "REWEIGHT", "RBRACE"}
)


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance: edits, with a swap of neighbours counting as one."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def closest_keyword(word: str, types: set[str] | frozenset[str]) -> str | None:
    """The keyword terminal among `types` that `word` is most likely a misspelling of."""
    if not word.isidentifier():
        return None
    low = word.lower()
    best: tuple[int, str] | None = None
    for t in sorted(types):
        spelling = KEYWORDS.get(t)
        if spelling is None or spelling == word:
            continue
        d = distance(low, spelling)
        allowed = 1 if len(spelling) <= 4 else 2
        if d <= allowed and d < len(spelling) and (best is None or d < best[0]):
            best = (d, t)
    return best[1] if best else None


@dataclass
class _Snapshot:
    states: list[Any]
    values: list[Any]
    braces: list[Token]


# Punctuation a parse may go on without, tried in this order when it is the one thing missing.
# (Not `->`: `banana W = ...` is more likely a wrong keyword than an edge without its arrow.)
_INSERTABLE = ("LBRACE", "RPAR", "RSQB", "EQUAL")
_SPELLING = {"LBRACE": "{", "RPAR": ")", "RSQB": "]", "EQUAL": "="}


def _line(token: Token) -> int:
    return token.line or 0


def _column(token: Token) -> int:
    return token.column or 0


def _as_keyword(token: Token) -> Token:
    """A name spelt like a keyword (the contextual lexer reads `var` as a name where a name is
    expected) as that keyword."""
    if token.type == "NAME":
        keyword = next((t for t, s in KEYWORDS.items() if s == str(token)), None)
        if keyword is not None:
            return Token.new_borrow_pos(keyword, str(token), token)
    return token


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
        self.p = p
        self.source = source
        self.report = report
        self.stopped = False  # too many errors: the rest of the file was not read
        interactive = lark.parse_interactive(source.text)
        self.state = interactive.parser_state
        self.lexer = interactive.lexer_thread.lexer
        self.lex_state = interactive.lexer_thread.state
        self.table = self.state.parse_conf.states
        self.braces: list[Token] = []
        self.snapshot = self._take()
        self.since_snapshot: list[Token] = []
        self.quiet = 0
        self.reported = 0
        self.recoveries = 0
        self.skipped = 0
        self.skipping = False
        self.last: Token | None = None

    # --- the parser's state ---------------------------------------------------------------

    def _take(self) -> _Snapshot:
        return _Snapshot(list(self.state.state_stack), _copy_values(self.state.value_stack),
                         list(self.braces))

    def _restore(self, snap: _Snapshot) -> None:
        # In place: the contextual lexer reads the state's position through this object.
        self.state.state_stack[:] = snap.states
        self.state.value_stack[:] = _copy_values(snap.values)
        self.braces[:] = snap.braces

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
        message, help_text = self.p._message_for_character(self.source, offset, char)
        notes = [f"expected {self.p._expected(error.allowed)} here"] if error.allowed else []
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
            return
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
            self.snapshot = self._take()
            self.since_snapshot = []
        try:
            self.state.feed_token(token)
        except UnexpectedToken:
            self._error(token)
            return
        self._fed(token)

    def _fed(self, token: Token) -> None:
        self.since_snapshot.append(token)
        if token.type == "LBRACE":
            self.braces.append(token)
        elif token.type == "RBRACE" and self.braces:
            self.braces.pop()
        self.quiet = max(0, self.quiet - 1)
        self.last = token

    def _error(self, token: Token) -> None:
        self.recoveries += 1
        expected = self._accepted()
        if self._misspelt_here(token, expected) or self._misspelt_before(token):
            return
        if self._missing_brace(token, expected) or self._unclosed_before(token):
            return
        if self._missing_token(token, expected):
            return
        message = f"expected {self.p._expected(expected)}, found {self.p._found(token)}"
        help_text = self.p._hint_for_token(self.source, token, expected)
        self._report(_span(token), message, help=help_text)
        self._skip(token)

    def _misspelt_here(self, token: Token, expected: set[str]) -> bool:
        """`edit refin {`: the unexpected word is a misspelt keyword."""
        keyword = closest_keyword(str(token), expected)
        if keyword is None:
            return False
        fixed = Token.new_borrow_pos(keyword, str(token), token)
        if not self._accepts(fixed):
            return False
        self._report(_span(token), f"unknown keyword `{token}`; did you mean "
                     f"`{KEYWORDS[keyword]}`?", label="not a keyword",
                     help=f"write `{KEYWORDS[keyword]}`")
        self.state.feed_token(fixed)
        self._fed(fixed)
        return True

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
        assert keyword is not None
        self.since_snapshot = []
        self._report(_span(word), f"unknown keyword `{word}`; did you mean "
                     f"`{KEYWORDS[keyword]}`?", label="not a keyword",
                     help=f"write `{KEYWORDS[keyword]}`")
        for t in (fixed, token):
            self.state.feed_token(t)
            self._fed(t)
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
        self._report(_span(token), f"expected `}}`, found {self.p._found(token)}",
                     labels=[Label(_span(opener), "this `{` is not closed")],
                     help="close the block with `}` before this line")
        for t in (close, token):
            self.state.feed_token(t)
            self._fed(t)
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
            message = f"expected {self.p._expected(expected)}, found {self.p._found(token)}"
            self._report(_span(token), message, help=f"insert `{_SPELLING[missing]}` before "
                         f"{self.p._found(token)}")
            for t in (inserted, token):
                self.state.feed_token(t)
                self._fed(t)
            return True
        return False

    def _unclosed_before(self, token: Token) -> bool:
        """`scm b {` inside an unclosed spec: `scm` began the item, read as a name (an edge's
        start), so the error comes one token later."""
        if len(self.since_snapshot) != 1 or self.since_snapshot[0].type != "NAME" \
                or not self.braces:
            return False
        word = self.since_snapshot[0]
        keyword = next((t for t, s in KEYWORDS.items() if s == str(word)), None)
        saved = self._take()
        self._restore(self.snapshot)
        if keyword is None or not self._deep_enough(word) or not self.braces:
            self._restore(saved)
            return False
        opener = self.braces[-1]
        close = self._synthetic("RBRACE", "}", word.start_pos)  # type: ignore[arg-type]
        fixed = Token.new_borrow_pos(keyword, str(word), word)
        if not self._accepts(close, fixed, token):
            self._restore(saved)
            return False
        self.since_snapshot = []
        self._report(_span(word), f"expected `}}`, found {self.p._found(word)}",
                     labels=[Label(_span(opener), "this `{` is not closed")],
                     help="close the block with `}` before this line")
        for t in (close, fixed, token):
            self.state.feed_token(t)
            self._fed(t)
        return True

    def _deep_enough(self, token: Token) -> bool:
        """Whether `token` starts a line no deeper than the innermost open block's first line
        (so the block was most likely meant to end before it)."""
        if not self.braces:
            return False
        first_line = self.source.line_text(self.braces[-1].line)  # type: ignore[arg-type]
        indent = len(first_line) - len(first_line.lstrip())
        return self._starts_line(token) and _column(token) <= indent + 1

    def _skip(self, token: Token | None) -> None:
        """Drop the item the error is in and skip to a token that can go on from its start."""
        error_line = _line(token) if token is not None else 0
        read = self.since_snapshot
        self._restore(self.snapshot)
        self.since_snapshot = []
        self.quiet = QUIET_TOKENS
        # First the tokens already read since the item's start: `var W:` then `var X = "x"` on
        # the next line read `var` as W's kind; the item to go on from starts there.
        for i, t in enumerate(read[1:], 1):
            keyword = _as_keyword(t) if self._starts_line(t) else t
            if t.line > read[0].line and self._resumes(keyword, 0):  # type: ignore[operator]
                self.state.feed_token(keyword)
                self._fed(keyword)
                for again in (*read[i + 1 :], *([token] if token is not None else [])):
                    self._feed(again)
                return
        depth = 0
        self.skipping = True
        try:
            while token is not None and self.skipped < MAX_SKIPPED:
                if depth == 0 and self._resumes(token, error_line):
                    self.state.feed_token(token)
                    self._fed(token)
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
        self._report(span, f"unexpected end of file; expected {self.p._expected(expected)}",
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

