"""Words that change only because another word changed: a pronoun or possessive that follows
its noun (`girl ... her` -> `boy ... his`), a verb's number (`is` -> `are`, `stands` ->
`stand`), a noun's number (`cow` -> `cows` after `a` -> `two`) and an article that comes or
goes with it (`a ball` -> `balls`). Such a change is a consequence of the intervention on the
noun, as `a` -> `an` already is, never an intervention of its own.

A small explicit table, no inflection library (the lint core stays light): `agreement` says
whether a change is made of such forms alone and what it agrees with; `follows` whether it can
follow a given change of another phrase (the genders and numbers must not contradict). Neither
parses the caption: they are for changes that a word diff has already cut out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cfspec.lang.words import ARTICLES, exact, normalize, plural_noun

SG, PL = "sg", "pl"
MALE, FEMALE, NEUTER = "m", "f", "n"

# Each row is one grammatical role; the columns are masculine, feminine, neuter and plural.
_PRONOUN_ROWS = (
    ("he", "she", "it", "they"),  # subject
    ("him", "her", "it", "them"),  # object
    ("his", "her", "its", "their"),  # possessive determiner
    ("his", "hers", "its", "theirs"),  # possessive pronoun
    ("himself", "herself", "itself", "themselves"),  # reflexive
)
_COLUMNS = ((MALE, SG), (FEMALE, SG), (NEUTER, SG), (None, PL))
# The forms a pronoun can take in its roles: `her` is both object and possessive.
_ROLES: dict[str, set[int]] = {}
_PERSON: dict[str, tuple[str | None, str]] = {}
for _row, _forms in enumerate(_PRONOUN_ROWS):
    for _form, _column in zip(_forms, _COLUMNS, strict=True):
        _ROLES.setdefault(_form, set()).add(_row)
        _PERSON[_form] = _column

# Verbs whose number is a word of its own (the regular `stands`/`stand` is found by its -s).
_VERB_PAIRS = (("is", "are"), ("was", "were"), ("has", "have"), ("does", "do"),
               ("isnt", "arent"), ("wasnt", "werent"), ("hasnt", "havent"), ("doesnt", "dont"))
VERB_NUMBER = {w: n for pair in _VERB_PAIRS for w, n in zip(pair, (SG, PL), strict=True)}
_VERB_PARTNER = {a: b for pair in _VERB_PAIRS for a, b in (pair, pair[::-1])}

# Words that say how many: the number of the phrase they begin.
_COUNT_SG = frozenset("a an one single another each every".split())
_COUNT_PL = frozenset(
    "two three four five six seven eight nine ten eleven twelve thirteen fifteen twenty "
    "dozen dozens hundreds thousands several many multiple numerous various both few couple "
    "pair group bunch lots some".split())
_NUMERAL = re.compile(r"\d+$")

# Words that say a person's gender. Compounds in -man / -woman (`policewoman`) by their end.
_MALE = frozenset(
    "man men boy boys guy guys gentleman gentlemen male males father fathers dad dads son sons "
    "brother brothers husband husbands boyfriend king prince groom uncle grandfather grandpa "
    "grandson nephew sir mr monk he him his himself".split())
_FEMALE = frozenset(
    "woman women girl girls lady ladies female females mother mothers mom moms mum daughter "
    "daughters sister sisters wife wives girlfriend queen princess bride aunt grandmother "
    "grandma granddaughter niece madam mrs ms nun she her hers herself".split())
_NOT_MAN = frozenset("human humans german germans roman romans shaman ottoman".split())


def gender(word: str) -> str | None:
    """`m`, `f`, or None when the word does not say."""
    w = exact(word)
    if w in _MALE:
        return MALE
    if w in _FEMALE or w.endswith(("woman", "women")):
        return FEMALE
    if w.endswith(("man", "men")) and w not in _NOT_MAN and len(w) > 4:
        return MALE
    return None


@dataclass(frozen=True, slots=True)
class Phrase:
    """What a phrase says about who or how many: its number and gender, when it says."""

    number: str | None
    gender: str | None


def phrase(words: Sequence[str], coordination: bool = True) -> Phrase:
    """The number and gender a noun phrase shows: a count word decides its number (`two`,
    `several`, `a`), `and` makes it plural (`a man and a child`; not with `coordination`
    False, where `black and white` may be adjectives), else its last word's (`dogs`); its
    gender is its first gendered word's."""
    plain = [exact(w) for w in words if any(c.isalnum() for c in w)]
    number: str | None = None
    if any(w in _COUNT_PL or (_NUMERAL.match(w) and w != "1") for w in plain) \
            or (coordination and "and" in plain):
        number = PL
    elif any(w in _COUNT_SG or w == "1" for w in plain):
        number = SG
    elif plain and plain[-1] in _PERSON:
        number = _PERSON[plain[-1]][1]
    elif plain and plain[-1] in VERB_NUMBER:
        number = VERB_NUMBER[plain[-1]]
    elif plain:
        number = PL if plural_noun(plain[-1]) else SG
    found = next((g for g in map(gender, plain) if g is not None), None)
    return Phrase(number, found)


