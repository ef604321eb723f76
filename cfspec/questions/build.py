"""Questions from a spec: for every variable placed in a prompt, a yes/no question built from its
words, its kind and its neighbours, asked with the factual and with the counterfactual words.

The dependency graph is the SCM's, cut down to what a question presupposes (Davidsonian Scene
Graph): an action's parents are its agents' existence questions (its subjects are the SCM
parents that are agents), an attribute's or a quantity's parent is the question of the noun it
qualifies, a relation's those of the two things it relates (the nouns next to it in the
prompt). Existence, place and scene questions are roots.
"""

from __future__ import annotations

import networkx as nx

from cfspec.lang import ast
from cfspec.lang.model import CounterfactualModel, SpecModel
from cfspec.questions import override, phrasing
from cfspec.questions.caption import World
from cfspec.questions.record import Expect, Kind, Question

# A spec's kinds are free words (`var W: agent`); these are the ones cfspec phrases by meaning.
# Any other kind, and a variable without one (as the importers write them), is guessed from the
# form of its words in the prompt (`guess_kind`).
AGENT_KINDS = frozenset({"agent", "person", "people", "human"})
KINDS: dict[Kind, frozenset[str]] = {
    "exists": AGENT_KINDS | frozenset(
        "object animal tool food fruit vehicle device clothing substance thing entity plant "
        "furniture building instrument accessory item prop".split()),
    "action": frozenset({"action", "position", "pose", "view", "activity"}),
    "attribute": frozenset(
        "attribute color colour look size state race gender age material shape pattern "
        "texture emotion expression condition style".split()),
    "quantity": frozenset({"quantity", "number", "count"}),
    "relation": frozenset({"relation", "spatial", "preposition"}),
    "place": frozenset({"place", "location", "setting", "background"}),
    "scene": frozenset({"scene", "sport", "event", "weather", "time"}),
}
MASS_KINDS = frozenset({"substance"})  # "Is there water?", not "a water"
NO_ARTICLE_SCENES = frozenset({"sport", "weather", "time"})  # "Is this baseball?"
NOUN_KINDS = frozenset({"exists", "quantity"})  # what a question can be about


def build(model: SpecModel, cm: CounterfactualModel) -> tuple[Question, ...]:
    """The questions of one counterfactual, parents before children. A variable with no words
    in either prompt gets none, nor does one whose words are only function words (`his`)."""
    assert model.prompt_0 is not None and cm.prompt_1 is not None
    values = (model.words(), {**model.words(), **cm.new_words()})
    worlds = (World(model.prompt_0, values=values[0]), World(cm.prompt_1, values=values[1]))
    placed = [name for name in model.variables if any(w.own_words(name) for w in worlds)]
    kinds = {name: kind_of(model.variables[name], worlds) for name in placed}
    nouns = frozenset(name for name, kind in kinds.items() if kind in NOUN_KINDS)
    worlds = (World(model.prompt_0, nouns, values[0]), World(cm.prompt_1, nouns, values[1]))
    builder = _Builder(model, worlds, kinds)
    drafts = {name: builder.draft(name) for name in placed}
    for name in placed:  # the spec's own question replaces the built one, parents kept
        own = _own_question(model, cm, worlds, name)
        if own is not None:
            drafts[name] = (*own, drafts[name][2])
            kinds[name] = "ask"
    order = _dependency_order(drafts, placed)
    ids = {name: f"q{n}" for n, name in enumerate(order, start=1)}
    return tuple(
        Question(ids[name], name, kinds[name], drafts[name][0], drafts[name][1],
                 tuple(ids[p] for p in sorted(drafts[name][2], key=order.index)),
                 expectation(name, cm))
        for name in order)


def _own_question(model: SpecModel, cm: CounterfactualModel, worlds: tuple[World, World],
                  name: str) -> tuple[str | None, str | None] | None:
    """The spec's `ask` for a variable in both worlds, or None when it has none."""
    variable = model.variables[name]
    if variable.ask is None:
        return None
    factual = variable.value
    new = cm.new_words().get(name, factual)
    return (override.in_world(variable.ask.value, factual,
                              factual if worlds[0].own_words(name) else None),
            override.in_world(variable.ask.value, factual,
                              new if worlds[1].own_words(name) else None))


def expectation(variable: str, cm: CounterfactualModel) -> Expect:
    """What the causal graph says the counterfactual does to a variable."""
    if variable in cm.interventions:
        return "change"
    if variable in cm.sets:
        return "follow"
    return "may-change" if variable in cm.descendants else "hold"


def declared_kind(variable: ast.Variable) -> str:
    return variable.kind.text.lower() if variable.kind is not None else ""


def kind_of(variable: ast.Variable, worlds: tuple[World, World]) -> Kind:
    declared = declared_kind(variable)
    for kind, names in KINDS.items():
        if declared in names:
            return kind
    name = variable.name.text
    world = next((w for w in worlds if w.own_words(name)), None)
    return "exists" if world is None else guess_kind(world, name)


