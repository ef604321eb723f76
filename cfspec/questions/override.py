"""A spec's own question (`var W: agent = "man" ask "Is there a man in a suit?"`), said in each
world: the variable's factual words in it are replaced by that world's words, with the article
before them chosen again (`Is there an officer in a suit?`). Where the question does not name
the variable's words, it is asked as written in every world where the variable is present."""

from __future__ import annotations

from cfspec.lang.prompt import article_for
from cfspec.lang.words import find_phrase, split_words

# How a yes/no question opens; lint warns about an `ask` that does not (`ask-not-yes-no`).
YES_NO_OPENERS = frozenset(
    "is are was were am do does did can could has have had will would should shall may might "
    "must".split())


def not_yes_no(question: str) -> str | None:
    """Why `question` is not a yes/no question, or None when it is one."""
    words = [w for w, _, _ in split_words(question)]
    if not words or words[0].lower() not in YES_NO_OPENERS:
        return "it does not open with a verb such as `is`, `are` or `does`"
    if not question.rstrip().endswith("?"):
        return "it does not end with `?`"
    return None


def in_world(question: str, written_for: str | None, words: str | None) -> str | None:
    """The question with `words` where it names `written_for` (the factual words); None where
    the variable is absent (`words` is None)."""
    if words is None:
        return None
    tokens = split_words(question)
    at = find_phrase([t for t, _, _ in tokens], written_for) if written_for else []
    if not at:
        return question
    start, end = tokens[at[0]][1], tokens[at[-1]][2]
    text = question[:start] + words + question[end:]
    if at[0] > 0 and tokens[at[0] - 1][0].lower() in ("a", "an") and words.split():
        old, a, b = tokens[at[0] - 1]
        new = article_for(words.split()[0])
        text = text[:a] + (new.capitalize() if old[0].isupper() else new) + text[b:]
    return text
