"""Questions from a spec: for every variable placed in a prompt, a yes/no question built from its
words, its kind and its neighbours, asked with the factual and with the counterfactual words.

The dependency graph is the SCM's, cut down to what a question presupposes (Davidsonian Scene
Graph): an action's parents are its agents' existence questions (its subjects are the SCM
parents that are agents), an attribute's parent is the question of the entity it qualifies (the
noun next to it in the prompt). Existence, place and scene questions are roots.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from cfspec.lang import ast
from cfspec.lang.model import CounterfactualModel, SpecModel
from cfspec.lang.prompt import BoundPrompt
from cfspec.lang.words import FUNCTION_WORDS, exact
from cfspec.questions import phrasing
from cfspec.questions.record import Expect, Kind, Question

# A spec's kinds are free words (`var W: agent`); these are the ones cfspec phrases by meaning.
# Any other kind, and a variable without one (as the importers write them), is phrased by the
# form of its words: an `-ing` word is an action, anything else an entity.
AGENT_KINDS = frozenset({"agent", "person", "people", "human"})
ENTITY_KINDS = AGENT_KINDS | frozenset(
    "object animal tool food fruit vehicle device clothing substance thing entity plant "
    "furniture building instrument accessory item prop".split())
MASS_KINDS = frozenset({"substance"})  # "Is there water?", not "a water"
ACTION_KINDS = frozenset({"action", "position", "pose", "view", "activity"})
ATTRIBUTE_KINDS = frozenset(
    "attribute color colour look size state race gender age material shape pattern texture "
    "emotion expression condition style".split())
QUANTITY_KINDS = frozenset({"quantity", "number", "count"})
PLACE_KINDS = frozenset({"place", "location", "setting", "background"})
SCENE_KINDS = frozenset({"scene", "sport", "event", "weather", "time"})
NO_ARTICLE_SCENES = frozenset({"sport", "weather", "time"})  # "Is this baseball?"
NOUN_KINDS = ("exists", "quantity")  # what an attribute or a quantity can qualify


@dataclass(frozen=True)
class _World:
    """One prompt, and where each variable's words stand in it."""

    prompt: BoundPrompt

    def run(self, variable: str) -> tuple[int, int] | None:
        """Word indices [first, end) of the variable's first non-empty occurrence."""
        if self.prompt.slots is not None:
            return next(((a, b) for v, a, b in self.prompt.slots if v == variable and b > a),
                        None)
        at = [i for i, w in enumerate(self.prompt.words) if w.variable == variable]
        if not at:
            return None
        end = next((i for i, j in zip(at, at[1:], strict=False) if j != i + 1), at[-1]) + 1
        return at[0], end

    def text(self, first: int, end: int) -> str:
        words = self.prompt.words
        text = self.prompt.text[words[first].start : words[end - 1].end]
        if words[first].start == 0 and text[1:2].islower():  # "Horses" opening a caption
            text = text[0].lower() + text[1:]
        return " ".join(text.split())

    def words(self, variable: str) -> str | None:
        run = self.run(variable)
        return None if run is None else self.text(*run)


@dataclass(frozen=True)
class _Draft:
    kind: Kind
    texts: tuple[str | None, str | None]
    parents: tuple[str, ...]  # variables


def build(model: SpecModel, cm: CounterfactualModel) -> tuple[Question, ...]:
    """The questions of one counterfactual, parents before children."""
    assert model.prompt_0 is not None and cm.prompt_1 is not None
    worlds = (_World(model.prompt_0), _World(cm.prompt_1))
    placed = [name for name in model.variables if any(w.run(name) for w in worlds)]
    kinds = {name: _kind(model.variables[name], worlds) for name in placed}
    builder = _Builder(model, worlds, kinds)
    drafts = {name: builder.draft(name) for name in placed}
    order = _dependency_order(drafts, placed)
    ids = {name: f"q{n}" for n, name in enumerate(order, start=1)}
    return tuple(
        Question(ids[name], name, drafts[name].kind, *drafts[name].texts,
                 tuple(ids[p] for p in drafts[name].parents), expectation(name, cm))
        for name in order)


def expectation(variable: str, cm: CounterfactualModel) -> Expect:
    """What the causal graph says the counterfactual does to a variable."""
    if variable in cm.interventions:
        return "change"
    if variable in cm.sets:
        return "follow"
    return "may-change" if variable in cm.descendants else "hold"


def declared_kind(variable: ast.Variable) -> str:
    return variable.kind.text.lower() if variable.kind is not None else ""


def _kind(variable: ast.Variable, worlds: tuple[_World, _World]) -> Kind:
    declared = declared_kind(variable)
    for kinds, kind in ((ENTITY_KINDS, "exists"), (ACTION_KINDS, "action"),
                        (ATTRIBUTE_KINDS, "attribute"), (QUANTITY_KINDS, "quantity"),
                        (PLACE_KINDS, "place"), (SCENE_KINDS, "scene")):
        if declared in kinds:
            return kind  # type: ignore[return-value]
    words = next(w for w in (world.words(variable.name.text) for world in worlds) if w)
    return "action" if words.split()[0].lower().endswith("ing") else "exists"


def _dependency_order(drafts: dict[str, _Draft], placed: list[str]) -> list[str]:
    """Parents first; otherwise the order the spec declares the variables in."""
    graph = nx.DiGraph()
    graph.add_nodes_from(placed)
    graph.add_edges_from((p, name) for name, d in drafts.items() for p in d.parents)
    rank = {name: n for n, name in enumerate(placed)}
    return list(nx.lexicographical_topological_sort(graph, key=rank.__getitem__))


