"""The checks. Each module holds one family; each check is a plain function that reads a
`Context` and reports into its bag. Adding a check is one function, one line in CHECKS, one
fixture in specs/invalid/ and an explanation in cfspec/diagnostics/explain/."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Diagnostic, DiagnosticBag, Fix, Label, Reporter
from cfspec.diagnostics.source import Span
from cfspec.lang import ast
from cfspec.lang.config import Config
from cfspec.lang.model import SpecModel
from cfspec.lang.prompt import Word
from cfspec.lang.tokens import ClipTokenizer


@dataclass
class Context:
    spec: ast.Spec
    model: SpecModel
    bag: DiagnosticBag
    config: Config
    tokenizer: ClipTokenizer | None = None
    # Set members share their set's text: the same finding at the same place is one
    # diagnostic, which lists the members it holds for. (code, start, end, the message with
    # the member's name blanked) -> the diagnostic's index in the bag, its notes as reported,
    # and the members it was reported for. The message is part of the key: members whose
    # findings differ (what they change, their token counts) are reported apart; the notes
    # only illustrate (a member's prompt) and are the first member's.
    _shared: dict[tuple[str, int, int, str], tuple[int, tuple[str, ...], list[str]]] = \
        field(default_factory=dict)

    def report(self, name: str, span: Span, message: str, *,
               member: ast.Counterfactual | None = None, label: str = "",
               labels: Sequence[Label] = (), notes: Sequence[str] = (),
               help: str | None = None, severity: Severity | None = None,
               fix: Fix | None = None) -> None:
        """Report a diagnostic. `member`: the counterfactual it is about, when a check runs
        per counterfactual; for a set's members, a repeat at the same place is folded in (the
        first member's fix stands for all: they share the set's text)."""
        def add() -> Diagnostic:
            return self.bag.report(name, span, message, label=label, labels=labels,
                                   notes=notes, help=help, severity=severity, fix=fix)

        if member is None or member.origin is None:
            add()
            return
        key = (name, span.start, span.end, message.replace(member.name.text, "\0"))
        if key not in self._shared:
            diagnostic = add()
            self._shared[key] = (len(self.bag.items) - 1, diagnostic.notes, [member.name.text])
            return
        index, kept, members = self._shared[key]
        members.append(member.name.text)
        shown = ", ".join(f"`{m}`" for m in members[:4]) + (", ..." if len(members) > 4 else "")
        more = (f"the same holds for {len(members)} members of set "
                f"`{member.origin.name.text}`: {shown}")
        self.bag.items[index] = replace(self.bag.items[index], notes=(*kept, more))

    def reporter(self, cf: ast.Counterfactual) -> Reporter:
        """`report` for the diagnostics about one counterfactual, for the shared `report_*`
        helpers: a set's members fold into one diagnostic per place."""
        return functools.partial(self.report, member=cf)

    def word_span(self, text: ast.Text, word: Word, literal: bool) -> Span:
        """The span of a prompt word: exact inside a literal prompt, else the whole string."""
        if literal:
            return text.sub_span(word.start, word.end)
        return text.span


Check = Callable[[Context], None]

from cfspec.checks import edits, graph, interventions, names, questions, sets, specs  # noqa: E402

CHECKS: tuple[Check, ...] = (
    specs.check_id,
    specs.check_prompt_present,
    specs.check_image,
    specs.check_duplicate_settings,
    specs.check_has_counterfactuals,
    sets.check_lists,
    sets.check_expansion,
    names.check_duplicate_variables,
    names.check_undefined_variables,
    names.check_duplicate_counterfactuals,
    names.check_unused_variables,
    names.check_spans_in_prompt,
    names.check_template,
    questions.check_own_questions,
    graph.check_empty,
    graph.check_self_loops,
    graph.check_duplicate_edges,
    graph.check_cycles,
    interventions.check_targets,
    interventions.check_conflicting_assignments,
    interventions.check_unchanged_values,
    interventions.check_count,
    interventions.check_sets_downstream,
    interventions.check_no_op,
    interventions.check_minimal_change,
    interventions.check_caption_artefacts,
    interventions.check_agreement,
    edits.check_settings,
    edits.check_edit_words,
    edits.check_replace_length,
    edits.check_prompt_length,
    edits.check_articles,
    edits.check_dangling_determiners,
)

FileCheck = Callable[[ast.Module, DiagnosticBag], None]
FILE_CHECKS: tuple[FileCheck, ...] = (specs.check_duplicate_specs,)
