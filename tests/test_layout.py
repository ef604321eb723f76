"""The layout's rules, checked on the source: one implementation per diagnostic code.

A rule written twice drifts: `cfspec import` and `cfspec lint` would judge the same spec
differently. Each code is reported from one module; `import` reaches the graph rules through
`checks.graph`'s functions over any list of edges. What is still written twice is listed below,
and the list may only shrink: a new duplicate fails this test, and so does a fixed one left on
the list.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from cfspec.diagnostics.codes import BY_NAME

PACKAGE = Path(__file__).resolve().parent.parent / "cfspec"

# Reported by more than one module, on purpose: each reader says what does not parse in its own
# input, and compile re-checks pair ids as a last wall. Every rule about a spec's meaning is
# reported from exactly one module of checks/.
STILL_TWICE = {
    # Each reader reports what does not parse in its own input: .scm text, JSON, free text.
    "syntax-error": {"lang.parser", "importers.__init__", "importers.llm_json",
                     "importers.llm_text", "importers.coco_cf", "importers.passes.graph",
                     "importers.tables"},
    # Compile's last wall on pair ids (spec id + counterfactual), after lint's on spec ids.
    "invalid-id": {"compile.stage", "checks.specs"},
    "duplicate-spec": {"compile.stage", "checks.specs"},
}


def reporters() -> dict[str, set[str]]:
    """Code name -> the modules whose source passes it to a `report(...)` call."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name.endswith("report") and isinstance(first, ast.Constant) \
                    and first.value in BY_NAME:
                found[first.value].add(module)
    return found


def test_each_code_is_reported_from_one_module() -> None:
    twice = {code: modules for code, modules in reporters().items() if len(modules) > 1}
    assert twice == STILL_TWICE


def test_import_judges_with_the_checks() -> None:
    """The importer's passes report nothing of their own beyond reading the answer's arrows and
    comparing SCM with SCM_aug, which no .scm holds."""
    found = reporters()
    own = {code for code, modules in found.items()
           if any(m.startswith("importers.passes.") for m in modules)}
    assert own == {"syntax-error", "unexplained-graph-change"}


def test_the_graph_rules_have_one_implementation() -> None:
    found = reporters()
    for code in ("cycle", "self-loop", "duplicate-edge"):
        assert found[code] == {"checks.graph"}, code
    assert found["caption-artefact"] == {"checks.interventions"}
    assert found["prompt-too-long"] == {"checks.edits"}
    assert found["too-many-interventions"] == {"checks.interventions"}
    assert found["non-minimal-change"] == {"checks.interventions"}


def test_every_code_is_reported_somewhere() -> None:
    found = reporters()
    # Raised through a helper that takes the code as a variable, or only by the stages.
    indirect = {"invalid-manifest", "invalid-metrics-file", "invalid-filter-file",
                "invalid-answers-file",
                "multiple-graphs", "duplicate-setting", "duplicate-spec", "invalid-encoding"}
    missing = set(BY_NAME) - set(found) - indirect
    assert not missing, sorted(missing)


# --- the import rules --------------------------------------------------------------------------

# Lowest first. A module may import its own layer and the layers below it, never one above: data
# flows one way, from the text of a spec to the dataset.
LAYERS = (
    ("cfspec", "cfspec.resources"),  # the package root: its version and where data files lie
    ("cfspec.diagnostics",),
    ("cfspec.lang",),
    ("cfspec.questions",),  # questions from a spec's model; pairs.jsonl carries the records
    ("cfspec.workspace",),
    ("cfspec.checks",),
    ("cfspec.lint", "cfspec.fmt"),
    ("cfspec.compile",),
    ("cfspec.importers", "cfspec.lsp"),
    ("cfspec.stages", "cfspec.gpu", "cfspec.ask"),  # ask: captions -> LLM -> lint -> .scm
    # pipeline: run's plan, beside the commands it chains (it exits with cli.common's codes)
    ("cfspec.cli", "cfspec.__main__", "cfspec.pipeline"),
)
# These never import torch (nor diffusers, transformers): the linter, the compiler and the
# importers must start fast and run where no GPU library is installed.
TORCH_FREE = ("cfspec.diagnostics", "cfspec.lang", "cfspec.questions", "cfspec.workspace",
              "cfspec.checks", "cfspec.lint", "cfspec.fmt", "cfspec.compile", "cfspec.importers",
              "cfspec.lsp")
HEAVY = ("torch", "diffusers", "transformers", "accelerate", "torchmetrics")


def layer_of(module: str) -> int:
    best, found = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    return found


def imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> every module it imports, at the top or inside a function (lazy imports too)."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names |= {f"{node.module}.{alias.name}" for alias in node.names}
        found[module] = names
    return found


def test_every_module_has_a_layer() -> None:
    assert [m for m in imports() if layer_of(m) < 0] == []


def upward_imports(known: dict[str, set[str]]) -> list[str]:
    # `from cfspec.x import y` also names `cfspec.x.y`: it counts only when y is a module.
    return sorted(f"{module} -> {name}" for module, names in known.items() for name in names
                  if name in known and layer_of(name) > layer_of(module))


def heavy_imports(known: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} -> {name}" for module, names in known.items()
                  if module.startswith(TORCH_FREE) for name in names
                  if name.split(".")[0] in HEAVY)


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports(imports()) == []


def test_the_light_layers_never_import_torch() -> None:
    assert heavy_imports(imports()) == []


def test_gpu_libraries_load_at_module_level_only_in_gpu() -> None:
    """Outside cfspec/gpu/ a GPU library is imported inside the function that needs it, so
    importing any other module (the CLI registering every command, the filter, the report)
    never loads one."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if module.startswith("cfspec.gpu."):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            found += [f"{module} -> {n}" for n in names if n.split(".")[0] in HEAVY]
    assert found == []


def test_the_rules_catch_what_they_forbid(tmp_path: Path) -> None:
    """The checker on a made-up package: a check that reaches for a stage, and a lazy torch
    import inside a function of lang/, are both caught; the allowed direction is not."""
    package = tmp_path / "cfspec"
    for folder in ("checks", "stages", "lang"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "stages" / "filter.py").write_text("from cfspec.checks import graph\n")
    (package / "checks" / "graph.py").write_text("from cfspec.stages.filter import Gates\n")
    (package / "lang" / "prompt.py").write_text("def f():\n    import torch\n")
    known = imports(package)
    assert upward_imports(known) == ["cfspec.checks.graph -> cfspec.stages.filter"]
    assert heavy_imports(known) == ["cfspec.lang.prompt -> torch"]


def test_the_exit_codes_and_fail_are_defined_once() -> None:
    """Every command exits through cli/common.py: one set of codes, one way to fail."""
    defined: dict[str, list[str]] = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level
            if isinstance(node, ast.FunctionDef) and node.name in ("fail", "_fail"):
                defined[node.name].append(module)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names = target.elts if isinstance(target, ast.Tuple) else [target]
                    for name in names:
                        # EXIT_*, or the same codes under a shorter name (pipeline had them)
                        if isinstance(name, ast.Name) and (name.id.startswith("EXIT_") or name.id
                                                           in ("ERRORS", "USAGE")):
                            defined[name.id].append(module)
    assert dict(defined) == {"fail": ["cli.common"], "EXIT_OK": ["cli.common"],
                             "EXIT_ERRORS": ["cli.common"], "EXIT_USAGE": ["cli.common"]}


def test_keywords_are_the_grammars_keyword_terminals() -> None:
    """The keyword list every module uses (recovery, the language server, the importers' name
    escaping) is read from the grammar; lark's own reading of the grammar must agree."""
    from lark import Lark
    from lark.lexer import PatternStr

    from cfspec.lang.keywords import keyword_terminals
    from cfspec.lang.parser import grammar_path

    lark = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr")
    words = {t.name: t.pattern.value for t in lark.terminals
             if isinstance(t.pattern, PatternStr) and t.pattern.value.isidentifier()}
    assert keyword_terminals() == words
    assert {"counterfactuals", "in", "uniform"} <= set(keyword_terminals().values())


# --- circles, size and complexity ---------------------------------------------------------------

