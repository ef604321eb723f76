"""The surgery pass: SCM_aug against SCM. do() cuts only the edges into the intervened
variables; every other difference between the graphs (an edge reversed, dropped or added, a
node removed while the counterfactual prompt still shows it) is `unexplained-graph-change`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cfspec.diagnostics.records import Label
from cfspec.importers import graphdiff
from cfspec.importers.passes.context import Judging
from cfspec.importers.passes.graph import Graphs
from cfspec.importers.passes.intervention import Intervention

# A note repeated on every changed edge names at most this many variables: listing them all on
# each of thousands of edges would make the report grow with the square of the graph.
_NAMES_SHOWN = 8


def judge_surgery(j: Judging, g: Graphs, iv: Intervention) -> None:
    if g.aug is None or not g.edges:
        return
    edges, aug = g.edges, g.aug
    intervened = set(iv.values) | set(iv.graph_iv)
    diff = graphdiff.edge_diff([e.pair for e in edges], [e.pair for e in aug], g.nodes,
                               intervened)
    surgery = _surgery_note(intervened)  # once: the same note on every changed edge
    a = j.answer
    for i in diff.surgery:
        j.notes.append(f"do()-surgery: {a.aug_name} cuts `{edges[i].show()}` into the "
                       f"intervened `{edges[i].target}` (line {edges[i].span.line}).")
    handled = _removed(j, g, diff.removed, diff.added, surgery)
    _node_removed(j, g, diff.with_node, iv.values)
    _added(j, g, [i for i in diff.added if i not in handled], surgery)


def _removed(j: Judging, g: Graphs, removed: Sequence[int], added: Sequence[int],
             surgery: str) -> set[int]:
    """Factual edges SCM_aug lacks: reversed, or dropped. Returns the added edges that are
    reversals (reported here)."""
    a, edges, aug = j.answer, g.edges, g.aug
    assert aug is not None
    rename = g.nodes.replaced
    reversed_at: dict[tuple[str, str], int] = {}  # an added edge, by its reverse
    for i in added:
        reversed_at.setdefault((aug[i].target, aug[i].source), i)
    handled: set[int] = set()
    for i in removed:
        e = edges[i]
        mapped = (rename.get(e.source, e.source), rename.get(e.target, e.target))
        if mapped in reversed_at:
            k = reversed_at[mapped]
            handled.add(k)
            j.report("unexplained-graph-change", aug[k].span,
                     f"{a.aug_name} reverses `{e.show()}`", label="reversed",
                     labels=[Label(e.span, f"in {a.graph_name}")],
                     notes=["do() cuts the edges into the intervened variable and changes "
                            "no other edge"],
                     help="keep the edge's direction from the factual graph")
            continue
        j.report("unexplained-graph-change", e.span,
                 f"{a.aug_name} drops `{e.show()}`, which do()-surgery does not explain",
                 label=f"missing from {a.aug_name}",
                 notes=[surgery],
                 help=f"keep `{e.show()}` in {a.aug_name}, or intervene on "
                 f"`{e.target}` if it is what changed")
    return handled


def _node_removed(j: Judging, g: Graphs, with_node: Sequence[int],
                  values: Mapping[str, str | None]) -> None:
    """The first factual edge of a node SCM_aug removes while the prompt still shows it."""
    a = j.answer
    for i in with_node:
        e = g.edges[i]
        gone = e.source if e.source in g.nodes.removed else e.target
        if not (gone in values and values[gone] is None):
            j.report("unexplained-graph-change", e.span,
                     f"{a.aug_name} removes `{gone}`, but the counterfactual prompt still "
                     "shows its words", label=f"gone from {a.aug_name}",
                     help=f"keep `{gone}` in {a.aug_name}, or remove its words from the "
                     "counterfactual prompt")
            break


def _added(j: Judging, g: Graphs, added: Sequence[int], surgery: str) -> None:
    a, aug = j.answer, g.aug
    assert aug is not None
    back = {v: k for k, v in g.nodes.replaced.items()}
    for i in added:
        e = aug[i]
        new = [n for n in e.pair if n in g.nodes.added]
        factual = f"{back.get(e.source, e.source)} -> {back.get(e.target, e.target)}"
        shown = f"`{e.show()}`" if factual == e.show() or new \
            else f"`{e.show()}` (`{factual}` in {a.graph_name}'s names)"
        j.report(
            "unexplained-graph-change", e.span,
            f"{a.aug_name} adds {shown}, which is not in {a.graph_name}",
            label=f"not in {a.graph_name}",
            notes=[surgery] + (
                [f"`{new[0]}` takes no factual variable's place: a new variable belongs in "
                 f"{a.graph_name} as well"] if new else []),
            help=f"add it to {a.graph_name} too if it is a real cause, or drop it from "
            f"{a.aug_name}",
        )


def _surgery_note(intervened: set[str]) -> str:
    if not intervened:
        return "the counterfactual changes no variable, so its graph should equal the factual one"
    names = sorted(intervened)
    shown = ", ".join(names[:_NAMES_SHOWN])
    if len(names) > _NAMES_SHOWN:
        shown += f" and {len(names) - _NAMES_SHOWN} more"
    return ("do() cuts only the edges into the intervened variable"
            + ("s " if len(intervened) > 1 else " ") + shown + "; every other edge stays")
