"""How syntax errors are worded: terminals named in words a user knows (never an `__ANON`
terminal), what was expected and found, hints for common slips, and the did-you-mean for a
misspelt keyword. Used by `recovery.py`; it knows nothing of the parser, so data flows one way:
parser -> recovery -> wording."""

from __future__ import annotations

import re

from lark import Token

from cfspec.diagnostics.source import SourceFile
from cfspec.lang.keywords import keyword_terminals

# Keyword terminals and how they are spelt (from the grammar).
KEYWORDS = keyword_terminals()

_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": 'a string ("...")',
    "NUMBER": "a number",
    "ARROW": "`->`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COLON": "`:`",
    "COMMA": "`,`",
    "EQUAL": "`=`",
    "IN": "`in`",
    "$END": "the end of the file",
}


def describe_terminal(name: str) -> str:
    """How a terminal is named in messages: keywords as themselves, the rest in words."""
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    return f"`{name.lower()}`"


def expected_words(names: set[str] | frozenset[str] | list[str]) -> str:
    words = sorted({describe_terminal(n) for n in names if n not in ("WS", "COMMENT")})
    if not words:
        return "nothing more"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def found(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    text = str(token)
    if len(text) > 30:
        text = text[:27] + "..."
    return f"`{text}`"


def message_for_character(source: SourceFile, offset: int, char: str) -> tuple[str, str | None]:
    if char == '"':
        return "unterminated string", "close the string with `\"` on the same line"
    if char == "'":
        return "strings use double quotes", "write \"...\" instead of '...'"
    if char == "{" and source.text.startswith("{{", offset):
        return (
            "a template placeholder outside a string",
            'placeholders go inside the prompt string: prompt "A {{ W }} ..."',
        )
    printable = char if char.isprintable() else repr(char)
    return f"unexpected character `{printable}`", None


def hint_for_token(source: SourceFile, token: Token, expected: set[str]) -> str | None:
    before = source.text[max(0, token.start_pos - 200) : token.start_pos]  # type: ignore[operator]
    if token.type == "NAME" and "STRING" in expected:
        return f'words are quoted strings: "{token}"'
    if token.type == "STRING" and expected == {"ARROW"} and re.search(r'"\s*\w+\s*$', before):
        return 'a variable\'s kind goes before `=`: var W: agent = "woman" "description"'
    # Counterfactual sets: `in` takes a list, `=` one value, and only a set takes lists.
    if token.type == "LSQB" and "STRING" in expected and re.search(r"=\s*$", before):
        return ('a list of values is written `X in ["a", "b"]`, inside a set: '
                "counterfactuals NAME { do(X in [...]) }")
    if token.type == "IN" and "EQUAL" in expected:
        return ('only a counterfactual set takes lists: counterfactuals NAME { do(X in ["a", '
                '"b"]) }; one counterfactual takes one value: do(X = "a")')
    if "IN" in expected and token.type in ("NAME", "COLON"):
        return 'a list of values is written `X in ["a", "b"]`'
    if token.type == "EQUAL" and "ARROW" in expected:
        return "edges are written `A -> B`; variables are declared `var A = \"words\"`"
    if "RBRACE" in expected and token.type in ("SCM",):
        return "the previous spec is not closed: add `}` before this one"
    return None


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


def as_keyword(token: Token) -> Token:
    """A name spelt like a keyword (the contextual lexer reads `var` as a name where a name is
    expected) as that keyword."""
    if token.type == "NAME":
        keyword = next((t for t, s in KEYWORDS.items() if s == str(token)), None)
        if keyword is not None:
            return Token.new_borrow_pos(keyword, str(token), token)
    return token
