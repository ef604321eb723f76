"""SCM4xx: what Prompt-to-Prompt and the text encoder need from a pair of prompts."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from cfspec.diagnostics.records import Edit, Fix, Label, Reporter
from cfspec.diagnostics.source import Span
from cfspec.lang import ast
from cfspec.lang.prompt import (
    BoundPrompt,
    Change,
    Word,
    article_for,
    diff,
)
from cfspec.lang.tokens import MAX_TOKENS, ClipTokenizer, count_tokens
from cfspec.lang.words import find_phrase

if TYPE_CHECKING:
    from cfspec.checks import Context
    from cfspec.lang.model import CounterfactualModel


_STEP_HELP = "steps are fractions of the denoising schedule: 40 of 50 steps is 0.8"


def _check_fraction(ctx: Context, number: ast.Number, what: str) -> bool:
    value = number.value
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        looks_like_steps = value > 1 and float(value).is_integer()
        ctx.report(
            "invalid-edit-setting",
            number.span,
            f"{what} must be between 0 and 1, got {number.raw}",
            label="out of range",
            help=_STEP_HELP if looks_like_steps else "use a value in [0, 1]",
        )
        return False
    return True


def _check_steps(ctx: Context, steps: ast.Steps, what: str) -> None:
    ok = _check_fraction(ctx, steps.start, what)
    if steps.end is not None:
        ok = _check_fraction(ctx, steps.end, what) and ok
        if ok and steps.start.value > steps.end.value:
            ctx.report(
                "invalid-edit-setting",
                steps.span,
                f"{what} window starts after it ends",
                label=f"[{steps.start.raw}, {steps.end.raw}]",
                help=f"write [{steps.end.raw}, {steps.start.raw}]",
            )


def _check_uniform(ctx: Context, uniform: ast.Uniform, what: str) -> None:
    low, high = uniform.low, uniform.high
    ok = _check_fraction(ctx, low, f"{what}'s uniform low")
    ok = _check_fraction(ctx, high, f"{what}'s uniform high") and ok
    if ok and low.value > high.value:
        ctx.report(
            "invalid-edit-setting",
            uniform.span,
            f"{what}'s uniform range starts above where it ends",
            label=f"uniform({low.raw}, {high.raw})",
            help=f"write uniform({high.raw}, {low.raw})",
        )


def _check_schedule(ctx: Context, item: ast.CrossReplace | ast.SelfReplace, what: str) -> None:
    steps = item.steps
    if isinstance(steps, ast.Steps):
        _check_steps(ctx, steps, what)
        return
    _check_uniform(ctx, steps, what)
    if isinstance(item, ast.CrossReplace) and item.word is not None:
        ctx.report(
            "invalid-edit-setting",
            steps.span,
            f"cross_replace for {item.word.value!r} cannot be sampled",
            label="only the default window is drawn",
            notes=["generate draws one x per (pair, seed) for the whole prompt's cross_replace "
                   "and for self_replace; per-word windows stay fixed"],
            help=f"give {item.word.value!r} a fixed window, or sample the default: "
            f"cross_replace uniform({steps.low.raw}, {steps.high.raw})",
        )


def check_settings(ctx: Context) -> None:
    # Per block as written: a set's edit is shared by its members and judged once.
    for block in ctx.spec.blocks:
        for edit in block.edits:
            for item in edit.items:
                match item:
                    case ast.CrossReplace():
                        _check_schedule(ctx, item, "cross_replace")
                    case ast.SelfReplace():
                        _check_schedule(ctx, item, "self_replace")
                    case ast.Threshold(value=value):
                        _check_fraction(ctx, value, "threshold")
                    case ast.BlendStart(value=value):
                        _check_fraction(ctx, value, "blend_start")
                    case ast.Reweight(weight=weight) if not math.isfinite(weight.value) or abs(
                        weight.value
                    ) > 100:
                        ctx.report(
                            "invalid-edit-setting",
                            weight.span,
                            f"reweight factor {weight.raw} is out of range",
                            label="must be a finite number in [-100, 100]",
                            help="Prompt-to-Prompt uses factors like 2 or 5 to emphasise a word, "
                            "negative ones to suppress it",
                        )
            if edit.type is not None and edit.type.text == "reweight":
                _check_reweight_type(ctx, edit)


def _check_reweight_type(ctx: Context, edit: ast.Edit) -> None:
    if not any(isinstance(i, ast.Reweight) for i in edit.items):
        ctx.report(
            "invalid-edit-setting",
            edit.type.span,  # type: ignore[union-attr]
            "a reweight edit without any `reweight \"word\" factor`",
            label="nothing to reweight",
            help='add one, e.g. reweight "fork" 2.0',
        )


def check_edit_words(ctx: Context) -> None:
    p0 = ctx.model.prompt_0
    if p0 is None:
        return
    for cm in ctx.model.counterfactuals:
        p1 = cm.prompt_1
        if p1 is None:
            continue
        for edit in cm.node.edits:
            for item in edit.items:
                checks: list[tuple[ast.Text, tuple[BoundPrompt, ...], str]] = []
                match item:
                    case ast.Blend(words_0=w0, words_1=None):
                        checks += [(t, (p0, p1), "either prompt") for t in w0]
                    case ast.Blend(words_0=w0, words_1=w1):
                        checks += [(t, (p0,), "the factual prompt") for t in w0]
                        checks += [(t, (p1,), "the counterfactual prompt") for t in w1 or ()]
                    case ast.Reweight(word=t):
                        checks.append((t, (p1,), "the counterfactual prompt"))
                    case ast.CrossReplace(word=t) if t is not None:
                        checks.append((t, (p0, p1), "either prompt"))
                for text, prompts, where in checks:
                    if not any(find_phrase([w.text for w in p.words], text.value) for p in prompts):
                        ctx.report(
                            "edit-word-not-found",
                            text.span,
                            f"{text.value!r} is not a word of {where}",
                            member=cm.node,
                            label="not found",
                            notes=[f"{'counterfactual' if p is p1 else 'factual'}: {p.text!r}"
                                   for p in prompts],
                            help="name words exactly as they appear (case and punctuation do "
                            "not matter)",
                        )


def check_replace_length(ctx: Context) -> None:
    p0 = ctx.model.prompt_0
    if p0 is None:
        return
    for cm in ctx.model.counterfactuals:
        forced = next((e.type for e in cm.node.edits if e.type is not None), None)
        if forced is None or forced.text != "replace" or cm.prompt_1 is None:
            continue
        bad = [c for c in diff(p0, cm.prompt_1)
               if len(c.before) != len(c.after)]
        if not bad:
            continue
        c = bad[0]
        before = " ".join(w.text for w in c.before) or "(nothing)"
        after = " ".join(w.text for w in c.after) or "(nothing)"
        labels = [Label(a.value.span, "new words") for a in cm.interventions.values()]
        ctx.report(
            "replace-length-mismatch",
            forced.span,
            f"a replace edit needs word sequences of equal length: {before!r} "
            f"({len(c.before)}) -> {after!r} ({len(c.after)})",
            member=cm.node,
            label="forced replace",
            labels=labels,
            notes=["Prompt-to-Prompt's replace maps the attention of each word onto the word at "
                   "the same position; different lengths cannot be aligned"],
            help="use `edit refine` (or drop the type to let the compiler choose), or choose "
            "words of the same length",
        )


def check_prompt_length(ctx: Context) -> None:
    model = ctx.model
    if model.prompt_0 is None:
        return
    prompts: list[tuple[str, ast.Text | ast.Name, str, Reporter]] = [
        (model.prompt_0.text, ctx.spec.prompts[0].value, "the prompt", ctx.report)
    ]
    for cm in model.counterfactuals:
        if cm.prompt_1 is not None:
            where = cm.node.prompts[0].value if cm.node.prompts else cm.node.name
            prompts.append((cm.prompt_1.text, where, f"counterfactual `{cm.node.name.text}`",
                            ctx.reporter(cm.node)))
    for text, node, what, report in prompts:
        report_prompt_length(report, node.span, text, what, ctx.tokenizer)


def report_prompt_length(report: Reporter, span: Span, text: str, what: str,
                         tokenizer: ClipTokenizer | None) -> None:
    """`prompt-too-long` for a prompt past the text encoder's 77 tokens, counted exactly with a
    tokenizer and estimated from below without one. Lint and import both call this."""
    count, exact = count_tokens(text, tokenizer)
    if count <= MAX_TOKENS:
        return
    how = "tokens" if exact else "tokens at least (estimated from words; configure "\
        "`tokenizer` in [tool.cfspec] or pass --tokenizer for an exact count)"
    report("prompt-too-long", span, f"{what} is {count} {how}; the text encoder reads "
           f"{MAX_TOKENS}", label="too long",
           notes=["CLIP silently truncates the rest, so the image ignores it"],
           help="shorten the caption")


def check_articles(ctx: Context) -> None:
    model = ctx.model
    for cm in model.counterfactuals:
        if cm.prompt_1 is None or cm.node.prompts:
            continue  # a literal counterfactual prompt is the author's own words
        words = cm.prompt_1.words
        assigned = {**cm.interventions, **cm.sets}
        for i, article in enumerate(words):
            if article.text.lower() not in ("a", "an"):
                continue
            nxt = words[i + 1] if i + 1 < len(words) else None
            if nxt is None or nxt.is_punctuation or nxt.text.lower() in DETERMINERS:
                continue  # no word to agree with: `dangling-determiner` says so
            variable = nxt.variable
            expected = article_for(nxt.text)
            if variable not in assigned or expected == article.text.lower():
                continue
            ctx.report(
                "article-mismatch",
                assigned[variable].value.span,
                f"in counterfactual `{cm.node.name.text}`, {article.text!r} does not agree with "
                f"{nxt.text!r}",
                member=cm.node,
                label="substituted here",
                labels=[Label(ctx.spec.prompts[0].value.span, "the article is in the prompt")],
                notes=[f"counterfactual prompt: {cm.prompt_1.text!r}"],
                help=(f"write `{{{{ {variable} | a }}}}` in the template so the article follows "
                      f"the words (gives {expected!r})" if model.frame and model.frame.is_template
                      else "give the counterfactual its own prompt \"...\" with the right article"),
                fix=_article_fix(ctx, variable) if model.frame and model.frame.is_template
                else None,
            )


def _article_fix(ctx: Context, variable: str) -> Fix | None:
    """`a {{ K }}` -> `{{ K | a }}` in the template: the article then follows each value's
    words. Safe: the factual prompt reads the same wherever its article was right."""
    prompt = ctx.spec.prompts[0].value
    source = ctx.bag.source
    raw = source.text[prompt.span.start : prompt.span.end]
    m = re.search(r"(?:\b(an?|An?)\s+)?\{\{\s*" + re.escape(variable) + r"\s*\}\}", raw)
    if m is None:  # the placeholder has filters already, or is written in escapes
        return None
    capital = (m.group(1) or "a")[0] == "A"
    new = f"{{{{ {variable} | a{' | capitalize' if capital else ''} }}}}"
    span = source.span(prompt.span.start + m.start(), prompt.span.start + m.end())
    return Fix(f"Write `{new}` so the article follows the words", (Edit(span, new),))


# Words that open a noun phrase and say nothing without it.
DETERMINERS = frozenset(
    "a an the this that these those his her their its my your our some every each no any "
    "another either neither whose".split()
)
# Words that cannot come straight after a determiner: another determiner, a preposition, a
# conjunction, a pronoun, a form of `be`/`have`/`do`, a modal. A removed noun that leaves its
# determiner before one of these left it with nothing (`rides a on the beach`); one that leaves
# it before anything else may have left it its noun (`a red and white bus` -> `a bus`).
_NOT_AFTER_A_DETERMINER = DETERMINERS | frozenset(
    "of in on at to with and or but nor for from by into onto over under up down out off "
    "near next behind above below across through around beside between among against along toward "
    "towards upon within without during while when where which who whom than as so if then "
    "there here it he she they them him we us you is are was were be been being am has have "
    "had do does did will would can could shall should may might must".split()
)


def check_dangling_determiners(ctx: Context) -> None:
    """A determiner that a counterfactual leaves with nothing to determine, in a rendered or a
    literal counterfactual prompt: its words removed (`rides a on the beach`), new words that
    end with one (`rides a on`), or two in a row (`the a zebra`)."""
    model = ctx.model
    p0 = model.prompt_0
    if p0 is None or model.frame is None:
        return
    for cm in model.counterfactuals:
        p1 = cm.prompt_1
        if p1 is None:
            continue
        for change in diff(p0, p1):
            at = _dangling(p1, change)
            if at is not None:
                _report_dangling(ctx, cm, change, at)


def _is_determiner(word: Word | None) -> bool:
    return word is not None and word.text.lower() in DETERMINERS


def _dangling(p1: BoundPrompt, change: Change) -> int | None:
    """The index in `p1.words` of a determiner this change leaves dangling, if any."""
    words = p1.words
    # A determiner before the change now stands before its first new word, which cannot
    # follow one: `the` + `a zebra`, `a` + `near`.
    k = change.j0 - 1
    if change.after and k >= 0 and _is_determiner(words[k]) and not _a_name(words, k) \
            and _cannot_follow(change.after[0]):
        return k
    # The last word the change leaves (its last new word, or the one before removed words)
    # is a determiner with nothing after it that it could determine.
    if change.j1 == 0 or (not change.after and change.i0 == 0):
        return None
    k = change.j1 - 1
    if _is_determiner(words[k]) and not _a_name(words, k) and \
            _cannot_follow(words[k + 1] if k + 1 < len(words) else None):
        return k
    return None


def _cannot_follow(word: Word | None) -> bool:
    """Whether `word` cannot come straight after a determiner (None: the end). A quote or a
    bracket may open its words (`a "selfie"`, `an `` ATM ''`), and a capitalised word after a
    determiner is a name (`the US`), whatever it would be in lower case."""
    if word is None:
        return True
    if word.is_punctuation:
        return word.text in _ENDS_A_PHRASE
    return not word.text[:1].isupper() and word.text.lower() in _NOT_AFTER_A_DETERMINER


_ENDS_A_PHRASE = frozenset(".,;:!?)]}…")


def _a_name(words: tuple[Word, ...], k: int) -> bool:
    """A capitalised determiner inside a sentence names something: `building A`, `Plan B`."""
    return words[k].text[:1].isupper() and k > 0 and words[k - 1].text not in (".", "!", "?")


def _report_dangling(ctx: Context, cm: CounterfactualModel, change: Change, k: int) -> None:
    model, p0, p1 = ctx.model, ctx.model.prompt_0, cm.prompt_1
    assert model.frame is not None and p0 is not None and p1 is not None
    name, det = cm.node.name.text, p1.words[k]
    nxt = p1.words[k + 1] if k + 1 < len(p1.words) else None
    what = "article" if det.text.lower() in ("a", "an", "the") else "determiner"
    variable = (change.after or change.before)[0].variable
    new_words = " ".join(w.text for w in change.after)
    if _is_determiner(nxt):
        assert nxt is not None
        shown = " ".join(w.text for w in p1.words[k : k + 3])
        message = f"in counterfactual `{name}`, {det.text!r} comes straight before " \
            f"{nxt.text!r}: two determiners ({shown!r})"
        first, *rest = change.after or (None,)
        help = f'drop one of them: {variable} = "{" ".join(w.text for w in rest)}"' \
            if variable and rest and _is_determiner(first) else \
            f"drop {det.text!r} or {nxt.text!r}"
    else:
        shown = " ".join(w.text for w in p1.words[max(0, k - 1) : k + 2])
        message = f"in counterfactual `{name}`, the {what} {det.text!r} is left without its " \
            f"words ({shown!r})"
        if k >= change.j0:  # the new words end with it
            help = f"the new words {new_words!r} end with {det.text!r}: give it its words, " \
                "or leave it out"
        elif change.after:
            help = f"the new words {new_words!r} cannot follow {det.text!r}: bind " \
                f"{det.text!r} with the words it belongs to, so that both change together"
        else:
            help = _dangling_help(model.frame.is_template, det.text, what, variable,
                                  " ".join(w.text for w in change.before))
    labels = []
    if cm.node.prompts:  # the author's own caption: point at the word in it
        span = cm.node.prompts[0].value.sub_span(det.start, det.end)
        label = "nothing to determine after it"
        if not _is_determiner(nxt):
            help = f"remove {det.text!r} from the counterfactual prompt too, or keep the " \
                "words it belongs to"
    else:
        assigned = {**cm.sets, **cm.interventions}.get(variable or "")
        span = assigned.value.span if assigned is not None else cm.node.name.span
        label = "substituted here" if change.after else "removed here"
        if k < change.j0:  # the determiner was in the factual prompt too
            factual = ctx.spec.prompts[0].value
            det_0 = p0.words[change.i0 - (change.j0 - k)]
            labels.append(Label(ctx.word_span(factual, det_0, not model.frame.is_template),
                                f"the {what} stays in the prompt"))
    ctx.report("dangling-determiner", span, message, member=cm.node, label=label,
               labels=labels, notes=[f"counterfactual prompt: {p1.text!r}"], help=help)


def _dangling_help(template: bool, word: str, what: str, variable: str | None,
                   words: str) -> str:
    if variable is None:
        return f"remove {word!r} with the words it belongs to"
    if template and word.lower() in ("a", "an"):
        return f"write `{{{{ {variable} | a }}}}` in place of `{word} {{{{ {variable} }}}}`: " \
            "the article then goes with the words, and agrees with each value"
    where = f"write `{{{{ {variable} }}}}` in place of `{word} {{{{ {variable} }}}}` and " \
        if template else ""
    return f"bind the {what} with the words, so that they go together: {where}" \
        f"var {variable} = \"{word} {words}\" (and give {variable}'s other values theirs)"
