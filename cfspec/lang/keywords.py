"""The language's keywords, read from grammar/scm.lark: the grammar is the one place they are
spelt, so recovery's did-you-mean, the language server's completions and the importers' name
escaping cannot fall behind a new keyword."""

from __future__ import annotations

import functools
import re

from cfspec import resources

# A keyword terminal is a line `NAME: "word"` (punctuation and named patterns are not words).
_KEYWORD_LINE = re.compile(r'^([A-Z_]+): "([a-z_]+)"\s*$', re.MULTILINE)


@functools.cache
def keyword_terminals() -> dict[str, str]:
    """Terminal name -> spelling, in the grammar's order: {"SCM": "scm", ...}."""
    text = (resources.require("grammar") / "scm.lark").read_text(encoding="utf-8")
    return dict(_KEYWORD_LINE.findall(text))


def keywords() -> frozenset[str]:
    """Every keyword as written: a name that must be escaped where the grammar wants a NAME."""
    return frozenset(keyword_terminals().values())