def guess_kind(world: World, name: str) -> Kind:
    """A kind from the form of a variable's words where the spec gives none: prepositions
    relate (`on`, `next to`), an `-ing` word or `is lying` acts, a word before a noun
    qualifies it (`brown` in `brown chicken`), anything else is a thing."""
    words = world.own_words(name)
    end = (world.run(name) or (0, 0))[1]
    if phrasing.is_preposition(words[0]):
        return "relation"
    if phrasing.is_gerund(words[0]) or words[0].lower() in phrasing.BE:
        return "action"
    nxt = world.content_at(end)
    if nxt and not phrasing.is_gerund(nxt) and not phrasing.is_plural(" ".join(words)):
        return "attribute"
    return "exists"


def _dependency_order(drafts: dict[str, _Draft], placed: list[str]) -> list[str]:
    """Parents first; otherwise the order the spec declares the variables in."""
    graph = nx.DiGraph()
    graph.add_nodes_from(placed)
    graph.add_edges_from((p, name) for name, d in drafts.items() for p in d[2] if p != name)
    rank = {name: n for n, name in enumerate(placed)}
    if not nx.is_directed_acyclic_graph(graph):  # never from a linted spec; no loop either way
        return placed
    return list(nx.lexicographical_topological_sort(graph, key=rank.__getitem__))


# (factual text, counterfactual text, parent variables)
_Draft = tuple[str | None, str | None, tuple[str, ...]]


class _Builder:
    def __init__(self, model: SpecModel, worlds: tuple[World, World],
                 kinds: dict[str, Kind]) -> None:
        self.model, self.worlds, self.kinds = model, worlds, kinds

    def draft(self, name: str) -> _Draft:
        kind = self.kinds[name]
        if kind == "action":
            return self._action(name)
        texts: list[str | None] = []
        parents: list[str] = []
        for world in self.worlds:
            words = world.own_words(name)
            if not words:  # absent in this world (`none`), or only an article (`A` -> `An`)
                texts.append(None)
                continue
            text, about = self._phrase(world, name, kind)
            texts.append(text)
            parents += [v for v in about if v not in parents and v != name]
        return texts[0], texts[1], tuple(parents)

    def _phrase(self, world: World, name: str, kind: Kind) -> tuple[str, list[str]]:
        """The question in one world, and the variables it is about."""
        words = " ".join(world.own_words(name))
        if kind == "attribute":
            noun = world.noun_after(name, self._skippable) or world.noun_before(name)
            subject = phrasing.definite(world.text(*noun)) if noun else "something"
            return phrasing.qualified(subject, words), self._about(world, noun)
        if kind == "quantity":
            noun, run = world.noun_after(name, self._skippable, counting=True), world.run(name)
            if noun is None or run is None:
                return phrasing.exists(words), []
            return phrasing.counted(world.text(run[0], noun[1])), self._about(world, noun)
        if kind == "relation":
            before = world.noun_before(name)
            after = world.noun_after(name, lambda v: False, relating=True)
            subject = phrasing.definite(world.text(*before)) if before else "something"
            thing = f" {phrasing.definite(world.text(*after))}" if after else ""
            return f"{phrasing.be(subject)} {subject} {words}{thing}?", \
                self._about(world, before) + self._about(world, after)
        declared = declared_kind(self.model.variables[name])
        if kind == "place":
            return f"Is this {world.place_phrase(name)}?", []
        if kind == "scene":
            return f"Is this {phrasing.indefinite(words, declared in NO_ARTICLE_SCENES)}?", []
        return phrasing.exists(words, declared in MASS_KINDS), []

    def _skippable(self, variable: str) -> bool:
        """Words between a qualifier and its noun: other attributes (`White male barber`)."""
        return self.kinds.get(variable) == "attribute"

    def _about(self, world: World, noun: tuple[int, int] | None) -> list[str]:
        if noun is None:
            return []
        found = [w.variable for w in world.prompt.words[noun[0] : noun[1]] if w.variable]
        return [v for v in dict.fromkeys(found) if self.kinds.get(v) in NOUN_KINDS]

    def _action(self, name: str) -> _Draft:
        subjects = self._subjects(name)
        texts: list[str | None] = []
        parents = list(subjects)
        for world in self.worlds:
            words = world.own_words(name)
            if not words:
                texts.append(None)
                continue
            named = [phrasing.definite(w) for w in map(world.words, subjects) if w]
            if not subjects:  # no agent in the graph: the noun before it in the caption
                noun = world.noun_before(name)
                named = [phrasing.definite(world.text(*noun))] if noun else []
                parents += [v for v in self._about(world, noun) if v not in parents]
            texts.append(phrasing.doing(" and ".join(named) or "someone", " ".join(words)))
        return texts[0], texts[1], tuple(p for p in parents if p != name)

    def _subjects(self, name: str) -> list[str]:
        """Who does an action: its SCM parents that are agents, else the entity parent nearest
        before it in the prompt, else the entity nearest before it."""
        entities = [v for v, kind in self.kinds.items() if kind == "exists"]
        parents = [p for p in self.model.graph.predecessors(name) if p in entities]
        agents = [p for p in parents if declared_kind(self.model.variables[p]) in AGENT_KINDS]
        if agents:
            return sorted(agents, key=list(self.model.variables).index)
        world, at = next((w, run[0]) for w in self.worlds if (run := w.run(name)))
        for candidates in (parents, entities):
            before = [(run[0], p) for p in candidates if (run := world.run(p)) and run[0] < at]
            if before:
                return [max(before)[1]]
        return parents[:1]
