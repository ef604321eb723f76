"""The minimality pass: which changed variables are interventions (`do`) and which follow from
them (`set`), and whether the counterfactual changes only what they explain: too many
independent interventions, changed words no variable owns, differences in writing only, and a
counterfactual with the original's words."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from cfspec.checks.interventions import report_no_op, report_non_minimal, report_too_many
from cfspec.diagnostics.records import Label
from cfspec.diagnostics.source import Span
from cfspec.importers import changes
from cfspec.importers.answer import Piece
from cfspec.importers.passes.context import Judging, point, report_artefacts
from cfspec.importers.passes.graph import Graphs
from cfspec.importers.passes.intervention import Intervention
from cfspec.lang.model import independent, reachable, split_changes


@dataclass(frozen=True)
class Minimality:
    """The changed variables in the order the prompt shows them, split into interventions
    and their consequences."""

    do_targets: tuple[str, ...]
    set_targets: tuple[str, ...]


def judge_minimality(j: Judging, g: Graphs, iv: Intervention) -> Minimality:
    variables = set(g.names)
    graph = nx.DiGraph()
    graph.add_nodes_from(g.names)
    graph.add_edges_from(e.pair for e in g.edges
                         if e.source in variables and e.target in variables)
    do_targets, set_targets = split_changes(graph, _order(iv))
    p0, p1, plan = j.p0, j.p1, iv.plan
    if p0 is not None and p1 is not None and plan is not None:
        free = independent(graph, do_targets)
        limit = j.options.config.max_interventions
        if len(free) > limit:
            report_too_many(j.report, "the counterfactual", free,
                            [_change_span(j, n, plan, p0, p1, g) for n in free], limit)
        may_change = set(do_targets) | reachable(graph, [n for n in do_targets if n in graph])
        _non_minimal(j, plan, p0, p1, may_change)
        if not j.options.fix:  # with --fix, the written spec has the original's writing
            report_artefacts(j, p0, p1)
        if plan.same:
            report_no_op(j.report, p1.span(j.source),
                         "the counterfactual prompt has the same words as the original",
                         "same words", "change the words of the intervened variable",
                         labels=[Label(p0.span(j.source), "original")]
                         if p0.fallback is None else [])
    return Minimality(tuple(do_targets), tuple(set_targets))


def _order(iv: Intervention) -> list[str]:
    """Changed variables in the order the prompt shows them."""
    slots, plan = iv.slots, iv.plan

    def key(n: str) -> tuple[int, str]:
        if n in slots:
            return slots[n][0], n
        if plan is not None and n in plan.owned:
            return plan.owned[n][0], n
        return 1 << 30, n
    return sorted(iv.values, key=key)


def _change_span(j: Judging, n: str, plan: changes.Plan, p0: Piece, p1: Piece, g: Graphs
                 ) -> Span:
    if n in plan.owned:
        lo, hi = plan.owned[n]
        return p1.span(j.source, plan.t1[lo].start, plan.t1[hi - 1].end)
    if n in plan.slots:
        i, k = plan.slots[n]
        return p0.span(j.source, plan.t0[i].start, plan.t0[k - 1].end)
    new = g.nodes.replaced.get(n)
    for e in g.aug_index.get(new, ()) if new is not None else ():
        return e.source_span if e.source == new else e.target_span
    return point(j.answer.span)


def _non_minimal(j: Judging, plan: changes.Plan, p0: Piece, p1: Piece, may_change: set[str]
                 ) -> None:
    found = []
    for side, k in plan.loose:
        t, piece = (plan.t1[k], p1) if side else (plan.t0[k], p0)
        found.append((piece.span(j.source, t.start, t.end), t.text, side))
    report_non_minimal(j.report, found, may_change, p1.span(j.source))

