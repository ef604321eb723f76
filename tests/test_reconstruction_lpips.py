"""`reconstruction_lpips`: LPIPS of a pair's factual image (the inverted photo's reconstruction)
against the photo beside it, computed in evaluate's batches (cfspec/gpu/evaluate/perceptual.py),
null without a photo, and carried by the summary, the filter's gates, the export and the report.

torchvision is not installed here and nothing can be downloaded, so LPIPS runs on a stand-in
backbone: a `torchvision` module whose `alexnet` is AlexNet's feature layers, layer for layer
(the indices torchmetrics slices at), with random weights saved where torch.hub keeps
torchvision's checkpoint (TORCH_HOME in tmp_path). `lpips_available` finds that file, and
torchmetrics' LPIPS network loads it, with torchmetrics' own linear heads: the code under test
runs unchanged. The values are checked against LPIPS computed here from its definition, in
float64, on the PNGs decoded again.
"""

from __future__ import annotations

import copy
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
tm_lpips = pytest.importorskip("torchmetrics.functional.image.lpips")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from test_export import PAIRS, build_out, stage_app  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from cfspec.gpu.evaluate import perceptual  # noqa: E402
from cfspec.gpu.evaluate import stage as evaluate_stage  # noqa: E402
from cfspec.gpu.evaluate.stage import evaluate  # noqa: E402
from cfspec.workspace import store  # noqa: E402
from cfspec.workspace.layout import MANIFEST_FILE  # noqa: E402
from cfspec.workspace.shards import Shard  # noqa: E402

runner = CliRunner()
FAST: dict[str, Any] = {"clip_model": "tiny", "quiet": True, "bootstrap_resamples": 200}
ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"  # torchvision's
SIZE = 64  # AlexNet's fifth layer is 3 x 3 at this size: every layer has positions to average
DOG, CHAIR, RED = (p["id"] for p in PAIRS)  # dog and chair share a factual prompt; red alone


class _AlexNet(torch.nn.Module):
    """torchvision's AlexNet as far as LPIPS reads it: `features`, its layers at their indices
    (the ReLUs LPIPS taps are 1, 4, 7, 9 and 11)."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))


def _checkpoint() -> Path:
    """Where torchvision's AlexNet weights lie in torch.hub's cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(ALEXNET_URL).name


@pytest.fixture
def backbone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> torch.nn.Sequential:
    """The stand-in backbone installed (see the module docstring): its feature layers, with
    the weights torchmetrics loads."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _checkpoint().parent.mkdir(parents=True)
    torch.manual_seed(0)
    saved = _AlexNet()
    torch.save(saved.state_dict(), _checkpoint())

    def alexnet(weights: Any = None) -> _AlexNet:
        model = _AlexNet()
        if weights is not None:  # as torchvision does: the file in torch.hub's cache
            model.load_state_dict(torch.load(_checkpoint(), map_location="cpu"))
        return model

    models = types.ModuleType("torchvision.models")
    models.alexnet = alexnet  # type: ignore[attr-defined]
    models.AlexNet_Weights = types.SimpleNamespace(  # type: ignore[attr-defined]
        DEFAULT=types.SimpleNamespace(url=ALEXNET_URL))
    vision = types.ModuleType("torchvision")
    vision.models = models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", vision)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    monkeypatch.setattr(tm_lpips, "_TORCHVISION_AVAILABLE", True)
    assert perceptual.lpips_available() == (True, None)
    return saved.features.eval()


def lpips_by_definition(features: torch.nn.Sequential, a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS (Zhang et al. 2018) of two uint8 (H, W, 3) images from its definition, in float64:
    the images to [-1, 1], LPIPS' fixed per-channel shift and scale, the backbone's five ReLU
    outputs, each unit-normalised over its channels, the squared difference weighted per
    channel by the linear heads (torchmetrics' alex.pth), averaged over the layer's positions,
    summed over the layers."""
    heads = torch.load(Path(tm_lpips.__file__).parent / "lpips_models" / "alex.pth",
                       map_location="cpu")
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)
    layers = copy.deepcopy(features).double()

    def taps(image: np.ndarray) -> list[torch.Tensor]:
        x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].double() / 255 * 2 - 1
        x = (x - shift) / scale
        found = []
        for index, layer in enumerate(layers):
            x = layer(x)
            if index in (1, 4, 7, 9, 11):
                found.append(x.clone())
        return found

    def unit(f: torch.Tensor) -> torch.Tensor:
        return f / torch.sqrt(1e-8 + (f ** 2).sum(dim=1, keepdim=True))  # torchmetrics' eps

    total = 0.0
    with torch.no_grad():
        for k, (f0, f1) in enumerate(zip(taps(a), taps(b), strict=True)):
            weight = heads[f"lin{k}.model.1.weight"].double().view(1, -1, 1, 1)
            total += float(((unit(f0) - unit(f1)) ** 2 * weight).sum(dim=1).mean())
    return total


