"""`cfspec compile`: lint, then compile every spec without errors into OUT/pairs.jsonl.

Lint's diagnostics come first; compile adds its own (an internal error on one spec, a pair id
that is not path-safe or is used twice) and writes nothing when anything is an error, unless
`keep_going`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Diagnostic, DiagnosticBag, report_bug
from cfspec.lang import ast
from cfspec.lang.config import Config
from cfspec.lint import LintResult, Parsed, finish, lint, resolve_tokenizer
from cfspec.workspace.photos import Photo, photo_of, resolve


def report_internal_error(bag: DiagnosticBag, spec: ast.Spec, error: Exception) -> None:
    """A failure inside cfspec on one spec, as a diagnostic on that spec's name."""
    report_bug(bag, spec.name.span,
               f"cfspec could not compile spec `{spec.name.text}`: {type(error).__name__}: "
               f"{error}", label="this spec", left="the other specs were compiled",
               meanwhile="`--keep-going` writes the pairs of the other specs")


def ignored_errors(parsed: Parsed, config: Config) -> list[Diagnostic]:
    """The errors of a file that --select/--ignore hid. compile shows them after all and writes
    no pairs for their specs: a spec with an error has no right prompts to write (an ignored
    `undefined-variable` would leave its placeholder's words out). Warnings stay hidden."""
    if config.select == ("ALL",) and not config.ignore:
        return []  # nothing hidden: no second lint
    from cfspec.lint import check

    every = check(parsed.source, config.merged(select=("ALL",), ignore=()))
    return [
        dataclasses.replace(d, notes=(*d.notes, "shown although ignored: compile writes no "
                                      "pairs from a spec with an error; fix it, or leave the "
                                      "spec out"))
        for d in every.diagnostics
        if d.level is Severity.ERROR and d not in parsed.diagnostics
    ]


def _photo(spec: ast.Spec, source_name: str, config: Config) -> Photo | None:
    """The spec's photo as it is on disk now (lint has checked that it is a readable image)."""
    if spec.image is None:
        return None
    return photo_of(resolve(spec.image, source_name, config.images))


@dataclass
class CompileResult:
    lint: LintResult
    pairs: list[dict[str, object]]
    diagnostics: list[Diagnostic]  # lint's and the compiler's
    written: Path | None  # OUT/pairs.jsonl, or None when nothing was written


def compile_paths(
    paths: Iterable[str],
    config: Config,
    out_dir: Path,
    *,
    keep_going: bool = False,
    tokenizer: str | None = None,
) -> CompileResult:
    """Lint, then compile every spec without errors into OUT/pairs.jsonl.

    Without `keep_going`, any error anywhere means nothing is written.
    """
    from cfspec.compile.pairs import compile_spec
    from cfspec.workspace.layout import is_safe_id
    from cfspec.workspace.pairs import write_pairs

    clip = resolve_tokenizer(tokenizer or config.tokenizer)
    result = lint(paths, config, tokenizer)
    pairs: list[dict[str, object]] = []
    extra: list[Diagnostic] = []
    first_use: dict[str, tuple[Parsed, ast.Counterfactual]] = {}
    for parsed in result.files:
        if parsed.module is None:
            continue
        bag = DiagnosticBag(parsed.source)
        hidden = ignored_errors(parsed, config)
        for model in parsed.models:
            if parsed.spec_has_errors(model.spec):
                continue
            span = model.spec.span
            shown = [d for d in hidden if span.start <= d.span.start < span.end]
            if shown:
                extra += shown
                continue
            try:
                compiled = compile_spec(model, parsed.source.name, clip,
                                        _photo(model.spec, parsed.source.name, config))
            except Exception as error:  # noqa: BLE001 - one spec's failure must not stop the rest
                report_internal_error(bag, model.spec, error)
                continue
            nodes = [cm.node for cm in model.counterfactuals]  # set members included
            for cf, pair in zip(nodes, compiled, strict=True):
                pid = str(pair["id"])
                if not is_safe_id(pid):  # ids are checked by lint; this is the last wall
                    bag.report("invalid-id", cf.name.span, f"pair id {pid!r} is not path-safe",
                               help="use a path-safe spec id")
                elif pid in first_use:
                    other, other_cf = first_use[pid]
                    bag.report(
                        "duplicate-spec", cf.name.span,
                        f"pair id {pid!r} is already used by {other.source.name}:"
                        f"{other_cf.name.span.line}",
                        help="give the spec a different id or the counterfactual another name",
                    )
                else:
                    first_use[pid] = (parsed, cf)
                    pairs.append(pair)
        extra += finish(bag.items, parsed.source, config)
    diagnostics = sorted([*result.diagnostics, *extra], key=Diagnostic.sort_key)
    failed = any(d.level is Severity.ERROR for d in diagnostics)
    written = None
    if keep_going or not failed:
        written = write_pairs(out_dir, pairs)
    else:
        pairs = []
    return CompileResult(result, pairs, diagnostics, written)
