"""The lint pipeline, the only place that knows it whole:
read -> parse -> build the model -> run the checks -> suppress and select -> sort.

Nothing here prints; the CLI hands the result to `report.py`.
"""

from __future__ import annotations

import fnmatch
import gc
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cfspec.checks import CHECKS, FILE_CHECKS, Context
from cfspec.diagnostics.codes import ALL_CODES, Code, Severity, matches
from cfspec.diagnostics.records import Diagnostic, DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.lang import ast
from cfspec.lang.config import Config
from cfspec.lang.model import SpecModel, build
from cfspec.lang.parser import parse_partial
from cfspec.lang.tokens import ClipTokenizer, load_tokenizer

STDIN = "-"
SUFFIX = ".scm"


class UsageError(Exception):
    """A problem with how cfspec was called (exit 2), not with a spec."""


@dataclass
class Parsed:
    source: SourceFile
    module: ast.Module | None  # None on a syntax error: nothing is compiled from a broken file
    diagnostics: list[Diagnostic] = field(default_factory=list)
    models: list[SpecModel] = field(default_factory=list)
    # What could be read even with syntax errors (the parse the linter made), for the
    # language server's symbols: it needs no second parse.
    tree: ast.Module | None = None

    def spec_has_errors(self, spec: ast.Spec) -> bool:
        return any(
            d.level is Severity.ERROR and spec.span.start <= d.span.start < spec.span.end
            for d in self.diagnostics
        )


@dataclass
class LintResult:
    files: list[Parsed]

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [d for f in self.files for d in f.diagnostics]


def discover(paths: Iterable[str], config: Config) -> Iterator[str]:
    """Expand folders into their .scm files (sorted, minus `exclude`); keep files as given."""
    for raw in paths:
        if raw == STDIN:
            yield raw
            continue
        path = Path(raw)
        if path.is_dir():
            for found in sorted(path.rglob(f"*{SUFFIX}")):
                if found.is_file() and not _excluded(found, config):
                    yield str(found)
        elif path.is_file():
            yield raw  # named explicitly: always linted
        else:
            raise UsageError(f"{raw}: no such file or folder")


def nothing_to_check(paths: list[str], config: Config) -> str:
    """Why a run found no .scm file at all: checking nothing must not read as a pass."""
    excluded = [f for raw in paths if Path(raw).is_dir()
                for f in Path(raw).rglob(f"*{SUFFIX}") if f.is_file() and _excluded(f, config)]
    where = ", ".join(paths)
    if excluded:
        origin = f" in {config.source}" if config.source else ""
        return (f"{where}: no .scm file to check: all {len(excluded)} are excluded by `exclude`"
                f"{origin}; name the files to check them anyway")
    return f"{where}: no .scm file found"


def _excluded(path: Path, config: Config) -> bool:
    if not config.exclude:
        return False
    root = config.source.parent if config.source else Path.cwd()
    try:
        relative = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        relative = path.as_posix()
    parts = relative.split("/")
    for entry in config.exclude:
        e = entry.strip("/")
        if relative == e or relative.startswith(e + "/") or e in parts[:-1] \
                or fnmatch.fnmatch(relative, e) or fnmatch.fnmatch(path.name, e):
            return True
    return False


def read(name: str, config: Config) -> Parsed:
    """Read a file (or stdin) into a SourceFile; size and encoding problems are diagnostics."""
    try:
        return load(name, config.max_file_bytes)
    except OSError as error:
        display = "<stdin>" if name == STDIN else name
        raise UsageError(f"{display}: {error.strerror or error}") from error