# The network runs in float32, the definition above in float64. Each conv output is a dot
# product of at most 384 x 3 x 3 = 3456 terms, whose float32 rounding is about
# sqrt(3456) x 2^-24 = 3.5e-6 of its size; the distance averages such errors over thousands of
# positions and channels, so it lands well inside 1e-5 (measured: about 1e-7). Tight enough to
# tell the whole-image distance from the mean of the spatial map, which differs by ~1e-4.
REL = 1e-5


def png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def add_photo(out: Path, pair_id: str, photo: np.ndarray | bytes) -> Path:
    """Give every seed of `pair_id` a photo, as `generate --inversion` leaves it: photo.png
    beside the images, and `photo` on the manifest lines."""
    path = store.pair_folder(out, pair_id) / "photo.png"
    if isinstance(photo, bytes):
        path.write_bytes(photo)
    else:
        store.save_png(path, Image.fromarray(photo))
    manifest = out / MANIFEST_FILE
    lines = [json.loads(x) for x in manifest.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        if line["id"] == pair_id:
            line["photo"] = path.relative_to(out).as_posix()
            line["inversion"] = {"method": "ddim", "key": "k", "source": None}
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def photo_run(root: Path) -> Path:
    """3 pairs x 2 seeds at SIZE: dog's photo is another random image, chair's is its seed 0
    factual image (so seed 0 reconstructs it exactly, seed 1 does not), red has none."""
    out = build_out(root, size=SIZE)
    add_photo(out, DOG, np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), np.uint8))
    add_photo(out, CHAIR, png(store.image_paths(out, CHAIR, 0)[0]))
    return out


def values(rows: Any, name: str = "reconstruction_lpips") -> dict[tuple[str, int], Any]:
    return {(r.id, r.seed): r.values.get(name) for r in rows}


def test_it_is_lpips_of_the_factual_png_and_the_photo(
        tmp_path: Path, backbone: torch.nn.Sequential, monkeypatch: pytest.MonkeyPatch) -> None:
    out = photo_run(tmp_path / "out")
    calls: list[int] = []
    distances = perceptual.Lpips.distances

    def spy(self: perceptual.Lpips, img0: torch.Tensor, *args: Any) -> list[float]:
        calls.append(len(img0))
        return distances(self, img0, *args)

    monkeypatch.setattr(perceptual.Lpips, "distances", spy)
    result = evaluate(out, **FAST)
    found = values(result.rows)
    for pair_id, seed in ((DOG, 0), (DOG, 1), (CHAIR, 1)):
        image_0 = png(store.image_paths(out, pair_id, seed)[0])
        expected = lpips_by_definition(backbone, image_0,
                                       png(store.pair_folder(out, pair_id) / "photo.png"))
        assert expected > 0.01  # a real difference, far from the tolerance
        assert found[(pair_id, seed)] == pytest.approx(expected, rel=REL), (pair_id, seed)
    # The same image: identical inputs give identical features, a distance of 0 (float32
    # rounding may leave a few ulps of the normalised features' unit scale).
    assert found[(CHAIR, 0)] == pytest.approx(0.0, abs=1e-6)
    assert values(result.rows, "reconstruction_psnr")[(CHAIR, 0)] == 100.0
    # No photo: null, and no reason (nothing went wrong), as for PSNR and SSIM.
    assert found[(RED, 0)] is None and found[(RED, 1)] is None
    assert all("reconstruction_lpips" not in r.reasons for r in result.rows)
    # Batched with the rest: one batch of 6 (pair, seed)s, one call for its 4 with a photo.
    assert calls == [4]
    # The summary averages it over the 2 pairs with a photo (each pair's seeds first).
    mean = result.summary["means"]["reconstruction_lpips"]
    assert mean["n"] == 4 and mean["n_pairs"] == 2
    per_pair = [(found[(p, 0)] + found[(p, 1)]) / 2 for p in (DOG, CHAIR)]
    assert mean["mean"] == pytest.approx(sum(per_pair) / 2, rel=1e-12)
    # With the backbone present, background LPIPS runs too, on the same network.
    assert all(r.values["background_lpips"] is not None for r in result.rows)
    assert not any("lpips" in note for note in result.summary["notes"])


