"""The graph pass: the answer's edges repaired (`--fix`) or reported, their names resolved to
the declared variables, self-loops and cycles in SCM and SCM_aug, and a graph that is empty."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cfspec.checks.graph import (
    GraphEdge,
    report_cycles,
    report_duplicate_edge,
    report_empty_graph,
    report_self_loops,
)
from cfspec.checks.names import report_undefined
from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.source import Span
from cfspec.importers import binding, graphdiff
from cfspec.importers.answer import Declared, Edge
from cfspec.importers.passes.context import Judging, descriptions, point, touching

Cycle = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Graphs:
    """The variables and both graphs, names resolved. `aug`: SCM_aug, when the answer has one;
    `nodes`: which of its nodes take a factual node's place."""

    declared: tuple[Declared, ...]
    edges: tuple[Edge, ...]
    aug: tuple[Edge, ...] | None
    nodes: graphdiff.NodeDiff
    index: Mapping[str, list[Edge]]  # each name's factual edges (`context.touching`)
    aug_index: Mapping[str, list[Edge]]  # each name's SCM_aug edges

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.declared]


def judge_graphs(j: Judging) -> Graphs:
    a = j.answer
    edges = _repair(j, a.edges, a.graph_name)
    aug = _repair(j, a.aug, a.aug_name) if a.aug is not None else None
    if a.declared is not None:
        declared = list(a.declared)
        edges = _resolve(j, edges, declared, report=True)
        if aug is not None:
            aug = _resolve(j, aug, declared, report=False)
    else:
        declared = _implicit(edges)
    variables = {d.name for d in declared}
    nodes = graphdiff.node_diff([e.pair for e in edges], [e.pair for e in aug]) \
        if aug is not None else graphdiff.NodeDiff({}, [], [])
    cycles = _graph_checks(j, edges, variables, a.graph_name)
    if aug is not None:
        aug_vars = variables | set(graphdiff.nodes_of([e.pair for e in aug]))
        _graph_checks(j, aug, aug_vars, a.aug_name, skip=cycles,
                      rename={v: k for k, v in nodes.replaced.items()})
    _empty_graph(j, edges, declared)
    return Graphs(tuple(declared), tuple(edges), tuple(aug) if aug is not None else None, nodes,
                  touching(edges), touching(aug or []))


def _graph_edge(e: Edge) -> GraphEdge:
    return GraphEdge(e.source, e.target, e.span, e.show())


def _words(text: str | None) -> str:
    return " ".join((text or "").split()).lower()


def _repair(j: Judging, edges: Sequence[Edge], graph: str) -> list[Edge]:
    """Arrow forms and exact duplicates: repaired with --fix, reported without."""
    out: list[Edge] = []
    first: dict[tuple[str, str], Edge] = {}
    for e in edges:
        if e.kind == "sloppy":
            _sloppy_arrow(j, e, graph)
        seen = first.get(e.pair)
        if seen is not None and e.source != e.target:
            same = _words(seen.description) == _words(e.description) or not e.description
            if j.options.fix and same:
                j.fixes.append(f"{graph}: removed the repeated edge {e.show()} "
                               f"(line {e.span.line})")
                continue
            report_duplicate_edge(j.report, _graph_edge(e), _graph_edge(seen), f" in {graph}",
                                  "; `--fix` removes exact repeats" if same else "")
        first.setdefault(e.pair, e)
        out.append(e)
    return out


def _sloppy_arrow(j: Judging, e: Edge, graph: str) -> None:
    if j.options.fix:
        j.fixes.append(f"{graph}: wrote `{e.arrow}` as `->` in {e.show()} (line {e.span.line})")
    else:
        j.report("syntax-error", e.span, f"`{e.arrow}` is not an arrow", label="meant `->`?",
                 help="write `->` (or `→`); `cfspec import --fix` rewrites it")


