"""The VS Code extension's TextMate grammar, tokenized as VS Code does (vscode-textmate on
vscode-oniguruma, from the npm registry) over the bundled specs: every token class the grammar
defines shows up, and every token of cfspec's own lexer lands in the class it should (keywords
as keywords, each kind of name as that kind, strings, numbers, comments, punctuation)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.parser import _lark, parse

ROOT = Path(__file__).resolve().parent.parent
VSCODE = ROOT / "editors" / "vscode"
GRAMMAR = VSCODE / "syntaxes" / "cfspec.tmLanguage.json"
TOUR = VSCODE / "test" / "tour.scm"

# Classes the bundled specs do not use; test/tour.scm shows them.
ONLY_IN_TOUR = {"constant.character.escape.cfspec", "keyword.other.directive.suppress.cfspec"}


def spec_files() -> list[Path]:
    files = []
    for path in sorted((ROOT / "specs").rglob("*.scm")):
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # the invalid-encoding fixture
        files.append(path)
    return files


@pytest.fixture(scope="module")
def tokens() -> dict[Path, list[tuple[int, int, int, str, list[str]]]]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run vscode-textmate")
    if not (VSCODE / "node_modules" / "vscode-textmate").is_dir():
        install = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=VSCODE,
                                 capture_output=True, text=True, check=False, timeout=600)
        if install.returncode != 0:
            pytest.skip("npm could not install vscode-textmate and vscode-oniguruma "
                        f"(no registry?): {install.stderr[-500:]}")
    files = [*spec_files(), TOUR]
    result = subprocess.run(["node", "test/tokenize.js", *map(str, files)], cwd=VSCODE,
                            capture_output=True, text=True, check=True, timeout=300)
    return {Path(item["file"]): [tuple(t) for t in item["tokens"]]  # type: ignore[misc]
            for item in json.loads(result.stdout)}


def grammar_scopes() -> set[str]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "name" and isinstance(value, str) and value.endswith(".cfspec"):
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return set(walk(json.loads(GRAMMAR.read_text(encoding="utf-8"))))


def test_every_token_class_is_covered(tokens: dict[Path, list[Any]]) -> None:
    defined = grammar_scopes()
    assert len(defined) > 30

    def seen(paths: list[Path]) -> set[str]:
        return {scope for p in paths for *_, scopes in tokens[p] for scope in scopes}

    bundled = [p for p in tokens if p != TOUR]
    assert defined - seen(bundled) == ONLY_IN_TOUR
    assert defined <= seen(list(tokens))


# What each terminal of grammar/scm.lark must be shown as: a scope prefix.
SCOPE_OF = {
    "COMMENT": ("comment.line.number-sign",),
    "STRING": ("string.quoted.double",),
    "NUMBER": ("constant.numeric",),
    "ARROW": ("keyword.operator.arrow",),
    "EQUAL": ("keyword.operator.assignment",),
    "COLON": ("punctuation.separator.kind",),
    "COMMA": ("punctuation.separator.comma",),
    "LBRACE": ("punctuation.section.block.begin",),
    "RBRACE": ("punctuation.section.block.end",),
    "LPAR": ("punctuation.section.parens.begin",),
    "RPAR": ("punctuation.section.parens.end",),
    "LSQB": ("punctuation.section.brackets.begin",),
    "RSQB": ("punctuation.section.brackets.end",),
    "NONE": ("constant.language.none",),
    "NAME": ("variable.other", "entity.name"),
}
KEYWORD_SCOPES = ("storage.type.", "keyword.control.", "keyword.other.setting",
                  "support.function.edit-setting", "support.type.edit-type")


def lark_tokens(text: str) -> list[Any]:
    """Every token of cfspec's own lexer, in the parser's context (a keyword spelt as a name is
    a name where the grammar wants one), comments included."""
    found: list[Any] = []
    from cfspec.lang import parser

    with parser.collecting_comments() as comments:
        interactive = _lark().parse_interactive(text)
        for token in interactive.iter_parse():
            found.append(token)
    return found + comments


@pytest.mark.parametrize("path", [*spec_files(), TOUR], ids=lambda p: p.name)
def test_lexer_tokens_get_their_class(path: Path, tokens: dict[Path, list[Any]]) -> None:
    text = path.read_text(encoding="utf-8")
    source = SourceFile(str(path), text)
    module = parse(source, DiagnosticBag(source))
    if module is None:
        pytest.skip("does not parse (a syntax-error fixture)")
    names = {}
    for spec in module.specs:
        names[spec.name.span.start] = "entity.name.namespace"
        for var in spec.variables:
            names[var.name.span.start] = "variable.other.definition"
            if var.kind is not None:
                names[var.kind.span.start] = "entity.name.type.kind"
        for cf in spec.blocks:  # counterfactuals and counterfactual sets
            names[cf.name.span.start] = "entity.name.function.counterfactual"
    by_start = {(line, start): scopes for line, start, _, _, scopes in tokens[path]}
    lines = text.split("\n")
    for token in lark_tokens(text):
        column = len(lines[token.line - 1][: token.column - 1].encode("utf-16-le")) // 2
        scopes = by_start.get((token.line - 1, column))
        assert scopes is not None, f"{path.name}:{token.line}:{token.column}: {token!r} " \
            "does not start a TextMate token"
        wanted = (names[token.start_pos],) if token.start_pos in names else \
            SCOPE_OF.get(token.type, KEYWORD_SCOPES)
        assert any(s.startswith(w) for s in scopes for w in wanted), (
            f"{path.name}:{token.line}:{token.column}: {token.type} {str(token)!r} is shown as "
            f"{scopes[1:]}, not {wanted}")
