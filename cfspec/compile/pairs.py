"""Checked specs -> pairs (pure data): one record per counterfactual with both prompts, the
intervention, the Prompt-to-Prompt edit map and the graphs before and after do()-surgery.

The record's shape is `pair.schema.json`; `workspace/pairs.py` validates and writes it.
"""

from __future__ import annotations

from typing import Any

from cfspec.compile.align import Tokens, refine_map, replace_map, tokenize
from cfspec.lang import ast
from cfspec.lang.model import CounterfactualModel, SpecModel
from cfspec.lang.prompt import BoundPrompt, Change, diff
from cfspec.lang.tokens import ClipTokenizer
from cfspec.lang.words import find_phrase
from cfspec.questions.build import build as build_questions
from cfspec.workspace.photos import Photo

DEFAULT_CROSS_REPLACE = (0.0, 0.8)
DEFAULT_SELF_REPLACE = (0.0, 0.4)
DEFAULT_BLEND_THRESHOLD = 0.3
ARROW = "→"


def pair_id(spec_id: str, counterfactual: str) -> str:
    return f"{spec_id}__{counterfactual}"


def compile_spec(
    model: SpecModel, source_name: str, tokenizer: ClipTokenizer | None = None,
    image: Photo | None = None,
) -> list[dict[str, Any]]:
    """Pairs of one spec that passed the checks (no errors), in declaration order. The prompts
    are the ones the checks judged (`SpecModel.prompt_0`, `CounterfactualModel.prompt_1`, both
    from `lang.prompt.render`): nothing is rendered a second time here. `image`: the spec's
    photo as the caller found it on disk, written into every pair."""
    assert model.prompt_0 is not None and model.frame is not None
    scm = edge_strings(model.spec, model)
    return [_pair(model, cm, source_name, scm, tokenizer, image) for cm in model.counterfactuals]


def _pair(
    model: SpecModel,
    cm: CounterfactualModel,
    source_name: str,
    scm: list[str],
    tokenizer: ClipTokenizer | None,
    image: Photo | None,
) -> dict[str, Any]:
    spec, p0, p1 = model.spec, model.prompt_0, cm.prompt_1
    assert p0 is not None and p1 is not None
    words = model.words()
    new = cm.new_words()
    intervention = [
        {"variable": name, "from": words.get(name), "to": new[name]} for name in cm.interventions
    ]
    descendants = [
        {"variable": name, "from": words.get(name), "to": new[name]}
        for name in cm.sets
        if name not in cm.interventions
    ]
    photo = {} if image is None else {"image": image.to_json()}  # absent without a photo
    return {
        "id": pair_id(spec.spec_id, cm.node.name.text),
        "spec": source_name,
        "spec_name": spec.name.text,
        "counterfactual": cm.node.name.text,
        "prompt_0": p0.text,
        "prompt_1": p1.text,
        **photo,
        "intervention": intervention,
        "descendant_changes": descendants,
        "edit": edit_map(cm, p0, p1, tokenizer),
        "word_spans": word_spans(cm, p0, p1),
        "scm": scm,
        "scm_aug": edge_strings(spec, model, cm),
        "questions": [q.to_json() for q in build_questions(model, cm)],
    }


def edge_strings(
    spec: ast.Spec, model: SpecModel, cm: CounterfactualModel | None = None
) -> list[str]:
    """Edges in the reference study's `"A → B: description"` form. With a counterfactual, the
    graph after do()-surgery: edges into intervened variables are cut, and intervened variables
    carry their new words (`W=man`, `K=none`)."""
    out, seen = [], set()
    for edge in spec.edges:
        s, t = edge.source.text, edge.target.text
        if (s, t) in seen or s not in model.variables or t not in model.variables:
            continue
        seen.add((s, t))
        if cm is not None:
            if t in cm.interventions:
                continue
            s = _intervened_name(s, cm)
        line = f"{s} {ARROW} {t}"
        out.append(f"{line}: {_one_line(edge.description.value)}" if edge.description else line)
    return out


def _one_line(text: str) -> str:
    """Words for an edge string, which is one line: a caption's newlines and tabs are its own
    (the prompts keep them), but in a graph label they are spaces."""
    return " ".join(text.split())


