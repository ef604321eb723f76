"""SCM1xx: declarations, references and how variables bind to the prompt; SCM501 templates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cfspec.checks.suggest import (
    closest_name,
    declare_fix,
    did_you_mean,
    rename_fix,
    suggestion,
)
from cfspec.diagnostics.records import Fix, Label, Reporter
from cfspec.diagnostics.source import Span
from cfspec.lang import ast
from cfspec.lang.words import normalize, split_words

if TYPE_CHECKING:
    from cfspec.checks import Context


# Variables of this kind are not words in the caption (a confounder, the photographer's intent):
# they are exempt from the prompt-binding check.
LATENT_KINDS = frozenset({"latent", "hidden", "exogenous"})


def check_duplicate_variables(ctx: Context) -> None:
    first = ctx.model.variables
    for var in ctx.spec.variables:
        original = first[var.name.text]
        if original is not var:
            ctx.report(
                "duplicate-variable",
                var.name.span,
                f"variable `{var.name.text}` is declared twice",
                label="second declaration",
                labels=[Label(original.name.span, "first declared here")],
                help="remove one declaration, or rename it if it is a different thing",
            )


def _undefined(ctx: Context, span: Span, name: str, role: str) -> None:
    hint = did_you_mean(name, ctx.model.variables)
    report_undefined(ctx.report, span, role, name,
                     help=hint or f'declare it: var {name} = "words"',
                     fix=name_fix(ctx, span, name))


def name_fix(ctx: Context, span: Span, name: str) -> Fix:
    """For a name the spec does not declare: the declared name it misspells, else a
    declaration of it."""
    meant = suggestion(name, ctx.model.variables)
    if meant is not None:
        return rename_fix(span, name, meant)
    return declare_fix(ctx.bag.source, ctx.spec, name)


def report_undefined(report: Reporter, span: Span, role: str, name: str, help: str,
                     declared_in: str | None = None, notes: Sequence[str] = (),
                     fix: Fix | None = None) -> None:
    """`undefined-variable`: `role` (an edge, the prompt template, do()) names `name`, which
    the spec (or an answer's `declared_in`) does not declare. Lint and import (the importer
    passes no fix: its positions are in the LLM's text, not in a .scm file)."""
    where = f"{declared_in} does not declare" if declared_in else "is not declared"
    report("undefined-variable", span, f"{role} names `{name}`, which {where}",
           label="not declared", help=help, notes=list(notes), fix=fix)


def report_not_in_prompt(report: Reporter, span: Span, message: str, help: str,
                         label: str = "not found in the prompt", labels: Sequence[Label] = (),
                         notes: Sequence[str] = ()) -> None:
    """`span-not-in-prompt`: a variable's words (or new words) are not where they should be.
    Lint and import."""
    report("span-not-in-prompt", span, message, label=label, labels=list(labels),
           notes=list(notes), help=help)


def check_undefined_variables(ctx: Context) -> None:
    declared = ctx.model.variables
    for edge in ctx.spec.edges:
        for end in (edge.source, edge.target):
            if end.text not in declared:
                _undefined(ctx, end.span, end.text, "an edge")
    for cf in ctx.spec.blocks:
        for a in cf.sets:
            if a.target.text not in declared:
                _undefined(ctx, a.target.span, a.target.text, "`set`")
    frame, prompts = ctx.model.frame, ctx.spec.prompts
    if frame is not None and frame.is_template and prompts:
        text = prompts[0].value
        for slot in frame.slots:
            if slot.variable not in declared:
                _undefined(ctx, text.sub_span(slot.name_start, slot.name_end), slot.variable,
                           "the prompt template")


def check_duplicate_counterfactuals(ctx: Context) -> None:
    # Members of one set never share a name (lang/set_expansion.py leaves repeats out and
    # checks/sets.py reports them); a member and a counterfactual, or two sets' members, can.
    seen: dict[str, ast.Counterfactual] = {}
    for cm in ctx.model.counterfactuals:
        cf = cm.node
        first = seen.get(cf.name.text)
        if first is None:
            seen[cf.name.text] = cf
            continue
        made = [f"`{c.origin.name.text}`" for c in (first, cf) if c.origin]
        ctx.report(
            "duplicate-counterfactual",
            cf.name.span,
            f"counterfactual `{cf.name.text}` is declared twice"
            + (f" (made by set{'s' if len(made) > 1 else ''} {' and '.join(made)})"
               if made else ""),
            member=cf,
            label="second",
            labels=[Label(first.name.span, "first declared here")],
            help="counterfactual names become pair ids; give each its own"
            + (" (a set's members are named `<set>_<value>_...`)" if made else ""),
        )


def check_unused_variables(ctx: Context) -> None:
    graph = ctx.model.graph
    if graph.number_of_edges() == 0:
        return  # empty-graph says it once for the whole spec
    touched = {a.target.text for cf in ctx.spec.counterfactuals for a in cf.interventions}
    touched |= {g.target.text for s in ctx.spec.counterfactual_sets for g in s.grid}
    touched |= {a.target.text for cf in ctx.spec.blocks for a in cf.sets}
    # An edge to an undefined name still uses its declared end (`H -> K` with no K: the
    # undefined K is the error, and H is not unused).
    touched |= {end.text for edge in ctx.spec.edges for end in (edge.source, edge.target)}
    for name, var in ctx.model.variables.items():
        if graph.degree(name) == 0 and name not in touched:
            ctx.report(
                "unused-variable",
                var.name.span,
                f"variable `{name}` takes part in no edge and no intervention",
                label="unused",
                help=f"connect it (`{name} -> X`) or remove it",
            )


def check_spans_in_prompt(ctx: Context) -> None:
    model = ctx.model
    if model.frame is None or model.template_errors or not ctx.spec.prompts:
        return
    prompt = ctx.spec.prompts[0]
    placed = model.frame.placed
    # A placeholder that misspells a variable (`{{ h }}` for `H`) is reported as undefined,
    # with the did-you-mean: the variable is not also reported as never placed.
    names = list(model.variables)
    meant = {closest_name(p, names) for p in placed if p not in model.variables}
    for name, var in model.variables.items():
        if name in placed or name in meant or (var.kind and var.kind.text in LATENT_KINDS):
            continue
        if model.frame.is_template:
            message = f"variable `{name}` is never placed in the prompt template"
            hint = f"add {{{{ {name} }}}} to the prompt, or mark it `var {name}: latent = ...`"
        elif var.value is None:
            message = f"`{name}` is `none` in the factual, so a literal prompt cannot place it"
            hint = f"write the prompt as a template with {{{{ {name} }}}} where its words go " \
                "when it is there"
        else:
            message = f"the words {var.value!r} of `{name}` are not in the prompt"
            hint = f"use words that appear in the prompt, or mark it `var {name}: latent = ...`"
        report_not_in_prompt(ctx.report, var.words.span, message, hint,
                             labels=[Label(prompt.value.span, "the prompt")],
                             notes=["an intervention on it cannot change the caption"])
    # A literal counterfactual prompt must contain each intervened variable's new words.
    for cm in model.counterfactuals:
        if cm.prompt_1 is None or not cm.node.prompts:
            continue
        keys = [w.key for w in cm.prompt_1.words]
        for name, a in cm.interventions.items():
            if isinstance(a.value, ast.NoneValue):
                continue
            wanted = [normalize(w) for w, _, _ in split_words(a.value.value)]
            if wanted and not _contains(keys, wanted):
                report_not_in_prompt(
                    ctx.reporter(cm.node), a.value.span,
                    f"the new words {a.value.value!r} of `{name}` are not in the "
                    "counterfactual's prompt",
                    "make the do() value and the counterfactual prompt agree", label="not found",
                    labels=[Label(cm.node.prompts[0].value.span, "the counterfactual's prompt")])


def _contains(keys: list[str], wanted: list[str]) -> bool:
    n = len(wanted)
    return any(keys[i : i + n] == wanted for i in range(len(keys) - n + 1))


def check_template(ctx: Context) -> None:
    prompts = ctx.spec.prompts
    for error in ctx.model.template_errors:
        ctx.report(
            "template-error",
            prompts[0].value.sub_span(error.start, error.end),
            error.message,
            label="here",
            help=error.help,
        )
