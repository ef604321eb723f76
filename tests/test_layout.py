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
                     "importers.llm_text", "importers.coco_cf", "importers.analysis"},
    "file-too-large": {"lint", "importers.__init__"},
    # Compile's last wall on pair ids (spec id + counterfactual), after lint's on spec ids.
    "invalid-id": {"lint", "checks.specs"},
    "duplicate-spec": {"lint", "checks.specs"},
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
    """The importer reports nothing of its own beyond reading its input and comparing SCM
    with SCM_aug, which no .scm holds."""
    found = reporters()
    own = {code for code, modules in found.items() if "importers.analysis" in modules}
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
                "multiple-graphs", "duplicate-setting", "duplicate-spec", "invalid-encoding"}
    missing = set(BY_NAME) - set(found) - indirect
    assert not missing, sorted(missing)