def _intervened_name(name: str, cm: CounterfactualModel) -> str:
    if name not in cm.interventions:
        return name
    value = cm.new_words()[name]
    return f"{name}={'none' if value is None else _one_line(value)}"


# --- the Prompt-to-Prompt edit map ----------------------------------------------------------


def edit_type(cm: CounterfactualModel, p0: BoundPrompt, p1: BoundPrompt) -> str:
    """The forced type, else: reweight when only emphasis changes, replace when every changed
    span keeps its word count, refine otherwise."""
    forced = next((e.type.text for e in cm.node.edits if e.type is not None), None)
    if forced:
        return forced
    changes = diff(p0, p1)
    if not changes and _items(cm, ast.Reweight):
        return "reweight"
    return "replace" if all(len(c.before) == len(c.after) for c in changes) else "refine"


def _items(cm: CounterfactualModel, kind: type) -> list[Any]:
    return [i for e in cm.node.edits for i in e.items if isinstance(i, kind)]


def _window(steps: ast.Schedule) -> list[float]:
    if isinstance(steps, ast.Uniform):
        # Tools that ignore `edit.sample` get the middle of the range, fixed.
        return [0.0, (steps.low.value + steps.high.value) / 2]
    if steps.end is None:
        return [0.0, steps.start.value]
    return [steps.start.value, steps.end.value]


def edit_map(
    cm: CounterfactualModel, p0: BoundPrompt, p1: BoundPrompt, tokenizer: ClipTokenizer | None
) -> dict[str, Any]:
    kind = edit_type(cm, p0, p1)
    t0, t1 = tokenize(p0, tokenizer), tokenize(p1, tokenizer)
    changes = diff(p0, p1)

    cross_default = list(DEFAULT_CROSS_REPLACE)
    cross_words: dict[str, list[float]] = {}
    default_set = False
    sample: dict[str, Any] = {}
    for item in _items(cm, ast.CrossReplace):
        if item.word is None:
            cross_default = _window(item.steps)
            default_set = True
            if isinstance(item.steps, ast.Uniform):
                sample["cross_replace"] = _uniform(item.steps)
        else:
            found = _word_indices(p1, item.word.value) or _word_indices(p0, item.word.value)
            word = " ".join((p1 if _word_indices(p1, item.word.value) else p0).words[i].text
                            for i in found) or item.word.value
            cross_words[word] = _window(item.steps)
    self_items = _items(cm, ast.SelfReplace)
    self_window = _window(self_items[-1].steps) if self_items else list(DEFAULT_SELF_REPLACE)
    if self_items and isinstance(self_items[-1].steps, ast.Uniform):
        sample["self_replace"] = _uniform(self_items[-1].steps)

    alignment: dict[str, Any] = {
        "source": "clip" if tokenizer else "words",
        "tokens_0": list(t0.pieces),
        "tokens_1": list(t1.pieces),
    }
    if kind == "replace" or kind == "reweight":
        pairs = _word_pairs(p0, p1)
        alignment["words"] = [[a, b] for a, b in pairs]
        alignment["token_map"] = [
            [a, b, w] for a, b, w in replace_map(t0, t1, pairs)
        ]
    else:
        mapper = refine_map(t0, t1)
        alignment["token_map"] = mapper
        alignment["inserted"] = [j for j, i in enumerate(mapper) if i == -1]

    cross: dict[str, Any] = {"default": cross_default, "words": cross_words}
    if cross_words and not default_set:
        cross["default_set"] = False  # the published profile then uses (0, 1), as P2P does
    out = {
        "type": kind,
        "cross_replace_steps": cross,
        "self_replace_steps": self_window,
        "local_blend": _local_blend(cm, changes, t0, t1, p0, p1),
        "equalizer": _equalizer(cm, t1, p1),
        "alignment": alignment,
    }
    if sample:  # absent when nothing is drawn: the schema wants at least one entry
        out["sample"] = sample
    return out


def _uniform(steps: ast.Uniform) -> dict[str, list[float]]:
    """`edit.sample`'s entry: generate draws x ~ U(low, high) per (pair, seed), window [0, x]."""
    return {"uniform": [steps.low.value, steps.high.value]}


