"""SCM2xx: the causal graph must be a DAG with something in it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from cfspec.checks.suggest import delete_edit
from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Applicability, Fix, Label, Reporter
from cfspec.diagnostics.source import SourceFile, Span

if TYPE_CHECKING:
    from cfspec.checks import Context


def report_empty_graph(report: Reporter, span: Span, message: str, label: str,
                       severity: Severity = Severity.ERROR, notes: Sequence[str] = (),
                       help: str | None = None) -> None:
    """`empty-graph`: nothing to reason about (an error), or variables without edges (a
    warning). Lint and import."""
    report("empty-graph", span, message, label=label, severity=severity, notes=list(notes),
           help=help)


def check_empty(ctx: Context) -> None:
    spec = ctx.spec
    if not ctx.model.variables:
        report_empty_graph(
            ctx.report,
            spec.name.span,
            f"spec `{spec.name.text}` declares no variables",
            label="nothing to reason about",
            help='declare the things in the caption: var W = "woman"',
        )
    elif not spec.edges:
        report_empty_graph(
            ctx.report,
            spec.name.span,
            f"spec `{spec.name.text}` has variables but no edges",
            label="no causal structure",
            notes=["without edges no variable has descendants: a counterfactual can change "
                   "only the intervened words"],
            help="add the cause-effect edges, e.g. W -> A",
            severity=Severity.WARNING,
        )


# --- the graph rules, over any list of edges ---------------------------------------------------
#
# `cfspec lint` runs them on a spec's edges, `cfspec import` on an LLM's SCM and SCM_aug, with
# positions in the LLM's own text: one implementation of each rule, whoever the caller.


MAX_FEEDBACK_SIZE = 3  # the edge sets listed as ways out of a cycle are at most this large
MAX_FEEDBACK_TRIALS = 20_000  # combinations tried before giving up on listing them
MAX_FEEDBACK_LISTED = 6


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    span: Span
    shown: str  # as messages write it: `F -> P`

    @property
    def pair(self) -> tuple[str, str]:
        return self.source, self.target


def report_self_loops(report: Reporter, edges: Sequence[GraphEdge], where: str = "",
                      skip: Callable[[tuple[str, str]], bool] = lambda _: False,
                      source: SourceFile | None = None) -> None:
    """`source`: the .scm file the spans are in, to attach fixes (the importer's spans are in
    the LLM's text and get none)."""
    for e in edges:
        if e.source == e.target and not skip(e.pair):
            # Safe: a self-loop means nothing in an SCM, so removing it changes no meaning.
            fix = None if source is None else Fix(
                f"Remove `{e.shown}`", (delete_edit(source, e.span),))
            report("self-loop", e.span,
                   f"edge `{e.shown}`{where} goes from a variable to itself", label="self-loop",
                   help="remove it: a variable cannot cause itself in a structural causal model",
                   fix=fix)


def report_duplicate_edge(report: Reporter, edge: GraphEdge, first: GraphEdge, where: str = "",
                          help_extra: str = "", source: SourceFile | None = None) -> None:
    # Safe: the first listing keeps the edge, so the graph is the same without the repeat.
    fix = None if source is None else Fix("Remove the repeated edge",
                                          (delete_edit(source, edge.span),))
    report("duplicate-edge", edge.span, f"edge `{edge.shown}` is listed twice{where}",
           label="second", labels=[Label(first.span, "first listed here")],
           help="remove the repeat" + help_extra, fix=fix)


def report_cycles(report: Reporter, edges: Sequence[GraphEdge], where: str = "",
                  help_extra: str = "", skip: Callable[[frozenset[tuple[str, str]]], bool]
                  = lambda _: False, source: SourceFile | None = None
                  ) -> list[frozenset[tuple[str, str]]]:
    """One diagnostic per strongly connected component: the first cycle through it, each of
    its edges labelled, and the smallest sets of edges whose removal makes it acyclic (which
    edge is wrong is the user's call, so they are listed, never removed). Returns each
    component's edges; `skip` says which not to report again. With `source` (the .scm file
    the spans are in), the first of those sets is attached as an unsafe fix."""
    graph = nx.DiGraph()
    first: dict[tuple[str, str], GraphEdge] = {}
    for e in edges:
        if e.source != e.target:  # self-loops are reported on their own
            first.setdefault(e.pair, e)
            graph.add_edge(e.source, e.target)
    found = []
    for component in nx.strongly_connected_components(graph):
        if len(component) < 2:
            continue
        # A copy with the edges in the order they are written: a subgraph view iterates a set of
        # names, whose order changes with Python's hash seed, and so would the cycle shown
        # and the notes.
        sub = nx.DiGraph()
        sub.add_edges_from(sorted(((u, v) for u, v in graph.edges(component) if v in component),
                                  key=lambda p: first[p].span.start))
        inside = frozenset(sub.edges)
        found.append(inside)
        if skip(inside):
            continue
        start = min(component, key=lambda n: min(
            (first[n, v].span.start for v in sub.successors(n)), default=1 << 60))
        cycle = nx.find_cycle(sub, start)
        cyc_edges = [first[u, v] for u, v in cycle]
        names = [u for u, _ in cycle] + [cycle[0][0]]
        primary = min(cyc_edges, key=lambda e: e.span.start)
        n = len(cyc_edges)
        notes = ["a structural causal model must be acyclic: do() and the order of effects are "
                 "undefined on a cycle", *_others_in_component(component, names)]
        sets, complete = feedback_sets(list(sub.edges))
        for removal in sets:
            listed = " and ".join(f"`{first[p].shown}` (line {first[p].span.line})"
                                  for p in removal)
            notes.append(f"removing {listed} makes it acyclic")
        if not complete:
            notes.append("more ways to break it exist; only the smallest found are listed")
        fix = None
        if source is not None and sets:
            cut = [first[p] for p in sets[0]]
            fix = Fix("Remove " + " and ".join(f"`{e.shown}`" for e in cut)
                      + " to break the cycle",
                      tuple(delete_edit(source, e.span) for e in cut),
                      Applicability.UNSAFE)  # which edge is wrong is the author's call
        report("cycle", primary.span, f"cycle {' -> '.join(names)}{where}",
               label=f"edge {cyc_edges.index(primary) + 1} of {n} in the cycle",
               labels=[Label(e.span, f"edge {i + 1} of {n} in the cycle")
                       for i, e in enumerate(cyc_edges) if e is not primary],
               notes=notes,
               help="remove or reverse the edge that is not cause -> effect" + help_extra,
               fix=fix)
    return found


def feedback_sets(edges: Sequence[tuple[str, str]]) -> tuple[list[list[tuple[str, str]]], bool]:
    """The smallest sets of edges whose removal makes the graph acyclic (self-loops aside),
    up to MAX_FEEDBACK_SIZE edges each; and whether the search was complete."""
    graph = nx.DiGraph()
    graph.add_edges_from((s, t) for s, t in edges if s != t)
    cyclic = [c for c in nx.strongly_connected_components(graph) if len(c) > 1]
    if not cyclic:
        return [], True
    inside = [e for e in dict.fromkeys((s, t) for s, t in edges if s != t)
              if any(e[0] in c and e[1] in c for c in cyclic)]
    trials = 0
    for size in range(1, MAX_FEEDBACK_SIZE + 1):
        found: list[list[tuple[str, str]]] = []
        for combo in itertools.combinations(inside, size):
            trials += 1
            if trials > MAX_FEEDBACK_TRIALS:
                return found, False
            rest = nx.DiGraph(graph)
            rest.remove_edges_from(combo)
            if nx.is_directed_acyclic_graph(rest):
                found.append(list(combo))
                if len(found) >= MAX_FEEDBACK_LISTED:
                    return found, False
        if found:
            return found, True
    return [], False


# --- the checks on a spec ------------------------------------------------------------------------


def _edges(ctx: Context, declared_only: bool) -> list[GraphEdge]:
    variables = ctx.model.variables
    return [GraphEdge(e.source.text, e.target.text, e.span,
                      f"{e.source.text} {e.arrow} {e.target.text}")
            for e in ctx.spec.edges
            if not declared_only or (e.source.text in variables and e.target.text in variables)]


def check_self_loops(ctx: Context) -> None:
    report_self_loops(ctx.report, _edges(ctx, declared_only=False), source=ctx.bag.source)


def check_duplicate_edges(ctx: Context) -> None:
    seen: dict[tuple[str, str], GraphEdge] = {}
    for edge in _edges(ctx, declared_only=False):
        if edge.pair in seen:
            report_duplicate_edge(ctx.report, edge, seen[edge.pair], source=ctx.bag.source)
        else:
            seen[edge.pair] = edge


def check_cycles(ctx: Context) -> None:
    report_cycles(ctx.report, _edges(ctx, declared_only=True), source=ctx.bag.source)


def _others_in_component(component: set[str], cycle: list[str]) -> list[str]:
    others = sorted(component - set(cycle))
    if not others:
        return []
    return [f"{', '.join(others)} also lie on cycles through these variables"]
