"""Prompt-to-Prompt attention control (gpu.generate.p2p, plan, engine) on the tiny CPU model.

The edit formulas are checked two ways: inside real denoising runs (through the processors'
hook), and against a literal re-implementation of the published code (google/prompt-to-prompt:
AttentionReplace, AttentionRefine, AttentionReweight, self-attention replacement) on small random
tensors through a real diffusers `Attention` layer.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from numeric import assert_reordered_close  # noqa: E402

from cfspec.gpu.generate.edit_plan import (  # noqa: E402
    MAX_TOKENS,
    EditPlan,
    WordTokenizer,
    build_plan,
    cross_alpha,
    self_steps,
)
from cfspec.gpu.generate.engine import Engine, Job, Settings  # noqa: E402
from cfspec.gpu.generate.p2p import P2PControl  # noqa: E402
from cfspec.gpu.generate.p2p_batch import BatchEdit  # noqa: E402
from cfspec.gpu.generate.p2p_processor import AttentionEvent, P2PAttnProcessor  # noqa: E402
from cfspec.gpu.generate.weights import Components, load_components  # noqa: E402
from cfspec.workspace.pairs import Pair, schema_errors  # noqa: E402

STEPS = 6
SIZE = 32  # tiny model: 16x16 latents, 8x8 attention maps
CPU = torch.device("cpu")


def make_pair(
    pair_id: str,
    prompt_0: str,
    prompt_1: str,
    kind: str = "replace",
    cross: tuple[float, float] = (0.0, 0.8),
    cross_words: dict[str, list[float]] | None = None,
    self_window: tuple[float, float] = (0.0, 0.4),
    blend: tuple[list[str], list[str]] = ([], []),
    equalizer: dict[str, float] | None = None,
    refine_map: list[int] | None = None,
) -> Pair:
    """A words-sourced pair.jsonl line (words split on spaces), valid against the schema."""
    w0, w1 = prompt_0.lower().split(), prompt_1.lower().split()
    t0 = ["<|startoftext|>", *w0, "<|endoftext|>"]
    t1 = ["<|startoftext|>", *w1, "<|endoftext|>"]
    alignment: dict[str, Any] = {"source": "words", "tokens_0": t0, "tokens_1": t1}
    if kind in ("replace", "reweight"):
        assert len(w0) == len(w1)
        alignment["words"] = [[i, i] for i in range(len(w0))]
        alignment["token_map"] = [[i, i, 1.0] for i in range(len(t0))]
    else:
        assert refine_map is not None and len(refine_map) == len(t1)
        alignment["token_map"] = refine_map
        alignment["inserted"] = [j for j, i in enumerate(refine_map) if i == -1]
    eq = equalizer or {}
    pair = {
        "id": pair_id,
        "spec": "tests/test_p2p.py",
        "counterfactual": pair_id,
        "prompt_0": prompt_0,
        "prompt_1": prompt_1,
        "intervention": [],
        "edit": {
            "type": kind,
            "cross_replace_steps": {"default": list(cross), "words": cross_words or {}},
            "self_replace_steps": list(self_window),
            "local_blend": {
                "words_0": blend[0],
                "words_1": blend[1],
                "tokens_0": [w0.index(w) + 1 for w in blend[0]],
                "tokens_1": [w1.index(w) + 1 for w in blend[1]],
                "threshold": 0.3,
            },
            "equalizer": {
                "words": list(eq),
                "values": list(eq.values()),
                "tokens": [[w1.index(w) + 1] for w in eq],
            },
            "alignment": alignment,
        },
        "scm": ["A → B: x"],
        "scm_aug": ["A → B: x"],
    }
    assert schema_errors(pair) == []
    return Pair.from_json(pair)


@pytest.fixture(scope="module")
def engine(comps: Components) -> Any:
    eng = Engine(comps, CPU, torch.float32, Settings(steps=STEPS, height=SIZE, width=SIZE))
    yield eng
    eng.close()


def job(pair: Pair, words: WordTokenizer, seed: int = 0) -> Job:
    return Job(pair.id, seed, build_plan(pair, words))


def pixels(image: Any) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)



pytestmark = pytest.mark.usefixtures("one_torch_thread")

# -- edit maps rebuilt for the real tokenizer ---------------------------------------------------


def test_words_are_retokenized_with_the_pipeline_tokenizer(words: WordTokenizer) -> None:
    # "grassy" is not a whole word in the tiny vocabulary: it becomes several tokens, and every
    # index after it moves.
    pair = make_pair("p", "a grassy field with a dog", "a grassy field with a cat",
                     blend=(["dog"], ["cat"]))
    plan = build_plan(pair, words)
    n_grassy = len(words.word("grassy")[0])
    assert n_grassy > 1
    dog = plan.pieces_0.index("dog</w>")
    assert dog == 6 + n_grassy - 1  # word 6, after the extra tokens of "grassy"
    assert plan.blend_0 == (dog,) and plan.blend_1 == (plan.pieces_1.index("cat</w>"),)
    mapper = {(a, b): w for a, b, w in plan.mapper}
    assert mapper[(dog, dog)] == 1.0
    assert plan.ids_0[: len(plan.pieces_0)] == tuple(
        words.tokenizer.convert_tokens_to_ids(list(plan.pieces_0)))
    # What the pipeline's own tokenizer makes of the whole prompt.
    assert list(plan.ids_0[: len(plan.pieces_0)]) == list(
        words.tokenizer(pair.prompt_0).input_ids)


def test_replace_of_words_with_different_token_counts_spreads_the_weight(
        words: WordTokenizer) -> None:
    pair = make_pair("p", "a dog on grass", "a zzyzx on grass")
    plan = build_plan(pair, words)
    n = len(words.word("zzyzx")[0])
    rows = [(a, b, w) for a, b, w in plan.mapper if a == 2]
    assert [b for _, b, _ in rows] == list(range(2, 2 + n))
    assert all(w == pytest.approx(1.0 / n, abs=1e-6) for *_, w in rows)
    # The word after it moves by n - 1 columns.
    assert (3, 2 + n, 1.0) in plan.mapper


def test_cross_alpha_follows_p2p_windows() -> None:
    plan = EditPlan(
        kind="replace", ids_0=(), ids_1=(), pieces_0=(), pieces_1=(), mapper=(),
        keep=(1.0,) * MAX_TOKENS, equalizer=(1.0,) * MAX_TOKENS, cross_default=(0.0, 0.8),
        cross_words=(((4,), (0.0, 0.5)),), self_window=(0.2, 0.4), blend_0=(), blend_1=(),
        threshold=0.3,
    )
    alpha = np.array(cross_alpha(plan, 10))  # 11 rows, as get_time_words_attention_alpha
    assert alpha.shape == (11, MAX_TOKENS)
    assert alpha[:8, 0].tolist() == [1.0] * 8 and alpha[8:, 0].tolist() == [0.0] * 3
    assert alpha[:5, 4].tolist() == [1.0] * 5 and alpha[5:, 4].tolist() == [0.0] * 6
    assert self_steps(plan, 10) == (2, 4)


# -- the edits inside real runs -----------------------------------------------------------------


def test_identical_prompts_with_full_windows_give_identical_images(
        comps: Components, words: WordTokenizer) -> None:
    eng = Engine(comps, CPU, torch.float32, Settings(steps=STEPS, height=SIZE, width=SIZE))
    try:
        for blend in (([], []), (["apple"], ["apple"])):
            pair = make_pair("same", "a red apple on a table", "a red apple on a table",
                             cross=(0.0, 1.0), self_window=(0.0, 1.0), blend=blend)
            out = eng.run([job(pair, words)])[0]
            # Replacing attention by the factual's is done by the same fused kernel that
            # computes the factual, so the two images are bit for bit the same.
            assert np.array_equal(out.latents[0], out.latents[1])
            assert np.array_equal(pixels(out.images[0]), pixels(out.images[1]))
    finally:
        eng.close()


def _events(engine: Any, jobs: list[Job]) -> tuple[list[AttentionEvent], Any]:
    events: list[AttentionEvent] = []
    engine.control.hook = events.append
    try:
        outputs = engine.run(jobs)
    finally:
        engine.control.hook = None
    return events, outputs


def test_replace_window_maps_the_factual_cross_attention(
        engine: Any, words: WordTokenizer) -> None:
    pair = make_pair("replace", "a banana on a table", "a apple on a table",
                     cross=(0.0, 0.5), blend=(["banana"], ["apple"]))
    the_job = job(pair, words)
    events, _ = _events(engine, [the_job])
    cross = [e for e in events if e.is_cross]
    window_end = int(0.5 * (STEPS + 1))
    assert cross, "no cross-attention edits recorded"
    assert {e.step for e in cross} == set(range(window_end))
    mapper = torch.zeros(MAX_TOKENS, MAX_TOKENS)
    for a, b, w in the_job.plan.mapper:
        mapper[a, b] = w
    for e in cross:
        expected = torch.einsum("bhpw,wn->bhpn", e.attn_0, mapper)
        torch.testing.assert_close(e.edited, expected, rtol=0, atol=1e-6)
        # The counterfactual's own attention really differs ("apple" is another word).
        assert not torch.allclose(e.attn_1, e.edited, atol=1e-4)
    # Self-attention is replaced in its window only (0.4 of 6 steps: steps 0 and 1).
    self_steps_seen = {e.step for e in events if not e.is_cross}
    assert self_steps_seen == set(range(int(STEPS * 0.4)))
    for e in events:
        if not e.is_cross:
            torch.testing.assert_close(e.edited, e.attn_0)


def test_per_word_window_releases_only_that_word(engine: Any, words: WordTokenizer) -> None:
    pair = make_pair("words", "a banana on a table", "a apple on a table", cross=(0.0, 1.0),
                     cross_words={"apple": [0.0, 0.3]})
    the_job = job(pair, words)
    apple = the_job.plan.pieces_1.index("apple</w>")
    events, _ = _events(engine, [the_job])
    cross = [e for e in events if e.is_cross]
    released = int(0.3 * (STEPS + 1))
    for e in cross:
        others = [c for c in range(MAX_TOKENS) if c != apple]
        torch.testing.assert_close(e.edited[..., others], e.attn_0[..., others], rtol=0,
                                   atol=1e-6)
        own = e.attn_1 if e.step >= released else e.attn_0
        torch.testing.assert_close(e.edited[..., apple], own[..., apple], rtol=0, atol=1e-6)
    assert {e.step for e in cross} == set(range(STEPS))


def test_refine_keeps_the_factual_attention_of_unchanged_tokens(
        engine: Any, words: WordTokenizer) -> None:
    # prompt_1 inserts "small" before "dog": its column is the counterfactual's own.
    pair = make_pair("refine", "a dog on a table", "a small dog on a table", kind="refine",
                     refine_map=[0, 1, -1, 2, 3, 4, 5, 6])
    the_job = job(pair, words)
    plan = the_job.plan
    small = plan.pieces_1.index("small</w>")
    assert plan.keep[small] == 0.0
    refine = {b: a for a, b, _ in plan.mapper}
    events, _ = _events(engine, [the_job])
    cross = [e for e in events if e.is_cross]
    assert cross
    for e in cross:
        for j in range(MAX_TOKENS):
            if j == small:
                torch.testing.assert_close(e.edited[..., j], e.attn_1[..., j], rtol=0, atol=0)
            else:
                torch.testing.assert_close(e.edited[..., j], e.attn_0[..., refine[j]], rtol=0,
                                           atol=1e-7)


def test_reweight_scales_exactly_the_chosen_tokens(engine: Any, words: WordTokenizer) -> None:
    pair = make_pair("reweight", "a fluffy sheep in a field", "a fluffy sheep in a field",
                     kind="reweight", equalizer={"fluffy": 3.0})
    the_job = job(pair, words)
    fluffy = the_job.plan.pieces_1.index("fluffy</w>")
    events, _ = _events(engine, [the_job])
    cross = [e for e in events if e.is_cross]
    assert cross
    for e in cross:
        torch.testing.assert_close(e.edited[..., fluffy], 3.0 * e.attn_0[..., fluffy], rtol=0,
                                   atol=1e-6)
        others = [c for c in range(MAX_TOKENS) if c != fluffy]
        torch.testing.assert_close(e.edited[..., others], e.attn_0[..., others], rtol=0,
                                   atol=1e-7)


def test_reweight_of_an_inserted_word_scales_its_own_attention(
        engine: Any, words: WordTokenizer) -> None:
    # "pea soup" -> "pea soup with croutons", reweight "croutons": the inserted columns keep the
    # counterfactual's attention, and the equalizer scales that too (published: it does).
    pair = make_pair("croutons", "a soup", "a soup with croutons", kind="refine",
                     refine_map=[0, 1, 2, -1, -1, 3], equalizer={"croutons": 3.0})
    the_job = job(pair, words)
    plan = the_job.plan
    inserted = [j for j in range(len(plan.pieces_1)) if plan.keep[j] == 0.0]
    croutons = [j for j in inserted if plan.equalizer[j] == 3.0]
    assert croutons and plan.pieces_1.index("with</w>") in inserted
    events, _ = _events(engine, [the_job])
    cross = [e for e in events if e.is_cross]
    assert cross
    for e in cross:
        torch.testing.assert_close(e.edited[..., croutons], 3.0 * e.attn_1[..., croutons],
                                   rtol=0, atol=1e-6)


@pytest.mark.parametrize("compat", ["cfspec", "published"])
def test_local_blend_reads_the_maps_the_profile_says(
        comps: Components, words: WordTokenizer, compat: str) -> None:
    # cfspec blends with the counterfactual's own cross-attention; published with the edited
    # one (its AttentionStore holds a view that the edit then overwrites).
    pair = make_pair("blendmaps", "a dog on a table", "a small dog on a table", kind="refine",
                     refine_map=[0, 1, -1, 2, 3, 4, 5, 6], cross=(0.0, 1.0),
                     blend=(["dog"], ["dog"]))
    eng = Engine(comps, CPU, torch.float32,
                 Settings(steps=STEPS, height=SIZE, width=SIZE, compat=compat))
    try:
        plan = build_plan(pair, words, compat)
        events, outputs = _events(eng, [Job("b", 0, plan)])
        blend_layers = eng.control.blend_layers
    finally:
        eng.close()
    cols = list(plan.blend_1)
    read = [(e.edited if compat == "published" else e.attn_1)[0][..., cols].sum(dim=(0, 2))
            for e in events if e.is_cross and e.layer in blend_layers]
    other = [(e.attn_1 if compat == "published" else e.edited)[0][..., cols].sum(dim=(0, 2))
             for e in events if e.is_cross and e.layer in blend_layers]
    assert len(read) == STEPS * len(blend_layers)
    total, wrong = torch.stack(read).sum(0), torch.stack(other).sum(0)
    expected = (total / total.max()).reshape(outputs[0].attention[1].shape).numpy()
    assert_reordered_close(outputs[0].attention[1], expected, STEPS)
    assert not np.allclose((wrong / wrong.max()).reshape(expected.shape), expected, atol=1e-3)


@pytest.mark.parametrize("compat", ["cfspec", "published"])
def test_windows_of_a_scheduler_that_runs_extra_steps(
        comps: Components, words: WordTokenizer, compat: str) -> None:
    # PNDM runs more UNet steps than asked. cfspec's windows are fractions of the steps run;
    # the published code's of the steps asked for (its NUM_DDIM_STEPS).
    pair = make_pair("pndm", "a banana on a table", "a apple on a table", cross=(0.0, 0.5))
    eng = Engine(comps, CPU, torch.float32, Settings(steps=STEPS, height=SIZE, width=SIZE,
                                                     scheduler="pndm", compat=compat))
    try:
        events, _ = _events(eng, [Job("pndm", 0, build_plan(pair, words, compat))])
        eng.scheduler.set_timesteps(STEPS)
        run = len(eng.scheduler.timesteps)
    finally:
        eng.close()
    assert run > STEPS
    rows = (STEPS if compat == "published" else run) + 1
    assert {e.step for e in events if e.is_cross} == set(range(int(0.5 * rows)))


def test_local_blend_keeps_the_factual_outside_the_mask(
        comps: Components, words: WordTokenizer) -> None:
    pair = make_pair("blend", "a banana on a table", "a apple on a table",
                     blend=(["banana"], ["apple"]))
    eng = Engine(comps, CPU, torch.float32,
                 Settings(steps=STEPS, height=SIZE, width=SIZE, blend_start=0.0))
    try:
        # A threshold of 1 leaves only each map's maximum: the mask is small but not empty.
        plan = build_plan(pair, words)
        plan = EditPlan(**{**plan.__dict__, "threshold": 0.999})
        out = eng.run([Job("blend", 0, plan)])[0]
    finally:
        eng.close()
    mask = out.mask.astype(bool)
    assert 0 < mask.sum() < mask.size
    assert out.attention.shape == (2, 8, 8)
    assert out.attention.max() == pytest.approx(1.0)
    outside = ~mask
    np.testing.assert_allclose(out.latents[1][:, outside], out.latents[0][:, outside], atol=1e-6)
    assert not np.allclose(out.latents[1][:, mask], out.latents[0][:, mask], atol=1e-3)


def test_batch_of_three_equals_one_by_one(engine: Any, words: WordTokenizer) -> None:
    pairs = [
        make_pair("r", "a banana on a table", "a apple on a table", blend=(["banana"], ["apple"])),
        make_pair("f", "a dog on a table", "a small dog on a table", kind="refine",
                  refine_map=[0, 1, -1, 2, 3, 4, 5, 6], cross=(0.0, 0.5)),
        make_pair("w", "a fluffy sheep in a field", "a fluffy sheep in a field",
                  kind="reweight", equalizer={"fluffy": 2.0}, self_window=(0.2, 0.6)),
    ]
    jobs = [job(p, words, seed=s) for p, s in zip(pairs, (0, 1, 2), strict=True)]
    together = engine.run(jobs)
    for job_, batched in zip(jobs, together, strict=True):
        alone = engine.run([job_])[0]
        assert batched.job == alone.job
        assert_reordered_close(batched.latents, alone.latents, STEPS)
        for a, b in zip(batched.images, alone.images, strict=True):
            assert np.abs(pixels(a) - pixels(b)).max() <= 1
        assert_reordered_close(batched.attention, alone.attention, STEPS)
    # Position in the batch does not matter either.
    reordered = engine.run(list(reversed(jobs)))
    assert_reordered_close(reordered[0].latents, together[2].latents, STEPS)


def test_bfloat16_runs_give_finite_images(comps: Components, words: WordTokenizer) -> None:
    low = load_components("tiny", CPU, torch.bfloat16)
    pair = make_pair("bf16", "a banana on a table", "a apple on a table",
                     blend=(["banana"], ["apple"]))
    eng = Engine(low, CPU, torch.bfloat16, Settings(steps=3, height=SIZE, width=SIZE))
    try:
        out = eng.run([job(pair, words)])[0]
    finally:
        eng.close()
    assert np.isfinite(out.latents).all()
    assert pixels(out.images[1]).std() > 0


@pytest.mark.parametrize("name", ["ddim", "pndm", "euler", "euler-a", "dpm", "ddpm"])
def test_schedulers_keep_the_models_prediction_type(name: str) -> None:
    from diffusers import DDIMScheduler

    from cfspec.gpu.generate.weights import make_scheduler

    base = DDIMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction")
    made = make_scheduler(name, base)
    assert made.config.prediction_type == "v_prediction"
    assert made.config.beta_schedule == "scaled_linear"


def test_v_prediction_and_ancestral_schedulers_run(comps: Components,
                                                   words: WordTokenizer) -> None:
    from diffusers import DDIMScheduler

    v_comps = Components(**{**comps.__dict__, "scheduler": DDIMScheduler.from_config(
        comps.scheduler.config, prediction_type="v_prediction")})
    pair = make_pair("v", "a banana on a table", "a apple on a table",
                     blend=(["banana"], ["apple"]))
    for scheduler in ("ddim", "euler-a"):
        eng = Engine(v_comps, CPU, torch.float32,
                     Settings(scheduler=scheduler, steps=3, height=SIZE, width=SIZE))
        try:
            assert eng.scheduler.config.prediction_type == "v_prediction"
            first = eng.run([job(pair, words, seed=5)])[0]
            again = eng.run([job(pair, words, seed=7), job(pair, words, seed=5)])[1]
        finally:
            eng.close()
        assert np.isfinite(first.latents).all()
        # Step noise (euler-a) comes from the job's own generator: batch-independent too.
        assert_reordered_close(first.latents, again.latents, steps=3)


def test_engine_restores_the_original_processors(comps: Components) -> None:
    before = {k: type(v) for k, v in comps.unet.attn_processors.items()}
    eng = Engine(comps, CPU, torch.float32, Settings(steps=2, height=SIZE, width=SIZE))
    assert all(isinstance(p, P2PAttnProcessor) for p in comps.unet.attn_processors.values())
    eng.close()
    after = {k: type(v) for k, v in comps.unet.attn_processors.items()}
    assert not any(t is P2PAttnProcessor for t in after.values())
    assert set(before) == set(after)


# -- the processors against a literal implementation of the published formulas -----------------


def _naive_edit(kind: str, base: Any, own: Any, mapper: Any, refine: Any, alphas: Any,
                equalizer: Any, alpha_words: Any) -> Any:
    """google/prompt-to-prompt, AttentionControlEdit.forward for one edited prompt, literally."""
    if kind == "replace":  # AttentionReplace.replace_cross_attention
        replaced = torch.einsum("hpw,bwn->bhpn", base, mapper[None])[0]
    elif kind == "refine":  # AttentionRefine.replace_cross_attention
        gathered = base[:, :, refine]
        replaced = gathered * alphas + own * (1 - alphas)
    else:  # AttentionReweight with an AttentionReplace as prev_controller
        replaced = torch.einsum("hpw,bwn->bhpn", base, mapper[None])[0] * equalizer
    return replaced * alpha_words + (1 - alpha_words) * own


def _plan(kind: str, mapper: list[tuple[int, int, float]], keep: list[float],
          equalizer: list[float], cross: tuple[float, float],
          self_window: tuple[float, float]) -> EditPlan:
    return EditPlan(
        kind=kind, ids_0=(), ids_1=(), pieces_0=(), pieces_1=(), mapper=tuple(mapper),
        keep=tuple(keep), equalizer=tuple(equalizer), cross_default=cross, cross_words=(),
        self_window=self_window, blend_0=(), blend_1=(), threshold=0.3,
    )


@pytest.mark.parametrize("bases", [None, [0, 0, 1, 0]], ids=["per-pair", "shared-factuals"])
@pytest.mark.parametrize("guided", [True, False])
def test_processors_match_the_published_formulas(guided: bool, bases: list[int] | None
                                                  ) -> None:
    """Every edited row's cross- and self-attention is P2P's edit of its base row's, literally
    (a re-implementation of google/prompt-to-prompt); factual and unconditional rows are plain.
    Per pair each edited row has its own factual row; with shared factuals (a set's layout) two
    factual rows serve four edited rows."""
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    gen = torch.Generator().manual_seed(0)
    heads, dim_head, channels, ctx_dim = 2, 8, 16, 12
    side = 4
    queries = side * side
    layer = Attention(query_dim=channels, cross_attention_dim=ctx_dim, heads=heads,
                      dim_head=dim_head).eval()
    self_layer = Attention(query_dim=channels, heads=heads, dim_head=dim_head).eval()

    # Four pairs: replace (with a 1 -> 2 token split), identity replace, refine (insertions),
    # reweight.
    perm = torch.randperm(MAX_TOKENS, generator=gen).tolist()
    replace_map = [(0, 0, 1.0), (1, 1, 1.0), (2, 2, 0.5), (2, 3, 0.5)]
    replace_map += [(i - 1, i, 1.0) for i in range(4, MAX_TOKENS)]
    refine = [perm[j] if j % 5 else -1 for j in range(MAX_TOKENS)]
    refine_map = [(i0, i1, 1.0) for i1, i0 in enumerate(refine) if i0 >= 0]
    keep = [0.0 if i0 < 0 else 1.0 for i0 in refine]
    eq = [1.0] * MAX_TOKENS
    eq[3], eq[7] = 2.5, 0.25
    identity = [(i, i, 1.0) for i in range(MAX_TOKENS)]
    plans = [
        _plan("replace", replace_map, [1.0] * MAX_TOKENS, [1.0] * MAX_TOKENS, (0.0, 0.5),
              (0.0, 0.3)),
        # An identity replace takes the fused path (attn_1 <- attn_0) inside its window.
        _plan("replace", identity, [1.0] * MAX_TOKENS, [1.0] * MAX_TOKENS, (0.1, 0.7),
              (0.0, 0.5)),
        _plan("refine", refine_map, keep, [1.0] * MAX_TOKENS, (0.2, 1.0), (0.0, 1.0)),
        _plan("reweight", identity, [1.0] * MAX_TOKENS, eq, (0.0, 1.0), (0.5, 1.0)),
    ]
    num_steps = 10
    e = len(plans)
    base = list(range(e)) if bases is None else bases
    f = max(base) + 1  # factual rows
    rows = 2 * (f + e) if guided else f + e
    cond_0 = f + e if guided else 0
    cond_1 = cond_0 + f

    control = P2PControl()
    control.blend_queries = queries  # as if the probe had found this map size
    control.blend_shape = (side, side)
    control.layers = {"cross": None, "self": None}  # type: ignore[dict-item]
    batch = BatchEdit(plans, num_steps, CPU, guided, blend_start=0.2, bases=bases)
    assert (batch.rows, batch.cond_0, batch.cond_1) == (rows, cond_0, cond_1)
    # Random (not 0/1) per-column word alphas exercise the blend formula fully (not for the
    # identity replace: its fused path is chosen from the 0/1 windows).
    noise = torch.rand(batch.alpha.shape, generator=gen)
    noise[1] = 1.0
    batch.alpha = batch.alpha * noise
    control.begin(batch)
    layer.set_processor(P2PAttnProcessor(control, "cross"))
    self_layer.set_processor(P2PAttnProcessor(control, "self"))
    reference = Attention(query_dim=channels, cross_attention_dim=ctx_dim, heads=heads,
                          dim_head=dim_head).eval()
    reference.load_state_dict(layer.state_dict())
    reference.set_processor(AttnProcessor2_0())

    hidden = torch.randn(rows, queries, channels, generator=gen)
    context = torch.randn(rows, MAX_TOKENS, ctx_dim, generator=gen)
    dense = [torch.zeros(MAX_TOKENS, MAX_TOKENS) for _ in plans]
    for m, plan in zip(dense, plans, strict=True):
        for a, c, w in plan.mapper:
            m[a, c] = w

    def split(module: Any, x: Any, ctx: Any) -> tuple[Any, Any, Any]:
        q = module.to_q(x).view(rows, -1, heads, dim_head).transpose(1, 2)
        k = module.to_k(ctx).view(rows, -1, heads, dim_head).transpose(1, 2)
        v = module.to_v(ctx).view(rows, -1, heads, dim_head).transpose(1, 2)
        return q, k, v

    def finish(module: Any, out: Any) -> Any:
        out = out.transpose(1, 2).reshape(rows, -1, heads * dim_head)
        return module.to_out[1](module.to_out[0](out))

    with torch.no_grad():
        for step in range(num_steps):
            control.set_step(step)
            # Cross-attention.
            got = layer(hidden, encoder_hidden_states=context)
            q, k, v = split(layer, hidden, context)
            probs = (q @ k.transpose(-1, -2) * layer.scale).softmax(-1)
            for j, plan in enumerate(plans):
                alpha_words = batch.alpha[j, step]
                probs[cond_1 + j] = _naive_edit(
                    plan.kind, probs[cond_0 + base[j]], probs[cond_1 + j], dense[j],
                    torch.tensor([max(i, -1) for i in refine]), torch.tensor(keep),
                    torch.tensor(plan.equalizer), alpha_words)
            want = finish(layer, probs @ v)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
            # The factual rows and the unconditional rows are plain attention.
            plain = reference(hidden, encoder_hidden_states=context)
            torch.testing.assert_close(got[:cond_1], plain[:cond_1], rtol=0, atol=1e-6)

            # Self-attention: replace_self_attention inside each pair's window.
            got = self_layer(hidden)
            q, k, v = split(self_layer, hidden, hidden)
            probs = (q @ k.transpose(-1, -2) * self_layer.scale).softmax(-1)
            for j, plan in enumerate(plans):
                start, end = self_steps(plan, num_steps)
                if start <= step < end and queries <= 16 ** 2:
                    probs[cond_1 + j] = probs[cond_0 + base[j]]
            want = finish(self_layer, probs @ v)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    control.end()


def test_self_replacement_skips_maps_above_the_blend_resolution() -> None:
    control = P2PControl()
    control.blend_queries = 64
    plan = _plan("replace", [(i, i, 1.0) for i in range(MAX_TOKENS)], [1.0] * MAX_TOKENS,
                 [1.0] * MAX_TOKENS, (0.0, 1.0), (0.0, 1.0))
    control.layers = {"x": None}  # type: ignore[dict-item]
    control.begin(BatchEdit([plan], 4, CPU, True, 0.2))
    assert control.self_selection(64, 4) is not None
    assert control.self_selection(256, 4) is None  # larger maps keep their own attention
    assert control.self_selection(64, 8) is None  # not this batch's rows: plain attention
    control.end()


def test_published_self_replacement_limit_is_16x16_at_any_size() -> None:
    control = P2PControl()
    control.blend_queries = 64  # a small image: cfspec's limit follows it
    plan = _plan("replace", [(i, i, 1.0) for i in range(MAX_TOKENS)], [1.0] * MAX_TOKENS,
                 [1.0] * MAX_TOKENS, (0.0, 1.0), (0.0, 1.0))
    control.layers = {"x": None}  # type: ignore[dict-item]
    control.begin(BatchEdit([plan], 4, CPU, True, 0.2, edited_blend=True, self_queries=256))
    assert control.self_selection(256, 4) is not None  # published: `<= 16 ** 2`, always
    assert control.self_selection(1024, 4) is None
    control.end()
