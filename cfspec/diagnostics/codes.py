"""The registry of diagnostic codes: identity (code, name), default severity and a one-line
summary. Codes are stable and numbered by family; the long explanations with a failing and a
fixed example live in `cfspec/diagnostics/explain/<name>.md`, loaded only by `cfspec explain`.

Families: SCM0xx file and syntax, SCM1xx names and bindings, SCM2xx the causal graph,
SCM3xx counterfactuals and interventions, SCM4xx Prompt-to-Prompt and the text encoder,
SCM5xx prompt templates, SCM6xx the files cfspec writes and reads back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    name: str
    severity: Severity
    summary: str


E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTE

_ALL = (
    # SCM0xx: the file and its syntax
    Code("SCM001", "syntax-error", E, "The text does not parse."),
    Code("SCM002", "invalid-encoding", E, "The file is not valid UTF-8 text."),
    Code("SCM003", "file-too-large", E, "The file is larger than the configured limit."),
    Code("SCM004", "invalid-id", E, "A spec id is not path-safe ([A-Za-z0-9][A-Za-z0-9._-]*)."),
    Code("SCM005", "missing-prompt", E, "A spec has no prompt, so there is nothing to render."),
    Code("SCM006", "duplicate-setting", E,
         "The same setting (id, prompt, image, edit) is given twice."),
    Code("SCM007", "duplicate-spec", E, "Two specs share a name or an id."),
    Code("SCM008", "multiple-graphs", N,
         "An imported answer states its graph more than once; the last complete one is used."),
    Code("SCM009", "internal-error", E,
         "cfspec failed on this spec (a bug in cfspec); the other specs go on."),
    Code("SCM010", "image-not-found", E,
         "A spec's `image` names no file that can be read."),
    Code("SCM011", "not-an-image", E,
         "A spec's `image` is not a PNG, JPEG, WebP, GIF, BMP or TIFF file."),
    # SCM1xx: names and how variables bind to the prompt
    Code("SCM101", "undefined-variable", E,
         "An edge, prompt or assignment names a variable that is not declared."),
    Code("SCM102", "duplicate-variable", E, "A variable is declared twice."),
    Code("SCM103", "unused-variable", W,
         "A variable takes part in no edge and no intervention."),
    Code("SCM104", "span-not-in-prompt", W, "A variable's words are not found in the prompt."),
    Code("SCM105", "duplicate-counterfactual", E, "Two counterfactuals share a name."),
    Code("SCM106", "ask-not-yes-no", W,
         "A variable's own question (`ask`) is not a yes/no question."),
    # SCM2xx: the causal graph
    Code("SCM201", "cycle", E, "The graph is not acyclic."),
    Code("SCM202", "self-loop", E, "An edge goes from a variable to itself."),
    Code("SCM203", "duplicate-edge", W, "The same edge is listed twice."),
    Code("SCM204", "empty-graph", E,
         "Nothing to reason about: no variables (error) or no edges (warning)."),
    # SCM3xx: counterfactuals and interventions
    Code("SCM301", "unknown-intervention-target", E,
         "do() names a variable the model does not have."),
    Code("SCM302", "no-op-intervention", E, "The counterfactual prompt equals the factual one."),
    Code("SCM303", "too-many-interventions", E,
         "More independent interventions than allowed (default 1 per counterfactual)."),
    Code("SCM304", "non-minimal-change", E,
         "Words change that belong to neither an intervened variable nor its descendants."),
    Code("SCM305", "unexplained-graph-change", E,
         "The counterfactual graph adds or removes edges that do()-surgery does not explain."),
    Code("SCM306", "unchanged-intervention-value", W,
         "An intervention sets a variable to the words it already has."),
    Code("SCM307", "no-counterfactuals", W, "A spec declares no counterfactual."),
    Code("SCM308", "conflicting-assignment", E,
         "A counterfactual gives the same variable new words twice."),
    Code("SCM309", "caption-artefact", W,
         "Two captions differ only in how they are written (spacing, quotes, split "
         "contractions), not in content."),
    Code("SCM310", "extra-counterfactuals", W,
         "A counterfactual of an imported row is left out (it equals the caption, repeats "
         "another, or changes words the others do not)."),
    Code("SCM311", "empty-value-list", E, "A counterfactual set's `in` list holds no value."),
    Code("SCM312", "duplicate-set-value", W,
         "A counterfactual set's `in` list holds the same words twice."),
    Code("SCM313", "empty-counterfactual-set", E,
         "A counterfactual set expands to no counterfactual: every combination is the factual."),
    Code("SCM314", "set-name-collision", E,
         "Two members of a counterfactual set get the same name (their values' slugs agree)."),
    Code("SCM315", "set-too-large", E,
         "A counterfactual set has more combinations than allowed (1000)."),
    # SCM4xx: Prompt-to-Prompt and the text encoder
    Code("SCM401", "replace-length-mismatch", E,
         "A replace edit whose two word sequences differ in length."),
    Code("SCM402", "prompt-too-long", E, "A prompt is longer than the text encoder's 77 tokens."),
    Code("SCM403", "edit-word-not-found", E,
         "A blend, reweight or per-word step names a word that is not in its prompt."),
    Code("SCM404", "invalid-edit-setting", E,
         "An edit setting is out of range or does not fit the edit type."),
    Code("SCM405", "article-mismatch", W,
         "An 'a'/'an' no longer agrees with the word after it once words are substituted."),
    Code("SCM406", "dangling-determiner", W,
         "A counterfactual removes words but leaves their article or determiner ('rides a on'), "
         "or puts one before another."),
    Code("SCM407", "agreement-mismatch", W,
         "A verb or pronoun no longer agrees with the noun substituted before it."),
    # SCM5xx: prompt templates
    Code("SCM501", "template-error", E,
         "The prompt template uses syntax other than {{ VAR }} and {{ VAR | filter }}."),
    # SCM6xx: files cfspec reads back (pairs.jsonl, the manifest, the images, ...)
    Code("SCM601", "invalid-pairs-file", E,
         "A line of pairs.jsonl is not valid JSON or does not match pair.schema.json."),
    Code("SCM602", "invalid-manifest", E,
         "A line of manifest.jsonl is malformed or does not match pairs.jsonl or its files."),
    Code("SCM603", "invalid-metrics-file", E,
         "A line of metrics.jsonl is malformed or does not match pairs.jsonl."),
    Code("SCM604", "invalid-filter-file", E,
         "A line of filter.jsonl is malformed or does not match pairs.jsonl."),
    Code("SCM605", "damaged-file", E,
         "An image or .npz that generate wrote is truncated, not what it claims, or the "
         "wrong size."),
    Code("SCM606", "invalid-answers-file", E,
         "A line of answers.jsonl is malformed or does not match pairs.jsonl."),
)

# The codes whose checks attach a fix (`cfspec lint --fix`, the editor's quick fixes), and
# what it does. A new fix is listed here; tests/test_fixes.py then wants a fixture it fixes.
FIXES: dict[str, str] = {
    "undefined-variable": "change to the declared name it misspells (safe when they differ only "
                          "in case), else declare it (unsafe)",
    "unknown-intervention-target": "as undefined-variable",
    "self-loop": "remove the edge (safe)",
    "duplicate-edge": "remove the repeat (safe)",
    "cycle": "remove the smallest set of edges that breaks it (unsafe)",
    "article-mismatch": "give the placeholder the `a` filter, so the article follows the words "
                        "(safe)",
    "syntax-error": "a misspelt keyword: change it to the keyword it is closest to, the one the "
                    "parser reads on with (safe)",
}

BY_CODE: dict[str, Code] = {c.code: c for c in _ALL}
BY_NAME: dict[str, Code] = {c.name: c for c in _ALL}
ALL_CODES: tuple[Code, ...] = _ALL


def lookup(code_or_name: str) -> Code | None:
    """Find a code by its number (`SCM201`, case-insensitive) or its name (`cycle`)."""
    key = code_or_name.strip()
    return BY_CODE.get(key.upper()) or BY_NAME.get(key.lower())


def matches(code: Code, selector: str) -> bool:
    """Whether a --select/--ignore selector covers a code: a name, a full code, a code prefix
    (`SCM2`), or `ALL`."""
    s = selector.strip()
    if s.upper() == "ALL":
        return True
    return code.name == s.lower() or code.code.startswith(s.upper())


def unknown_selector(selector: str) -> str | None:
    """Why a --select/--ignore selector is no good (it matches no code), with a did-you-mean;
    None when it matches. A typo must never switch a check off silently."""
    if any(matches(c, selector) for c in _ALL):
        return None
    import difflib

    pool = [c.name for c in _ALL] + [c.code for c in _ALL]
    close = difflib.get_close_matches(selector.strip().lower(), [p.lower() for p in pool], n=1,
                                      cutoff=0.6)
    hint = ""
    if close:
        hint = f"; did you mean `{next(p for p in pool if p.lower() == close[0])}`?"
    return f"`{selector}` matches no diagnostic code{hint} (`cfspec codes` lists them)"


def markdown_table() -> str:
    """The README's table of codes, generated so it never drifts from the registry."""
    rows = ["| code | name | severity | meaning |", "|---|---|---|---|"]
    rows += [f"| {c.code} | `{c.name}` | {c.severity.value} | {c.summary} |" for c in _ALL]
    return "\n".join(rows) + "\n"