def test_without_lpips_it_is_null_and_the_note_says_why(
        tmp_path: Path, backbone: torch.nn.Sequential) -> None:
    out = photo_run(tmp_path / "out")
    off = evaluate(out, lpips=False, **FAST)
    assert set(values(off.rows).values()) == {None}
    assert values(off.rows, "reconstruction_psnr")[(CHAIR, 0)] == 100.0  # PSNR needs no LPIPS
    assert "background_lpips and reconstruction_lpips skipped: turned off" in off.notes
    _checkpoint().unlink()
    missing = evaluate(out, **FAST)
    assert set(values(missing.rows).values()) == {None}
    (note,) = [n for n in missing.summary["notes"] if "lpips" in n]
    assert note.startswith("background_lpips and reconstruction_lpips skipped: LPIPS backbone "
                           "weights not available locally")
    assert str(_checkpoint()) in note  # where to put them
    # A run without photos names only the metric it skipped.
    plain = build_out(tmp_path / "plain", PAIRS[:1], seeds=(0,))
    assert "background_lpips skipped: turned off" in evaluate(plain, lpips=False, **FAST).notes


def test_distances_are_torchmetrics_public_lpips(backbone: torch.nn.Sequential) -> None:
    """`Lpips.distances` is what torchmetrics' public function gives, pair by pair."""
    from torchmetrics.functional.image import learned_perceptual_image_patch_similarity

    rng = np.random.default_rng(2)
    a, b = (torch.from_numpy(rng.integers(0, 256, (3, SIZE, SIZE, 3), np.uint8))
            for _ in range(2))
    expected = learned_perceptual_image_patch_similarity(
        a.permute(0, 3, 1, 2) / 255, b.permute(0, 3, 1, 2) / 255, normalize=True,
        reduction="none")
    # the same network on the same float32 inputs up to the order of one scaling step
    assert perceptual.Lpips().distances(a, b) == pytest.approx(expected.tolist(), rel=1e-6)


