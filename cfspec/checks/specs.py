"""SCM0xx: spec-level settings (id, prompt, duplicates) and file-level uniqueness."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cfspec.diagnostics.records import DiagnosticBag, Label
from cfspec.diagnostics.source import Span
from cfspec.lang import ast
from cfspec.workspace.layout import MAX_SPEC_ID_LENGTH, is_safe_id

if TYPE_CHECKING:
    from cfspec.checks import Context

Report = Callable[..., None]



def check_id(ctx: Context) -> None:
    for decl in ctx.spec.ids:
        value = decl.value.value
        if not is_safe_id(value, MAX_SPEC_ID_LENGTH):
            ctx.report(
                "invalid-id",
                decl.value.span,
                f"id {value!r} is not path-safe",
                label="used as a folder name for this spec's images",
                help="use letters, digits, `.`, `_` and `-`, starting with a letter or digit "
                f"(at most {MAX_SPEC_ID_LENGTH} characters), e.g. id \"158956_0\"",
            )


def check_prompt_present(ctx: Context) -> None:
    if not ctx.spec.prompts:
        report_missing_prompt(ctx.report, ctx.spec.name.span,
                              f"spec `{ctx.spec.name.text}` has no prompt", "nothing to render",
                              'add the caption, e.g. prompt "A {{ W }} is cutting a {{ C }}."')


def report_missing_prompt(report: Report, span: Span, message: str, label: str,
                          help: str) -> None:
    """`missing-prompt`: nothing to render (lint and import)."""
    report("missing-prompt", span, message, label=label, help=help)


def report_no_counterfactuals(report: Report, span: Span, message: str, label: str,
                              help: str) -> None:
    """`no-counterfactuals`: nothing to compare the factual with (lint and import)."""
    report("no-counterfactuals", span, message, label=label, help=help)


def _duplicates(ctx: Context, nodes: tuple[ast.IdDecl | ast.PromptDecl | ast.Edit, ...],
                what: str, where: str) -> None:
    for extra in nodes[1:]:
        ctx.report(
            "duplicate-setting",
            extra.span,
            f"{what} is given twice in {where}",
            label="second",
            labels=[Label(nodes[0].span, "first given here")],
            help=f"keep one {what}",
        )


def check_duplicate_settings(ctx: Context) -> None:
    spec = ctx.spec
    _duplicates(ctx, spec.ids, "`id`", f"spec `{spec.name.text}`")
    _duplicates(ctx, spec.prompts, "`prompt`", f"spec `{spec.name.text}`")
    for cf in spec.counterfactuals:
        where = f"counterfactual `{cf.name.text}`"
        _duplicates(ctx, cf.prompts, "`prompt`", where)
        _duplicates(ctx, cf.edits, "`edit`", where)
        for edit in cf.edits:
            _duplicate_edit_items(ctx, edit)


def _duplicate_edit_items(ctx: Context, edit: ast.Edit) -> None:
    seen: dict[tuple[str, str], ast.EditItem] = {}
    for item in edit.items:
        match item:
            case ast.CrossReplace(word=word):
                key = ("cross_replace", word.value.lower() if word else "")
            case ast.Reweight(word=word):
                key = ("reweight", word.value.lower())
            case ast.SelfReplace():
                key = ("self_replace", "")
            case ast.Threshold():
                key = ("threshold", "")
            case ast.BlendStart():
                key = ("blend_start", "")
            case ast.Blend():
                key = ("blend", "")
        if key in seen:
            ctx.report(
                "duplicate-setting",
                item.span,
                f"`{key[0]}`{' for ' + repr(key[1]) if key[1] else ''} is given twice",
                label="second",
                labels=[Label(seen[key].span, "first given here")],
                help="keep one",
            )
        else:
            seen[key] = item


def check_has_counterfactuals(ctx: Context) -> None:
    if not ctx.spec.counterfactuals:
        report_no_counterfactuals(ctx.report, ctx.spec.name.span,
                                  f"spec `{ctx.spec.name.text}` declares no counterfactual",
                                  "compiles to no pairs",
                                  'add one, e.g. counterfactual man { do(W = "man") }')


def check_duplicate_specs(module: ast.Module, bag: DiagnosticBag) -> None:
    by_name: dict[str, ast.Spec] = {}
    by_id: dict[str, ast.Spec] = {}
    for spec in module.specs:
        if spec.name.text in by_name:
            first = by_name[spec.name.text]
            bag.report(
                "duplicate-spec",
                spec.name.span,
                f"spec `{spec.name.text}` is declared twice",
                label="second",
                labels=[Label(first.name.span, "first declared here")],
                help="rename one of them",
            )
            continue
        by_name[spec.name.text] = spec
        spec_id = spec.spec_id
        if spec_id in by_id:
            first = by_id[spec_id]
            where = spec.ids[0].value.span if spec.ids else spec.name.span
            bag.report(
                "duplicate-spec",
                where,
                f"specs `{first.name.text}` and `{spec.name.text}` share the id {spec_id!r}",
                label="second",
                labels=[Label(first.ids[0].value.span if first.ids else first.name.span,
                              "first used here")],
                help="ids name output folders; give each spec its own",
            )
        else:
            by_id[spec_id] = spec
