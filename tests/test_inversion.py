"""Inversion of real photos (cfspec/gpu/generate/inversion.py) against the published null-text
inversion's own outputs (tests/golden_p2p/published_null_text.*, README there), and the two
methods the notebook does not have (negative-prompt inversion, plain DDIM inversion)."""

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
from PIL import Image  # noqa: E402

from cfspec.gpu.generate import inversion  # noqa: E402

GOLDEN = Path(__file__).parent / "golden_p2p"


@cache
def golden() -> tuple[dict[str, Any], dict[str, Any]]:
    meta = json.loads((GOLDEN / "published_null_text.json").read_text("utf-8"))
    with np.load(GOLDEN / "published_null_text.npz") as data:
        arrays = {key: data[key] for key in data.files}
    return meta, arrays


@pytest.fixture(scope="module")
def model() -> Any:
    from p2p_models import sd_layout_components

    torch.set_num_threads(1)
    tok = transformers.CLIPTokenizer.from_pretrained(str(GOLDEN / "clip_subset"),
                                                     model_max_length=77)
    return sd_layout_components(tok)


def encode(model: Any, prompts: list[str]) -> Any:
    ids = model["tokenizer"](prompts, padding="max_length", max_length=77, truncation=True,
                             return_tensors="pt").input_ids
    with torch.no_grad():
        return model["text_encoder"](ids)[0]


def photos_and_prompts(model: Any, size: int) -> tuple[Any, Any, Any, list[np.ndarray]]:
    meta, _ = golden()
    photos = [inversion.load_photo(GOLDEN / case["photo"], size, size) for case in meta["cases"]]
    latents = inversion.encode_photos(model["vae"], photos, torch.device("cpu"), torch.float32)
    cond = encode(model, [case["prompt"] for case in meta["cases"]])
    return latents, cond, encode(model, [""]), photos


def test_photos_load_as_the_notebooks_load_512() -> None:
    meta, arrays = golden()
    for case in meta["cases"]:
        ours = inversion.load_photo(GOLDEN / case["photo"], meta["size"], meta["size"])
        assert np.array_equal(ours, arrays[case["photo"].removesuffix(".png") + ".pixels"])


def test_null_text_inversion_matches_the_published_code(model: Any) -> None:
    """Both photos in one batch; one of them stops early at step 0 (the golden run's epsilon
    was chosen so: its losses are in the json) while the other goes on."""
    meta, arrays = golden()
    latents, cond, uncond, _ = photos_and_prompts(model, meta["size"])
    settings = inversion.InversionSettings("null-text", meta["steps"], meta["guidance"],
                                           inner_steps=meta["inner_steps"],
                                           epsilon=meta["epsilon"])
    out = inversion.invert(model["unet"], model["scheduler"], latents, cond, uncond, settings)
    stops = [sum(1 for i, _, _ in case["losses"] if i == 0) for case in meta["cases"]]
    assert stops[0] < meta["inner_steps"] == stops[1]  # the batch mixes a stopped photo
    for b, case in enumerate(meta["cases"]):
        key = case["photo"].removesuffix(".png")
        trajectory = torch.stack([step[b] for step in out.trajectory]).numpy()
        assert_reordered_close(trajectory, arrays[key + ".trajectory"], meta["steps"])
        assert_reordered_close(out.start[b].numpy(), arrays[key + ".trajectory"][-1],
                               meta["steps"])
        nulls, theirs = out.uncond[:, b].numpy(), arrays[key + ".nulls"]
        start = uncond[0].numpy()
        for i in range(meta["steps"]):
            # Step i's embedding ends a chain of (i + 1) * (inner steps + 2) UNet passes
            # (forward, backward, the guided step): each counts as a denoising step of
            # rounding. Adam then divides by the gradient's own scale, so rounding stays
            # relative; the optimisation moves the embedding by far more than that.
            passes = (i + 1) * (meta["inner_steps"] + 2)
            tolerance = reorder_tolerance(theirs[i], passes)
            np.testing.assert_allclose(nulls[i], theirs[i], rtol=0, atol=tolerance)
            assert float(np.abs(theirs[i] - start).mean()) > 10 * tolerance


