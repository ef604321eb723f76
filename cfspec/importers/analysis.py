"""Judging one answer, whatever its shape: bind its variables to the prompt, check its graph,
work out the intervention from SCM vs SCM_aug and from the two prompts, and write the .scm.

Every diagnostic points into the input (the LLM's own text). The written .scm is then linted as
any spec would be; what only the linter finds is traced back to the input too, so the import
never reports less than `cfspec lint` would on the file it wrote.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence

import networkx as nx

from cfspec.checks.edits import report_prompt_length
from cfspec.checks.graph import (
    GraphEdge,
    report_cycles,
    report_duplicate_edge,
    report_empty_graph,
    report_self_loops,
)
from cfspec.checks.interventions import (
    report_caption_artefacts,
    report_no_op,
    report_non_minimal,
    report_too_many,
)
from cfspec.checks.names import report_not_in_prompt, report_undefined
from cfspec.checks.specs import report_missing_prompt, report_no_counterfactuals
from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Diagnostic, DiagnosticBag, Label
from cfspec.diagnostics.source import SourceFile, Span
from cfspec.importers import binding, changes, graphdiff, writer
from cfspec.importers.answer import Answer, Declared, Edge, ImportedItem, ImportOptions, Piece
from cfspec.lang.keywords import keywords
from cfspec.lang.model import independent, reachable, split_changes
from cfspec.lang.prompt import (
    article_for,
    normalize,
    parse_template,
    render,
    says_the_same,
    split_words,
)

KEYWORDS = keywords()


def cname(text: str, fallback: str = "X") -> str:
    """A .scm identifier for a name as the answer wrote it: ASCII letters, digits and `_`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9_]+", "_", ascii_text).strip("_") or fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    return name + "_" if name in KEYWORDS else name


class _Names:
    """Answer names -> unique .scm identifiers."""

    def __init__(self) -> None:
        self.by_name: dict[str, str] = {}
        self.used: set[str] = set()

    def __call__(self, name: str) -> str:
        if name not in self.by_name:
            base = cname(name)
            candidate, n = base, 2
            while candidate in self.used:
                candidate, n = f"{base}_{n}", n + 1
            self.by_name[name] = candidate
            self.used.add(candidate)
        return self.by_name[name]


def _graph_edge(e: Edge) -> GraphEdge:
    return GraphEdge(e.source, e.target, e.span, e.show())


def _touching(edges: Sequence[Edge]) -> dict[str, list[Edge]]:
    """Each variable's edges, in order: built once, so that per-variable lookups stay linear
    in the answer (an answer may hold thousands of edges)."""
    out: dict[str, list[Edge]] = {}
    for e in edges:
        out.setdefault(e.source, []).append(e)
        if e.target != e.source:
            out.setdefault(e.target, []).append(e)
    return out


def _descriptions(index: dict[str, list[Edge]], name: str) -> list[str]:
    return [e.description or "" for e in index.get(name, ())]