def _resolve(j: Judging, edges: list[Edge], declared: list[Declared], report: bool
             ) -> list[Edge]:
    """Edges name variables by their declared names, any case, or by their labels."""
    by_name = {d.name: d.name for d in declared}
    folded = {d.name.casefold(): d.name for d in declared}
    labels = {" ".join(binding.keys_of(d.label)): d.name for d in declared if d.label}
    index: dict[str, list[Edge]] | None = None
    out = []
    for e in edges:
        ends = []
        for name, span in ((e.source, e.source_span), (e.target, e.target_span)):
            found = by_name.get(name) or folded.get(name.casefold()) \
                or labels.get(" ".join(binding.keys_of(name)))
            if found is None and report:
                if index is None:
                    index = touching(edges)
                _undefined(j, name, span, declared, index)
            ends.append(found or name)
        out.append(dataclasses.replace(e, source=ends[0], target=ends[1]))
    return out


def _undefined(j: Judging, name: str, span: Span, declared: list[Declared],
               index: dict[str, list[Edge]]) -> None:
    declared_in = j.answer.declared_in
    close = [d.name for d in declared if d.name.casefold().startswith(name.casefold()[:1])]
    guess = binding.guess_words(name, None, descriptions(index, name))
    what = guess if guess != name else "<what it is>"
    report_undefined(
        j.report, span, "an edge", name,
        help=f"declare `{name}: {what}` in {declared_in}, or use one of the declared names "
        f"({', '.join(d.name for d in declared)})"
        if declared else f"declare `{name}` in {declared_in}",
        declared_in=declared_in,
        notes=[f"declared with the same initial: {', '.join(close)}"] if close else [])


def _graph_checks(j: Judging, edges: list[Edge], variables: set[str], graph: str,
                  skip: set[Cycle] | None = None, rename: dict[str, str] | None = None
                  ) -> set[Cycle]:
    """Self-loops and cycles among declared variables, by the one implementation in
    `checks.graph`; returns the cycles found (each as its edges, in factual names: `rename`
    maps the counterfactual graph's names back) so that the counterfactual graph's copies
    of them are not reported twice."""
    back = rename or {}
    known = skip or set()

    def factual(pairs: Cycle) -> Cycle:
        return frozenset((back.get(u, u), back.get(v, v)) for u, v in pairs)

    inside = [_graph_edge(e) for e in edges if e.source in variables and e.target in variables]
    where = f" in {graph}"
    found = {factual(frozenset({e.pair})) for e in inside if e.source == e.target}
    report_self_loops(j.report, inside, where,
                      skip=lambda pair: factual(frozenset({pair})) in known)
    cycles = report_cycles(j.report, inside, where,
                           help_extra="; `--fix` never breaks a cycle itself, the choice "
                           "is yours", skip=lambda pairs: factual(pairs) in known)
    return found | {factual(c) for c in cycles}


def _implicit(edges: list[Edge]) -> list[Declared]:
    """Without a `Variables:` list, the variables are the edges' nodes, in order."""
    out: dict[str, Declared] = {}
    for e in edges:
        for name, span in ((e.source, e.source_span), (e.target, e.target_span)):
            out.setdefault(name, Declared(name, None, None, span))
    return list(out.values())


def _empty_graph(j: Judging, edges: list[Edge], declared: list[Declared]) -> None:
    a = j.answer
    where = a.graph_span or point(a.span)
    if a.needs_graph and not edges:
        report_empty_graph(j.report, where, f"the answer's {a.graph_name} has no edges",
                           "no causal structure",
                           help="an LLM answer must state its causal graph: list its edges, "
                           "e.g. `W -> A: why`")
    elif not a.needs_graph and not edges:  # a reader's agreement edges make a graph
        if declared:
            report_empty_graph(j.report, where,
                               "a caption pair has no graph: imported as one intervention "
                               "without causes", "no edges", severity=Severity.WARNING,
                               notes=["without edges no variable has descendants: the "
                                      "counterfactual may change only the intervened words"],
                               help="add the cause-effect edges to the written .scm by hand")
        else:
            report_empty_graph(j.report, where,
                               "the two captions differ in no word, so there is no variable",
                               "nothing to reason about")
