"""cfspec's Prompt-to-Prompt against the published code's own outputs (tests/golden_p2p/).

`published_alignment.json` was written by running google/prompt-to-prompt's `seq_aligner.py` and
`ptp_utils.py`, unmodified, with `transformers.CLIPTokenizer` on the full CLIP vocabulary
(openai/CLIP's `bpe_simple_vocab_16e6.txt.gz`): full-CLIP ids of every prompt, replacement and
refinement mappers, word lookups and cross-attention windows. `clip_subset/` holds the merges of
that vocabulary which fire on these prompts, in their original order, with CLIP's own ids; it
tokenizes every prompt here exactly as the full vocabulary does (the first test checks it).

The `published` profile must equal the golden data exactly; the default profile may differ only
where the README's "Differences from the published Prompt-to-Prompt" says.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from numeric import assert_reordered_close, reorder_tolerance  # noqa: E402

from cfspec.compile.align import Tokens, refine_map, replace_map, words_of_spans  # noqa: E402
from cfspec.gpu.generate import published  # noqa: E402
from cfspec.gpu.generate.edit_plan import (  # noqa: E402
    MAX_TOKENS,
    PlanError,
    PromptTokenizer,
    build_plan,
    cross_alpha,
    dense_mapper,
)
from cfspec.lang.tokens import ClipTokenizer  # noqa: E402
from cfspec.lang.words import split_words  # noqa: E402
from cfspec.workspace.pairs import Pair, schema_errors  # noqa: E402

GOLDEN = Path(__file__).parent / "golden_p2p"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


@cache
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN / "published_alignment.json").read_text("utf-8"))
    return data


@pytest.fixture(scope="module")
def hf_tok() -> Any:
    return transformers.CLIPTokenizer.from_pretrained(str(GOLDEN / "clip_subset"),
                                                      model_max_length=MAX_TOKENS)


@pytest.fixture(scope="module")
def tok(hf_tok: Any) -> PromptTokenizer:
    return PromptTokenizer(hf_tok)


def words_pair(prompt_0: str, prompt_1: str, kind: str,
               blend: tuple[list[str], list[str]] = ([], []),
               cross_words: dict[str, list[float]] | None = None,
               default: list[float] | None = None,
               equalizer: dict[str, float] | None = None) -> Pair:
    """A words-sourced pairs.jsonl line as `cfspec compile` writes one without a tokenizer."""
    w0 = [w.lower() for w, _, _ in split_words(prompt_0)]
    w1 = [w.lower() for w, _, _ in split_words(prompt_1)]
    t0 = Tokens((BOS, *w0, EOS), ((), *((i,) for i in range(len(w0))), ()))
    t1 = Tokens((BOS, *w1, EOS), ((), *((i,) for i in range(len(w1))), ()))
    alignment: dict[str, Any] = {"source": "words", "tokens_0": list(t0.pieces),
                                 "tokens_1": list(t1.pieces)}
    if kind == "refine":
        mapper = refine_map(t0, t1)
        alignment["token_map"] = mapper
        alignment["inserted"] = [j for j, i in enumerate(mapper) if i < 0]
    else:
        pairs = [(i, i) for i in range(len(w0))]
        alignment["words"] = [list(p) for p in pairs]
        alignment["token_map"] = [list(c) for c in replace_map(t0, t1, pairs)]
    cross: dict[str, Any] = {"default": default or [0.0, 0.8], "words": cross_words or {}}
    if cross_words and default is None:
        cross["default_set"] = False
    eq = equalizer or {}
    line = {
        "id": "p", "spec": "tests/test_p2p_published.py", "counterfactual": "p",
        "prompt_0": prompt_0, "prompt_1": prompt_1, "intervention": [],
        "edit": {
            "type": kind, "cross_replace_steps": cross, "self_replace_steps": [0.0, 0.4],
            "local_blend": {"words_0": blend[0], "words_1": blend[1],
                            "tokens_0": [w0.index(w) + 1 for w in blend[0]],
                            "tokens_1": [w1.index(w) + 1 for w in blend[1]],
                            "threshold": 0.3},
            "equalizer": {"words": list(eq), "values": list(eq.values()),
                          "tokens": [[w1.index(w) + 1] for w in eq]},
            "alignment": alignment,
        },
        "scm": [], "scm_aug": [],
    }
    assert schema_errors(line) == []
    return Pair.from_json(line)


def f32(value: float) -> float:
    return float(torch.tensor(value, dtype=torch.float32))


def cells(plan: Any) -> dict[tuple[int, int], float]:
    return {(a, b): f32(w) for a, b, w in plan.mapper if w != 0.0}


# -- tokenization -------------------------------------------------------------------------------


def test_the_vocabulary_subset_tokenizes_as_full_clip(hf_tok: Any, tok: PromptTokenizer) -> None:
    ours = ClipTokenizer.from_directory(GOLDEN / "clip_subset")
    for prompt, ids in golden()["ids"].items():
        assert hf_tok(prompt).input_ids == ids, prompt
        assert ours.encode(prompt) == ids[1:-1], prompt
        encoded = tok.encode(prompt)
        assert encoded.ids[: len(ids)] == ids, prompt  # the whole prompt, as CLIP cuts it


def test_punctuation_runs_are_one_token_and_belong_to_every_word_they_cover(
        tok: PromptTokenizer) -> None:
    prompt_0 = 'a man said "stop". on the porch!!'
    pair = words_pair(prompt_0, 'a woman said "stop". on the porch!!', "replace",
                      blend=(["man", "porch"], ["woman", "porch"]))
    plan = build_plan(pair, tok)
    assert list(plan.ids_0[: len(plan.pieces_0)]) == golden()["ids"][prompt_0]
    assert '".</w>' in plan.pieces_0 and "!!</w>" in plan.pieces_0
    porch = plan.pieces_0.index("porch</w>")
    assert plan.blend_0 == (2, porch)
    # `".` covers the words `"` and `.`: both word pairs map it, once.
    quote_dot = plan.pieces_0.index('".</w>')
    assert cells(plan)[(quote_dot, quote_dot)] == 1.0
    # Every prompt column maps to itself with weight 1 (the prompts have equal token counts).
    assert all(cells(plan)[(i, i)] == 1.0 for i in range(MAX_TOKENS))


@pytest.mark.parametrize("prompt", ["a dog sits\u2028on a bench", "a dog sits\u2029on a bench",
                                    "a dog sits\u0085on a bench"])
def test_line_and_paragraph_separators_split_words_as_clip_does(
        tok: PromptTokenizer, hf_tok: Any, prompt: str) -> None:
    pair = words_pair(prompt, prompt.replace("dog", "cat"), "replace",
                      blend=(["dog"], ["cat"]))
    plan = build_plan(pair, tok)
    assert list(plan.ids_0) == list(hf_tok(prompt, padding="max_length", max_length=MAX_TOKENS,
                                           truncation=True).input_ids)
    assert plan.pieces_0[plan.blend_0[0]] == "dog</w>"
    assert plan.pieces_0[4] == "on</w>"  # "sits" and "on" stay two words, as CLIP splits them


# -- alignment: the published profile equals the published code ---------------------------------


@pytest.mark.parametrize("case", range(len(golden()["replace"])))
def test_published_replacement_mapper(tok: PromptTokenizer, case: int) -> None:
    item = golden()["replace"][case]
    pair = words_pair(item["prompt_0"], item["prompt_1"], "replace")
    plan = build_plan(pair, tok, compat="published")
    expected = {(a, b): f32(w) for a, b, w in item["mapper"]}
    assert cells(plan) == expected


@pytest.mark.parametrize("case", range(len(golden()["refine"])))
def test_published_refinement_mapper(tok: PromptTokenizer, case: int) -> None:
    item = golden()["refine"][case]
    pair = words_pair(item["prompt_0"], item["prompt_1"], "refine")
    plan = build_plan(pair, tok, compat="published")
    expected = {(i0, i1): 1.0 for i1, i0 in enumerate(item["mapper"]) if i0 >= 0}
    assert cells(plan) == expected
    assert list(plan.keep) == item["alphas"]


@pytest.mark.parametrize("case", range(len(golden()["word_inds"])))
def test_published_word_lookup(tok: PromptTokenizer, case: int) -> None:
    item = golden()["word_inds"][case]
    _, decoded = tok.published(item["prompt"])
    assert published.word_inds(item["prompt"], item["word"], decoded) == item["tokens"]


def _as_pair_windows(spec: Any) -> tuple[list[float] | None, dict[str, list[float]]]:
    """The published `cross_replace_steps` argument as a pair's default and per-word windows."""
    if isinstance(spec, float):
        return [0.0, spec], {}
    if isinstance(spec, list):
        return [float(v) for v in spec], {}
    default = spec.get("default_")
    words = {k: [float(v) for v in w] for k, w in spec.items() if k != "default_"}
    return ([float(v) for v in default] if default else None), words


