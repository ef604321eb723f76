"""Graph logic of an import: SCM vs SCM_aug (which node the counterfactual replaced, which
edges do()-surgery cut, which changes nothing explains), and the smallest sets of edges whose
removal would make a cyclic graph acyclic (listed for the user; never applied).

Edges are `(source, target)` name pairs; results refer back to them by index, so callers keep
their own edge records with positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

Pair = tuple[str, str]



def nodes_of(edges: Sequence[Pair]) -> list[str]:
    """Nodes in order of first appearance."""
    seen: dict[str, None] = {}
    for s, t in edges:
        seen.setdefault(s)
        seen.setdefault(t)
    return list(seen)


def _positions(edges: Sequence[Pair], node: str, rename: dict[str, str]) -> set[tuple[str, str]]:
    out = set()
    for s, t in edges:
        if t == node and s != node:
            out.add(("in", rename.get(s, s)))
        if s == node and t != node:
            out.add(("out", rename.get(t, t)))
    return out


@dataclass(frozen=True)
class NodeDiff:
    replaced: dict[str, str]  # factual node -> the counterfactual node in its place
    removed: list[str]  # factual nodes that are gone, with nothing in their place
    added: list[str]  # counterfactual nodes in no factual node's place


def node_diff(factual: Sequence[Pair], aug: Sequence[Pair]) -> NodeDiff:
    """Pair each node that disappears with a new node in the same edge positions: `M` takes
    `W`'s place when `W -> A, W -> K` become `M -> A, M -> K`. Pairs are formed best overlap
    first; a second round sees the first round's pairs, for neighbours replaced together."""
    n0, n1 = nodes_of(factual), nodes_of(aug)
    gone = [n for n in n0 if n not in set(n1)]
    new = [n for n in n1 if n not in set(n0)]
    replaced: dict[str, str] = {}
    for _ in range(3):
        back = {a: g for g, a in replaced.items()}  # aug names -> factual names
        options = []
        for g in gone:
            if g in replaced:
                continue
            p0 = _positions(factual, g, {})
            for a in new:
                if a in back:
                    continue
                p1 = _positions(aug, a, back)
                common = len(p0 & p1)
                if common:
                    options.append((-common / len(p0 | p1), -common, n0.index(g), n1.index(a),
                                    g, a))
        options.sort()
        before = len(replaced)
        used: set[str] = set(back)
        for *_, g, a in options:
            if g not in replaced and a not in used:
                replaced[g] = a
                used.add(a)
        if len(replaced) == before:
            break
    removed = [g for g in gone if g not in replaced]
    added = [a for a in new if a not in set(replaced.values())]
    return NodeDiff(replaced, removed, added)


@dataclass(frozen=True)
class EdgeDiff:
    surgery: list[int] = field(default_factory=list)  # factual edges into intervened nodes, cut
    with_node: list[int] = field(default_factory=list)  # factual edges of removed nodes
    removed: list[int] = field(default_factory=list)  # factual edges dropped, unexplained
    added: list[int] = field(default_factory=list)  # aug edges no factual edge maps to


def edge_diff(
    factual: Sequence[Pair], aug: Sequence[Pair], nodes: NodeDiff, intervened: set[str]
) -> EdgeDiff:
    """Compare the graphs once replaced nodes are renamed. A factual edge missing from the
    counterfactual graph is do()-surgery when it points into an intervened node, goes with its
    node when that node was removed, and is unexplained otherwise; every edge the counterfactual
    graph adds is unexplained. Repeated edges count once (duplicates are reported apart)."""
    rename = nodes.replaced
    mapped = {(rename.get(s, s), rename.get(t, t)) for s, t in factual}
    kept = set(aug)
    out = EdgeDiff()
    seen: set[Pair] = set()
    for i, (s, t) in enumerate(factual):
        if (s, t) in seen:
            continue
        seen.add((s, t))
        if (rename.get(s, s), rename.get(t, t)) in kept:
            continue
        if t in intervened:
            out.surgery.append(i)
        elif s in nodes.removed or t in nodes.removed:
            out.with_node.append(i)
        else:
            out.removed.append(i)
    seen.clear()
    for i, pair in enumerate(aug):
        if pair in seen:
            continue
        seen.add(pair)
        if pair not in mapped:
            out.added.append(i)
    return out


