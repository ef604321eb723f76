"""SCM3xx: counterfactuals change only what their interventions explain.

Semantics (abduction, action, prediction): everything not downstream of an intervention keeps
its words; the intervened variables take their new words; descendants may change, and when
they do their new words are stated with `set`. Words that change only to agree with an
intervened noun (`girl ... her` -> `boy ... his`, `is` -> `are`: `cfspec.lang.agreement`) are
its consequence, as `a` -> `an` is: never an independent intervention, never a non-minimal
change, whether or not the graph has the edge.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cfspec.checks.names import name_fix
from cfspec.checks.suggest import did_you_mean
from cfspec.diagnostics.records import Label, Reporter
from cfspec.diagnostics.source import Span
from cfspec.lang import ast
from cfspec.lang.agreement import (
    agreement,
    consequences,
    disagrees,
    follows,
    phrase,
    renumbered,
    verb_disagrees,
)
from cfspec.lang.model import CounterfactualModel, SpecModel, independent
from cfspec.lang.prompt import Change, Word, artefacts, diff_words
from cfspec.lang.set_expansion import same_words
from cfspec.lang.words import normalize, split_words, written_alike

if TYPE_CHECKING:
    from cfspec.checks import Context



def _value_text(node: ast.Assignment | ast.Choice) -> str:
    if isinstance(node, ast.Choice):
        return "in [...]"
    return "none" if isinstance(node.value, ast.NoneValue) else repr(node.value.value)


def _written_interventions(block: ast.Block) -> tuple[ast.Assignment | ast.Choice, ...]:
    """What a block's do() lists as written: a set's choices and fixed assignments."""
    if isinstance(block, ast.CounterfactualSet):
        return block.grid
    return block.interventions


def check_targets(ctx: Context) -> None:
    declared = ctx.model.variables
    for cf in ctx.spec.blocks:
        for a in _written_interventions(cf):
            if a.target.text not in declared:
                ctx.report(
                    "unknown-intervention-target",
                    a.target.span,
                    f"do() on `{a.target.text}`, which the model does not have",
                    label="not a variable of this spec",
                    notes=[f"variables: {', '.join(declared) or '(none)'}"],
                    help=did_you_mean(a.target.text, declared)
                    or f'declare it first: var {a.target.text} = "words"',
                    fix=name_fix(ctx, a.target.span, a.target.text),
                )


def check_conflicting_assignments(ctx: Context) -> None:
    for cf in ctx.spec.blocks:
        seen: dict[str, ast.Assignment | ast.Choice] = {}
        what = (f"counterfactual `{cf.name.text}`" if isinstance(cf, ast.Counterfactual)
                else f"counterfactual set `{cf.name.text}`")
        for a in (*_written_interventions(cf), *cf.sets):
            name = a.target.text
            if name in seen:
                # In a set, the first one counts (lang/set_expansion.py leaves the repeat out).
                ctx.report(
                    "conflicting-assignment",
                    a.span,
                    f"{what} gives `{name}` new words twice",
                    label=f"now {_value_text(a)}",
                    labels=[Label(seen[name].span, f"first {_value_text(seen[name])}")],
                    help="keep one assignment per variable"
                    + ("; list every value in one `in [...]`"
                       if isinstance(cf, ast.CounterfactualSet) else ""),
                )
            else:
                seen[name] = a


def check_unchanged_values(ctx: Context) -> None:
    variables = ctx.model.variables
    for cf in ctx.spec.blocks:
        # In a set's list the factual words are one level of the grid, not a mistake; a fixed
        # assignment to them (or a list of one, which is the same) changes nothing in any
        # member.
        fixed = [(a.target, a.value) for a in (*_written_interventions(cf), *cf.sets)
                 if isinstance(a, ast.Assignment)]
        fixed += [(c.target, c.values[0]) for c in _written_interventions(cf)
                  if isinstance(c, ast.Choice) and len(c.values) == 1]
        for target, value in fixed:
            var = variables.get(target.text)
            if var is None:
                continue
            now = var.value
            new = None if isinstance(value, ast.NoneValue) else value.value
            if (now is None) == (new is None) and (now is None or same_words(new or "", now)):
                ctx.report(
                    "unchanged-intervention-value",
                    value.span,
                    f"`{target.text}` already is {'none' if now is None else repr(now)}",
                    label="same words as the factual",
                    labels=[Label(var.words.span, "declared here")],
                    help="give it different words, or drop this assignment",
                )


def check_count(ctx: Context) -> None:
    graph = ctx.model.graph
    # A set's `in` lists are its declared factors (race x gender): the factors a member
    # changes count as one intervention together, and every other change counts on its own.
    # Keyed by identity: hashing a frozen node would walk its whole tree for every member.
    factors = {id(e.node): e.listed for e in ctx.model.expansions}
    for cm in ctx.model.counterfactuals:
        origin = cm.node.origin
        targets = [n for n in cm.interventions if n in graph]
        agree = agreeing(ctx.model, cm, targets)
        free = [n for n in independent(graph, targets) if n not in agree]
        changed = factors.get(id(origin), set()) & set(free) if origin else set()
        limit = ctx.config.max_interventions + max(len(changed) - 1, 0)
        if len(free) > limit:
            nodes = [cm.interventions[n] for n in free]
            report_too_many(ctx.reporter(cm.node), f"counterfactual `{cm.node.name.text}`",
                            free, [a.span for a in nodes], limit)


def _phrase(words: str | None) -> list[str]:
    return [w for w, _, _ in split_words(words or "")]


def agreeing(model: SpecModel, cm: CounterfactualModel, names: list[str]) -> dict[str, str]:
    """Among variables a counterfactual changes (`names`, in their order), those whose change
    only agrees with another one's (`Her`: `her` -> `his`, with `Girl`: `girl` -> `boy`): each
    mapped to the variable it follows (`cfspec.lang.agreement.consequences`)."""
    factual, new = model.words(), cm.new_words()
    where: dict[str, int] = {}
    for k, w in enumerate(model.prompt_0.words if model.prompt_0 is not None else ()):
        if w.variable is not None:
            where.setdefault(w.variable, k)
    changes = [(_phrase(factual.get(n)), _phrase(new.get(n)), where.get(n, 1 << 30))
               for n in names]
    return {names[k]: names[p] for k, p in enumerate(consequences(changes)) if p is not None}


def report_too_many(report: Reporter, what: str, names: list[str], spans: list[Span],
                    limit: int) -> None:
    """`too-many-interventions`, each independent intervention labelled (lint and import)."""
    report(
        "too-many-interventions", spans[limit],
        f"{what} makes {len(names)} independent interventions ({', '.join(names)}); at most "
        f"{limit} allowed",
        label="one too many",
        labels=[Label(s, f"intervention on `{n}`")
                for i, (n, s) in enumerate(zip(names, spans, strict=True)) if i != limit],
        notes=["none of them is downstream of another in the graph, so each is a cause of its "
               "own: a pair no longer isolates one cause"],
        help="split it into one counterfactual per intervention, add the edge that makes one "
        "change follow from the other, or raise `max-interventions` in [tool.cfspec]",
    )


def check_sets_downstream(ctx: Context) -> None:
    for cm in ctx.model.counterfactuals:
        for name, a in cm.sets.items():
            if name not in ctx.model.variables or name in cm.interventions:
                continue
            if name not in cm.descendants \
                    and name not in agreeing(ctx.model, cm, [*cm.interventions, name]):
                intervened = ", ".join(f"`{n}`" for n in cm.interventions) or "nothing"
                ctx.report(
                    "non-minimal-change",
                    a.span,
                    f"`set {name}` changes a variable that is not downstream of {intervened}",
                    member=cm.node,
                    label="not a descendant of the intervention",
                    notes=["only intervened variables and their descendants may change: "
                           + (", ".join(sorted(cm.changed)) or "(none)")],
                    help=f"drop it, add the causal edge that makes `{name}` depend on the "
                    "intervention, or intervene on it directly",
                )


def check_no_op(ctx: Context) -> None:
    model = ctx.model
    for cm in model.counterfactuals:
        if model.prompt_0 is None or cm.prompt_1 is None:
            continue
        if any(isinstance(i, ast.Reweight) for e in cm.node.edits for i in e.items):
            continue  # a reweight changes attention, not words
        if any(n not in model.variables for n in cm.interventions):
            continue  # unknown-intervention-target says it; its words cannot be placed
        frame = model.frame
        if frame is not None and frame.is_template and not frame.placed <= set(model.variables):
            continue  # undefined-variable says it: a misspelt placeholder places nothing
        changes = diff_words(model.prompt_0.words, cm.prompt_1.words)
        if all(_written_alike(c) for c in changes):
            why = ("it has no do()" if not cm.interventions
                   else "its interventions do not change the prompt")
            report_no_op(ctx.reporter(cm.node), cm.node.name.span,
                         f"counterfactual `{cm.node.name.text}` renders the factual prompt: {why}",
                         "same prompt as the factual",
                         "intervene on a variable that is placed in the prompt, with new words",
                         notes=[f"prompt: {model.prompt_0.text!r}"])


def report_no_op(report: Reporter, span: Span, message: str, label: str, help: str,
                 labels: list[Label] | None = None, notes: list[str] | None = None) -> None:
    """`no-op-intervention`: the counterfactual says what the factual says (lint, import)."""
    report("no-op-intervention", span, message, label=label, labels=labels or [],
           notes=notes or [], help=help)


def check_minimal_change(ctx: Context) -> None:
    model = ctx.model
    if model.prompt_0 is None or model.frame is None:
        return
    factual = ctx.spec.prompts[0].value
    for cm in model.counterfactuals:
        if cm.prompt_1 is None or not cm.node.prompts:
            continue  # rendered prompts change only assigned variables by construction
        offending = _unexplained_words(cm, model.prompt_0.words, model.words())
        if not offending:
            continue
        counterfactual = cm.node.prompts[0].value
        found = [
            (ctx.word_span(counterfactual, w, literal=True) if side == 1
             else ctx.word_span(factual, w, literal=not model.frame.is_template), w.text, side)
            for w, side in offending
        ]
        # Point into this counterfactual (its first unexplained word, else its prompt), so that
        # the diagnostic and an ignore comment sit with it, not on the shared factual prompt.
        report_non_minimal(ctx.reporter(cm.node), found, cm.changed, counterfactual.span)


def report_non_minimal(report: Reporter, found: list[tuple[Span, str, int]], may_change: set[str],
                       fallback: Span) -> None:
    """`non-minimal-change` for the changed words no intervention explains, as (span, word,
    side: 0 factual, 1 counterfactual); it points at the first counterfactual word, or at
    `fallback` (lint and import)."""
    if not found:
        return
    primary = next((span for span, _, side in found if side == 1), fallback)
    report(
        "non-minimal-change", primary,
        f"the counterfactual prompt changes {' '.join(w for _, w, _ in found)!r}, which no "
        "intervention explains",
        label="not explained",
        labels=[Label(span, "not explained") for span, _, _ in found if span != primary],
        notes=[f"only these variables may change: {', '.join(sorted(may_change)) or '(none)'}"],
        help="keep the rest of the caption word for word, or model the changed words as a "
        "variable downstream of the intervention",
    )


def _unexplained_words(
    cm: CounterfactualModel, factual: tuple[Word, ...], words: dict[str, str | None]
) -> list[tuple[Word, int]]:
    """Changed words (with 0: factual, 1: counterfactual) that belong to no changed variable
    and do not agree with an intervened one."""
    assert cm.prompt_1 is not None
    changed = cm.changed
    new = cm.new_words()
    intervened = [(_phrase(words.get(n)), _phrase(new.get(n))) for n in cm.interventions]
    new_keys = {
        normalize(w) for value in cm.new_words().values() if value for w, _, _ in split_words(value)
    }
    out: list[tuple[Word, int]] = []
    for change in diff_words(factual, cm.prompt_1.words):
        if _written_alike(change):
            continue  # a caption artefact (`They 'll`), not a change: check_caption_artefacts
        agreed = agreement([w.text for w in change.before], [w.text for w in change.after])
        if agreed is not None and any(follows(agreed, old, now, singular_they=True)
                                      for old, now in intervened):
            continue  # `his` for `her` after `girl` -> `boy`: a consequence
        # Removed or replaced factual words must belong to a changed variable.
        out += [(w, 0) for w in change.before if not w.is_punctuation and w.variable not in changed]
        # Inserted words are explained by the changed variable they replace or stand next to,
        # or, for a variable the factual prompt does not show, by being its new words.
        neighbours = factual[max(0, change.i0 - 1) : change.i1 + 1]
        explained = any(w.variable in changed for w in (*change.before, *neighbours))
        out += [
            (w, 1)
            for w in change.after
            if not (w.is_punctuation or explained or w.key in new_keys)
        ]
    return out


def _written_alike(change: Change) -> bool:
    return written_alike([w.text for w in change.before], [w.text for w in change.after])


def check_caption_artefacts(ctx: Context) -> None:
    """A literal counterfactual caption written differently from the factual one where it says
    the same (a doubled space, `They 'll`, re-tokenized quotes): not a change of content,
    so not `non-minimal-change`, but the two prompts are no longer rendered alike."""
    model = ctx.model
    if model.prompt_0 is None or model.frame is None:
        return
    for cm in model.counterfactuals:
        if cm.prompt_1 is None or not cm.node.prompts:
            continue
        text = cm.node.prompts[0].value
        report_caption_artefacts(
            ctx.reporter(cm.node), model.prompt_0.text, cm.prompt_1.text, text.sub_span,
            note=f"factual prompt: {model.prompt_0.text!r}",
            help="write it as the factual prompt writes it; `cfspec import --fix` does so for "
            "imported captions")


def report_caption_artefacts(report: Reporter, text_0: str, text_1: str,
                             span_at: Callable[[int, int], Span], note: str, help: str) -> None:
    """One `caption-artefact` for all the places where `text_1` is written differently from
    `text_0` without saying something different, each labelled (lint and import alike)."""
    found = artefacts(text_0, text_1)
    if not found:
        return
    spans = [span_at(a.start_1, max(a.end_1, a.start_1 + 1)) for a in found]
    shown = ", ".join(repr(text_1[a.start_1:a.end_1]) for a in found[:3])
    report(
        "caption-artefact", spans[0],
        "the counterfactual prompt is written differently from the factual one where it says "
        f"the same: {shown}" + (" ..." if len(found) > 3 else ""),
        label=found[0].kind,
        labels=[Label(sp, a.kind) for sp, a in zip(spans[1:], found[1:], strict=True)],
        notes=[note], help=help,
    )


def check_agreement(ctx: Context) -> None:
    """`agreement-mismatch`: once a counterfactual's words are substituted, the verb right after
    a noun whose number surely changed (`the dogs runs`), or a gendered pronoun after it that
    agreed with its old words and contradicts the new (`a boy ... her kite`), is left as it
    was. Meant to be sure when it speaks (see `cfspec.lang.agreement.renumbered`): a warning
    on real captions must be true. A literal counterfactual prompt is the author's own words
    and is not judged."""
    model = ctx.model
    if model.prompt_0 is None:
        return
    factual = model.words()
    for cm in model.counterfactuals:
        if cm.prompt_1 is None or cm.node.prompts:
            continue
        assigned = {**cm.interventions, **cm.sets}
        new = cm.new_words()
        words = cm.prompt_1.words
        for name, a in assigned.items():
            at = [k for k, w in enumerate(words) if w.variable == name]
            if name not in model.variables or not at:
                continue
            # `black and white` may be adjectives: only a count or the head word gives number.
            before = phrase(_phrase(factual.get(name)), coordination=False)
            after = phrase(_phrase(new.get(name)), coordination=False)
            rest = [w for w in words[at[-1] + 1:] if w.variable not in assigned]
            found = [w for w in rest if disagrees(w.text, before, after)]
            nxt = words[at[-1] + 1] if at[-1] + 1 < len(words) else None
            prev = words[at[0] - 1].text if at[0] > 0 else None
            number = renumbered(_phrase(factual.get(name)), _phrase(new.get(name)))
            if nxt is not None and nxt.variable not in assigned and number is not None \
                    and verb_disagrees(prev, nxt.text, number):
                found.insert(0, nxt)
            if not found:
                continue
            shown = ", ".join(repr(w.text) for w in found)
            ctx.report(
                "agreement-mismatch", a.value.span,
                f"in counterfactual `{cm.node.name.text}`, {shown} no longer "
                f"agree{'s' if len(found) == 1 else ''} with {new.get(name)!r}",
                member=cm.node, label="substituted here",
                labels=[Label(ctx.spec.prompts[0].value.span, "left as it was in the prompt")],
                notes=[f"counterfactual prompt: {cm.prompt_1.text!r}"],
                help=f"make the words a variable downstream of `{name}` and `set` them in this "
                "counterfactual (a pronoun, a verb's number: its consequence, not another "
                "intervention), or give the counterfactual its own prompt \"...\"")