def test_negative_prompt_and_ddim_inversion_keep_their_unconditional_contexts(
        model: Any) -> None:
    meta, _ = golden()
    latents, cond, uncond, _ = photos_and_prompts(model, meta["size"])
    found = {}
    for method in ("negative-prompt", "ddim"):
        settings = inversion.InversionSettings(method, meta["steps"], meta["guidance"])
        found[method] = inversion.invert(model["unet"], model["scheduler"], latents, cond,
                                         uncond, settings)
    steps = meta["steps"]
    assert torch.equal(found["negative-prompt"].uncond,
                       cond.unsqueeze(0).expand(steps, -1, -1, -1))
    assert torch.equal(found["ddim"].uncond, uncond.expand(steps, 2, -1, -1))
    # The same DDIM inversion under both: no optimisation touches the trajectory.
    for a, b in zip(found["ddim"].trajectory, found["negative-prompt"].trajectory,
                    strict=True):
        assert torch.equal(a, b)


def test_negative_prompt_inversion_makes_guidance_cancel(model: Any) -> None:
    """With the conditional embedding as the unconditional one, classifier-free guidance gives
    the conditional prediction whatever its scale: the guided reconstruction is the unguided
    one (up to rounding), which plain DDIM inversion's is not."""
    meta, _ = golden()
    latents, cond, uncond, _ = photos_and_prompts(model, meta["size"])
    scheduler = model["scheduler"]

    def reconstruct(start: Any, nulls: Any, guidance: float) -> Any:
        latent = start
        with torch.no_grad():
            for i, t in enumerate(scheduler.timesteps):
                both = model["unet"](torch.cat([latent, latent]), t,
                                     encoder_hidden_states=torch.cat([nulls[i], cond])).sample
                eps_u, eps_c = both.chunk(2)
                latent = scheduler.step(eps_u + guidance * (eps_c - eps_u), t,
                                        latent).prev_sample
        return latent.numpy()

    for method in ("negative-prompt", "ddim"):
        settings = inversion.InversionSettings(method, meta["steps"], meta["guidance"])
        out = inversion.invert(model["unet"], scheduler, latents, cond, uncond, settings)
        guided = reconstruct(out.start, out.uncond, meta["guidance"])
        unguided = reconstruct(out.start, out.uncond, 1.0)
        tolerance = reorder_tolerance(unguided, meta["steps"])
        if method == "negative-prompt":
            np.testing.assert_allclose(guided, unguided, rtol=0, atol=tolerance)
        else:
            assert float(np.abs(guided - unguided).max()) > 100 * tolerance


def test_a_photo_is_centre_cropped_to_the_target_aspect(tmp_path: Path) -> None:
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = 255  # the centre third is white
    Image.fromarray(wide).save(tmp_path / "wide.png")
    square = inversion.load_photo(tmp_path / "wide.png", 20, 20)
    assert square.shape == (20, 20, 3) and square.min() == 255
    tall = inversion.load_photo(tmp_path / "wide.png", 20, 40)  # 1:2, crop 20 x 40 from 60
    assert tall.shape == (20, 40, 3)
    gray = Image.fromarray(np.full((8, 8), 7, dtype=np.uint8))
    gray.save(tmp_path / "gray.png")
    assert inversion.load_photo(tmp_path / "gray.png", 4, 4).shape == (4, 4, 3)


def test_an_unknown_method_and_a_v_prediction_model_are_refused(model: Any) -> None:
    with pytest.raises(ValueError, match="null-text, negative-prompt, ddim"):
        inversion.InversionSettings("nulltext", 4, 7.5)
    from diffusers import DDIMScheduler

    v_pred = DDIMScheduler.from_config(model["scheduler"].config, prediction_type="v_prediction")
    latents = torch.zeros(1, 4, 8, 8)
    with pytest.raises(ValueError, match="epsilon"):
        inversion.invert(model["unet"], v_pred, latents, torch.zeros(1, 77, 32),
                         torch.zeros(1, 77, 32), inversion.InversionSettings("ddim", 2, 7.5))
