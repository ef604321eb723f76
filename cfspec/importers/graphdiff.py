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


Position = tuple[str, str]  # ("in", the source of an edge into a node) or ("out", its target)

# A vanished node is compared with the new nodes that share one of its positions, at most this
# many (the first) per position: renamed leaves of a hub would otherwise compare every leaf
# with every leaf (quadratic). Below this many nodes per position nothing is left out.
MAX_PROPOSALS = 64


def _positions_of(edges: Sequence[Pair], rename: dict[str, str]) -> dict[str, set[Position]]:
    """Every node's edge positions (neighbours renamed by `rename`), in one pass."""
    out: dict[str, set[Position]] = {}
    for s, t in edges:
        if s != t:
            out.setdefault(t, set()).add(("in", rename.get(s, s)))
            out.setdefault(s, set()).add(("out", rename.get(t, t)))
    return out


@dataclass(frozen=True)
class NodeDiff:
    replaced: dict[str, str]  # factual node -> the counterfactual node in its place
    removed: list[str]  # factual nodes that are gone, with nothing in their place
    added: list[str]  # counterfactual nodes in no factual node's place


def node_diff(factual: Sequence[Pair], aug: Sequence[Pair]) -> NodeDiff:
    """Pair each node that disappears with a new node in the same edge positions: `M` takes
    `W`'s place when `W -> A, W -> K` become `M -> A, M -> K`. Pairs are formed best overlap
    first; a second round sees the first round's pairs, for neighbours replaced together.
    Linear in the edges: positions are indexed once per round, and a pair is only considered
    through a position the two nodes share (see MAX_PROPOSALS)."""
    n0, n1 = nodes_of(factual), nodes_of(aug)
    in0, in1 = set(n0), set(n1)
    gone = [n for n in n0 if n not in in1]
    new = [n for n in n1 if n not in in0]
    rank0 = {n: i for i, n in enumerate(n0)}
    rank1 = {n: i for i, n in enumerate(n1)}
    replaced: dict[str, str] = {}
    p0 = _positions_of(factual, {})
    for _ in range(3):
        back = {a: g for g, a in replaced.items()}  # aug names -> factual names
        p1 = _positions_of(aug, back)
        holders: dict[Position, list[str]] = {}
        for a in new:
            if a not in back:
                for pos in p1.get(a, ()):
                    holders.setdefault(pos, []).append(a)
        options = []
        for g in gone:
            if g in replaced:
                continue
            mine = p0.get(g, set())
            proposed = {a for pos in mine for a in holders.get(pos, ())[:MAX_PROPOSALS]}
            for a in proposed:
                common = len(mine & p1[a])
                options.append((-common / (len(mine) + len(p1[a]) - common), -common,
                                rank0[g], rank1[a], g, a))
        options.sort()
        before = len(replaced)
        used: set[str] = set(back)
        for *_, g, a in options:
            if g not in replaced and a not in used:
                replaced[g] = a
                used.add(a)
        if len(replaced) == before:
            break
    paired = set(replaced.values())
    removed = [g for g in gone if g not in replaced]
    added = [a for a in new if a not in paired]
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