def _word_pairs(p0: BoundPrompt, p1: BoundPrompt) -> list[tuple[int, int]]:
    """One-to-one word pairs for a replace edit (equal-length changed spans)."""
    pairs: list[tuple[int, int]] = []
    i = j = 0
    for c in diff(p0, p1):
        while i < c.i0:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        for _ in c.before:
            pairs.append((i, j))
            i, j = i + 1, j + 1
    while i < len(p0.words) and j < len(p1.words):
        pairs.append((i, j))
        i, j = i + 1, j + 1
    return pairs


def _word_indices(prompt: BoundPrompt, phrase: str) -> list[int]:
    """Word indices of a phrase in a prompt: `find_phrase`, as lint looks words up."""
    return find_phrase([w.text for w in prompt.words], phrase)


def _tokens_of(tokens: Tokens, word_indices: list[int]) -> list[int]:
    return sorted({t for k in word_indices for t in tokens.of_word(k)})


def _blend_words(
    cm: CounterfactualModel, changes: list[Change], p0: BoundPrompt, p1: BoundPrompt
) -> tuple[list[int], list[int]]:
    """The LocalBlend words' indices in each prompt: the given blend words, else the changed
    words of both prompts; punctuation left out."""
    blends = _items(cm, ast.Blend)
    if blends:
        idx_0 = [i for b in blends for t in b.words_0 for i in _word_indices(p0, t.value)]
        idx_1 = [i for b in blends for t in (b.words_1 or b.words_0)
                 for i in _word_indices(p1, t.value)]
    else:
        idx_0 = [i for c in changes for i in range(c.i0, c.i1)]
        idx_1 = [j for c in changes for j in range(c.j0, c.j1)]
    return ([i for i in dict.fromkeys(idx_0) if not p0.words[i].is_punctuation],
            [j for j in dict.fromkeys(idx_1) if not p1.words[j].is_punctuation])


def word_spans(cm: CounterfactualModel, p0: BoundPrompt, p1: BoundPrompt) -> dict[str, Any]:
    """Where the compiler's decisions sit in the prompts' text, for readers that show them (the
    report) without diffing again: `[start, end)` character offsets of each changed word (the
    word diff lint and the edit map use) and of each LocalBlend word (`blend_k[i]` is the
    span of `edit.local_blend.words_k[i]`). Kept outside `edit`: they change no image."""
    changes = diff(p0, p1)
    blend_0, blend_1 = _blend_words(cm, changes, p0, p1)

    def spans(prompt: BoundPrompt, indices: list[int]) -> list[list[int]]:
        return [[prompt.words[i].start, prompt.words[i].end] for i in indices]

    return {
        "changed_0": spans(p0, [i for c in changes for i in range(c.i0, c.i1)]),
        "changed_1": spans(p1, [j for c in changes for j in range(c.j0, c.j1)]),
        "blend_0": spans(p0, blend_0),
        "blend_1": spans(p1, blend_1),
    }


def _local_blend(
    cm: CounterfactualModel,
    changes: list[Change],
    t0: Tokens,
    t1: Tokens,
    p0: BoundPrompt,
    p1: BoundPrompt,
) -> dict[str, Any]:
    """Where the image may change: the given blend words, else the changed words of both
    prompts. Words are reported as they stand in the prompt, without punctuation."""
    idx_0, idx_1 = _blend_words(cm, changes, p0, p1)
    thresholds = _items(cm, ast.Threshold)
    out = {
        "words_0": [p0.words[i].text for i in idx_0],
        "words_1": [p1.words[j].text for j in idx_1],
        "tokens_0": _tokens_of(t0, idx_0),
        "tokens_1": _tokens_of(t1, idx_1),
        "threshold": thresholds[-1].value.value if thresholds else DEFAULT_BLEND_THRESHOLD,
    }
    starts = _items(cm, ast.BlendStart)
    if starts:  # absent: the generator's --blend-start (and its profile's default) applies
        out["start"] = starts[-1].value.value
    return out


def _equalizer(cm: CounterfactualModel, t1: Tokens, p1: BoundPrompt) -> dict[str, Any]:
    items = _items(cm, ast.Reweight)
    found = [_word_indices(p1, r.word.value) for r in items]
    return {
        "words": [" ".join(p1.words[i].text for i in idx) for idx in found],
        "values": [r.weight.value for r in items],
        "tokens": [_tokens_of(t1, idx) for idx in found],
    }