@dataclass(frozen=True, slots=True)
class Agreement:
    """A change made only of agreement forms. `number` and `gender`: what the new forms agree
    with, where they say (`his`: one male; `are`: plural); `needs_number_change`: forms whose
    number alone changes but do not say which way (`stands`/`stand` is a verb's, `cow`/`cows` a
    noun's), so the phrase they follow must change its number; `kinds`: which forms."""

    number: str | None
    gender: str | None
    needs_number_change: bool
    kinds: tuple[str, ...]  # "pronoun", "verb", "number", "article"


def _pair(old: str, new: str) -> tuple[str, str | None, str | None] | None:
    """One word's agreement change as (kind, number, gender), or None when it is not one."""
    o, n = exact(old), exact(new)
    if o == n:
        return "same", None, None
    if o in _ROLES and n in _ROLES and _ROLES[o] & _ROLES[n]:
        g, number = _PERSON[n]
        return "pronoun", number, g
    if _VERB_PARTNER.get(o) == n:
        return "verb", VERB_NUMBER[n], None
    if normalize(o) == normalize(n) and o[:1] == n[:1] and (o.endswith("s") or n.endswith("s")
                                                           or n in _PLURAL_OF_IRREGULAR
                                                           or o in _PLURAL_OF_IRREGULAR):
        return "number", None, None
    return None


_PLURAL_OF_IRREGULAR = frozenset("men women children people feet teeth geese mice".split())


def agreement(old: Sequence[str], new: Sequence[str]) -> Agreement | None:
    """Whether the change of `old` words to `new` words is made of agreement forms alone,
    word for word (punctuation aside), and if so what it agrees with. An article may come or
    go with a noun's number (`a ball` -> `balls`, or alone: `a` -> ``)."""
    o = [w for w in old if any(c.isalnum() for c in w)]
    n = [w for w in new if any(c.isalnum() for c in w)]
    number: str | None = None
    kinds: list[str] = []
    if len(o) == len(n) + 1 and exact(o[0]) in ARTICLES:
        o, number = o[1:], PL  # the article goes: the noun is now plural
        kinds.append("article")
    elif len(n) == len(o) + 1 and exact(n[0]) in ARTICLES:
        n, number = n[1:], SG
        kinds.append("article")
    if len(o) != len(n) or (not o and not kinds):
        return None
    genders: list[str] = []
    numbers = [number] if number else []
    regular = False
    for a, b in zip(o, n, strict=True):
        found = _pair(a, b)
        if found is None:
            return None
        kind, num, g = found
        if kind == "same":
            continue
        kinds.append(kind)
        regular |= kind == "number"
        if num:
            numbers.append(num)
        if g:
            genders.append(g)
    if not kinds or len(set(numbers)) > 1 or len(set(genders)) > 1:
        return None
    return Agreement(numbers[0] if numbers else None, genders[0] if genders else None,
                     regular or "article" in kinds or "verb" in kinds,
                     tuple(dict.fromkeys(kinds)))