@pytest.mark.parametrize("case", range(len(golden()["cross_alpha"])))
def test_published_cross_attention_windows(tok: PromptTokenizer, case: int) -> None:
    item = golden()["cross_alpha"][case]
    default, words = _as_pair_windows(item["cross_replace_steps"])
    kind = "refine" if len(item["prompt_0"].split()) != len(item["prompt_1"].split()) else \
        "replace"
    pair = words_pair(item["prompt_0"], item["prompt_1"], kind, cross_words=words,
                      default=default)
    plan = build_plan(pair, tok, compat="published")
    alpha = cross_alpha(plan, item["steps"])
    for col, (start, end) in enumerate(item["windows"]):
        assert [row[col] for row in alpha] == [
            1.0 if start <= r < end else 0.0 for r in range(item["steps"] + 1)], col


def test_published_refuses_what_the_published_code_refuses(tok: PromptTokenizer) -> None:
    # Same words by cfspec's split, not by the published split on spaces.
    pair = words_pair("a cat  on a car", "a dog on a car", "replace")
    with pytest.raises(PlanError, match="published"):
        build_plan(pair, tok, compat="published")


# -- the default profile differs only where the README says -------------------------------------


def _prompt_columns(plan: Any) -> int:
    return len(plan.pieces_1)


@pytest.mark.parametrize("case", range(len(golden()["replace"])))
def test_default_replacement_differs_only_by_the_documented_fixes(
        tok: PromptTokenizer, case: int) -> None:
    item = golden()["replace"][case]
    pair = words_pair(item["prompt_0"], item["prompt_1"], "replace")
    ours = cells(build_plan(pair, tok))
    theirs = {(a, b): f32(w) for a, b, w in item["mapper"]}
    n0 = len(golden()["ids"][item["prompt_0"]])
    n1 = len(golden()["ids"][item["prompt_1"]])
    if n0 == n1:
        assert ours == theirs  # same token counts: the same mapper, padding included
        return
    # A word changed its token count. Published maps j <- j after it (`mapper[j, j]`), so the
    # words after it read the wrong factual column; cfspec shifts them, padding included.
    shift = n1 - n0
    changed = {b for (a, b) in theirs if 0.0 < theirs[(a, b)] < 1.0 or a != b}
    for (a, b), w in ours.items():
        if b >= n1 or b in changed:
            continue
        if a > 0 and b > min(changed):
            assert a == b - shift and w == 1.0
            assert (a, b) not in theirs  # the published bug: cfspec's column differs
    dense = dense_mapper(build_plan(pair, tok))
    for b in range(n1, MAX_TOKENS):  # padding aligned end to end
        assert dense[min(b - shift, MAX_TOKENS - 1)][b] == 1.0