def _counted(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class _Judge:
    def __init__(self, answer: Answer, options: ImportOptions) -> None:
        self.answer = answer
        self.options = options
        self.source: SourceFile = answer.source
        self.bag = DiagnosticBag(answer.source)
        self.bag.items.extend(answer.diagnostics)
        self.fixes: list[str] = []
        self.notes: list[str] = list(answer.notes)  # for the .scm header
        # Words guessed for each unplaced variable: reported, then written (once each).
        self.guessed: dict[str, str] = {}
        start = answer.span
        here = Span(start.line, start.column, start.line, start.column, start.start, start.start)
        self.p0 = answer.prompt or (Piece(options.prompt, fallback=here)
                                    if options.prompt is not None else None)
        self.p1 = answer.counterfactual or (Piece(options.counterfactual_prompt, fallback=here)
                                            if options.counterfactual_prompt is not None else None)

    def report(self, name: str, span: Span, message: str, **kwargs: object) -> None:
        if name not in self.answer.silent:
            self.bag.report(name, span, message, **kwargs)  # type: ignore[arg-type]

    def reported(self, name: str) -> bool:
        return any(d.code.name == name for d in self.bag.items)

    # --- edges ---------------------------------------------------------------------------

    def repair(self, edges: list[Edge], graph: str) -> list[Edge]:
        """Arrow forms and exact duplicates: repaired with --fix, reported without."""
        out: list[Edge] = []
        first: dict[tuple[str, str], Edge] = {}
        for e in edges:
            if e.kind == "sloppy":
                if self.options.fix:
                    self.fixes.append(f"{graph}: wrote `{e.arrow}` as `->` in {e.show()} "
                                      f"(line {e.span.line})")
                else:
                    self.report("syntax-error", e.span, f"`{e.arrow}` is not an arrow",
                                label="meant `->`?",
                                help="write `->` (or `→`); `cfspec import --fix` rewrites it")
            seen = first.get(e.pair)
            if seen is not None and e.source != e.target:
                same = _words(seen.description) == _words(e.description) or not e.description
                if self.options.fix and same:
                    self.fixes.append(f"{graph}: removed the repeated edge {e.show()} "
                                      f"(line {e.span.line})")
                    continue
                report_duplicate_edge(self.report, _graph_edge(e), _graph_edge(seen),
                                      f" in {graph}",
                                      "; `--fix` removes exact repeats" if same else "")
            first.setdefault(e.pair, e)
            out.append(e)
        return out

    def resolve(self, edges: list[Edge], declared: list[Declared], report: bool) -> list[Edge]:
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
                    close = [d.name for d in declared
                             if d.name.casefold().startswith(name.casefold()[:1])]
                    if index is None:
                        index = _touching(edges)
                    guess = binding.guess_words(name, None, _descriptions(index, name))
                    what = guess if guess != name else "<what it is>"
                    report_undefined(
                        self.report, span, "an edge", name,
                        help=f"declare `{name}: {what}` in {self.answer.declared_in}, or use "
                        f"one of the declared names ({', '.join(d.name for d in declared)})"
                        if declared else f"declare `{name}` in {self.answer.declared_in}",
                        declared_in=self.answer.declared_in,
                        notes=[f"declared with the same initial: {', '.join(close)}"]
                        if close else [])
                ends.append(found or name)
            out.append(dataclasses.replace(e, source=ends[0], target=ends[1]))
        return out

    def graph_checks(self, edges: list[Edge], variables: set[str], graph: str,
                     skip: set[frozenset[tuple[str, str]]] | None = None,
                     rename: dict[str, str] | None = None) -> set[frozenset[tuple[str, str]]]:
        """Self-loops and cycles among declared variables, by the one implementation in
        `checks.graph`; returns the cycles found (each as its edges, in factual names: `rename`
        maps the counterfactual graph's names back) so that the counterfactual graph's copies
        of them are not reported twice."""
        back = rename or {}
        known = skip or set()

        def factual(pairs: frozenset[tuple[str, str]]) -> frozenset[tuple[str, str]]:
            return frozenset((back.get(u, u), back.get(v, v)) for u, v in pairs)

        inside = [_graph_edge(e) for e in edges
                  if e.source in variables and e.target in variables]
        where = f" in {graph}"
        found = {factual(frozenset({e.pair})) for e in inside if e.source == e.target}
        report_self_loops(self.report, inside, where,
                          skip=lambda pair: factual(frozenset({pair})) in known)
        cycles = report_cycles(self.report, inside, where,
                               help_extra="; `--fix` never breaks a cycle itself, the choice "
                               "is yours", skip=lambda pairs: factual(pairs) in known)
        return found | {factual(c) for c in cycles}

    # --- the whole judgement -------------------------------------------------------------

    def run(self) -> ImportedItem:  # noqa: C901
        a = self.answer
        edges = self.repair(a.edges, a.graph_name)
        aug = self.repair(a.aug, a.aug_name) if a.aug is not None else None

        if a.declared is not None:
            declared = list(a.declared)
            edges = self.resolve(edges, declared, report=True)
            if aug is not None:
                aug = self.resolve(aug, declared, report=False)
        else:
            declared = self.implicit(edges)
        names = [d.name for d in declared]
        variables = set(names)

        nodes = graphdiff.node_diff([e.pair for e in edges], [e.pair for e in aug]) \
            if aug is not None else graphdiff.NodeDiff({}, [], [])
        cycles = self.graph_checks(edges, variables, a.graph_name)
        if aug is not None:
            aug_vars = variables | set(graphdiff.nodes_of([e.pair for e in aug]))
            self.graph_checks(aug, aug_vars, a.aug_name, skip=cycles,
                              rename={v: k for k, v in nodes.replaced.items()})
        self.empty_graph(edges, declared)

        # Bind the variables to the factual prompt.
        p0, p1 = self.p0, self.p1
        slots: dict[str, tuple[int, int]] = {}
        if a.slots is not None:
            slots = dict(a.slots)
        elif p0 is not None:
            slots = binding.bind(p0.text, self.candidates(declared, edges, aug))
        if p0 is None:
            report_missing_prompt(
                self.report, _point(a.span), "the answer has no original prompt",
                "no prompt found", "add an `Original prompt: ...` line, or pass --prompt"
                if a.shape == "llm-text" else "add `original_prompt` to the answer")
        else:
            index = _touching(edges)
            # One label for every unplaced variable (thousands, in a large answer).
            prompt_label = [Label(p0.span(self.source), "the prompt")] \
                if p0.fallback is None else []
            for d in declared:
                if d.name not in slots:
                    self.unbound(d, prompt_label, index)

        # The intervention, from the graphs and from the prompts.
        graph_iv: dict[str, str | None] = {g: n for g, n in nodes.replaced.items()
                                          if g in variables}
        graph_iv.update({g: None for g in nodes.removed if g in variables})
        new_words: dict[str, str] = {}
        aug_index = _touching(aug or [])  # once: many replaced nodes each look up their edges
        plan: changes.Plan | None = None
        values: dict[str, str | None] = {}
        if p0 is not None and p1 is not None:
            if aug is not None and nodes.replaced:
                new_words = self.bind_new(p0.text, p1.text, nodes, aug)
            latent = {g: self.phrases(n, new_words, aug_index)
                      for g, n in graph_iv.items() if n is not None and g not in slots}
            plan = changes.plan(p0.text, p1.text, slots, latent, set(graph_iv))
            slots = plan.slots
            values = dict(plan.values)
            for g, n in graph_iv.items():
                if g in values:
                    continue
                if n is None:
                    if g in slots:
                        continue  # its words are still there: reported with its edges
                    values[g] = None
                    continue
                values[g] = new_words.get(n) or binding.guess_words(
                    n, None, _descriptions(aug_index, n))
                if g in slots or n not in new_words:
                    self.new_words_missing(g, n, aug_index, p1)
        elif p1 is None:
            report_no_counterfactuals(
                self.report, _point(a.span), "the answer has no counterfactual prompt",
                "nothing to compare the original with",
                "add a `Counterfactual prompt: ...` line, or pass --counterfactual-prompt"
                if a.shape == "llm-text" else "add `counterfactual_prompt` to the answer")

        # Which changes are interventions and which follow from them.
        g = nx.DiGraph()
        g.add_nodes_from(names)
        g.add_edges_from(e.pair for e in edges if e.source in variables and e.target in variables)
        order = self.order(values, plan, slots)
        do_targets, set_targets = split_changes(g, order)
        free = independent(g, do_targets)
        limit = self.options.config.max_interventions
        may_change = set(do_targets) | reachable(g, [n for n in do_targets if n in g])
        if p0 is not None and p1 is not None and plan is not None:
            if len(free) > limit:
                report_too_many(self.report, "the counterfactual", free,
                                [self.change_span(n, plan, p0, p1, nodes, aug_index)
                                 for n in free], limit)
            self.non_minimal(plan, p0, p1, may_change)
            if not self.options.fix:  # with --fix, finish() writes the original's way
                self.artefacts(p0, p1)
            if plan.same:
                report_no_op(self.report, p1.span(self.source),
                             "the counterfactual prompt has the same words as the original",
                             "same words", "change the words of the intervened variable",
                             labels=[Label(p0.span(self.source), "original")]
                             if p0.fallback is None else [])
        if aug is not None and edges:
            self.graph_changes(edges, aug, nodes, set(values) | set(graph_iv), values)
        for piece, what in ((p0, "the original prompt"), (p1, "the counterfactual prompt")):
            if piece is not None:
                self.length(piece, what)

        return self.finish(declared, edges, slots, values, do_targets, set_targets, plan,
                           graph_iv, new_words)

    # --- pieces of the judgement --------------------------------------------------------

    def implicit(self, edges: list[Edge]) -> list[Declared]:
        out: dict[str, Declared] = {}
        for e in edges:
            for name, span in ((e.source, e.source_span), (e.target, e.target_span)):
                out.setdefault(name, Declared(name, None, None, span))
        return list(out.values())

    def empty_graph(self, edges: list[Edge], declared: list[Declared]) -> None:
        a = self.answer
        where = a.graph_span or _point(a.span)
        if a.needs_graph and not edges:
            report_empty_graph(self.report, where, f"the answer's {a.graph_name} has no edges",
                               "no causal structure",
                               help="an LLM answer must state its causal graph: list its edges, "
                               "e.g. `W -> A: why`")
        elif not a.needs_graph:
            if edges:
                pass  # agreement edges the reader found (`coco_cf`): the spec has a graph
            elif declared:
                report_empty_graph(self.report, where,
                                   "a caption pair has no graph: imported as one intervention "
                                   "without causes", "no edges", severity=Severity.WARNING,
                                   notes=["without edges no variable has descendants: the "
                                          "counterfactual may change only the intervened words"],
                                   help="add the cause-effect edges to the written .scm by hand")
            else:
                report_empty_graph(self.report, where,
                                   "the two captions differ in no word, so there is no variable",
                                   "nothing to reason about")

    def candidates(self, declared: list[Declared], edges: list[Edge], aug: list[Edge] | None
                   ) -> list[binding.Candidate]:
        out = []
        index = _touching([*edges, *(aug or [])])
        for d in declared:
            c = binding.Candidate(d.name, d.label)
            if d.description:
                c.descriptions.append(d.description)
            for e in index.get(d.name, ()):
                if e.description:
                    c.descriptions.append(e.description)
                    if e.source == d.name:
                        c.leads.append(e.description)
            out.append(c)
        return out

    def bind_new(self, p0: str, p1: str, nodes: graphdiff.NodeDiff, aug: list[Edge]
                 ) -> dict[str, str]:
        """The counterfactual words of the nodes SCM_aug puts in place of others, looked for
        among the words the counterfactual prompt changes."""
        t0, t1 = binding.tokens(p0), binding.tokens(p1)
        changed = [True] * len(t1)
        ops = changes.opcodes(t0, t1)
        for tag, _, _, b0, b1 in ops:
            if tag == "equal":
                for j in range(b0, b1):
                    changed[j] = False
        cands = []
        index = _touching(aug)
        for new in nodes.replaced.values():
            c = binding.Candidate(new)
            for e in index.get(new, ()):
                if e.description:
                    c.descriptions.append(e.description)
                    if e.source == new:
                        c.leads.append(e.description)
            cands.append(c)
        found = binding.bind(p1, cands, changed)
        return {n: p1[t1[i].start:t1[j - 1].end] for n, (i, j) in found.items()}

    def phrases(self, node: str, new_words: dict[str, str], aug_index: dict[str, list[Edge]]
                ) -> list[list[str]]:
        options = [new_words.get(node), binding.guess_words(
            node, None, _descriptions(aug_index, node))]
        return [binding.keys_of(o) for o in options if o]

    def guess(self, d: Declared, index: dict[str, list[Edge]]) -> str:
        if d.name not in self.guessed:
            self.guessed[d.name] = binding.guess_words(d.name, d.label,
                                                       _descriptions(index, d.name))
        return self.guessed[d.name]

    def unbound(self, d: Declared, prompt_label: list[Label], index: dict[str, list[Edge]]
                ) -> None:
        words = self.guess(d, index)
        shown = f"`{d.name}`" if words == d.name else f"`{d.name}` ({words})"
        report_not_in_prompt(
            self.report, d.span, f"variable {shown} is not found in the prompt",
            "if the caption does name it, give its words as they appear there",
            label="not in the prompt",
            labels=prompt_label,
            notes=["written as `latent`: a confounder or a cause the caption does not show; an "
                   "intervention on it cannot change the caption by substitution"])

    def new_words_missing(self, g: str, n: str, aug_index: dict[str, list[Edge]], p1: Piece
                          ) -> None:
        where = next((e.source_span if e.source == n else e.target_span
                      for e in aug_index.get(n, ())), _point(self.answer.span))
        report_not_in_prompt(
            self.report, where,
            f"`{n}`, which SCM_aug puts in place of `{g}`, is not found among the words the "
            "counterfactual prompt changes",
            "make the counterfactual prompt show the new value, or the graph agree with the "
            "prompt", label="not in the counterfactual prompt",
            labels=[Label(p1.span(self.source), "the counterfactual prompt")]
            if p1.fallback is None else [])

    def order(self, values: dict[str, str | None], plan: changes.Plan | None,
              slots: dict[str, tuple[int, int]]) -> list[str]:
        """Changed variables in the order the prompt shows them."""
        def key(n: str) -> tuple[int, str]:
            if n in slots:
                return slots[n][0], n
            if plan is not None and n in plan.owned:
                return plan.owned[n][0], n
            return 1 << 30, n
        return sorted(values, key=key)

    def change_span(self, n: str, plan: changes.Plan, p0: Piece, p1: Piece,
                    nodes: graphdiff.NodeDiff, aug_index: dict[str, list[Edge]]) -> Span:
        if n in plan.owned:
            lo, hi = plan.owned[n]
            return p1.span(self.source, plan.t1[lo].start, plan.t1[hi - 1].end)
        if n in plan.slots:
            i, j = plan.slots[n]
            return p0.span(self.source, plan.t0[i].start, plan.t0[j - 1].end)
        new = nodes.replaced.get(n)
        for e in aug_index.get(new, ()) if new is not None else ():
            return e.source_span if e.source == new else e.target_span
        return _point(self.answer.span)

    def non_minimal(self, plan: changes.Plan, p0: Piece, p1: Piece, may_change: set[str]
                    ) -> None:
        found = []
        for side, k in plan.loose:
            t, piece = (plan.t1[k], p1) if side else (plan.t0[k], p0)
            found.append((piece.span(self.source, t.start, t.end), t.text, side))
        report_non_minimal(self.report, found, may_change, p1.span(self.source))

    def artefacts(self, p0: Piece, p1: Piece) -> None:
        report_caption_artefacts(
            self.report, p0.text, p1.text,
            lambda start, end: p1.span(self.source, start, end),
            note="not a change of content, so not an intervention; the .scm keeps the caption "
            "as written",
            help="`cfspec import --fix` writes the counterfactual the way the original is "
            "written")

    def graph_changes(self, edges: list[Edge], aug: list[Edge], nodes: graphdiff.NodeDiff,
                      intervened: set[str], values: dict[str, str | None]) -> None:
        a = self.answer
        diff = graphdiff.edge_diff([e.pair for e in edges], [e.pair for e in aug], nodes,
                                   intervened)
        rename = nodes.replaced
        back = {v: k for k, v in rename.items()}
        surgery = _surgery_note(intervened)  # once: the same note on every changed edge
        for i in diff.surgery:
            self.notes.append(f"do()-surgery: {a.aug_name} cuts `{edges[i].show()}` into the "
                              f"intervened `{edges[i].target}` (line {edges[i].span.line}).")
        reversed_at: dict[tuple[str, str], int] = {}  # an added edge, by its reverse
        for i in diff.added:
            reversed_at.setdefault((aug[i].target, aug[i].source), i)
        handled: set[int] = set()
        for i in diff.removed:
            e = edges[i]
            mapped = (rename.get(e.source, e.source), rename.get(e.target, e.target))
            if mapped in reversed_at:
                j = reversed_at[mapped]
                handled.add(j)
                self.report("unexplained-graph-change", aug[j].span,
                            f"{a.aug_name} reverses `{e.show()}`", label="reversed",
                            labels=[Label(e.span, f"in {a.graph_name}")],
                            notes=["do() cuts the edges into the intervened variable and changes "
                                   "no other edge"],
                            help="keep the edge's direction from the factual graph")
                continue
            self.report("unexplained-graph-change", e.span,
                        f"{a.aug_name} drops `{e.show()}`, which do()-surgery does not explain",
                        label=f"missing from {a.aug_name}",
                        notes=[surgery],
                        help=f"keep `{e.show()}` in {a.aug_name}, or intervene on "
                        f"`{e.target}` if it is what changed")
        for i in diff.with_node:
            e = edges[i]
            gone = e.source if e.source in nodes.removed else e.target
            if not (gone in values and values[gone] is None):
                self.report("unexplained-graph-change", e.span,
                            f"{a.aug_name} removes `{gone}`, but the counterfactual prompt still "
                            "shows its words", label=f"gone from {a.aug_name}",
                            help=f"keep `{gone}` in {a.aug_name}, or remove its words from the "
                            "counterfactual prompt")
                break
        for i in diff.added:
            if i in handled:
                continue
            e = aug[i]
            new = [n for n in e.pair if n in nodes.added]
            factual = f"{back.get(e.source, e.source)} -> {back.get(e.target, e.target)}"
            shown = f"`{e.show()}`" if factual == e.show() or new \
                else f"`{e.show()}` (`{factual}` in {a.graph_name}'s names)"
            self.report(
                "unexplained-graph-change", e.span,
                f"{a.aug_name} adds {shown}, which is not in {a.graph_name}",
                label=f"not in {a.graph_name}",
                notes=[surgery] + (
                    [f"`{new[0]}` takes no factual variable's place: a new variable belongs in "
                     f"{a.graph_name} as well"] if new else []),
                help=f"add it to {a.graph_name} too if it is a real cause, or drop it from "
                f"{a.aug_name}",
            )

    def length(self, piece: Piece, what: str) -> None:
        report_prompt_length(self.report, piece.span(self.source), piece.text, what,
                             self.options.tokenizer)

    # --- the .scm ------------------------------------------------------------------------

    def finish(self, declared: list[Declared], edges: list[Edge],
               slots: dict[str, tuple[int, int]], values: dict[str, str | None],
               do_targets: list[str], set_targets: list[str], plan: changes.Plan | None,
               graph_iv: dict[str, str | None], new_words: dict[str, str]) -> ImportedItem:
        a, opts = self.answer, self.options
        p0, p1 = self.p0, self.p1
        names = _Names()
        for d in declared:
            names(d.name)
        fix_ws: Callable[[str], str] = _collapse if opts.fix else (lambda s: s)
        t0 = binding.tokens(p0.text) if p0 is not None else []
        template = None
        words: dict[str, str | None] = {}
        values = dict(values)
        if p0 is not None:
            pieces, pos = [], 0
            for n, (i, j) in sorted(slots.items(), key=lambda kv: kv[1]):
                if i == j:  # not in the factual caption: placed where its words go
                    cut, slot = changes.absent_slot(t0, i, "{{ " + names(n) + " }}")
                    pieces += [p0.text[pos:cut], slot]
                    pos = cut
                    words[n] = None
                    continue
                start, end = t0[i].start, t0[j - 1].end
                filters = _article_filter(p0.text[start:end], values, n)
                if filters:
                    start = t0[i + 1].start
                pieces += [p0.text[pos:t0[i].start], "{{ " + names(n) + filters + " }}"]
                words[n] = fix_ws(p0.text[start:end])
                pos = end
            pieces.append(p0.text[pos:])
            template = fix_ws("".join(pieces))
        draft = writer.Draft(
            name=cname(a.item_id, "pair" if a.shape == "coco-cf" else "answer"),
            item_id=a.item_id, origin=_point(a.span), id_origin=_point(a.span),
            prompt_origin=p0.span(self.source) if p0 is not None else _point(a.span),
            template=template,
        )
        index = _touching(edges)
        for d in declared:
            bound = d.name in words
            said = words[d.name] if bound else self.guess(d, index)
            description = d.description
            if d.label and d.label.strip().lower() != (said or "").lower():
                description = f"{d.label}: {description}" if description else d.label
            draft.variables.append(writer.DraftVar(
                names(d.name), said, latent=not bound and p0 is not None,
                description=description, origin=d.span))
        for e in edges:
            draft.edges.append(writer.DraftEdge(names(e.source), names(e.target),
                                                e.description, e.span))
        item = ImportedItem(a.source, a.shape, a.item_id, a.span, None, [])
        if p0 is not None and p1 is not None and plan is not None:
            fixed_values = {n: (fix_ws(v) if v is not None else None) for n, v in values.items()}
            cf = writer.DraftCounterfactual(
                self.cf_name(do_targets, values, graph_iv, new_words, words),
                p1.span(self.source))
            cf.do = [(names(n), fixed_values[n]) for n in do_targets]
            cf.do_comment = a.do_comment
            cf.sets = [(names(n), fixed_values[n]) for n in set_targets]
            rendered = None
            if template is not None:
                frame, errors = parse_template(template)
                if not errors:
                    filled: dict[str, str | None] = {names(n): w for n, w in words.items()}
                    filled.update({names(n): v for n, v in fixed_values.items()})
                    rendered = render(frame, filled).text
            wanted = fix_ws(p1.text)
            if rendered is None or rendered.strip() != wanted.strip():
                if opts.fix and rendered is not None and says_the_same(rendered, wanted):
                    self.fixes.append("wrote the counterfactual caption the way the original "
                                      f"is written: {rendered.strip()!r}")
                else:
                    cf.prompt = wanted
            cf.edit = _edit_type(plan, cf.prompt is None)
            draft.counterfactuals.append(cf)
            item.interventions = {n: values[n] for n in do_targets}
            item.sets = {n: values[n] for n in set_targets}
            item.counterfactual = cf.name
            item.written = {cf.name: dict(item.interventions)}
            item.edit = cf.edit
        reported = {d.code.name for d in self.bag.items} | a.silent
        if p1 is not None:  # without an original prompt there is no counterfactual to write
            reported.add("no-counterfactuals")
        # A variable in an edge with an undeclared one is in no edge of the written file;
        # undefined-variable already says why.
        in_edges = {d.span for d in declared if d.name in index}
        return self.write_spec(draft, item, lambda d: d.code.name not in reported and not (
            d.code.name == "unused-variable" and d.span in in_edges))

    def write_spec(self, draft: writer.Draft, item: ImportedItem,
                   is_new: Callable[[Diagnostic], bool]) -> ImportedItem:
        """Render the draft, lint what was written, and add lint's findings that `is_new`
        says this import did not already report (the header lists them too)."""
        a, opts = self.answer, self.options
        own = sorted(self.bag.items, key=Diagnostic.sort_key)
        draft.header = self.header(own)
        text = writer.render(draft)
        display = f"{a.item_id}.scm"
        lint_own, mapped = writer.relint(draft, text, display, self.source, opts.config,
                                         opts.tokenizer)
        extra = [d for d in mapped if is_new(d)]
        if extra:
            draft.header = self.header(sorted([*own, *extra], key=Diagnostic.sort_key))
            longer = writer.render(draft)
            # Only the header grew: lint's findings move down with the body (linting again
            # would parse the whole spec a second time).
            lint_own = writer.moved(lint_own, text, longer, display)
            text = longer
        item.scm = text
        item.diagnostics = sorted([*own, *extra], key=Diagnostic.sort_key)
        item.relint = lint_own
        item.fixes = list(self.fixes)
        return item

    def cf_name(self, do_targets: list[str], values: dict[str, str | None],
                graph_iv: dict[str, str | None], new_words: dict[str, str],
                words: dict[str, str | None]) -> str:
        if not do_targets:
            return "unchanged"
        n = do_targets[0]
        new = graph_iv.get(n)
        chosen = new_words.get(new) if new else None
        value = values.get(n)
        if chosen is None and value is not None:
            chosen = value
        if chosen is None:
            old = words.get(n) or n
            return cname("no_" + _head_word(old), "no")
        # Named after what is new: `small` for `dog` -> `small dog`, `man` for `woman` -> `man`.
        before = set(binding.keys_of(words.get(n) or ""))
        fresh = " ".join(w for w, _, _ in split_words(chosen)
                         if binding.keys_of(w) and binding.keys_of(w)[0] not in before)
        return cname(_head_word(fresh or chosen).lower(), "cf")

    def header(self, diagnostics: Sequence[Diagnostic]) -> list[str]:
        a = self.answer
        where = f"{self.source.name}:{a.span.line}:{a.span.column}"
        out = _wrap(f"Imported by `cfspec import` from {where} ({a.shape}); positions below "
                    "are in that file.", "")
        for note in self.notes:
            out += _wrap(note, "")
        for f in self.fixes:
            out += _wrap(f"fixed: {f}", "")
        errors = sum(1 for d in diagnostics if d.level is Severity.ERROR)
        warnings = sum(1 for d in diagnostics if d.level is Severity.WARNING)
        if errors or warnings:
            out.append(f"{_counted(errors, 'error')} and {_counted(warnings, 'warning')} "
                       "in the answer; fix them here, then run `cfspec lint` on this file:")
        shown: Counter[str] = Counter()
        for d in diagnostics:
            shown[d.code.name] += 1
            if shown[d.code.name] > HEADER_EACH:
                continue
            out += _wrap(f"{d.level.value}[{d.code.name}] at {d.span.line}:{d.span.column}: "
                         f"{d.message}", "")
            for n in d.notes:
                out += _wrap(f"note: {n}", "  ")
            if d.help:
                out += _wrap(f"help: {d.help}", "  ")
        for name, count in shown.items():
            if count > HEADER_EACH:
                out += _wrap(f"... and {count - HEADER_EACH} more `{name}`: `cfspec import "
                             f"--format concise` lists every one", "")
        return out


# Diagnostics of one code written in full in a spec's header; the rest are counted (a 16,000-edge
# answer has 16,000 unplaced variables: their header was most of the file and of import's time).
HEADER_EACH = 5
_ARTICLE = re.compile(r"(a|an|A|An|AN) (\S.*)$", re.S)


def _article_filter(words: str, values: dict[str, str | None], name: str) -> str:
    """`{{ A | a }}` for a variable whose words begin with the article that agrees with them
    (`An apple` -> `A banana`): the template then writes the article, and the variable's words
    and new words are the nouns alone. Empty when that would not render the prompts exactly;
    the new value in `values` loses its article when the filter is used."""
    m = _ARTICLE.match(words)
    if not m or article_for(m.group(2)) != m.group(1).lower():
        return ""
    new = values.get(name)
    stripped: str | None = None
    if new is not None:
        mv = _ARTICLE.match(new)
        if not mv or article_for(mv.group(2)) != mv.group(1).lower() \
                or mv.group(1)[0].isupper() != m.group(1)[0].isupper():
            return ""
        stripped = mv.group(2)
    if name in values:
        values[name] = stripped
    return " | a | capitalize" if m.group(1)[0].isupper() else " | a"


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, width=96, initial_indent=indent,
                         subsequent_indent=indent + "    ", break_on_hyphens=False) or [indent]


