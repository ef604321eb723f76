"""SCM0xx: spec-level settings (id, prompt, duplicates) and file-level uniqueness."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cfspec.diagnostics.records import DiagnosticBag, Label, Reporter
from cfspec.diagnostics.source import Span
from cfspec.lang import ast
from cfspec.workspace.layout import MAX_ID_LENGTH, MAX_SPEC_ID_LENGTH, is_safe_id
from cfspec.workspace.photos import FORMATS, HEAD_BYTES, image_format, resolve

if TYPE_CHECKING:
    from cfspec.checks import Context




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
    # A set member's name is made, not written: it can make a pair id (`<spec id>__<name>`, as
    # compile/pairs.py builds it) too long. Its characters are path-safe by construction.
    spec_id = ctx.spec.spec_id
    for expansion in ctx.model.expansions:
        longest = max((m.name.text for m in expansion.members), key=len, default="")
        if len(spec_id) + 2 + len(longest) > MAX_ID_LENGTH:
            node = expansion.node
            ctx.report(
                "invalid-id",
                node.name.span,
                f"member `{longest}` of set `{node.name.text}` makes a pair id of "
                f"{len(spec_id) + 2 + len(longest)} characters; at most {MAX_ID_LENGTH}",
                label="member names are made from here",
                notes=["a member's name is the set's name and a slug of each value, each cut "
                       "at 40 characters"],
                help="give the set a shorter name, or the spec a shorter id",
            )


def check_prompt_present(ctx: Context) -> None:
    if not ctx.spec.prompts:
        report_missing_prompt(ctx.report, ctx.spec.name.span,
                              f"spec `{ctx.spec.name.text}` has no prompt", "nothing to render",
                              'add the caption, e.g. prompt "A {{ W }} is cutting a {{ C }}."')


def report_missing_prompt(report: Reporter, span: Span, message: str, label: str,
                          help: str) -> None:
    """`missing-prompt`: nothing to render (lint and import)."""
    report("missing-prompt", span, message, label=label, help=help)


def report_no_counterfactuals(report: Reporter, span: Span, message: str, label: str,
                              help: str) -> None:
    """`no-counterfactuals`: nothing to compare the factual with (lint and import)."""
    report("no-counterfactuals", span, message, label=label, help=help)


_NO_PHOTO = "or remove the `image` line: the factual image is then generated"


def check_image(ctx: Context) -> None:
    """The spec's photo is a file that can be read and that begins as an image does (its
    signature: nothing is decoded). The first `image` only; a second is a duplicate."""
    images = ctx.spec.images
    if not images:
        return
    text = images[0].value
    path = resolve(text.value, ctx.bag.source.name, ctx.config.images)
    where = ("under --images " + str(ctx.config.images) if ctx.config.images is not None
             else "relative to the spec's folder")
    try:
        with path.open("rb") as file:
            head = file.read(HEAD_BYTES)
    except IsADirectoryError:
        ctx.report("not-an-image", text.span, f"{path} is a folder, not an image",
                   label="a folder", help=f"name the photo's file inside it, {_NO_PHOTO}")
        return
    except (OSError, ValueError) as error:  # ValueError: a NUL character in the path
        reason = "no such file" if isinstance(error, FileNotFoundError) \
            else str(getattr(error, "strerror", None) or error)
        ctx.report("image-not-found", text.span, f"photo {text.value!r} cannot be read: "
                   f"{path}: {reason}", label=f"looked for {where}",
                   help=f"correct the path, pass --images DIR where the photos are, {_NO_PHOTO}")
        return
    if image_format(head) is None:
        ctx.report("not-an-image", text.span,
                   f"{path} is not an image: it begins with no {', '.join(FORMATS)} signature",
                   label="not an image",
                   notes=[f"its first bytes: {head!r}"],
                   help=f"name the photo's own file, {_NO_PHOTO}")


def _duplicates(ctx: Context,
                nodes: tuple[ast.IdDecl | ast.PromptDecl | ast.ImageDecl | ast.Edit, ...],
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
    _duplicates(ctx, spec.images, "`image`", f"spec `{spec.name.text}`")
    for cf in spec.blocks:
        where = (f"counterfactual `{cf.name.text}`" if isinstance(cf, ast.Counterfactual)
                 else f"counterfactual set `{cf.name.text}`")
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
    # A set that expands to nothing is reported by checks/sets.py, not here.
    if not ctx.spec.blocks:
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