class _Builder:
    def __init__(self, model: SpecModel, worlds: tuple[_World, _World],
                 kinds: dict[str, Kind]) -> None:
        self.model, self.worlds, self.kinds = model, worlds, kinds

    def draft(self, name: str) -> _Draft:
        kind = self.kinds[name]
        if kind == "action":
            return self._action(name)
        if kind in ("attribute", "quantity"):
            return self._qualifier(name, kind)
        texts = tuple(self._simple(name, kind, world) for world in self.worlds)
        return _Draft(kind, (texts[0], texts[1]), ())

    def _simple(self, name: str, kind: Kind, world: _World) -> str | None:
        run = world.run(name)
        if run is None:
            return None
        words = world.text(*run)
        declared = declared_kind(self.model.variables[name])
        if kind == "place":
            return f"Is this {self._place_phrase(world, run, words)}?"
        if kind == "scene":
            words = phrasing.bare(words)
            return f"Is this {phrasing.indefinite(words, declared in NO_ARTICLE_SCENES)}?"
        parts = words.split()
        while len(parts) > 1 and phrasing.is_preposition(parts[0]):  # "with a camera"
            parts = parts[1:]
        return phrasing.exists(phrasing.bare(" ".join(parts)), declared in MASS_KINDS)

    @staticmethod
    def _place_phrase(world: _World, run: tuple[int, int], words: str) -> str:
        """The place with its preposition: its own (`in a bathroom mirror`), else the one the
        prompt puts before it (`on the beach`), else none (`a beach`)."""
        if phrasing.is_preposition(words.split()[0]):
            return words
        first = run[0]
        while first > 0 and exact(world.prompt.words[first - 1].text) in phrasing.DETERMINERS:
            first -= 1
        if first > 0 and phrasing.is_preposition(world.prompt.words[first - 1].text):
            return world.text(first - 1, run[1])
        return phrasing.indefinite(phrasing.bare(words))

    def _action(self, name: str) -> _Draft:
        subjects = self._subjects(name)
        texts: list[str | None] = []
        for world in self.worlds:
            words = world.words(name)
            if words is None:
                texts.append(None)
                continue
            named = [phrasing.definite(w) for w in map(world.words, subjects) if w]
            texts.append(phrasing.doing(" and ".join(named) or "someone", words))
        return _Draft("action", (texts[0], texts[1]), tuple(subjects))

    def _subjects(self, name: str) -> list[str]:
        """Who does the action: its SCM parents that are agents, else the nearest entity parent
        before it in the prompt, else the nearest entity before it."""
        entities = [p for p in self.model.graph.predecessors(name)
                    if self.kinds.get(p) == "exists"]
        agents = [p for p in entities
                  if declared_kind(self.model.variables[p]) in AGENT_KINDS]
        if agents:
            return sorted(agents, key=list(self.model.variables).index)
        before = self._nearest_before(name, entities or
                                      [v for v, k in self.kinds.items() if k == "exists"])
        return [before] if before else []

    def _nearest_before(self, name: str, candidates: list[str]) -> str | None:
        world = next(w for w in self.worlds if w.run(name))
        at = world.run(name)
        assert at is not None
        runs = [(run[0], c) for c in candidates if (run := world.run(c)) and run[0] < at[0]]
        if runs:
            return max(runs)[1]
        return candidates[0] if candidates else None

    def _qualifier(self, name: str, kind: Kind) -> _Draft:
        """An attribute with the noun it qualifies (`Is the plate white?`), a quantity with the
        noun it counts (`Are there a lot of pigeons?`)."""
        texts: list[str | None] = []
        parents: list[str] = []
        for world in self.worlds:
            run = world.run(name)
            if run is None:
                texts.append(None)
                continue
            noun = self._noun(world, run, kind)
            if noun is not None and noun[0] is not None and noun[0] not in parents:
                parents.append(noun[0])
            texts.append(self._qualified(world, run, kind, noun))
        return _Draft(kind, (texts[0], texts[1]), tuple(parents[:1]))

    def _qualified(self, world: _World, run: tuple[int, int], kind: Kind,
                   noun: tuple[str | None, int, int] | None) -> str:
        words = phrasing.bare(world.text(*run))
        if kind == "attribute":
            subject = phrasing.definite(world.text(noun[1], noun[2])) if noun else "something"
            return phrasing.qualified(subject, words)
        if noun is None:
            return phrasing.exists(words)
        counted = world.text(run[0], noun[2])  # "a lot of pigeons", "flock of sheep"
        return phrasing.exists(counted) if phrasing.is_plural(counted) \
            else phrasing.exists(phrasing.bare(counted))

    def _noun(self, world: _World, run: tuple[int, int], kind: Kind
              ) -> tuple[str | None, int, int] | None:
        """The noun next to a qualifier: (its variable or None for a caption's own word, word
        range). After it first (`white plate`, `a lot of pigeons`), skipping other attributes
        (`White male barber`), then before it (`polar bear partially submerged`)."""
        words = world.prompt.words
        j = run[1]
        while j < len(words) and (self.kinds.get(words[j].variable or "") == "attribute"
                                  or kind == "quantity" and exact(words[j].text) == "of"):
            j += 1
        found = self._noun_at(world, j)
        if found is None and kind == "attribute" and run[0] > 0:
            found = self._noun_at(world, run[0] - 1)
        return found

    def _noun_at(self, world: _World, j: int) -> tuple[str | None, int, int] | None:
        words = world.prompt.words
        if not 0 <= j < len(words):
            return None
        variable = words[j].variable
        if variable is not None:
            if self.kinds.get(variable) not in NOUN_KINDS:
                return None
            run = world.run(variable)
            return (variable, *run) if run else None
        if words[j].is_punctuation or exact(words[j].text) in FUNCTION_WORDS:
            return None
        return None, j, j + 1