def _point(span: Span) -> Span:
    return Span(span.line, span.column, span.line, span.column, span.start, span.start)


def _words(text: str | None) -> str:
    return " ".join((text or "").split()).lower()


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _head_word(text: str) -> str:
    content = [w for w, _, _ in split_words(text)
               if any(c.isalnum() for c in w) and normalize(w) not in binding.STOPWORDS]
    return content[-1] if content else (text.split() or ["x"])[-1]


# A note repeated on every changed edge names at most this many variables: listing them all on
# each of thousands of edges would make the report grow with the square of the graph.
_NAMES_SHOWN = 8


def _surgery_note(intervened: set[str]) -> str:
    if not intervened:
        return "the counterfactual changes no variable, so its graph should equal the factual one"
    names = sorted(intervened)
    shown = ", ".join(names[:_NAMES_SHOWN])
    if len(names) > _NAMES_SHOWN:
        shown += f" and {len(names) - _NAMES_SHOWN} more"
    return ("do() cuts only the edges into the intervened variable"
            + ("s " if len(intervened) > 1 else " ") + shown + "; every other edge stays")


def _edit_type(plan: changes.Plan, rendered: bool) -> str:
    """`replace` when every changed run keeps its word count (Prompt-to-Prompt aligns them one
    to one), `refine` for insertions and deletions."""
    for op in changes.opcodes(plan.t0, plan.t1):
        tag, a0, a1, b0, b1 = op
        # Artefacts are gone when the counterfactual is rendered from the template; a literal
        # counterfactual prompt keeps them, and P2P must align them too.
        if tag != "equal" and a1 - a0 != b1 - b0 \
                and not (rendered and changes.is_artefact(op, plan.t0, plan.t1)):
            return "refine"
    return "replace"


def analyze(answer: Answer, options: ImportOptions) -> ImportedItem:
    """Judge one answer and write its .scm text (not the file)."""
    if answer.outputs is not None:
        from cfspec.importers.sets import judge_set

        return judge_set(answer, options)
    return _Judge(answer, options).run()
