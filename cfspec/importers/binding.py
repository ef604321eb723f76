"""Which words of the prompt each variable stands for.

An LLM names its variables `W`, `Fr` or `Sliced food` and explains them in prose; the caption
has `woman`, `fork`, `sliced`. A variable binds to prompt words by, strongest first: its label
from a `Variables:` list or its own name when that is a word (the whole phrase, then its parts),
then the evidence of the descriptions of its edges (how often a word is mentioned, whether it
is the first thing a description of an edge out of the variable talks about, whether the word
abbreviates to the variable's name: `Fr` for `fork`). Matching is case-, plural- and
punctuation-insensitive (`cfspec.lang.words.normalize`). Candidates are assigned greedily, best
score first, so that no two variables take the same words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from cfspec.lang.words import is_punctuation, key_places, normalize, split_words

# Function words never stand for a variable on the evidence of descriptions alone.
STOPWORDS = frozenset(
    "a an the is are was were be been being of in on at to with and or for from by into onto "
    "over under up down out off it its that this these those some any there their his her hers "
    "them they he she him has have had very not no as so but if then than which who whom what "
    "while when where how one ones other another each every all both few more most such own "
    "same just also only can could will would should may might do does did doing e g eg".split()
)
LABEL_SCORE = 100
NAME_SCORE = 90
MIN_EVIDENCE = 6  # description evidence that binds in the first round
WEAK_EVIDENCE = 3  # one mention: binds only words nobody else took


@dataclass
class Candidate:
    """What is known about a variable when binding it."""

    name: str
    label: str | None = None
    descriptions: list[str] = field(default_factory=list)  # every text that explains it
    leads: list[str] = field(default_factory=list)  # descriptions of edges out of it


_DOUBLED = re.compile(r"([b-df-hj-np-tv-z])\1$")


def stem(key: str) -> str:
    """A light verb stem on top of `normalize`, so that an LLM's `cutting` or `carrying`
    finds the caption's `cuts` or `carries`: -ing, -ed and a final -e go, a doubled final
    consonant is halved (`cutt` -> `cut`). Only for finding words, never for comparing
    prompts."""
    w = key
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 5 and w.endswith("ied"):
        w = w[:-3] + "y"
    elif len(w) > 5 and w.endswith("ed"):
        w = w[:-2]
    if w != key and len(w) > 3 and _DOUBLED.search(w) and not w.endswith(("ll", "ss", "zz")):
        w = w[:-1]
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    if w != key and len(w) > 2 and w.endswith("y"):  # as `normalize` ends: carry(ing) -> carri
        w = w[:-1] + "i"
    return w


_STEMMED_STOPWORDS = frozenset(stem(w) for w in STOPWORDS)


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int
    key: str  # normalize + stem: for finding words
    plain: str  # normalize only

    @property
    def content(self) -> bool:
        return bool(self.key) and self.plain not in STOPWORDS \
            and not is_punctuation(self.text)


def tokens(text: str) -> list[Token]:
    out = []
    for w, s, e in split_words(text):
        plain = normalize(w)
        out.append(Token(w, s, e, stem(plain), plain))
    return out


def keys_of(text: str) -> list[str]:
    return [stem(k) for k in (normalize(w) for w, _, _ in split_words(text)) if k]


def word_like(name: str) -> bool:
    """Whether a variable's name is itself a word to look for (`Woman`, `sliced_food`), not an
    abbreviation (`W`, `Fr`, `X1`)."""
    letters = re.sub(r"[^A-Za-z]", "", name)
    return len(letters) >= 3 and bool(re.search(r"[aeiouyAEIOUY]", letters))


def abbreviates(name: str, word: str) -> bool:
    """`Fr` abbreviates `fork`: same first letter, the name's letters in order in the word."""
    return _abbreviates(_short(name), word)


def _short(name: str) -> str:
    """A name's letters, as an abbreviation is compared (computed once per name)."""
    return re.sub(r"[^a-z]", "", name.lower())


def _abbreviates(short: str, word: str) -> bool:
    if not short or len(short) > 3 or not word or word[0] != short[0]:
        return False
    rest = iter(word[1:])
    return all(ch in rest for ch in short[1:])


