"""Evaluation metrics on constructed inputs with known answers, and the tiny CLIP end to end.

Everything runs on the CPU with no download: the CLIP model is the embedded random `tiny` one,
and FID/KID run on a small random conv net standing in for Inception (real Inception weights
are a local file the tests cannot have; the path handling is tested with a fake class)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("torchmetrics")

from cfspec.gpu.evaluate import (  # noqa: E402
    background,
    latents,
    metrics,
    perceptual,
    set_distances,
    similarity,
)

# --- helpers ----------------------------------------------------------------------------------


def _unit(*values: float) -> torch.Tensor:
    v = torch.tensor(values, dtype=torch.float32)
    return v / v.norm()


def _at_angle(base: torch.Tensor, ortho: torch.Tensor, degrees: float) -> torch.Tensor:
    r = math.radians(degrees)
    return math.cos(r) * base + math.sin(r) * ortho


E1, E2, E3, E4 = torch.eye(4)


class StandIn(torch.nn.Module):
    """A tiny random conv net in place of Inception: uint8 (N, 3, H, W) -> (N, 16)."""

    num_features = 16

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(32, 16),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float() / 255.0)


def _images(n: int, seed: int, low: int = 0, high: int = 256, size: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, (n, 3, size, size), generator=g, dtype=torch.uint8)


# --- CLIP-embedding metrics -------------------------------------------------------------------


def test_embeddings_at_60_degrees() -> None:
    img, txt = E1, _at_angle(E1, E2, 60)
    assert float(torch.dot(img, txt)) == pytest.approx(0.5, abs=1e-6)
    assert float(similarity.clip_score(img, txt)) == pytest.approx(50.0, abs=1e-4)
    assert float(similarity.image_image_similarity(img, txt)) == pytest.approx(0.5, abs=1e-6)


def test_clip_score_is_clamped_at_zero_and_batched() -> None:
    images = torch.stack([E1, E1, E1])
    texts = torch.stack([E1, _at_angle(E1, E2, 90), _at_angle(E1, E2, 120)])
    scores = similarity.clip_score(images, texts)
    assert scores.tolist() == pytest.approx([100.0, 0.0, 0.0], abs=1e-4)
    assert bool(((scores >= 0) & (scores <= 100)).all())


def test_identical_images_similarity_one_directional_undefined() -> None:
    img = _unit(1, 2, 3, 4)
    sim = similarity.image_image_similarity(img, img.clone())
    assert float(sim) == pytest.approx(1.0, abs=1e-6)
    d = similarity.directional_similarity(img, img.clone(), E1, E2)
    assert float(d.value) == 0.0 and not bool(d.defined)
    # identical prompts: the text change has no direction either
    d2 = similarity.directional_similarity(E1, E2, E3, E3.clone())
    assert float(d2.value) == 0.0 and not bool(d2.defined)


def test_directional_known_value_and_swap_flips_sign() -> None:
    # image change E2 - E1, text change E4 - E3 rotated: construct cos = 0.5 directly
    img0, img1 = E1, E2
    txt0 = E3
    d_img = (img1 - img0) / (img1 - img0).norm()
    ortho = E4
    txt1 = txt0 + _at_angle(d_img, ortho, 60)  # text change at 60 degrees from image change
    d = similarity.directional_similarity(img0, img1, txt0, txt1)
    assert bool(d.defined) and float(d.value) == pytest.approx(0.5, abs=1e-6)
    swapped = similarity.directional_similarity(img1, img0, txt0, txt1)
    assert float(swapped.value) == pytest.approx(-0.5, abs=1e-6)
    # batched: rows are independent
    both = similarity.directional_similarity(
        torch.stack([img0, img1]), torch.stack([img1, img0]),
        torch.stack([txt0, txt0]), torch.stack([txt1, txt1]),
    )
    assert both.value.tolist() == pytest.approx([0.5, -0.5], abs=1e-6)


def test_effectiveness_margin() -> None:
    factual_text, cf_text = E1, E2
    cf_image = _unit(0.2, 0.9, 0, 0.1)  # closer to its own prompt
    eff = similarity.effectiveness(cf_image, factual_text, cf_text)
    expected = 100 * (float(cf_image[1]) - float(cf_image[0]))
    assert bool(eff.effective) and float(eff.margin) == pytest.approx(expected, abs=1e-4)
    eff2 = similarity.effectiveness(_unit(0.9, 0.2, 0, 0), factual_text, cf_text)
    assert not bool(eff2.effective) and float(eff2.margin) < 0


# --- latent divergence ------------------------------------------------------------------------


def test_latent_distances_known_values() -> None:
    z0 = torch.zeros(4, 8, 8)
    z1 = torch.full((4, 8, 8), 2.0)
    assert float(latents.latent_l2_per_dim(z0, z1)) == pytest.approx(2.0)
    z = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(1))
    assert float(latents.latent_cosine_distance(z, 3 * z)) == pytest.approx(0.0, abs=1e-6)
    assert float(latents.latent_cosine_distance(z, -z)) == pytest.approx(2.0, abs=1e-6)
    a, b = torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)
    a[:, 0, 0, 0], b[:, 0, 0, 1] = 1.0, 1.0
    assert latents.latent_cosine_distance(a, b).tolist() == pytest.approx([1.0, 1.0])  # orthogonal
    batch = latents.latent_l2_per_dim(torch.stack([z0, z0]), torch.stack([z0, z1]))
    assert batch.tolist() == pytest.approx([0.0, 2.0])


def test_cld_hand_computed() -> None:
    # P(S_cf <= 2) = 2/5 (1 and 2, inclusive), P(S_f >= 2) = 1/3 (only 3)
    # CLD = ln(0.8 e^0.4 + 0.2 e^(1/3)) = ln(1.1934598 + 0.2791225) = ln(1.4725823) = 0.3870177
    cld = latents.counterfactual_latent_divergence([1, 2, 3, 4, 5], [0.5, 1, 3], 2.0)
    assert cld == pytest.approx(0.3870177, abs=1e-6)
    assert latents.counterfactual_latent_divergence([5, 6], [0.1, 0.2], 1.0) == pytest.approx(0.0)
    assert latents.counterfactual_latent_divergence([0.1], [5.0], 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        latents.counterfactual_latent_divergence([], [1.0], 1.0)


def test_cld_from_latents() -> None:
    k = 20
    factual = torch.arange(k, dtype=torch.float32).reshape(k, 1, 1, 1)
    far = factual + 100.0  # every counterfactual far away: d = 100
    result = latents.cld_from_latents(factual, far, index=0, shared_noise=False)
    # S_f = {1..19}: none >= 100; S_cf = {101..119}: none <= 100
    assert (result.d, result.p_cf, result.p_f, result.cld) == pytest.approx((100, 0, 0, 0))
    assert result.d_vs_reseed == pytest.approx(100 / 10)  # median of S_f = {1..19} is 10
    near = factual + 0.5  # d = 0.5; S_cf = {1.5..19.5}: none <= 0.5; S_f = {1..19}: all >= 0.5
    result = latents.cld_from_latents(factual, near, index=0, shared_noise=False)
    assert result.p_cf == 0.0 and result.p_f == 1.0
    assert result.cld == pytest.approx(math.log(0.8 + 0.2 * math.e))
    with pytest.raises(ValueError, match="at least 20 seeds"):
        latents.cld_from_latents(factual[:19], near[:19], index=0, shared_noise=False)


def test_cld_is_a_constant_for_shared_noise_and_withheld() -> None:
    """Counterfactuals that share their factual's noise (x* = x + a small edit of any size
    below the seed spread): p_cf = 0 and p_f = 1 for every seed and edit size, the published
    CLD is the same number for all of them, so it is not reported; its ingredients are, and
    d_vs_reseed still orders the edits by size."""
    g = torch.Generator().manual_seed(4)
    factual = torch.randn(20, 4, 8, 8, generator=g)
    edit = torch.randn(20, 4, 8, 8, generator=g)
    published, ratios = set(), []
    for size in (0.05, 0.2, 0.5):
        cf = factual + size * edit
        for index in range(20):
            shared = latents.cld_from_latents(factual, cf, index, shared_noise=True)
            assert shared.cld is None and "same noise" in (shared.reason or "")
            assert (shared.p_cf, shared.p_f) == (0.0, 1.0)
            published.add(round(
                latents.cld_from_latents(factual, cf, index, shared_noise=False).cld, 12))
        ratios.append(latents.cld_from_latents(factual, cf, 0, shared_noise=True).d_vs_reseed)
    assert published == {round(math.log(0.8 + 0.2 * math.e), 12)}
    assert ratios == sorted(ratios) and ratios[0] < ratios[-1] < 1.0


def test_published_cld_discriminates_with_independent_noise() -> None:
    """Independent noise, as the paper meant: the counterfactual class is a shifted copy of
    the factual class (its own draws). A counterfactual that is a close member of the new
    class scores lower than one far out in it."""
    g = torch.Generator().manual_seed(5)
    factual = torch.randn(20, 1, 4, 4, generator=g)
    cf_class = torch.randn(20, 1, 4, 4, generator=g) + 3.0
    x = factual[0]
    ordered = sorted(range(1, 20), key=lambda k: float((cf_class[k] - x).norm()))
    scores = []
    for k in (ordered[0], ordered[-1]):  # the nearest and the farthest class member as x*
        cf = cf_class.clone()
        cf[0] = cf_class[k]
        scores.append(latents.cld_from_latents(factual, cf, 0, shared_noise=False).cld)
    assert scores[0] is not None and scores[1] is not None and scores[0] < scores[1]


def test_edit_locality_known_answer() -> None:
    """z1 = z0 + a inside the edit region + b outside it: outside reads b, inside a, and only
    a change the edit does not explain (b) moves the minimality score."""
    g = torch.Generator().manual_seed(6)
    z0 = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)  # exact differences
    attention = torch.zeros(1, 8, 8)
    attention[0, 2:6, 2:6] = 1.0  # 16 of 64 positions edited
    inside = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    inside[..., 2:6, 2:6] = True

    def shifted(a: float, b: float) -> torch.Tensor:
        step = torch.tensor([a, b], dtype=z0.dtype)
        return z0 + torch.where(inside, step[0], step[1])

    result = latents.edit_locality(z0, shifted(2.0, 0.5), attention)
    assert float(result.outside) == pytest.approx(0.5, rel=1e-9)
    assert float(result.inside) == pytest.approx(2.0, rel=1e-9)
    share = 0.25 * 48 / (4.0 * 16 + 0.25 * 48)
    assert float(result.share_outside) == pytest.approx(share, rel=1e-9)
    assert float(result.area_outside) == 48 / 64
    bigger_edit = latents.edit_locality(z0, shifted(4.0, 0.5), attention)
    assert float(bigger_edit.outside) == pytest.approx(0.5, rel=1e-9)  # explained: no penalty
    leaky = latents.edit_locality(z0, shifted(2.0, 1.0), attention)
    assert float(leaky.outside) == pytest.approx(1.0, rel=1e-9)  # unexplained: score doubles
    assert float(leaky.share_outside) > float(result.share_outside)
    # no change at all: 0 outside, share undefined; an all-covering region: outside undefined
    same = latents.edit_locality(z0, z0.clone(), attention)
    assert float(same.outside) == 0.0 and math.isnan(float(same.share_outside))
    everywhere = latents.edit_locality(z0, shifted(1.0, 1.0), torch.ones(1, 8, 8))
    assert math.isnan(float(everywhere.outside))


def test_pair_metrics_reports_why_locality_is_undefined() -> None:
    emb = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    z0 = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    z1 = z0 + 1.0
    changed = torch.stack([torch.ones(4, 4), torch.eye(4)])  # all positions; the diagonal
    rows = metrics.pair_metrics(emb, emb.flip(0), emb, emb.flip(0), latents_0=z0, latents_1=z1,
                          changed=changed)
    assert rows[0]["latent_l2_outside_edit"] is None
    assert "covers every" in rows[0]["latent_l2_outside_edit_reason"]
    assert rows[1]["latent_l2_outside_edit"] == pytest.approx(1.0, rel=1e-6)
    assert rows[1]["edit_area_outside"] == pytest.approx(12 / 16)
    json.dumps(rows)


# --- background preservation ------------------------------------------------------------------


def test_changed_region_upsamples_bilinearly_and_thresholds() -> None:
    attention = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    # bilinear 2 -> 4 (align_corners=False): the top-left 2x2 block reads 1, .75, .75, .5625;
    # the next ring reads .25 or less: exactly that block is >= 0.5
    region = background.changed_region(attention, (4, 4))
    expected = torch.zeros(1, 4, 4, dtype=torch.bool)
    expected[0, :2, :2] = True
    assert torch.equal(region, expected)
    # two maps per pair (one per image): their union
    two = torch.stack([attention, attention.flip(-1)]).unsqueeze(0)
    assert int(background.changed_region(two, (4, 4)).sum()) == 8


def test_changed_region_uses_the_map_range() -> None:
    """Accumulated attention with a high floor (0.8-1.0 of its peak, as the tiny model's maps
    are): thresholding the peak alone marks everything; the map's own range marks the
    positions nearer its peak, and the background then has a score."""
    attention = torch.full((1, 4, 4), 0.8)
    attention[0, :2, :2] = 1.0
    region = background.changed_region(attention, (4, 4))
    assert int(region.sum()) == 4 and bool(region[0, :2, :2].all())
    img0 = _images(1, 0, size=16)
    (score,) = background.masked_psnr(img0, img0.clone(), attention)
    assert score.value == background.PSNR_CAP_DB and score.pixels > 0
    # a flat map has no range: all positive = everything changed, all zero = nothing did
    assert bool(background.changed_region(torch.full((4, 4), 0.9), (4, 4)).all())
    assert not bool(background.changed_region(torch.zeros(4, 4), (4, 4)).any())


def test_mask_covering_everything_gives_none() -> None:
    img0, img1 = _images(1, 0), _images(1, 1)
    everything = torch.ones(1, 16, 16, dtype=torch.bool)
    for fn in (background.masked_ssim, background.masked_psnr, perceptual.masked_lpips):
        (score,) = fn(img0, img1, everything)
        assert score.value is None and score.reason and score.pixels == 0


def test_empty_mask_identical_images() -> None:
    img = _images(2, 3, size=32)
    nothing = torch.zeros(16, 16)  # attention map with no changed word anywhere
    ssim = background.masked_ssim(img, img.clone(), nothing)
    assert [s.value for s in ssim] == pytest.approx([1.0, 1.0], abs=1e-5)
    psnr = background.masked_psnr(img, img.clone(), nothing)
    assert [p.value for p in psnr] == [background.PSNR_CAP_DB, background.PSNR_CAP_DB]
    assert all(p.capped and p.pixels == 32 * 32 for p in psnr)


def test_masked_psnr_known_mse() -> None:
    img0 = torch.zeros(1, 8, 8, 3, dtype=torch.uint8)  # channel-last works too
    img1 = torch.full((1, 8, 8, 3), 10, dtype=torch.uint8)  # MSE 100 on the background
    changed = torch.zeros(1, 8, 8, dtype=torch.bool)
    changed[0, :4] = True
    img1[0, :4] = 200  # a large difference inside the changed region: ignored
    (score,) = background.masked_psnr(img0, img1, changed)
    assert score.value == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-9)  # 28.13 dB
    assert score.pixels == 32 and not score.capped
    # float images in [0, 1]: data range 1
    (score_f,) = background.masked_psnr(img0.float() / 255, img1.float() / 255, changed)
    assert score_f.value == pytest.approx(score.value, abs=1e-6)


def test_masked_ssim_ignores_the_changed_region() -> None:
    img0 = _images(1, 5, size=48)
    img1 = img0.clone()
    img1[..., 16:32, 16:32] = 255 - img1[..., 16:32, 16:32]  # change only the centre
    changed = torch.zeros(1, 48, 48, dtype=torch.bool)
    changed[0, 16:32, 16:32] = True
    (masked,) = background.masked_ssim(img0, img1, changed)
    (full,) = background.masked_ssim(img0, img1, torch.zeros(1, 48, 48, dtype=torch.bool))
    assert masked.value is not None and full.value is not None
    assert masked.value > full.value and masked.value > 0.8  # edge windows see a little change
    assert masked.pixels == 48 * 48 - 16 * 16


def test_lpips_availability_is_detected_without_network() -> None:
    ok, reason = perceptual.lpips_available("alex")
    if ok:
        pytest.skip("LPIPS weights are present on this machine")
    assert reason
    (score,) = perceptual.masked_lpips(_images(1, 0), _images(1, 1), torch.zeros(1, 16, 16))
    assert score.value is None and score.reason == reason


def test_pair_metrics_rows_are_json_ready() -> None:
    emb = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    img0, img1 = _images(3, 0), _images(3, 1)
    changed = torch.zeros(3, 4, 4)
    changed[2] = 1.0  # everything changed in the third pair
    rows = metrics.pair_metrics(
        emb[:3], emb[3:], emb[[1, 2, 0]], emb[[4, 5, 3]], img0, img1, changed,
        torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2),
    )
    assert len(rows) == 3
    json.dumps(rows)
    assert rows[2]["background_ssim"] is None and "background_ssim_reason" in rows[2]
    assert {"clip_score_0", "directional_similarity", "latent_l2_per_dim"} <= set(rows[0])


def test_fid_refused_below_50() -> None:
    feats = torch.randn(49, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match="at least 50"):
        set_distances.fid_from_features(feats, torch.randn(100, 16, dtype=torch.float64))

    class Exploding(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise AssertionError("the network must not run when FID is refused")

    with pytest.raises(ValueError, match="FID refused"):
        set_distances.set_distances(_images(49, 0), _images(60, 1), feature_extractor=Exploding())


def test_fid_matches_torchmetrics_and_reports_n_features_and_floor() -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    ref, cand = _images(200, 0), _images(100, 1, low=60, high=200)  # a shifted distribution
    net = StandIn()
    with pytest.warns(UserWarning, match="biased upwards"):
        out = set_distances.set_distances(ref, cand, feature_extractor=net, kid_subsets=10)
    fid = out["fid"]
    direct = FrechetInceptionDistance(feature=net)
    direct.update(ref, real=True)
    direct.update(cand, real=False)
    assert fid.value == pytest.approx(float(direct.compute()), rel=1e-4, abs=1e-6)
    assert (fid.n_reference, fid.n_candidate, fid.feature_size) == (200, 100, 16)
    # the floor: 100 reference images standing in for the candidate against the other 100
    assert (fid.noise_floor_n, fid.noise_floor_reference_n) == (100, 100)
    assert fid.noise_floor is not None and 0 <= fid.noise_floor < fid.value
    assert fid.value_at_floor_sizes is not None and fid.value_at_floor_sizes > fid.noise_floor
    assert any("biased upwards" in note for note in fid.notes)
    json.dumps(fid.as_dict())
    kid = out["kid"]
    assert kid.noise_floor is not None and kid.value > kid.noise_floor
    # 200 / 100 images: every KID subset is the whole candidate set, so no std
    assert kid.std is None and any("no std" in note for note in kid.notes)


def test_fid_floor_is_at_the_value_sizes() -> None:
    """No change at all (candidate and reference from one distribution), 160 reference and 60
    candidate images, the sizes where a 60-vs-60 floor sat above the value: the floor and
    `value_at_floor_sizes` share their sizes, so over many draws their difference averages 0
    (within 4 standard errors of its own spread), while the floor minus the all-reference
    value does not (a smaller reference side: more small-N bias)."""
    g = torch.Generator().manual_seed(11)
    matched_gap, full_gap = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for draw in range(40):
            ref = torch.randn(160, 12, generator=g, dtype=torch.float64)
            cand = torch.randn(60, 12, generator=g, dtype=torch.float64)
            fid = set_distances.fid_from_features(ref, cand, seed=draw)
            assert fid.noise_floor is not None and fid.value_at_floor_sizes is not None
            matched_gap.append(fid.noise_floor - fid.value_at_floor_sizes)
            full_gap.append(fid.noise_floor - fid.value)
    gaps = torch.tensor(matched_gap)
    se = float(gaps.std()) / math.sqrt(len(gaps))
    assert abs(float(gaps.mean())) < 4 * se
    full = torch.tensor(full_gap)
    assert float(full.mean()) > 4 * float(full.std()) / math.sqrt(len(full))


def test_fid_noise_floor_tracks_no_change() -> None:
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(300, 8, generator=g, dtype=torch.float64)
    same = torch.randn(100, 8, generator=g, dtype=torch.float64)
    shifted = same + 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        no_change = set_distances.fid_from_features(ref, same)
        changed = set_distances.fid_from_features(ref, shifted)
        small_ref = set_distances.fid_from_features(ref[:140], same)
    assert no_change.noise_floor == changed.noise_floor  # depends on the reference only
    assert no_change.noise_floor is not None and no_change.noise_floor_n == 100
    assert no_change.noise_floor_reference_n == 200
    # no change reads about the floor; a 2-sigma shift in 8 dims (FID += 8 * 4 = 32) does not
    assert no_change.value < 3 * no_change.noise_floor + 0.5
    assert changed.value > 10 * no_change.noise_floor
    # 140 reference images cannot spare 100 and keep 50: no floor, and a note saying so
    assert small_ref.noise_floor is None and small_ref.value_at_floor_sizes is None
    assert any("100 + 50 reference images" in note for note in small_ref.notes)


def test_kid_runs_on_small_sets() -> None:
    g = torch.Generator().manual_seed(1)
    ref = torch.randn(12, 8, generator=g, dtype=torch.float64)
    kid = set_distances.kid_from_features(
        ref, torch.randn(10, 8, generator=g, dtype=torch.float64), subsets=10)
    assert kid.metric == "kid" and kid.n_candidate == 10
    assert (kid.noise_floor_n, kid.noise_floor_reference_n) == (10, 2)
    assert math.isfinite(kid.value) and kid.std is None


def test_kid_std_from_twice_the_subset_size() -> None:
    """With subsets at most half of each set the subsets differ and the std is a real spread
    (far above float noise); below, none."""
    g = torch.Generator().manual_seed(2)
    ref = torch.randn(40, 8, generator=g, dtype=torch.float64)
    cand = torch.randn(40, 8, generator=g, dtype=torch.float64) + 0.5
    halves = set_distances.kid_from_features(ref, cand, subsets=20, subset_size=20)
    assert halves.std is not None and halves.std > 1e-3 * abs(halves.value)
    whole = set_distances.kid_from_features(ref, cand, subsets=20, subset_size=21)
    assert whole.std is None and any("42+ images" in note for note in whole.notes)


def test_inception_weights_path_is_the_one_used(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(FileNotFoundError, match="local file only"):
        set_distances.inception_extractor(tmp_path / "missing.pth")
    weights = tmp_path / "pt_inception.pth"
    weights.write_bytes(b"stand-in")
    seen: dict[str, object] = {}

    class FakeInception(torch.nn.Module):
        def __init__(self, **kwargs: object) -> None:
            super().__init__()
            seen.update(kwargs)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.float().mean(dim=(2, 3)).repeat(1, 4)  # (N, 12)

    monkeypatch.setattr(set_distances, "_inception_v3_class", lambda: FakeInception)
    out = set_distances.set_distances(_images(6, 0), _images(5, 1), inception_weights=weights,
                                      metrics=["kid"])
    assert seen["feature_extractor_weights_path"] == str(weights)
    assert seen["features_list"] == ["2048"]
    assert out["kid"].feature_size == 12
    with pytest.raises(ValueError, match="exactly one"):
        set_distances.set_distances(_images(6, 0), _images(5, 1))


# --- tiny CLIP end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip():
    from cfspec.gpu.evaluate.clip import ClipScorer

    return ClipScorer.load("tiny", "cpu")


def test_tiny_clip_tensor_and_pil_paths_agree(tiny_clip) -> None:
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    # smooth images (a low-resolution pattern upsampled), like rendered ones
    low = torch.randint(0, 256, (3, 3, 8, 8), generator=g).float()
    nchw = torch.nn.functional.interpolate(low, size=(64, 48), mode="bilinear")
    nchw = nchw.round().clamp(0, 255).to(torch.uint8)
    nhwc = nchw.permute(0, 2, 3, 1).contiguous()
    a = tiny_clip.embed_images(nhwc)
    b = tiny_clip.embed_images(nchw, batch_size=2)
    c = tiny_clip.embed_images([Image.fromarray(x.numpy()) for x in nhwc])
    assert a.shape == (3, tiny_clip.embedding_size)
    assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(a, c, atol=2e-3)
    assert torch.allclose(a.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_tiny_clip_texts_and_scores(tiny_clip) -> None:
    texts = ["a red dog on a table", "a blue cat on a table", "a photo of a zebra-like thing"]
    t = tiny_clip.embed_texts(texts)
    assert t.shape == (3, tiny_clip.embedding_size)
    assert torch.allclose(t.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(tiny_clip.embed_texts(texts[:1]), t[:1], atol=1e-5)
    images = _images(3, 7, size=40)
    scores = similarity.clip_score(tiny_clip.embed_images(images), t)
    assert bool(((scores >= 0) & (scores <= 100)).all())


def test_tiny_clip_is_deterministic(tiny_clip) -> None:
    from cfspec.gpu.evaluate.clip import ClipScorer

    again = ClipScorer.load("tiny")
    for p, q in zip(tiny_clip.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_clip_load_errors_are_clear(tmp_path: Path, monkeypatch) -> None:
    from cfspec.gpu.evaluate.clip import ClipLoadError, ClipScorer

    with pytest.raises(ClipLoadError, match="no config.json"):
        ClipScorer.load(str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ClipLoadError, match="HF_HUB_OFFLINE is set") as error:
        ClipScorer.load("cfspec-test/no-such-clip-model")
    assert "`tiny` needs no download" in str(error.value)


def test_clip_loads_a_saved_local_folder(tiny_clip, tmp_path: Path) -> None:
    from cfspec.gpu.evaluate.clip import ClipScorer

    tiny_clip.model.save_pretrained(tmp_path)
    tiny_clip.tokenizer.save_pretrained(tmp_path)
    tiny_clip.processor.save_pretrained(tmp_path)
    again = ClipScorer.load(str(tmp_path))
    images = _images(2, 3, size=40)
    assert torch.allclose(again.embed_images(images), tiny_clip.embed_images(images), atol=1e-6)
    texts = ["a red dog", "a small cat on a chair"]
    assert torch.allclose(again.embed_texts(texts), tiny_clip.embed_texts(texts), atol=1e-6)
