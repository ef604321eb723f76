"""SCM106: a variable's own question (`ask "..."`), which the VQA scorer asks of both images,
must be one it can answer yes or no."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cfspec.questions import phrasing
from cfspec.questions.override import not_yes_no

if TYPE_CHECKING:
    from cfspec.checks import Context


def check_own_questions(ctx: Context) -> None:
    for variable in ctx.spec.variables:
        if variable.ask is None:
            continue
        why = not_yes_no(variable.ask.value)
        if why is None:
            continue
        text = variable.ask.value.rstrip()
        if not_yes_no(text + "?") is None:  # only the question mark is missing
            help = f'end it with `?`: `ask "{text}?"`'
        else:
            example = phrasing.exists(variable.value) if variable.value else "Is there a man?"
            help = f'ask what a VQA model answers yes or no, e.g. `ask "{example}"`'
        ctx.report(
            "ask-not-yes-no",
            variable.ask.span,
            f"the question for `{variable.name.text}` is not a yes/no question: {why}",
            label="not a yes/no question",
            help=help,
        )