def bind(
    prompt: str,
    candidates: Sequence[Candidate],
    allowed: Sequence[bool] | None = None,
) -> dict[str, tuple[int, int]]:
    """Token ranges `[i, j)` of `tokens(prompt)` per variable name, for those that bind."""
    toks = tokens(prompt)
    ok = list(allowed) if allowed is not None else [True] * len(toks)
    # The prompt's keys, None where a word may not be bound; and its content words, once:
    # every candidate's descriptions are looked up in them.
    keys = [t.key if allowed_here else None for t, allowed_here in zip(toks, ok, strict=True)]
    present = {t.key for t, allowed_here in zip(toks, ok, strict=True)
               if allowed_here and t.content}
    scored: list[_Score] = []
    for order, cand in enumerate(candidates):
        scored += _phrase_scores(cand, order, keys)
        scored += _evidence_scores(cand, order, toks, ok, present)
    return _assign(scored, len(toks))


# (score, the candidate's order, its name, i, j): one place a candidate may bind to.
_Score = tuple[float, int, str, int, int]


def _phrase_scores(cand: Candidate, order: int, keys: Sequence[str | None]) -> list[_Score]:
    """Places of the candidate's label and name in the prompt: the whole phrase, then its
    parts ("sliced" of "Sliced food"), longest first, content words only."""
    phrases: list[tuple[str, int]] = []
    if cand.label:
        phrases.append((cand.label, LABEL_SCORE))
    if word_like(cand.name):
        phrases.append((cand.name.replace("_", " "), NAME_SCORE))
    out: list[_Score] = []
    for phrase, base in phrases:
        wanted = keys_of(phrase)
        out += [(base + len(wanted), order, cand.name, i, i + len(wanted))
                for i in key_places(keys, wanted)]
        for n in range(len(wanted) - 1, 0, -1):
            for k in range(len(wanted) - n + 1):
                part = wanted[k:k + n]
                if all(p in _STEMMED_STOPWORDS for p in part):
                    continue
                out += [(base // 2 + n, order, cand.name, i, i + n)
                        for i in key_places(keys, part)]
    return out


def _evidence_scores(cand: Candidate, order: int, toks: Sequence[Token], ok: Sequence[bool],
                     present: set[str]) -> list[_Score]:
    """Single words the candidate's descriptions mention, or lead with, or its name
    abbreviates."""
    mentions = Counter(k for d in cand.descriptions for k in keys_of(d))
    firsts = Counter(_first_content(d, present) for d in cand.leads)
    short = _short(cand.name)
    out: list[_Score] = []
    for i, tok in enumerate(toks):
        if not (ok[i] and tok.content):
            continue
        score = 3.0 * mentions[tok.key] + 5.0 * firsts[tok.key]
        if _abbreviates(short, tok.key):
            # The name's letters are strong evidence only with descriptions to back them.
            score += 20 if mentions[tok.key] else (8 if not cand.descriptions else 0)
        if score >= WEAK_EVIDENCE:
            out.append((score, order, cand.name, i, i + 1))
    return out


def _assign(scored: list[_Score], n_tokens: int) -> dict[str, tuple[int, int]]:
    """Best place first, each word bound once. Strong evidence first; then, for what is left,
    a word the descriptions mention at all that no other variable took (`the action of
    cutting` for `A`)."""
    scored.sort(key=lambda s: (-s[0], s[1], s[3]))
    taken = [False] * n_tokens
    out: dict[str, tuple[int, int]] = {}
    for threshold in (MIN_EVIDENCE, WEAK_EVIDENCE):
        for score, _, name, i, j in scored:
            if score < threshold or name in out or any(taken[i:j]):
                continue
            out[name] = (i, j)
            for k in range(i, j):
                taken[k] = True
    return out


def _first_content(description: str, present: set[str]) -> str:
    """The first word of a description that is one of the prompt's content words (`present`):
    what an edge's description talks about first is usually its cause."""
    for key in keys_of(description):
        if key in present:
            return key
    return ""


def guess_words(name: str, label: str | None, descriptions: Sequence[str]) -> str:
    """Words for a variable that binds to nothing (it becomes `latent`): its label, else the
    word of its descriptions its name abbreviates, else its name."""
    if label:
        return label.strip()
    if word_like(name):
        return name.replace("_", " ")
    for d in descriptions:
        for w, _, _ in split_words(d):
            key = normalize(w)
            if abbreviates(name, key) and key not in STOPWORDS:
                return w.lower()  # the word as the description writes it, not its key
    return name