def load(name: str, max_bytes: int | None) -> Parsed:
    """A file (or `-`: stdin) as text, never reading more than `max_bytes` + 1 bytes; a file
    too large or not UTF-8 is a diagnostic (`Parsed.diagnostics`). OSError for the caller.
    Lint and import read their inputs through here."""
    display = "<stdin>" if name == STDIN else name
    limit = -1 if max_bytes is None else max_bytes + 1
    if name == STDIN:
        data = sys.stdin.buffer.read(limit)
    else:
        size = Path(name).stat().st_size
        if max_bytes is not None and size > max_bytes:
            return _too_large(display, size, max_bytes)
        data = Path(name).read_bytes()
    if max_bytes is not None and len(data) > max_bytes:
        return _too_large(display, len(data), max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        good = data[: error.start].decode("utf-8", errors="replace")
        source = SourceFile(display, good)
        bag = DiagnosticBag(source)
        end = len(good)
        bag.report(
            "invalid-encoding",
            source.span(end, end),
            f"byte 0x{data[error.start]:02x} at offset {error.start} is not valid UTF-8",
            label="here",
            help="save the file as UTF-8",
        )
        return Parsed(source, None, bag.items)
    return Parsed(SourceFile(display, text.removeprefix("\ufeff")), None)


def too_large(display: str, size: int, max_bytes: int, what: str = "the file"
              ) -> tuple[SourceFile, list[Diagnostic]]:
    """`file-too-large` for an input not read (lint's and import's): an empty source to point
    at and the diagnostic."""
    source = SourceFile(display, "")
    bag = DiagnosticBag(source)
    bag.report(
        "file-too-large",
        source.span(0, 0),
        f"{what} is {size:,} bytes; the limit is {max_bytes:,}",
        label="not read",
        help="split it into several files, or raise `max-file-bytes` in [tool.cfspec]",
    )
    return source, list(bag.items)


def _too_large(display: str, size: int, max_bytes: int) -> Parsed:
    source, diagnostics = too_large(display, size, max_bytes)
    return Parsed(source, None, diagnostics)


def check(source: SourceFile, config: Config, tokenizer: ClipTokenizer | None = None) -> Parsed:
    """Parse and check one source; returns the module (None on a syntax error) and the
    diagnostics that survive suppression and selection, sorted by position."""
    if "\r" in source.text:
        # CRLF and old Mac files' lone CR: lark and SourceFile count lines by LF only, and a
        # comment would otherwise run on past a lone CR to the end of the file.
        text = source.text.replace("\r\n", "\n").replace("\r", "\n")
        source = SourceFile(source.name, text)
    bag = DiagnosticBag(source)
    # The AST is many small objects that all live until the end: the cyclic collector would
    # rescan them again and again (a third of the time on a 10 MB file) and find nothing.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _check(source, bag, config, tokenizer)
    finally:
        if paused:
            gc.enable()


def _check(
    source: SourceFile, bag: DiagnosticBag, config: Config, tokenizer: ClipTokenizer | None
) -> Parsed:
    before = len(bag.items)
    tree = parse_partial(source, bag)
    broken = any(d.code.name == "syntax-error" for d in bag.items[before:])
    module = None if broken else tree
    models = []
    if module is not None:
        for file_check in FILE_CHECKS:
            file_check(module, bag)
        for spec in module.specs:
            model = build(spec)
            models.append(model)
            ctx = Context(spec, model, bag, config, tokenizer)
            for run_check in CHECKS:
                run_check(ctx)
    return Parsed(source, module, finish(bag.items, source, config), models, tree)


def finish(diagnostics: list[Diagnostic], source: SourceFile, config: Config) -> list[Diagnostic]:
    """Apply --select/--ignore and inline suppressions; sort by position."""
    suppressions = Suppressions.scan(source.text)
    kept = [
        d for d in diagnostics
        if selected(d.code, config) and not suppressions.covers(d)
    ]
    return sorted(kept, key=Diagnostic.sort_key)


def selected(code: Code, config: Config) -> bool:
    return any(matches(code, s) for s in config.select) and not any(
        matches(code, s) for s in config.ignore
    )


_SUPPRESS_RE = re.compile(r"#\s*cfspec:\s*ignore(-file)?(?:\[([^\]]*)\])?")


@dataclass
class Suppressions:
    """`# cfspec: ignore[cycle, SCM203]` silences those codes on its line (all codes without
    brackets); `# cfspec: ignore-file[...]` anywhere silences them in the whole file."""

    by_line: dict[int, frozenset[str]]  # line -> the codes it silences
    file_wide: frozenset[str]

    @classmethod
    def scan(cls, text: str) -> Suppressions:
        by_line: dict[int, frozenset[str]] = {}
        file_wide: set[str] = set()
        if "cfspec:" not in text:
            return cls(by_line, frozenset())
        # split("\n"), not splitlines(): lines are numbered as SourceFile numbers them.
        for number, line in enumerate(text.split("\n"), start=1):
            for m in _SUPPRESS_RE.finditer(line):
                selectors = None if m.group(2) is None else [
                    c.strip() for c in m.group(2).split(",") if c.strip()]
                codes = _covered(selectors)
                if m.group(1):
                    file_wide |= codes
                else:
                    by_line[number] = by_line.get(number, frozenset()) | codes
        return cls(by_line, frozenset(file_wide))

    def covers(self, d: Diagnostic) -> bool:
        code = d.code.code
        return code in self.file_wide or code in self.by_line.get(d.span.line, ())


def _covered(selectors: list[str] | None) -> frozenset[str]:
    """The codes a list of selectors silences (all of them for a bare ignore): resolved once,
    so checking a diagnostic is a set lookup however many rules a file has."""
    if selectors is None:
        return frozenset(c.code for c in ALL_CODES)
    wanted = set(dict.fromkeys(selectors))
    return frozenset(c.code for c in ALL_CODES if any(matches(c, s) for s in wanted))


def lint(paths: Iterable[str], config: Config, tokenizer: str | None = None) -> LintResult:
    """Lint files and folders. Raises UsageError for missing paths or a bad tokenizer."""
    clip = resolve_tokenizer(tokenizer or config.tokenizer)
    paths = list(paths)
    names = list(discover(paths, config))
    if not names:
        raise UsageError(nothing_to_check(paths, config))
    files = []
    for name in names:
        parsed = read(name, config)
        if parsed.diagnostics:
            parsed.diagnostics = finish(parsed.diagnostics, parsed.source, config)
            files.append(parsed)
            continue
        files.append(check(parsed.source, config, clip))
    return LintResult(files)


def resolve_tokenizer(spec: str | None) -> ClipTokenizer | None:
    if not spec:
        return None
    try:
        return load_tokenizer(spec)
    except ValueError as error:
        raise UsageError(f"tokenizer: {error}") from error


MAX_FIX_PASSES = 10  # a fix that waited for another is applied in the next pass; never forever


@dataclass
class FixResult:
    result: LintResult  # what remains, linted after the last rewrite
    applied: dict[str, int]  # file -> fixes applied to it


def lint_fix(paths: Iterable[str], config: Config, tokenizer: str | None = None,
             unsafe: bool = False) -> FixResult:
    """Lint, apply the fixes attached to the diagnostics (the safe ones; the unsafe ones too
    with `unsafe`), rewrite each file in place, lint again, until nothing more applies.
    A rewrite that would add a syntax error is not written. UsageError for stdin (there is no
    file to rewrite) and for a file that cannot be written."""
    from cfspec.diagnostics.fixes import applicable, apply_fixes
    from cfspec.workspace.atomic import rewrite_in_place

    paths = list(paths)
    if STDIN in paths:
        raise UsageError("--fix rewrites files: it cannot fix stdin (`-`)")
    clip = resolve_tokenizer(tokenizer or config.tokenizer)
    applied: dict[str, int] = {}
    refused: set[str] = set()
    for _ in range(MAX_FIX_PASSES):
        result = lint(paths, config, tokenizer)
        wrote = False
        done: set[str] = set()  # a file named twice is fixed once a pass
        for parsed in result.files:
            name = parsed.source.name
            fixes = applicable(parsed.diagnostics, unsafe)
            if not fixes or name in refused or name in done:
                continue
            done.add(name)
            text, count = apply_fixes(parsed.source.text, fixes)
            if _adds_syntax_error(parsed, text, config, clip):
                refused.add(name)
                continue
            try:
                _rewrite(Path(name), text, rewrite_in_place)
            except OSError as error:
                raise UsageError(f"{name}: {error.strerror or error}") from error
            applied[name] = applied.get(name, 0) + count
            wrote = True
        if not wrote:
            return FixResult(result, applied)
    return FixResult(lint(paths, config, tokenizer), applied)


def _adds_syntax_error(parsed: Parsed, text: str, config: Config,
                       clip: ClipTokenizer | None) -> bool:
    def broken(diagnostics: list[Diagnostic]) -> bool:
        return any(d.code.name == "syntax-error" for d in diagnostics)

    after = check(SourceFile(parsed.source.name, text), config, clip)
    return broken(after.diagnostics) and not broken(parsed.diagnostics)


def _rewrite(path: Path, text: str, rewrite: Callable[[Path, str], None]) -> None:
    """Write fixed text back with the file's own line ends and byte-order mark: the linter
    read it with LF line ends and no mark."""
    raw = path.read_bytes()
    if b"\r\n" in raw:
        text = text.replace("\n", "\r\n")
    elif b"\r" in raw:
        text = text.replace("\n", "\r")
    if raw.startswith(b"\xef\xbb\xbf"):
        text = "\ufeff" + text
    rewrite(path, text)