def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:`: they never run, so they tie nothing."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found |= {id(inner) for inner in ast.walk(node)}
    return found


def runtime_imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the modules of the package it imports when it runs (lazy imports too).
    `from P import n` ties to P.n when n is a module, else to P itself (its __init__)."""
    sources = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        sources[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    found: dict[str, set[str]] = {}
    for module, path in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        names: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    names.add(sub if sub in sources else node.module)
        found[module] = {name for name in names if name in sources and name != module}
    return found


def circles(known: dict[str, set[str]]) -> list[list[str]]:
    """The import circles (strongly connected sets of modules), each sorted."""
    import networkx as nx

    graph = nx.DiGraph((module, name) for module, names in known.items() for name in names)
    return sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)


# Circles left from before the rule; the list may only shrink (a fixed one left here fails).
STILL_CIRCULAR: list[list[str]] = []


def test_no_import_circles() -> None:
    """A module never imports, even lazily, one that imports it back: data flows one way inside
    a package as between the layers (a package's __init__ included)."""
    assert circles(runtime_imports()) == STILL_CIRCULAR


def test_the_circle_rule_catches_a_circle(tmp_path: Path) -> None:
    package = tmp_path / "cfspec"
    (package / "lang").mkdir(parents=True)
    for name, text in {"__init__.py": "", "lang/__init__.py": "from cfspec.lang import a\n",
                       "lang/a.py": "def f():\n    from cfspec.lang import helper\n",
                       "lang/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                    "    from cfspec.lang import a\n"}.items():
        (package / name).write_text(text)
    assert circles(runtime_imports(package)) == [["cfspec.lang", "cfspec.lang.a"]]


# Generated (the parser's tables), or longer than a newcomer reads in one sitting, from before
# the rule; the list may only shrink.
MAX_LINES = 600
GENERATED = {"lang/lalr_tables.py"}
STILL_LONG: set[str] = set()


def test_no_module_over_600_lines() -> None:
    long = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
            if len(path.read_text(encoding="utf-8").splitlines()) > MAX_LINES}
    assert long - GENERATED == STILL_LONG


# Finding words: one API, `cfspec.lang.words` (`find_phrase`, `align`). A second copy drifts
# (lint once skipped punctuation in a phrase and compile did not, so a blend lint accepted
# compiled to an empty local_blend). Where a word search is still written outside it, from
# before the rule; the list may only shrink.
WORD_MODULE = "lang.words"
STILL_OWN_WORD_SEARCH = {
    "checks.names": {"slice-window"},  # a do() value's words in the counterfactual prompt
}


def _window_compare(node: ast.AST) -> bool:
    """`keys[i : i + n] == wanted`: a phrase searched for by sliding a window over words."""
    if not isinstance(node, ast.Compare) or not any(isinstance(op, ast.Eq) for op in node.ops) \
            or any(isinstance(side, ast.Constant) for side in node.comparators):
        return False  # `text[i : i + 2] == "\r\n"` looks for characters, not words
    for side in (node.left, *node.comparators):
        if isinstance(side, ast.Subscript) and isinstance(side.slice, ast.Slice):
            upper = side.slice.upper
            if isinstance(upper, ast.BinOp) and isinstance(upper.op, ast.Add) \
                    and side.slice.lower is not None \
                    and ast.dump(upper.left) == ast.dump(side.slice.lower):
                return True
    return False


def _names_a_phrase_search(name: str) -> bool:
    return name == "_find" or "phrase" in name \
        and any(verb in name for verb in ("find", "hit", "search", "match"))


def own_word_searches(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> what it does that belongs to the word module: `SequenceMatcher` (aligning
    words; difflib's close-match suggestions are fine), a function named like a phrase search,
    or a sliding-window comparison over words."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in package.rglob("*.py"):
        module = ".".join(path.relative_to(package).with_suffix("").parts)
        if module == WORD_MODULE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
            if name == "SequenceMatcher" or isinstance(node, ast.ImportFrom) \
                    and any(alias.name == "SequenceMatcher" for alias in node.names):
                found[module].add("SequenceMatcher")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) \
                    and _names_a_phrase_search(node.name):
                found[module].add(f"def {node.name}")
            if _window_compare(node):
                found[module].add("slice-window")
    return dict(found)


def test_words_are_found_in_one_module() -> None:
    assert own_word_searches() == STILL_OWN_WORD_SEARCH


def test_the_word_rule_catches_a_private_search(tmp_path: Path) -> None:
    package = tmp_path / "cfspec"
    (package / "lang").mkdir(parents=True)
    for name, text in {
        "lang/words.py": "def find_phrase(keys, wanted):\n"
                         "    return [i for i in range(9) if keys[i : i + 2] == wanted]\n",
        "report.py": "import difflib\nm = difflib.SequenceMatcher(None, 'a', 'b')\n"
                     "near = difflib.get_close_matches('x', ['y'])\n",
        "lint.py": "from difflib import SequenceMatcher\n",
        "importer.py": "def _phrase_hits(keys, toks):\n    yield 0\n",
        "compile.py": "def _find(keys, wanted, n):\n"
                      "    return any(keys[i : i + n] == wanted for i in range(9))\n",
    }.items():
        (package / name).write_text(text)
    assert own_word_searches(package) == {
        "report": {"SequenceMatcher"}, "lint": {"SequenceMatcher"},
        "importer": {"def _phrase_hits"},
        "compile": {"def _find", "slice-window"}}
