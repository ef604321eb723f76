"""A prompt as the question builder reads it: where each variable's words stand, and the nouns
next to them. Positions come from the bound prompt (`cfspec.lang.prompt`), which labels every
word with its variable. Where a literal counterfactual caption leaves a variable's words
unlabelled, they are found with the word API (`find_phrase`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cfspec.lang.prompt import BoundPrompt
from cfspec.lang.words import FUNCTION_WORDS, exact, find_phrase
from cfspec.questions import phrasing

# Dropped from the front of a variable's words: what the caption adds around them (`a`, `and`
# in `focused and sweaty`), not what the variable is.
_LEADING = phrasing.DETERMINERS | {"and", "or", "but"}


@dataclass(frozen=True)
class World:
    """One prompt, factual or counterfactual. `nouns`: the variables that name things (their
    words are nouns whatever their form: `cutting board`)."""

    prompt: BoundPrompt
    nouns: frozenset[str] = frozenset()
    # Each variable's words in this world, for a counterfactual written as a literal caption:
    # its words are labelled only where they align with the factual's, so words it adds
    # (`a circular table`) are found by the word API instead.
    values: Mapping[str, str | None] = field(default_factory=dict)

    def run(self, variable: str) -> tuple[int, int] | None:
        """Word indices [first, end) of the variable's first non-empty occurrence."""
        if self.prompt.slots is not None:
            return next(((a, b) for v, a, b in self.prompt.slots if v == variable and b > a),
                        None)
        at = [i for i, w in enumerate(self.prompt.words) if w.variable == variable]
        if not at:
            return self._found(variable)
        end = next((i for i, j in zip(at, at[1:], strict=False) if j != i + 1), at[-1]) + 1
        return at[0], end

    def _found(self, variable: str) -> tuple[int, int] | None:
        words = self.values.get(variable)
        if not words:
            return None
        at = find_phrase([w.text for w in self.prompt.words], words)
        if not at or any(self.prompt.words[i].variable for i in at):
            return None
        return at[0], at[-1] + 1

    def text(self, first: int, end: int) -> str:
        """Words [first, end) as the prompt writes them, on one line; a capital that only opens
        the caption (`Horses are ...`) is lowered."""
        words = self.prompt.words
        text = self.prompt.text[words[first].start : words[end - 1].end]
        if words[first].start == 0 and text[1:2].islower():
            text = text[0].lower() + text[1:]
        return " ".join(text.split())

    def words(self, variable: str) -> str | None:
        run = self.run(variable)
        return None if run is None else self.text(*run)

    def own_words(self, variable: str) -> list[str]:
        """The variable's words without punctuation and without a leading article or `and`;
        empty where it is absent, or where all it has are function words (`A` -> `An`)."""
        run = self.run(variable)
        if run is None:
            return []
        words = self.text(*run).split()
        words = [w for w in words if not all(not c.isalnum() for c in w)]
        while words and exact(words[0]) in _LEADING:
            words = words[1:]
        if all(exact(w) in FUNCTION_WORDS and not phrasing.is_preposition(w) for w in words):
            return []  # `his` -> `her`, `is` -> `are`: agreement, nothing to see
        return words

    def content_at(self, j: int) -> str | None:
        """Word j if it is a content word (not punctuation, not a function word)."""
        if not 0 <= j < len(self.prompt.words):
            return None
        word = self.prompt.words[j]
        return None if word.is_punctuation or exact(word.text) in FUNCTION_WORDS else word.text

    def _is_noun_word(self, j: int) -> bool:
        variable = self.prompt.words[j].variable if 0 <= j < len(self.prompt.words) else None
        if variable is not None:
            return variable in self.nouns
        word = self.content_at(j)
        return word is not None and not phrasing.is_gerund(word)

    def noun_after(self, variable: str, skip: Callable[[str], bool], counting: bool = False,
                   relating: bool = False) -> tuple[int, int] | None:
        """The noun right after a variable's words: `plate` after `white`, `barber` after
        `White` (skipping the words of variables `skip` names: `male`), `pigeons` after `a lot
        of`, `sheep` after `flock` when counting (`flock of sheep`), `sidewalk` after `on` when
        relating (`on a sidewalk`)."""
        run = self.run(variable)
        if run is None:
            return None
        j = run[1]
        words = self.prompt.words
        while j < len(words) and words[j].variable not in (None, variable) \
                and skip(words[j].variable):  # type: ignore[arg-type]
            j += 1
        if counting and j < len(words) and exact(words[j].text) == "of":
            j += 1
        while relating and j < len(words) and exact(words[j].text) in phrasing.DETERMINERS:
            j += 1  # on `a sidewalk`
        end = j
        while self._is_noun_word(end) or (
                exact(words[end].text) == "of" and end > j and self._is_noun_word(end + 1)
                if end < len(words) else False):
            end += 1
        return (j, end) if end > j else None

    def noun_before(self, variable: str) -> tuple[int, int] | None:
        """The noun right before a variable's words: `polar bear` before `partially
        submerged`, `person` before `on`, `cat` before `is lying`."""
        run = self.run(variable)
        if run is None:
            return None
        end = run[0]
        while end > 0 and exact(self.prompt.words[end - 1].text) in phrasing.BE:
            end -= 1
        first = end
        while first > 0 and self._is_noun_word(first - 1):
            first -= 1
        return (first, end) if first < end else None

    def place_phrase(self, variable: str) -> str:
        """A place with its preposition: its own (`in a bathroom mirror`), else the one the
        prompt puts before it (`on the beach`), else none (`a beach`)."""
        run = self.run(variable)
        assert run is not None
        words = self.text(*run)
        if phrasing.is_preposition(words.split()[0]):
            return words
        first = run[0]
        while first > 0 and exact(self.prompt.words[first - 1].text) in phrasing.DETERMINERS:
            first -= 1
        if first > 0 and phrasing.is_preposition(self.prompt.words[first - 1].text):
            return self.text(first - 1, run[1])
        return phrasing.indefinite(phrasing.bare(words))
