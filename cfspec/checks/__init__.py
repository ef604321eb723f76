"""The checks. Each module holds one family; each check is a plain function that reads a
`Context` and reports into its bag. Adding a check is one function, one line in CHECKS, one
fixture in specs/invalid/ and an explanation in cfspec/diagnostics/explain/."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from cfspec.diagnostics.records import DiagnosticBag
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
               member: ast.Counterfactual | None = None, **kwargs: object) -> None:
        """Report a diagnostic. `member`: the counterfactual it is about, when a check runs
        per counterfactual; for a set's members, a repeat at the same place is folded in."""
        if member is None or member.origin is None:
            self.bag.report(name, span, message, **kwargs)  # type: ignore[arg-type]
            return
        key = (name, span.start, span.end, message.replace(member.name.text, "\0"))
        if key not in self._shared:
            diagnostic = self.bag.report(name, span, message, **kwargs)  # type: ignore[arg-type]
            self._shared[key] = (len(self.bag.items) - 1, diagnostic.notes, [member.name.text])
            return
        index, notes, members = self._shared[key]
        members.append(member.name.text)
        shown = ", ".join(f"`{m}`" for m in members[:4]) + (", ..." if len(members) > 4 else "")
        more = (f"the same holds for {len(members)} members of set "
                f"`{member.origin.name.text}`: {shown}")
        self.bag.items[index] = replace(self.bag.items[index], notes=(*notes, more))

    def reporter(self, cf: ast.Counterfactual) -> Callable[..., None]:
        """`report` for the diagnostics about one counterfactual, for the shared `report_*`
        helpers: a set's members fold into one diagnostic per place."""
        return functools.partial(self.report, member=cf)

    def word_span(self, text: ast.Text, word: Word, literal: bool) -> Span:
        """The span of a prompt word: exact inside a literal prompt, else the whole string."""
        if literal:
            return text.sub_span(word.start, word.end)
        return text.span


# Suggestions compare a name with every candidate; past this many candidates a spec is
# machine-written and a hint is worth less than linear time.
_MAX_SUGGESTION_CANDIDATES = 200


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    pool = list(candidates)
    if len(pool) > _MAX_SUGGESTION_CANDIDATES:
        return None
    close = closest_name(name, pool)
    return f"did you mean `{close}`?" if close else None


def closest_name(name: str, pool: list[str]) -> str | None:
    """The candidate `name` is most likely a misspelling of: the same name in another case
    (`h` for `H`), else the closest by difflib's ratio."""
    same = [c for c in pool if c.lower() == name.lower() and c != name]
    if same:
        return same[0]
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return close[0] if close else None


Check = Callable[[Context], None]

from cfspec.checks import edits, graph, interventions, names, sets, specs  # noqa: E402

CHECKS: tuple[Check, ...] = (
    specs.check_id,
    specs.check_prompt_present,
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
