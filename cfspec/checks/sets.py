"""SCM311-315: counterfactual sets as written. What their members say is judged by every other
check (the model holds the members); here, what `lang/set_expansion.py` found while expanding:
empty or repeating lists, a set that expands to nothing or to too much, member names that collide.
A variable listed twice is `conflicting-assignment` (checks/interventions.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cfspec.diagnostics.records import Label
from cfspec.lang import ast
from cfspec.lang.set_expansion import MAX_MEMBERS

if TYPE_CHECKING:
    from cfspec.checks import Context


def _shown(value: ast.Value) -> str:
    return "none" if isinstance(value, ast.NoneValue) else repr(value.value)


def check_lists(ctx: Context) -> None:
    for expansion in ctx.model.expansions:
        for choice in expansion.empty:
            ctx.report(
                "empty-value-list",
                choice.span,
                f"`{choice.target.text} in []` lists no value, so set "
                f"`{expansion.node.name.text}` has no combination",
                label="no value",
                help=f'list the words `{choice.target.text}` takes, e.g. '
                f'{choice.target.text} in ["man", "woman"], or drop it',
            )
        for again, first in expansion.repeated_values:
            ctx.report(
                "duplicate-set-value",
                again.span,
                f"{_shown(again)} is listed twice",
                label="listed again",
                labels=[Label(first.span, "first listed here")],
                notes=["values are compared as words, ignoring case and punctuation; the "
                       "repeat adds no counterfactual"],
                help="remove the repeat",
            )


def check_expansion(ctx: Context) -> None:
    for expansion in ctx.model.expansions:
        node = expansion.node
        if expansion.too_large:
            sizes = " x ".join(str(len(a.values)) for a in expansion.axes)
            ctx.report(
                "set-too-large",
                node.name.span,
                f"set `{node.name.text}` has {expansion.combinations:,} combinations "
                f"({sizes}); at most {MAX_MEMBERS:,} allowed",
                label="not expanded",
                notes=["each member is a pair rendered once per seed; a grid this large is "
                       "more often a mistake than a design"],
                help="split it into several sets, each over fewer values",
            )
            continue
        if not expansion.members and not expansion.empty:
            if not expansion.axes:
                message = f"set `{node.name.text}` has no do(), so no combination"
                help_text = 'add one, e.g. do(W in ["man", "girl"])'
            else:
                message = (f"every combination of set `{node.name.text}` is the factual "
                           "itself, so it has no member")
                help_text = "list at least one value other than the factual words"
            ctx.report(
                "empty-counterfactual-set",
                node.name.span,
                message,
                label="expands to nothing",
                labels=[Label(a.values[0].span, "the factual words")
                        for a in expansion.axes if a.values],
                help=help_text,
            )
        reported: set[object] = set()
        for collision in expansion.collisions:
            key = collision.spans or collision.name
            if key in reported:
                continue
            reported.add(key)
            span, labels = node.name.span, []
            if collision.spans is not None:
                span = collision.spans[0]
                labels = [Label(collision.spans[1], "gives the same name")]
            ctx.report(
                "set-name-collision",
                span,
                f"two members of set `{node.name.text}` would both be named "
                f"`{collision.name}`; the second is left out",
                label="same name",
                labels=labels,
                notes=["a member's name is the set's name and a slug of each value: lower "
                       "case, every run of other characters one `_`"],
                help="make the values differ in their letters or digits, not only in case, "
                "accents or punctuation",
            )