@pytest.mark.parametrize("case", range(len(golden()["refine"])))
def test_default_refinement_differs_only_by_padding_and_ties(
        tok: PromptTokenizer, case: int) -> None:
    item = golden()["refine"][case]
    pair = words_pair(item["prompt_0"], item["prompt_1"], "refine")
    plan = build_plan(pair, tok)
    ids_0, ids_1 = golden()["ids"][item["prompt_0"]], golden()["ids"][item["prompt_1"]]
    n0, n1 = len(ids_0), len(ids_1)
    ours = [-1] * n1
    for a, b, _ in plan.mapper:
        if b < n1:
            ours[b] = a
    theirs = item["mapper"][:n1]
    # Both are optimal alignments: the same number of matched tokens.
    assert sum(i >= 0 for i in ours) == sum(i >= 0 for i in theirs)
    assert all(ids_0[a] == ids_1[b] for b, a in enumerate(ours) if a >= 0)
    if len(set(ids_0)) == len(ids_0) and len(set(ids_1)) == len(ids_1):
        assert ours == theirs  # no repeated tokens, no ties: the very same alignment
    # Padding: cfspec reads prompt_0's k-th padding column, published the same column number.
    dense = dense_mapper(plan)
    for k, b in enumerate(range(n1, MAX_TOKENS)):
        assert dense[min(n0 + k, MAX_TOKENS - 1)][b] == 1.0
        assert item["mapper"][b] == b


