"""Counterfactual sets, expanded in this one place: `counterfactuals race_gender { do(R in [...],
G in [...]) ... }` becomes one `ast.Counterfactual` per combination of the listed values, the
first list outermost, named `<set>_<slug(v1)>_<slug(v2)>...`. The model builds its
counterfactuals from these members, so every check and the compiler see the same list;
`checks/sets.py` reports what `Expansion` found wrong with the set as written.

Semantics:
- a fixed assignment `X = "v"` in a set's do() is a list of one;
- a coordinate whose value is the variable's factual words is no intervention in that member
  (`race_gender_white_female` intervenes on G only), and the combination whose every value is
  factual is no counterfactual at all: it is skipped;
- a variable listed twice, a value repeated in a list and a member whose name another member
  already has are reported and left out (the first one counts), so members never repeat;
- a set of more than MAX_MEMBERS combinations is reported and not expanded;
- the variables listed with two values or more are the set's factors: its members may change
  them together without `too-many-interventions` (a fixed assignment counts as usual).
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from cfspec.diagnostics.source import Span
from cfspec.lang import ast
from cfspec.lang.words import exact, split_words

# Every member is a pair that `generate` renders once per seed, and lint runs every check on
# every member: a grid past a thousand is far beyond any published one (SocialCounterfactuals'
# largest holds a few dozen) and more likely a mistake than a design. Split it into sets.
MAX_MEMBERS = 1000
# A value's part of a member name; long values are cut so pair ids (<= 255 characters, spec id
# included) stay path-safe. A cut that makes two names alike is reported as a collision.
MAX_SLUG = 40


def slug(text: str) -> str:
    """`Middle Eastern` -> `middle_eastern`: ASCII letters and digits (accents dropped, `é` is
    `e`), lower case, every run of anything else one `_`, none at either end."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    out = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")
    return out[:MAX_SLUG].rstrip("_")


def value_slug(value: ast.Value, position: int) -> str:
    """A value's part of a member name; `v<position>` (1-based, in its list) when the words
    have no ASCII letter or digit at all (`"日本"`)."""
    if isinstance(value, ast.NoneValue):
        return "none"
    return slug(value.value) or f"v{position}"


def same_words(a: str, b: str) -> bool:
    """Whether two phrases are the same words (case and punctuation aside): what
    `unchanged-intervention-value` and the factual combination of a set compare."""
    return [exact(w) for w, _, _ in split_words(a)] == [exact(w) for w, _, _ in split_words(b)]


def _value_key(value: ast.Value) -> tuple[str, ...] | None:
    if isinstance(value, ast.NoneValue):
        return None
    return tuple(exact(w) for w, _, _ in split_words(value.value))


@dataclass(frozen=True)
class Axis:
    """One variable of the grid and its values, repeats left out."""

    item: ast.GridItem
    values: tuple[ast.Value, ...]
    slugs: tuple[str, ...]
    factual: tuple[bool, ...]  # per value: the variable's factual words

    @property
    def target(self) -> ast.Name:
        return self.item.target


@dataclass(frozen=True)
class Collision:
    """Two combinations whose member names are the same; the second is left out. `spans`:
    where they differ (the second's value, the first's value) when they differ in one list,
    else None."""

    name: str
    spans: tuple[Span, Span] | None


@dataclass
class Expansion:
    node: ast.CounterfactualSet
    axes: list[Axis] = field(default_factory=list)
    members: list[ast.Counterfactual] = field(default_factory=list)
    combinations: int = 0  # the size of the product, before anything is left out
    empty: list[ast.Choice] = field(default_factory=list)  # lists with no value
    # (the repeat, the first): left out of the expansion
    repeated_values: list[tuple[ast.Value, ast.Value]] = field(default_factory=list)
    collisions: list[Collision] = field(default_factory=list)

    @property
    def too_large(self) -> bool:
        return self.combinations > MAX_MEMBERS

    @property
    def listed(self) -> set[str]:
        """The variables listed with two values or more: the set's factors, which its members
        may change together (checks/interventions.py, check_count). A list of one is a fixed
        assignment, and counts as one."""
        return {a.target.text for a in self.axes if len(a.values) > 1}


def expand(node: ast.CounterfactualSet, variables: Mapping[str, ast.Variable]) -> Expansion:
    """The members of a set, given the spec's variables (first declaration of each name)."""
    out = Expansion(node)
    seen: dict[str, ast.GridItem] = {}
    for item in node.grid:
        name = item.target.text
        if name in seen:  # conflicting-assignment (checks/interventions.py): the first counts
            continue
        seen[name] = item
        given = (item.value,) if isinstance(item, ast.Assignment) else item.values
        if isinstance(item, ast.Choice) and not given:
            out.empty.append(item)
        values: list[ast.Value] = []
        keys: dict[tuple[str, ...] | None, ast.Value] = {}
        for value in given:
            key = _value_key(value)
            if key in keys:
                out.repeated_values.append((value, keys[key]))
                continue
            keys[key] = value
            values.append(value)
        var = variables.get(name)
        factual = tuple(
            var is not None and isinstance(v, ast.Text) and var.value is not None
            and same_words(v.value, var.value)
            for v in values)
        slugs = tuple(value_slug(v, i + 1) for i, v in enumerate(values))
        out.axes.append(Axis(item, tuple(values), slugs, factual))
    out.combinations = math.prod(len(a.values) for a in out.axes)
    if out.too_large:
        return out
    others = tuple(i for i in node.items if not isinstance(i, ast.Grid))
    do_span = node.grids[0].span if node.grids else node.name.span
    names: dict[str, tuple[int, ...]] = {}
    for combo in itertools.product(*(range(len(a.values)) for a in out.axes)):
        changed = [(a, a.values[i]) for a, i in zip(out.axes, combo, strict=True)
                   if not a.factual[i]]
        if not changed:
            continue  # the factual itself
        name = "_".join([node.name.text, *(a.slugs[i] for a, i in zip(out.axes, combo,
                                                                        strict=True))])
        if name in names:
            out.collisions.append(_collision(name, out.axes, names[name], combo))
            continue
        names[name] = combo
        # An assignment of a member spans its value: that is what differs between members, so
        # diagnostics about a member point into the list.
        assignments = tuple(ast.Assignment(a.target, v, v.span) for a, v in changed)
        member = ast.Counterfactual(
            ast.Name(name, changed[0][1].span),
            (ast.Do(assignments, do_span), *others),
            node.span,
            origin=node,
        )
        out.members.append(member)
    return out


def _collision(name: str, axes: list[Axis], first: tuple[int, ...],
               second: tuple[int, ...]) -> Collision:
    differ = [k for k, (i, j) in enumerate(zip(first, second, strict=True)) if i != j]
    if len(differ) != 1:
        return Collision(name, None)
    k = differ[0]
    return Collision(name, (axes[k].values[second[k]].span, axes[k].values[first[k]].span))