def follows(agreed: Agreement, old: Sequence[str], new: Sequence[str],
            singular_they: bool = False) -> bool:
    """Whether an agreement change can follow the change of `old` to `new` words (the
    intervened phrase): the number and gender the new forms show must not contradict the
    phrase's new ones, and forms that say only that the number changed need a phrase whose
    number changed (an added `and a child` makes the subject plural). With `singular_they`,
    `they`/`their` may also follow one of something whose gender the phrase does not say (`a
    parent ... them`): a weaker match, for when no stricter one is found."""
    before, after = phrase(old), phrase(new)
    if agreed.needs_number_change:
        changed = (before.number is not None and after.number is not None
                   and before.number != after.number) or (not old and after.number == PL)
        if not changed:
            return False
    if agreed.number is not None and after.number is not None and agreed.number != after.number:
        if not (singular_they and agreed.kinds == ("pronoun",) and agreed.gender is None
                and after.gender is None):
            return False
    if agreed.gender in (MALE, FEMALE) and after.gender not in (None, agreed.gender):
        return False
    return not (agreed.gender == NEUTER and after.gender in (MALE, FEMALE))


def consequences(changes: Sequence[tuple[Sequence[str], Sequence[str], int]]) -> list[int | None]:
    """For changes of a counterfactual, as (old words, new words, position in the caption):
    the index of the change each one follows (an agreement consequence), or None for an
    intervention. A change made of agreement forms follows the nearest intervention it agrees
    with (the one before it on a tie; a singular `they` only when nothing agrees more closely);
    one that agrees with none is an intervention itself. When every change is made of
    agreement forms, the first leads (`dog ... its` -> `dogs ... their`)."""
    agreed = [agreement(old, new) for old, new, _ in changes]
    causes = [k for k, a in enumerate(agreed) if a is None]
    if changes and not causes:
        causes = [0]
    out: list[int | None] = [None] * len(changes)
    for k, a in enumerate(agreed):
        if k in causes or a is None:
            continue
        at = changes[k][2]
        order = sorted(causes, key=lambda c: (abs(changes[c][2] - at), c > k))
        out[k] = next((c for lenient in (False, True) for c in order
                       if follows(a, changes[c][0], changes[c][1], singular_they=lenient)), None)
        if out[k] is None:
            causes.append(k)
    return out


def person(word: str) -> tuple[str | None, str] | None:
    """A pronoun's (gender, number): `her` is (`f`, `sg`), `their` (None, `pl`)."""
    return _PERSON.get(exact(word))


def disagrees(word: str, old: Phrase, new: Phrase) -> bool:
    """Whether a gendered pronoun that agreed with a phrase as it was (`her` after `girl`)
    contradicts it as it is now (`boy`). `it` and `they` are never judged: they so often stand
    for something else in the caption (`grazing sheep in it`)."""
    found = person(word)
    if found is None or found[0] not in (MALE, FEMALE):
        return False
    return old.gender == found[0] and new.gender not in (None, found[0])


# Words after which a noun is not the subject of the verb that follows it (`a kite with tail
# flies`, `a scooter and trailer are`).
_NOT_SUBJECT = frozenset(
    "with of in on at by for from to into onto under over near behind beside between among "
    "and or nor but".split())


def renumbered(old: Sequence[str], new: Sequence[str]) -> str | None:
    """The new number of a subject whose number surely changed: the same noun inflected (`dog`
    -> `dogs`, `man` -> `men`), with or without a count word; None when that is not sure
    (`animals` -> `sheep`, `fireplace` -> `couple`)."""
    o = [exact(w) for w in old if any(c.isalnum() for c in w)]
    n = [exact(w) for w in new if any(c.isalnum() for c in w)]
    if not o or not n or o[-1] == n[-1] or normalize(o[-1]) != normalize(n[-1]):
        return None
    if n[-1] in _COUNT_PL or n[-1] in _COUNT_SG:
        return None
    was, now = plural_noun(o[-1]), plural_noun(n[-1])
    return None if was == now else (PL if now else SG)


def verb_disagrees(before: str | None, word: str, number: str) -> bool:
    """Whether the verb right after a subject whose number is now `number` contradicts it:
    `is`/`are` and the like by the table; after a plural, also a regular third-person `-s`
    (`dogs runs`). Not after a preposition or a conjunction (`before`): then the noun is not
    the subject."""
    if before is not None and exact(before) in _NOT_SUBJECT:
        return False
    w = exact(word)
    if w in VERB_NUMBER:
        return VERB_NUMBER[w] != number
    return number == PL and w not in _PERSON and plural_noun(w) and len(w) > 3
