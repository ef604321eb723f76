"""SCM2xx: the causal graph must be a DAG with something in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

from cfspec import ast
from cfspec.codes import Severity
from cfspec.diagnostics import Label

if TYPE_CHECKING:
    from cfspec.checks import Context


def check_empty(ctx: Context) -> None:
    spec = ctx.spec
    if not ctx.model.variables:
        ctx.report(
            "empty-graph",
            spec.name.span,
            f"spec `{spec.name.text}` declares no variables",
            label="nothing to reason about",
            help='declare the things in the caption: var W = "woman"',
        )
    elif not spec.edges:
        ctx.report(
            "empty-graph",
            spec.name.span,
            f"spec `{spec.name.text}` has variables but no edges",
            label="no causal structure",
            notes=["without edges no variable has descendants: a counterfactual can change "
                   "only the intervened words"],
            help="add the cause-effect edges, e.g. W -> A",
            severity=Severity.WARNING,
        )


def check_self_loops(ctx: Context) -> None:
    for edge in ctx.spec.edges:
        if edge.source.text == edge.target.text:
            ctx.report(
                "self-loop",
                edge.span,
                f"edge `{edge.source.text} {edge.arrow} {edge.target.text}` goes from a variable "
                "to itself",
                label="self-loop",
                help="remove it: a variable cannot cause itself in a structural causal model",
            )


def check_duplicate_edges(ctx: Context) -> None:
    seen: dict[tuple[str, str], ast.Edge] = {}
    for edge in ctx.spec.edges:
        key = (edge.source.text, edge.target.text)
        if key in seen:
            ctx.report(
                "duplicate-edge",
                edge.span,
                f"edge `{key[0]} -> {key[1]}` is listed twice",
                label="second",
                labels=[Label(seen[key].span, "first listed here")],
                help="remove the repeat",
            )
        else:
            seen[key] = edge


def check_cycles(ctx: Context) -> None:
    graph = ctx.model.graph
    for component in nx.strongly_connected_components(graph):
        if len(component) < 2:
            continue  # single nodes: self-loops are reported on their own
        # Without self-loops, which self-loop reports: find_cycle could return one as the cycle.
        sub = nx.DiGraph(graph.subgraph(component))
        sub.remove_edges_from(list(nx.selfloop_edges(sub)))
        start = min(component, key=lambda n: _first_edge_offset(sub, n))
        cycle = nx.find_cycle(sub, start)
        edges: list[ast.Edge] = [graph.edges[u, v]["node"] for u, v in cycle]
        names = [u for u, _ in cycle] + [cycle[0][0]]
        path = " -> ".join(names)
        first = min(edges, key=lambda e: e.span.start)
        ctx.report(
            "cycle",
            first.span,
            f"cycle {path}",
            label=f"edge {edges.index(first) + 1} of {len(edges)} in the cycle",
            labels=[
                Label(e.span, f"edge {i + 1} of {len(edges)} in the cycle")
                for i, e in enumerate(edges)
                if e is not first
            ],
            notes=[
                "a structural causal model must be acyclic: do() and the order of effects are "
                "undefined on a cycle",
                *_others_in_component(component, names),
            ],
            help="remove or reverse one of these edges; keep the direction of cause to effect",
        )


def _first_edge_offset(sub: nx.DiGraph, node: str) -> int:
    return min((sub.edges[node, v]["node"].span.start for v in sub.successors(node)),
               default=1 << 60)


def _others_in_component(component: set[str], cycle: list[str]) -> list[str]:
    others = sorted(component - set(cycle))
    if not others:
        return []
    return [f"{', '.join(others)} also lie on cycles through these variables"]
