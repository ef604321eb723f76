"""Prompt-to-Prompt on SDXL's layout (`tiny-sdxl`) and on SD 2.x's v-prediction, held to the
standard of SD 1.x: per layer, the attention equals the published formulas; a batch equals its
pairs alone; the factual image is the plain diffusers pipeline's (built from the same components,
saved, and loaded back through model detection); LocalBlend keeps the factual outside its mask.
Also: which pipelines load, and the diagnostic for those cfspec does not drive. CPU, no hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402
from numeric import assert_reordered_close, attention_tolerance  # noqa: E402
from test_p2p import make_pair  # noqa: E402

from cfspec.gpu.generate.edit_plan import (  # noqa: E402
    MAX_TOKENS,
    EditPlan,
    PlanError,
    PromptTokenizer,
    build_plan,
    cross_alpha,
    self_steps,
)
from cfspec.gpu.generate.engine import Engine, Job, Settings  # noqa: E402
from cfspec.gpu.generate.p2p import P2PControl  # noqa: E402
from cfspec.gpu.generate.p2p_processor import P2PAttnProcessor  # noqa: E402
from cfspec.gpu.generate.weights import (  # noqa: E402
    Components,
    ModelLoadError,
    load_components,
)

STEPS = 4
SIZE = 64  # tiny-sdxl's default: 32x32 latents, attention maps of 16x16 and 8x8
CPU = torch.device("cpu")
F32 = torch.float32


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def xl() -> Components:
    return load_components("tiny-sdxl", CPU, F32)


@pytest.fixture(scope="module")
def xl_words(xl: Components) -> PromptTokenizer:
    return PromptTokenizer(xl.tokenizer, xl.tokenizer_2)


@pytest.fixture(scope="module")
def xl_engine(xl: Components) -> Any:
    eng = Engine(xl, CPU, F32, Settings(steps=STEPS, height=SIZE, width=SIZE))
    yield eng
    eng.close()


def three_pairs() -> list[dict[str, Any]]:
    return [
        make_pair("r", "a banana on a table", "a apple on a table", cross=(0.0, 0.5),
                  blend=(["banana"], ["apple"])),
        make_pair("f", "a dog on a table", "a small dog on a table", kind="refine",
                  refine_map=[0, 1, -1, 2, 3, 4, 5, 6], cross=(0.25, 1.0)),
        make_pair("w", "a fluffy sheep in a field", "a fluffy sheep in a field",
                  kind="reweight", equalizer={"fluffy": 3.0}, self_window=(0.5, 1.0)),
    ]


# -- the model and its two tokenizers --------------------------------------------------------


def test_tiny_sdxl_has_sdxls_layout(xl: Components, xl_engine: Engine) -> None:
    assert xl.family == "sdxl" and xl.force_zeros_for_empty_prompt
    assert xl.default_size == SIZE
    assert xl.unet.config.addition_embed_type == "text_time"
    assert xl.unet.config.cross_attention_dim == (xl.text_encoder.config.hidden_size
                                                  + xl.text_encoder_2.config.hidden_size)
    assert xl.tokenizer.pad_token != xl.tokenizer_2.pad_token  # "<|endoftext|>" and "!"
    control = xl_engine.control
    cross = {info.queries for info in control.layers.values() if info.is_cross}
    assert cross == {16 * 16, 8 * 8}  # SDXL at 1024 px: 64x64 and 32x32
    # LocalBlend reads the maps of a quarter of the latent's side (32x32 for SDXL at 1024 px),
    # from the down and up blocks, as P2P does, not the middle block.
    assert control.blend_shape == (8, 8)
    assert control.blend_layers and all(
        control.layers[n].queries == 64 and not n.startswith("mid_block")
        for n in control.blend_layers)
    assert any(n.startswith("down_blocks") for n in control.blend_layers)
    assert any(n.startswith("up_blocks") for n in control.blend_layers)


def test_both_tokenizers_give_the_same_tokens_each_padded_its_own_way(
        xl: Components, xl_words: PromptTokenizer) -> None:
    prompt = 'a dog said "stop". on the porch!!'
    plan = build_plan(make_pair("p", prompt, prompt.replace("dog", "cat")), xl_words)
    n = len(plan.pieces_0)
    # The same tokens, position by position, with one difference inside the text: the second
    # tokenizer's pad token "!" is a special token, so every "!" becomes that one id (as in
    # SDXL's own tokenizer_2), where the first has "!" and "!</w>".
    bang = [i for i, p in enumerate(plan.pieces_0) if p.startswith("!")]
    assert bang and [i for i in range(n) if plan.ids_0[i] != plan.ids2_0[i]] == [
        i for i in bang if plan.ids_0[i] != xl.tokenizer_2.pad_token_id]
    assert all(plan.ids2_0[i] == xl.tokenizer_2.pad_token_id for i in bang)
    assert set(plan.ids_0[n:]) == {xl.tokenizer.eos_token_id}
    assert set(plan.ids2_0[n:]) == {xl.tokenizer_2.pad_token_id} != {xl.tokenizer.eos_token_id}
    # Exactly what each of StableDiffusionXLPipeline's tokenizers gives.
    for tok, ids in ((xl.tokenizer, plan.ids_0), (xl.tokenizer_2, plan.ids2_0)):
        assert list(ids) == tok(prompt, padding="max_length", max_length=MAX_TOKENS,
                                truncation=True).input_ids


def test_tokenizers_that_cut_a_prompt_differently_are_refused(
        xl: Components, tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    from cfspec.gpu.generate.tiny import tiny_vocab

    vocab, merges = tiny_vocab()
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    # Fewer merges: the same vocabulary cut into smaller pieces.
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges[:40]) + "\n",
                                         encoding="utf-8")
    coarse = CLIPTokenizer.from_pretrained(str(tmp_path), model_max_length=MAX_TOKENS,
                                           pad_token="!")
    tok = PromptTokenizer(xl.tokenizer, coarse)
    with pytest.raises(PlanError, match="two tokenizers cut"):
        build_plan(make_pair("p", "a banana on a table", "a apple on a table"), tok)


def test_on_clips_own_vocabulary_a_bang_run_parts_the_two_tokenizers() -> None:
    # CLIP's vocabulary and merges (the subset in tests/golden_p2p), loaded as SDXL loads its
    # two tokenizers: padding with the end token, and with "!", bigG's pad token.
    from transformers import CLIPTokenizer

    folder = Path(__file__).parent / "golden_p2p" / "clip_subset"
    first = CLIPTokenizer.from_pretrained(str(folder), model_max_length=MAX_TOKENS)
    second = CLIPTokenizer.from_pretrained(str(folder), model_max_length=MAX_TOKENS,
                                           pad_token="!")
    tok = PromptTokenizer(first, second)
    one = build_plan(make_pair("p", "a dog! on a table", "a cat! on a table"), tok)
    assert len(one.pieces_0) == len(one.pieces_1)  # "!</w>" and the special "!" share a column
    assert "!!</w>" in first.get_vocab()  # ViT-L: one token; bigG: "!" twice
    with pytest.raises(PlanError, match="two tokenizers cut"):
        build_plan(make_pair("p", "a dog!! on a table", "a cat!! on a table"), tok)


# -- the factual image is StableDiffusionXLPipeline's -----------------------------------------


def _save_xl(tmp_path: Path, force_zeros: bool = True, latent_stats: bool = False) -> Path:
    from diffusers import StableDiffusionXLPipeline

    from cfspec.gpu.generate.tiny import tiny_sdxl_components

    parts = tiny_sdxl_components()
    del parts["force_zeros_for_empty_prompt"]
    if latent_stats:  # a VAE that normalises its latents per channel
        parts["vae"].register_to_config(latents_mean=[0.1, -0.2, 0.3, 0.0],
                                        latents_std=[1.5, 0.5, 2.0, 1.0])
    pipe = StableDiffusionXLPipeline(**parts, force_zeros_for_empty_prompt=force_zeros,
                                     add_watermarker=False)
    folder = tmp_path / "tiny-sdxl"
    pipe.save_pretrained(folder)
    return folder


@pytest.mark.parametrize(("scheduler", "force_zeros", "latent_stats"),
                         [("ddim", True, False), ("euler", True, False), ("ddim", False, True)])
def test_factual_image_is_the_sdxl_pipelines(tmp_path: Path, scheduler: str,
                                             force_zeros: bool, latent_stats: bool) -> None:
    # force_zeros_for_empty_prompt: the unconditional branch is zeros (SDXL base), or the
    # empty prompt through both encoders. latent_stats: the VAE's latents_mean/latents_std.
    from diffusers import DDIMScheduler, EulerDiscreteScheduler, StableDiffusionXLPipeline

    folder = _save_xl(tmp_path, force_zeros, latent_stats)
    comps = load_components(str(folder), CPU, F32)  # detected from model_index.json
    assert comps.family == "sdxl" and comps.force_zeros_for_empty_prompt == force_zeros
    prompt = "a dog on a table"
    plan = build_plan(make_pair("p", prompt, "a cat on a table", blend=(["dog"], ["cat"])),
                      PromptTokenizer(comps.tokenizer, comps.tokenizer_2))
    engine = Engine(comps, CPU, F32, Settings(steps=STEPS, scheduler=scheduler))
    try:
        assert (engine.height, engine.width) == (SIZE, SIZE)  # the model's default size
        ours = engine.run([Job("p", 0, plan)])[0]
    finally:
        engine.close()
    pipe = StableDiffusionXLPipeline.from_pretrained(folder, add_watermarker=False)
    cls = DDIMScheduler if scheduler == "ddim" else EulerDiscreteScheduler
    pipe.scheduler = cls.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)

    def theirs(output_type: str) -> Any:
        return pipe(prompt, num_inference_steps=STEPS, guidance_scale=7.5,
                    generator=torch.Generator("cpu").manual_seed(0),
                    output_type=output_type).images[0]

    latents = theirs("latent").numpy()
    assert_reordered_close(ours.latents[0], latents, STEPS)
    assert not np.allclose(ours.latents[1], latents, atol=1e-2)  # the counterfactual differs
    image = np.asarray(theirs("pil"), dtype=np.int16)
    assert np.abs(np.asarray(ours.images[0], dtype=np.int16) - image).max() <= 1


# -- per layer, the published formulas -------------------------------------------------------


class _Twin(P2PAttnProcessor):
    """Our processor, compared on every call with the published formulas on the same input."""

    def __init__(self, control: P2PControl, name: str, plans: list[EditPlan],
                 seen: list[tuple[str, int, bool, float, float, float]]) -> None:
        super().__init__(control, name)
        self.plans = plans
        self.seen = seen

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None,
                 attention_mask: Any = None, temb: Any = None, *args: Any, **kwargs: Any) -> Any:
        got = super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if self.control.batch is not None:
            want, plain, tol = _published_layer(attn, hidden_states, encoder_hidden_states,
                                                self.control, self.plans)
            self.seen.append((self.name, self.control.step, encoder_hidden_states is not None,
                              float((got - want).abs().max()), tol,
                              float((plain - want).abs().max())))
        return got


def _published_layer(attn: Any, x: Any, ctx: Any, control: P2PControl, plans: list[EditPlan]
                     ) -> tuple[Any, Any, float]:
    """google/prompt-to-prompt's AttentionReplace / AttentionRefine / AttentionReweight and
    replace_self_attention on explicit probabilities, literally; then the layer's projection.
    Returns (edited output, unedited output, tolerance)."""
    batch = control.batch
    assert batch is not None and attn.norm_cross is None and attn.group_norm is None
    is_cross = ctx is not None
    context = ctx if is_cross else x
    heads = attn.heads
    q, k, v = attn.to_q(x), attn.to_k(context), attn.to_v(context)
    rows, queries, _ = q.shape
    dim = k.shape[-1] // heads
    q, k, v = (t.view(rows, -1, heads, dim).transpose(1, 2).float() for t in (q, k, v))
    probs = (q @ k.transpose(-1, -2) * attn.scale).softmax(-1)
    plain = probs.clone()
    steps, step = batch.num_steps, control.step
    gain = 1.0
    for j, plan in enumerate(plans):
        base, own = probs[batch.cond_0 + j], probs[batch.cond_1 + j]
        if is_cross:
            mapper = torch.zeros(MAX_TOKENS, MAX_TOKENS)
            for a, b, w in plan.mapper:
                mapper[a, b] = w
            if plan.kind == "refine":
                refine = [0] * MAX_TOKENS
                for a, b, _ in plan.mapper:
                    refine[b] = a
                alphas = torch.tensor(plan.keep)
                replaced = base[:, :, refine] * alphas + own * (1 - alphas)
            else:
                replaced = torch.einsum("hpw,wn->hpn", base, mapper)
            replaced = replaced * torch.tensor(plan.equalizer)
            alpha_words = torch.tensor(cross_alpha(plan, steps)[min(step, steps)])
            probs[batch.cond_1 + j] = replaced * alpha_words + (1 - alpha_words) * own
            gain = max(gain, float(mapper.sum(0).max()) * max(plan.equalizer))
        else:
            start, end = self_steps(plan, steps)
            if start <= step < end and queries <= control.blend_queries:
                probs[batch.cond_1 + j] = base

    def finish(p: Any) -> Any:
        out = (p @ v).transpose(1, 2).reshape(rows, queries, heads * dim).to(x.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + x
        return out / attn.rescale_output_factor

    tol = attention_tolerance(q, k, v, attn.scale, attn.to_out[0].weight, gain)
    return finish(probs), finish(plain), tol


def test_every_sdxl_attention_layer_equals_the_published_formulas(
        xl: Components, xl_words: PromptTokenizer) -> None:
    plans = [build_plan(p, xl_words) for p in three_pairs()]
    engine = Engine(xl, CPU, F32, Settings(steps=STEPS, height=SIZE, width=SIZE))
    seen: list[tuple[str, int, bool, float, float, float]] = []
    try:
        names = list(xl.unet.attn_processors)
        xl.unet.set_attn_processor({n: _Twin(engine.control, n, plans, seen) for n in names})
        engine.run([Job(f"j{i}", i, p) for i, p in enumerate(plans)])
    finally:
        engine.close()
    # Every attention layer of the UNet (self and cross, every transformer layer, the middle
    # block too) at every step.
    assert sorted({(name, step) for name, step, *_ in seen}) == sorted(
        (n, s) for n in names for s in range(STEPS))
    assert any(is_cross for _, _, is_cross, *_ in seen)
    assert any(not is_cross for _, _, is_cross, *_ in seen)
    for name, step, _, error, tol, _ in seen:
        assert error <= tol, f"{name} at step {step}: {error} > {tol}"
    # The edits are real: somewhere each kind of layer moves well beyond the tolerance, so a
    # wrong column, row or window would not pass.
    for kind in (True, False):
        assert any(moved > 10 * tol for _, _, c, _, tol, moved in seen if c == kind)


# -- batches, LocalBlend, dtypes ---------------------------------------------------------------


def test_a_batch_of_sdxl_pairs_equals_each_alone(xl_engine: Engine,
                                                  xl_words: PromptTokenizer) -> None:
    jobs = [Job(p.id, s, build_plan(p, xl_words)) for s, p in enumerate(three_pairs())]
    together = xl_engine.run(jobs)
    for job, batched in zip(jobs, together, strict=True):
        alone = xl_engine.run([job])[0]
        assert batched.job == alone.job
        assert_reordered_close(batched.latents, alone.latents, STEPS)
        assert_reordered_close(batched.attention, alone.attention, STEPS)
        for a, b in zip(batched.images, alone.images, strict=True):
            diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
            assert diff.max() <= 1
    reordered = xl_engine.run(list(reversed(jobs)))
    assert_reordered_close(reordered[0].latents, together[2].latents, STEPS)


def test_sdxl_local_blend_keeps_the_factual_outside_the_mask(
        xl: Components, xl_words: PromptTokenizer) -> None:
    pair = make_pair("blend", "a banana on a table", "a apple on a table",
                     blend=(["banana"], ["apple"]))
    plan = build_plan(pair, xl_words)
    # Random weights attend almost evenly: only the maps' very peaks clear a threshold this high.
    plan = EditPlan(**{**plan.__dict__, "threshold": 0.999})
    engine = Engine(xl, CPU, F32, Settings(steps=STEPS, height=SIZE, width=SIZE,
                                           blend_start=0.0))
    try:
        out = engine.run([Job("blend", 0, plan)])[0]
    finally:
        engine.close()
    mask = out.mask.astype(bool)
    assert mask.shape == (SIZE // 2, SIZE // 2)  # the latent's size
    assert out.attention.shape == (2, 8, 8)  # the blend resolution's maps
    assert 0 < mask.sum() < mask.size
    # x_1 <- x_0 + 0 * (x_1 - x_0) outside the mask: the factual's values, bit for bit.
    np.testing.assert_array_equal(out.latents[1][:, ~mask], out.latents[0][:, ~mask])
    assert not np.allclose(out.latents[1][:, mask], out.latents[0][:, mask], atol=1e-3)


def test_fp16_keeps_a_force_upcast_vae_in_fp32() -> None:
    half = load_components("tiny-sdxl", CPU, torch.float16)
    assert half.unet.dtype == torch.float16 and half.text_encoder_2.dtype == torch.float16
    assert half.vae.config.force_upcast and half.vae.dtype == torch.float32
    # StableDiffusionPipeline does not upcast (AutoencoderKL says force_upcast by default).
    sd = load_components("tiny", CPU, torch.float16)
    assert sd.vae.config.force_upcast and sd.vae.dtype == torch.float16
    engine = Engine.__new__(Engine)  # only the decoder: fp16 CPU denoising is slow
    engine.comps = half
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    image = engine._decode(latents.to(torch.float16))[0]
    assert image.size == (16, 16) and np.asarray(image).std() > 0


# -- SD 2.x: v-prediction, "!" padding, 768 px -------------------------------------------------

SD2_SCHEDULER = {  # stabilityai/stable-diffusion-2-1's scheduler_config.json
    "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1,
    "prediction_type": "v_prediction", "num_train_timesteps": 1000,
}


def _save_sd2(tmp_path: Path, **unet: Any) -> Path:
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from cfspec.gpu.generate.tiny import tiny_components, tiny_tokenizer

    parts = tiny_components(tokenizer=tiny_tokenizer(pad_token="!"))
    parts["scheduler"] = DDIMScheduler.from_config(SD2_SCHEDULER)
    pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    folder = tmp_path / "tiny-sd2"
    pipe.save_pretrained(folder)
    return folder


def test_sd2_v_prediction_factual_image_is_the_plain_pipelines(tmp_path: Path) -> None:
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    folder = _save_sd2(tmp_path)
    comps = load_components(str(folder), CPU, F32)
    assert comps.family == "sd" and comps.prediction_type == "v_prediction"
    words = PromptTokenizer(comps.tokenizer)
    prompt = "a banana on a table"
    plan = build_plan(make_pair("v", prompt, "a apple on a table",
                                blend=(["banana"], ["apple"])), words)
    assert plan.ids_0[len(plan.pieces_0)] == comps.tokenizer.pad_token_id  # "!" padding
    engine = Engine(comps, CPU, F32, Settings(steps=STEPS, height=32, width=32))
    try:
        assert engine.scheduler.config.prediction_type == "v_prediction"
        ours = engine.run([Job("v", 0, plan)])[0]
    finally:
        engine.close()
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(prompt, num_inference_steps=STEPS, guidance_scale=7.5, height=32, width=32,
                  generator=torch.Generator("cpu").manual_seed(0),
                  output_type="latent").images[0].numpy()
    assert_reordered_close(ours.latents[0], theirs, STEPS)
    assert not np.allclose(ours.latents[1], theirs, atol=1e-2)
    # The same weights read as epsilon-prediction give another image: v is really used.
    eps = Components(**{**comps.__dict__, "scheduler": DDIMScheduler.from_config(
        SD2_SCHEDULER, prediction_type="epsilon")})
    engine = Engine(eps, CPU, F32, Settings(steps=STEPS, height=32, width=32))
    try:
        other = engine.run([Job("v", 0, plan)])[0]
    finally:
        engine.close()
    assert not np.allclose(other.latents[0], theirs, atol=1e-2)


def test_an_sd2_768_model_renders_768_px_by_default() -> None:
    from diffusers import AutoencoderKL

    from cfspec.gpu.generate.tiny import tiny_components

    parts = tiny_components()
    vae = AutoencoderKL(block_out_channels=(8, 8, 8, 8), norm_num_groups=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4)
    parts["unet"].register_to_config(sample_size=96)  # SD 2.x 768-v: 96x96 latents
    comps = Components(name="sd2-768", **{**parts, "vae": vae})
    assert comps.vae_scale_factor == 8 and comps.default_size == 768
    engine = Engine(comps, CPU, F32, Settings(steps=1))
    try:
        assert (engine.height, engine.width) == (768, 768)
        assert engine.latent_shape == (4, 96, 96)
        # The tiny UNet's only cross-attention maps (one level down) are what it blends on.
        assert engine.control.blend_shape == (48, 48)
    finally:
        engine.close()


# -- which pipelines load ----------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", ["StableDiffusion3Pipeline", "FluxPipeline",
                                      "StableDiffusionXLImg2ImgPipeline", "SomeNewPipeline"])
def test_a_pipeline_cfspec_does_not_drive_is_named_with_the_supported_ones(
        tmp_path: Path, pipeline: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": pipeline}), "utf-8")
    with pytest.raises(ModelLoadError) as caught:
        load_components(str(folder), CPU, F32)
    message = str(caught.value)
    assert pipeline in message
    assert "StableDiffusionPipeline" in message and "StableDiffusionXLPipeline" in message
    assert "= help:" in message and "tiny-sdxl" in message


def test_unreadable_model_index_is_a_load_error(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model_index.json").write_text("{not json", "utf-8")
    with pytest.raises(ModelLoadError, match="not a readable model_index.json"):
        load_components(str(folder), CPU, F32)


def test_generate_command_reports_an_unsupported_pipeline_without_a_traceback(
        tmp_path: Path) -> None:
    from test_generate import PAIRS, write_pairs
    from typer.testing import CliRunner

    from cfspec.cli.app import app
    from cfspec.stages.preflight import run_problems

    folder = tmp_path / "sd3"
    folder.mkdir()
    (folder / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusion3Pipeline"}), "utf-8")
    out = write_pairs(tmp_path / "out", PAIRS[:1])
    result = CliRunner().invoke(app, ["generate", str(out), "--model", str(folder), "--quiet"])
    assert result.exit_code == 2, result.output
    assert "cfspec: error: cannot drive" in result.output
    assert "StableDiffusionXLPipeline" in result.output and "Traceback" not in result.output
    # `cfspec run` says so before the first image.
    run_out = tmp_path / "run"
    run_out.mkdir()
    problems = run_problems(run_out, model=str(folder), clip_model="tiny")
    assert any("StableDiffusion3Pipeline" in p for p in problems)
    assert run_problems(run_out, model="tiny-sdxl", clip_model="tiny") == []


def test_generate_with_tiny_sdxl_end_to_end(tmp_path: Path) -> None:
    from test_generate import PAIRS, write_pairs

    from cfspec.gpu.generate.stage import generate

    out = write_pairs(tmp_path / "out", PAIRS[:2])
    result = generate(out, model="tiny-sdxl", steps=2, batch_pairs=2, quiet=True)
    assert result.ok and result.generated == 2
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text("utf-8").splitlines()]
    assert {r["model"] for r in lines} == {"tiny-sdxl"}
    assert {(r["height"], r["width"]) for r in lines} == {(SIZE, SIZE)}
    with np.load(out / lines[0]["extras"]) as extras:
        assert extras["latents"].shape == (2, 4, SIZE // 2, SIZE // 2)
        assert extras["attention"].shape == (2, 8, 8)


def test_random_sdxl_is_sdxl_base_architecture() -> None:
    from cfspec.gpu.generate.weights import random_sdxl_components

    parts = random_sdxl_components(torch.device("meta"))  # shapes only: no memory, no time

    def count(module: Any) -> int:
        return sum(p.numel() for p in module.parameters())

    # stabilityai/stable-diffusion-xl-base-1.0's UNet and VAE, parameter for parameter.
    assert count(parts["unet"]) == 2_567_463_684
    assert count(parts["vae"]) == 83_653_863
    assert parts["unet"].config.cross_attention_dim == 768 + 1280  # CLIP ViT-L + OpenCLIP bigG
    assert parts["text_encoder_2"].config.num_hidden_layers == 32
    assert parts["text_encoder_2"].config.projection_dim == 1280
    assert parts["unet"].config.sample_size * 8 == 1024