def test_a_photo_it_cannot_compare_leaves_its_rows_out_as_damaged(
        tmp_path: Path, backbone: torch.nn.Sequential) -> None:
    # The integrity check evaluate shares with export and report sees a photo.png of another
    # size than its images, or not a PNG, before any metric: those (pair, seed)s are
    # `damaged-file` errors and not scored; the other pair is scored as usual.
    out = build_out(tmp_path / "out", size=SIZE)
    add_photo(out, DOG, np.zeros((SIZE // 2, SIZE, 3), np.uint8))  # another size
    add_photo(out, CHAIR, b"\x89PNG\r\n\x1a\n not a png")  # damaged
    result = evaluate(out, **FAST)
    scored = {r.id for r in result.rows}
    assert DOG not in scored and CHAIR not in scored and RED in scored
    found = {(d.code.name, Path(d.file).parent.name) for d in result.diagnostics}
    assert found == {("damaged-file", DOG), ("damaged-file", CHAIR)}
    assert all(r.values["background_lpips"] is not None for r in result.rows)


def shard_then_merge(out: Path, **settings: Any) -> int:
    """Both shards (by factual prompt: dog and chair, then red) with `settings`, then the
    unsharded run with LPIPS; how many rows it reused from the shard files."""
    for index in (0, 1):
        evaluate(out, shard=Shard(index, 2), **{**FAST, **settings})
    return evaluate(out, **FAST).reused


def test_a_shard_row_is_reused_only_when_it_was_computed_as_now(
        tmp_path: Path, backbone: torch.nn.Sequential, monkeypatch: pytest.MonkeyPatch) -> None:
    out = photo_run(tmp_path / "out")
    assert shard_then_merge(out) == 6  # the control: the same inputs and settings are reused
    reference = values(evaluate(out, **FAST).rows)
    # Rows computed with LPIPS off hold no reconstruction_lpips: recomputed, not taken as null.
    assert shard_then_merge(out, lpips=False) == 0
    # Rows of a cfspec whose registry had no reconstruction_lpips yet: recomputed too.
    older = [m for m in evaluate_stage.METRICS if m.name != "reconstruction_lpips"]
    with monkeypatch.context() as patch:
        patch.setattr(evaluate_stage, "METRICS", older)
        for index in (0, 1):
            evaluate(out, shard=Shard(index, 2), **FAST)
    merged = evaluate(out, **FAST)
    assert merged.reused == 0 and values(merged.rows) == reference
    # A photo replaced since the shard ran: its pair's rows are recomputed, the others reused.
    assert shard_then_merge(out) == 6
    add_photo(out, DOG, np.full((SIZE, SIZE, 3), 128, np.uint8))
    after = evaluate(out, **FAST)
    assert after.reused == 4
    changed = values(after.rows)
    assert changed[(DOG, 0)] != reference[(DOG, 0)]
    assert changed[(CHAIR, 1)] == reference[(CHAIR, 1)]


def test_filter_export_and_report_carry_it(tmp_path: Path, backbone: torch.nn.Sequential) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    out = photo_run(tmp_path / "out")
    found = values(evaluate(out, **FAST).rows)
    # A threshold between chair's exact reconstruction (0) and every other one.
    threshold = min(v for v in found.values() if v is not None and v > 1e-3) / 2
    app = stage_app()
    result = runner.invoke(app, [
        "filter", str(out), "--min-clip", "0", "--min-directional", "-1",
        "--min-image-similarity", "-1", "--gate", f"reconstruction_lpips<={threshold}"])
    assert result.exit_code == 0, result.output
    decisions = {d["id"]: d for d in map(json.loads, (out / "filter.jsonl").read_text(
        encoding="utf-8").splitlines())}
    assert decisions[CHAIR]["kept_seed"] == 0
    assert decisions[DOG]["kept_seed"] is None and decisions[RED]["kept_seed"] is None
    for verdict in decisions[DOG]["seeds"]:  # each seed fails on its own value
        (failure,) = verdict["failed"]
        assert failure["metric"] == "reconstruction_lpips"
        assert failure["value"] == found[(DOG, verdict["seed"])]
        assert failure["threshold"] == threshold
    (red_failure,) = decisions[RED]["seeds"][0]["failed"]
    assert red_failure["metric"] == "reconstruction_lpips" and red_failure["value"] is None
    # Export: a column, a line of the dataset card, a Croissant field.
    dest = tmp_path / "hf"
    result = runner.invoke(app, ["export", str(out), "--to", "hf", "-o", str(dest)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(next((dest / "data").glob("*.parquet")))
    assert table.column("reconstruction_lpips").to_pylist() == [found[(CHAIR, 0)]]
    card = (dest / "README.md").read_text(encoding="utf-8")
    assert "- `reconstruction_lpips`: LPIPS of the factual image" in card
    meta = json.loads((dest / "croissant.json").read_text(encoding="utf-8"))
    fields = {f["name"]: f for f in meta["recordSet"][0]["field"]}
    assert fields["reconstruction_lpips"]["dataType"] == "sc:Float"
    # The report labels it from the registry.
    result = runner.invoke(app, ["report", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "reconstruction LPIPS" in (out / "report.html").read_text(encoding="utf-8")
