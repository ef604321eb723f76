"""English for yes/no questions: articles, number, `is`/`are`, `does`/`do`.

Small and rule-based on purpose: the words come from a caption, which already chose them, and a
question only has to say them back. What it cannot know (a mass noun's missing article, an
irregular verb) a spec fixes with its own question (`ask "..."`).
"""

from __future__ import annotations

from cfspec.lang.prompt import article_for
from cfspec.lang.words import FUNCTION_WORDS, exact, plural_noun

DETERMINERS = frozenset("a an the this that these those his her their its my our your".split())
# Words that make a quantity plural: "Are there a lot of pigeons?", "Are there two dogs?"
PLURAL_QUANTITIES = frozenset(
    "lot lots many several some few couple dozens hundreds two three four five six seven eight "
    "nine ten eleven twelve numerous multiple various".split())
PREPOSITIONS = frozenset(
    "in on at by near over under inside outside beside behind above below across along "
    "around through into onto beneath underneath atop within against among between with "
    "without".split())
# Nouns without `a`: "Is there water?", "Is there food?". Kind `substance` makes any noun one.
MASS_NOUNS = frozenset(
    "water ice snow grass sand milk bread rice wine coffee tea juice meat cheese soup food "
    "luggage furniture traffic hair smoke fire mud dirt".split())


def bare(words: str) -> str:
    """The words without a leading determiner: `a large knife` -> `large knife`."""
    parts = words.split()
    while len(parts) > 1 and exact(parts[0]) in DETERMINERS:
        parts = parts[1:]
    return " ".join(parts)


def head(words: str) -> str:
    """The word a phrase's number follows: the last, or the last before `of` (`piece of
    food` is one piece)."""
    parts = words.split()
    if "of" in parts[1:]:
        parts = parts[: parts.index("of", 1)]
    return parts[-1] if parts else ""


def is_plural(words: str) -> bool:
    parts = [exact(w) for w in words.split()]
    if " and " in f" {' '.join(parts)} ":  # "the man and the woman"
        return True
    if parts and (parts[0] in PLURAL_QUANTITIES or parts[:2] == ["a", "lot"]):
        return True
    return plural_noun(head(words))


def be(words: str) -> str:
    return "Are" if is_plural(words) else "Is"


def indefinite(words: str, mass: bool = False) -> str:
    """`man` -> `a man`, `apple` -> `an apple`, `man and woman` -> `a man and a woman`;
    plurals, mass nouns and words that bring their own determiner stay as they are."""
    if " and " in words:
        return " and ".join(indefinite(part.strip(), mass) for part in words.split(" and "))
    if not words or mass or exact(head(words)) in MASS_NOUNS or is_plural(words) \
            or exact(words.split()[0]) in DETERMINERS:
        return words
    return f"{article_for(words.split()[0])} {words}"


def definite(words: str) -> str:
    """`a man` -> `the man`; a name-like phrase (`I`) is left alone."""
    return f"the {bare(words)}" if words else words


def exists(words: str, mass: bool = False) -> str:
    """`Is there a man?`, `Are there men?`, `Is there water?`"""
    return f"{be(words)} there {indefinite(words, mass)}?"


def base_form(verb: str) -> str:
    """`lunges` -> `lunge`, `reaches` -> `reach`, `carries` -> `carry`: the third person's
    `-s` taken off, for `Does the player lunge?`."""
    low = verb.lower()
    if low.endswith("ies") and len(low) > 4:
        return verb[:-3] + "y"
    if low.endswith(("ches", "shes", "sses", "xes", "zes", "oes")):
        return verb[:-2]
    if low.endswith("s") and not low.endswith("ss") and len(low) > 2:
        return verb[:-1]
    return verb


def doing(subject: str, action: str) -> str:
    """`Is the man cutting?`, `Are the cows wandering?`, `Does the player lunge?`"""
    first, _, rest = action.partition(" ")
    if first.lower().endswith("ing") or exact(first) in FUNCTION_WORDS:
        return f"{be(subject)} {subject} {action}?"
    if is_plural(subject):
        return f"Do {subject} {action}?"
    verb = base_form(first)
    return f"Does {subject} {verb}{' ' + rest if rest else ''}?"


def qualified(subject: str, attribute: str) -> str:
    """`Is the plate white?`, `Are the people large?`"""
    return f"{be(subject)} {subject} {attribute}?"


def is_preposition(word: str) -> bool:
    return exact(word) in PREPOSITIONS