# -- the factual image is the plain pipeline's ---------------------------------------------------

STEPS = 4
SIZE = 32


@pytest.fixture(scope="module")
def clip_comps(hf_tok: Any) -> Any:
    """The tiny model with the real CLIP vocabulary (subset) and CLIP's own ids."""
    from cfspec.gpu.generate.tiny import tiny_components
    from cfspec.gpu.generate.weights import Components

    torch.set_num_threads(1)
    return Components(name="tiny-clip", **tiny_components(tokenizer=hf_tok))


@pytest.mark.parametrize("prompt", [
    'a dog said "stop". then waited... on the porch!!',
    "what?! a cat... (really) -- on a car!?",
])
def test_factual_image_is_the_plain_pipelines_for_punctuation_runs(
        clip_comps: Any, tok: PromptTokenizer, prompt: str) -> None:
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from cfspec.gpu.generate.engine import Engine, Job, Settings

    other = prompt.replace("dog", "cat") if "dog" in prompt else prompt.replace("cat", "dog")
    pair = words_pair(prompt, other, "replace")
    plan = build_plan(pair, tok)
    assert list(plan.ids_0[: len(plan.pieces_0)]) == golden()["ids"][prompt]
    engine = Engine(clip_comps, torch.device("cpu"), torch.float32,
                    Settings(steps=STEPS, height=SIZE, width=SIZE))
    try:
        ours = engine.run([Job("p", 0, plan)])[0].latents[0]
    finally:
        engine.close()
    pipe = StableDiffusionPipeline(
        vae=clip_comps.vae, text_encoder=clip_comps.text_encoder, tokenizer=clip_comps.tokenizer,
        unet=clip_comps.unet, scheduler=DDIMScheduler.from_config(clip_comps.scheduler.config),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(prompt, num_inference_steps=STEPS, guidance_scale=7.5, height=SIZE,
                  width=SIZE, generator=torch.Generator("cpu").manual_seed(0),
                  output_type="latent").images[0].numpy()
    assert_reordered_close(ours, theirs, STEPS)


# -- end to end: the published controllers on a model with Stable Diffusion's layout ------------
#
# published_e2e.npz holds, for each case of published_e2e.json, the final latents (factual,
# counterfactual) and the LocalBlend mask of every step, from the published notebook's
# controllers (LocalBlend, AttentionReplace/Refine/Reweight, unmodified) and
# `ptp_utils.diffusion_step`, with the attention glue of `register_attention_control` on
# diffusers' Attention layers, on `p2p_models.sd_layout_components` (its LocalBlend hard-codes
# SD's 16x16 layers) with the CLIP vocabulary subset; DDIM, guidance 7.5, seed 0.

# LocalBlend's maps are sums of some hundred fp32 terms (layers x heads x steps x words), in
# another order than the published code's mean: a cell may flip only this close to the threshold.
MAP_ROUNDING = 1e-4


@cache
def e2e() -> tuple[dict[str, Any], Any]:
    meta = json.loads((GOLDEN / "published_e2e.json").read_text("utf-8"))
    with np.load(GOLDEN / "published_e2e.npz") as data:
        arrays = {k: data[k] for k in data.files}
    return meta, arrays


@pytest.fixture(scope="module")
def sd_comps(hf_tok: Any) -> Any:
    from p2p_models import sd_layout_components

    from cfspec.gpu.generate.weights import Components

    torch.set_num_threads(1)
    return Components(name="sd-layout", **sd_layout_components(hf_tok))


def _run_case(comps: Any, tok: PromptTokenizer, case: dict[str, Any], steps: int, compat: str
              ) -> tuple[Any, list[Any], list[Any]]:
    """(final latents, each step's mask, each step's blend maps) of cfspec on a golden case."""
    from cfspec.gpu.generate.engine import Engine, Job, Settings

    p0, p1 = case["prompts"]
    pair = words_pair(p0, p1, case["kind"], blend=(case["blend"][0], case["blend"][1]),
                      default=[0.0, case["cross"]], equalizer=case.get("reweight"))
    pair.edit["local_blend"]["threshold"] = case["threshold"]
    pair.edit["self_replace_steps"] = [0.0, case["self"]]
    engine = Engine(comps, torch.device("cpu"), torch.float32,
                    Settings(steps=steps, height=128, width=128, compat=compat))
    control = engine.control
    blend = control.local_blend
    masks: list[Any] = []
    maps: list[Any] = []

    def spy(latents: Any, step: int) -> Any:
        out = blend(latents, step)
        # The cells LocalBlend left at the factual latents are the ones outside its mask.
        masks.append((out[1] != latents[0]).any(0).numpy())
        rows = torch.tensor([0])
        maps.append(control.blend_maps(rows, tuple(latents.shape[2:]))[0].numpy())
        return out

    control.local_blend = spy  # type: ignore[method-assign]
    try:
        latents = engine.run([Job("p", 0, build_plan(pair, tok, compat))])[0].latents
    finally:
        engine.close()
    return np.asarray(latents), masks, maps


@pytest.mark.parametrize("case", [c["name"] for c in e2e()[0]["cases"]])
def test_published_profile_reproduces_the_published_controllers_end_to_end(
        sd_comps: Any, tok: PromptTokenizer, case: str) -> None:
    meta, arrays = e2e()
    spec = next(c for c in meta["cases"] if c["name"] == case)
    latents, masks, maps = _run_case(sd_comps, tok, spec, meta["steps"], "published")
    golden_masks = arrays[f"{case}/masks"]
    assert len(masks) == len(golden_masks) == meta["steps"]
    for ours, theirs, m in zip(masks, golden_masks, maps, strict=True):
        near = (np.abs(m - spec["threshold"]) < MAP_ROUNDING).any(0)
        assert not ((ours != theirs) & ~near).any()
    assert_reordered_close(latents, arrays[f"{case}/latents"], meta["steps"])


def test_default_profile_differs_end_to_end_only_by_its_departures(
        sd_comps: Any, tok: PromptTokenizer) -> None:
    meta, arrays = e2e()
    for spec in meta["cases"]:
        latents, _, _ = _run_case(sd_comps, tok, spec, meta["steps"], "cfspec")
        golden_latents = arrays[f"{spec['name']}/latents"]
        tolerance = reorder_tolerance(golden_latents, meta["steps"])
        # The factual image is never edited: the same in both profiles.
        assert_reordered_close(latents[0], golden_latents[0], meta["steps"])
        gap = float(np.abs(latents[1] - golden_latents[1]).max())
        if spec["name"] == "replace_dog":
            # Same token counts, a mask over everything: no departure applies.
            assert gap <= tolerance
        else:
            # A token count change ("pomeranian"), an inserted word, LocalBlend from 0.2 on
            # the unedited maps: the counterfactual differs.
            assert gap > 10 * tolerance


# -- offsets without a fast tokenizer -------------------------------------------------------------


class _SlowView:
    """The same tokenizer, seen as one that gives no offsets (transformers' slow classes)."""

    is_fast = False

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("return_offsets_mapping", None)
        return self._inner(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_offsets_recovered_from_the_tokens_tie_the_same_words(hf_tok: Any) -> None:
    fast, slow = PromptTokenizer(hf_tok), PromptTokenizer(_SlowView(hf_tok))
    prompts = [*golden()["ids"], "a dog sits\u2028on a bench", "Caf\u00e9 &amp; a  Dog!!"]
    for prompt in prompts:
        a, b = fast.encode(prompt), slow.encode(prompt)
        assert a.ids == b.ids and a.pieces == b.pieces
        word_spans = [(s, e) for _, s, e in split_words(prompt)]
        assert words_of_spans(word_spans, a.spans[1:-1]) == words_of_spans(
            word_spans, b.spans[1:-1]), prompt
