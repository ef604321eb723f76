"""Names for what an import writes: .scm identifiers from the answer's names (`cname`), made
unique per spec (`Names`), and variables named after their words (`word_name`, `head_word`)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from cfspec.importers.binding import STOPWORDS, Token
from cfspec.lang.keywords import keywords
from cfspec.lang.words import is_punctuation, normalize, split_words

KEYWORDS = keywords()


def cname(text: str, fallback: str = "X") -> str:
    """A .scm identifier for a name as the answer wrote it: ASCII letters, digits and `_`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9_]+", "_", ascii_text).strip("_") or fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    return name + "_" if name in KEYWORDS else name


class Names:
    """Answer names -> unique .scm identifiers, each given once and then kept."""

    def __init__(self) -> None:
        self.by_name: dict[str, str] = {}
        self.used: set[str] = set()

    def __call__(self, name: str) -> str:
        if name not in self.by_name:
            base = cname(name)
            candidate, n = base, 2
            while candidate in self.used:
                candidate, n = f"{base}_{n}", n + 1
            self.by_name[name] = candidate
            self.used.add(candidate)
        return self.by_name[name]


def word_name(toks: Sequence[Token], i: int, j: int) -> str:
    """A variable named after its words' last content word (`White`, `male`)."""
    content = [t for t in toks[i:j] if not is_punctuation(t.text) and t.plain not in STOPWORDS]
    head = (content or list(toks[i:j]))[-1].text
    return cname(head[:1].upper() + head[1:], "V")


def head_word(text: str) -> str:
    """The last content word of a phrase (`dog` of `a small dog`), else its last word."""
    content = [w for w, _, _ in split_words(text)
               if not is_punctuation(w) and normalize(w) not in STOPWORDS]
    return content[-1] if content else (text.split() or ["x"])[-1]
