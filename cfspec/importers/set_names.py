"""Names in a caption set's spec: its variables' (from the item's id, `names_from_id`), its
counterfactuals' (after their new values, `cf_name`), and whether the outputs are exactly a
`counterfactuals` set, with its members' names (`grid_of`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from cfspec.diagnostics.source import Span
from cfspec.importers.binding import STOPWORDS, Token
from cfspec.importers.names import cname
from cfspec.lang import ast
from cfspec.lang.keywords import keywords
from cfspec.lang.set_expansion import value_slug
from cfspec.lang.words import ARTICLES, align, exact, is_punctuation, split_words

_MAX_NAME = 60  # a counterfactual's name: the pair id is the spec id, `__` and this
_MAX_SET_NAME = 40  # a set's name; its members add a slug per variable
_MAX_ORDERED = 5  # variables whose orders are tried to match the outputs' (5! = 120)
_NOWHERE = Span(1, 1, 1, 1, 0, 0)  # a value built only to be named as a set member is


def names_from_id(raw_id: str | None, t0: Sequence[Token], atoms: Sequence[tuple[int, int]]
                  ) -> dict[int, str]:
    """Variable names from an item id that writes the caption with the varied words replaced
    by what they are (`a_photo_of_race_gender_barber` for `A photo of a White male barber`):
    where the id's words stand in for exactly as many variables, in order."""
    if not raw_id:
        return {}
    id_words = [w for w in raw_id.replace("-", "_").replace(" ", "_").split("_") if w]
    words = [k for k, t in enumerate(t0) if not is_punctuation(t.text)]
    if not id_words or not words:
        return {}
    position = {k: n for n, k in enumerate(words)}
    caption = {exact(t0[k].text) for k in words}
    out: dict[int, str] = {}
    for tag, a0, a1, b0, b1 in align([exact(t0[k].text) for k in words],
                                     [exact(w) for w in id_words]):
        if tag != "replace":
            continue
        inside = [n for n, (i, j) in enumerate(atoms)
                  if all(a0 <= position.get(k, -1) < a1 for k in range(i, j)
                         if not is_punctuation(t0[k].text))]
        given = id_words[b0:b1]
        covered = {k for n in inside for k in range(*atoms[n])}
        others = [t0[words[p]] for p in range(a0, a1) if words[p] not in covered]
        if inside and len(inside) == len(given) and all(w.isalpha() for w in given) \
                and all(t.plain in STOPWORDS for t in others) \
                and not any(exact(w) in caption for w in given):
            for n, w in zip(inside, given, strict=True):
                out[n] = w[:1].upper() + w[1:]
    return out


def cf_name(values: Sequence[tuple[str, str | None, str]]) -> str:
    """A counterfactual named after its new values: `black_female`, `middle_eastern`,
    `no_hat` (variable, new words or None, the factual words)."""
    parts = []
    for new, old in ((v, o) for _, v, o in values):
        words = (new or "").split()
        while words and words[0].lower() in ARTICLES:
            words = words[1:]
        if not words:  # removed, or only its article is left (`a big ball` -> `a ball`)
            content = [w for w in old.split() if w.lower() not in ARTICLES]
            parts.append("no_" + cname((content or ["x"])[-1], "x").lower())
            continue
        parts.append(cname(" ".join(words), "v").lower())
    name = "_".join(parts)[:_MAX_NAME].rstrip("_") or "cf"
    return name if name[0].isalpha() else f"cf_{name}"


def set_name(variables: Sequence[str]) -> str:
    """`race_gender` for Race and Gender: their names in lower case, cut to a path-safe
    length, never a keyword (`cross_replace` would be one)."""
    name = "_".join(v.lower() for v in variables)[:_MAX_SET_NAME].rstrip("_")
    return f"{name}_set" if name in keywords() else name


def grid_of(names: Sequence[str], factual: dict[str, str],
            outputs: Sequence[dict[str, str | None]]
            ) -> tuple[list[str], dict[str, list[str | None]], list[str]] | None:
    """Whether the outputs are exactly a set: every combination of each variable's values (the
    caption's first) but the caption's own, each once, in any order. Returns the variables in
    the set's order, each one's value list, and each output's member name; None otherwise.

    The lists hold the values in order of first appearance; the variables are ordered so that
    the set expands in the outputs' order when some order does (SocialCounterfactuals lists
    Race outermost), else as in the caption."""
    if len(names) < 2:  # one variable: a set would be the explicit blocks renamed
        return None
    found = _cells(names, factual, outputs)
    if found is None:
        return None
    lists, cells = found
    sizes = [len(lists[n]) for n in names]
    if any(size < 2 for size in sizes) or len(outputs) != math.prod(sizes) - 1:
        return None
    seen = {tuple(c[n] for n in names) for c in cells}
    if len(seen) != len(cells):
        return None  # then some combination is missing: the grid is incomplete
    order = _outputs_order(names, lists, cells)
    prefix = set_name(order)
    slugs = {n: [value_slug(_ast_value(v), k + 1) for k, v in enumerate(lists[n])]
             for n in names}
    members = ["_".join([prefix, *(slugs[n][c[n]] for n in order)]) for c in cells]
    if len(set(members)) != len(members):
        return None  # values whose names are alike (`Black` and `black!`) would collide
    return order, lists, members


def _cells(names: Sequence[str], factual: dict[str, str],
           outputs: Sequence[dict[str, str | None]]
           ) -> tuple[dict[str, list[str | None]], list[dict[str, int]]] | None:
    """Each variable's values (the caption's first, then in order of first appearance) and
    each output's cell: the index of its value of each variable. None when a value is the
    caption's, or two outputs spell one value differently."""
    lists: dict[str, list[str | None]] = {n: [factual[n]] for n in names}
    keys: dict[str, list[tuple[str, ...] | None]] = {n: [_key(factual[n])] for n in names}
    cells: list[dict[str, int]] = []
    for vals in outputs:
        cell: dict[str, int] = {}
        for n in names:
            if n not in vals:
                cell[n] = 0
                continue
            value, key = vals[n], _key(vals[n])
            if key in keys[n]:
                at = keys[n].index(key)
                # The set compares values by their words: two spellings of one value, or a
                # value that is the caption's, would not expand to this output.
                if at == 0 or lists[n][at] != value:
                    return None
            else:
                at = len(lists[n])
                lists[n].append(value)
                keys[n].append(key)
            cell[n] = at
        cells.append(cell)
    return lists, cells


def _outputs_order(names: Sequence[str], lists: dict[str, list[str | None]],
                   cells: list[dict[str, int]]) -> list[str]:
    """The variables in an order whose expansion is the outputs' order, else as given."""
    if len(names) <= _MAX_ORDERED:
        for tried in itertools.permutations(names):
            expanded = [combo for combo in itertools.product(
                *(range(len(lists[n])) for n in tried)) if any(combo)]
            if expanded == [tuple(c[n] for n in tried) for c in cells]:
                return list(tried)
    return list(names)


def _key(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(exact(w) for w, _, _ in split_words(value))


def _ast_value(value: str | None) -> ast.Value:
    return ast.NoneValue(_NOWHERE) if value is None else ast.Text(value, _NOWHERE)
