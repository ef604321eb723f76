"""The report's images: generated PNGs embedded as (shrunk) data URIs, and the changed words'
cross-attention and the LocalBlend mask drawn over them from generate's .npz. Pillow and numpy
are optional: without them images are embedded as they are and overlays are left out."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from cfspec.workspace.integrity import NPZ_ERRORS
from cfspec.workspace.manifest_lines import Generated

THUMBNAIL_PX = 384  # the largest side of an embedded image
OVERLAY_PX = 192  # the largest side of an attention or mask overlay

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def data_uri(path: Path, max_side: int = THUMBNAIL_PX) -> str | None:
    """A PNG as a data URI, shrunk to at most `max_side` pixels a side when Pillow is there
    (the page shows them at most that big; a few hundred full 512 px PNGs would make the page
    hundreds of MB). Anything that is not a PNG is left out."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(_PNG_MAGIC):  # only PNGs are embedded, as image/png
        return None
    try:
        data = _thumbnail(data, max_side)
    except ImportError:
        pass  # no Pillow: embedded as it is
    except (OSError, ValueError):
        return None  # claims to be a PNG but does not decode
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _thumbnail(data: bytes, max_side: int) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if max(image.size) <= max_side:
            return data
        image.thumbnail((max_side, max_side))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()


def overlay_images(generated: Generated, max_side: int = OVERLAY_PX
                   ) -> tuple[list[dict[str, str]], str | None]:
    """([{label, uri}], note): the changed words' cross-attention over each image and the
    LocalBlend mask over the counterfactual one, from the (pair, seed)'s .npz (`attention`
    (2, h', w') max-normalised, `mask` (h, w) at latent resolution). The note says why some or
    all are missing."""
    if generated.extras is None:
        return [], "no .npz beside the images: no attention or mask to show"
    try:
        import numpy as np
        from PIL import Image  # noqa: F401  (checked here, used by _overlay_png)
    except ImportError:
        return [], "attention and mask overlays need numpy and Pillow"
    try:
        with np.load(generated.extras, allow_pickle=False) as data:
            attention = np.asarray(data["attention"], dtype=np.float32) if (
                "attention" in data.files) else None
            mask = np.asarray(data["mask"]) if "mask" in data.files else None
    except NPZ_ERRORS as error:  # changed since it was checked
        return [], f"{generated.extras.name}: unreadable ({error})"
    out: list[dict[str, str]] = []
    notes = []
    try:
        if attention is not None and attention.ndim == 3 and attention.shape[0] == 2:
            for k, (image, name) in enumerate(((generated.image_0, "factual"),
                                               (generated.image_1, "counterfactual"))):
                heat = np.nan_to_num(attention[k], nan=0.0, posinf=0.0, neginf=0.0).clip(0)
                peak = float(heat.max()) if heat.size else 0.0
                out.append({"label": f"changed words' attention, {name}",
                            "uri": _overlay_png(image, heat / peak if peak > 0 else heat,
                                                (220, 38, 38), max_side)})
        else:
            notes.append("no attention maps of shape (2, h, w) in the .npz")
        if mask is not None and mask.ndim == 2 and mask.size:
            region = (np.nan_to_num(mask.astype(np.float32)) > 0).astype(np.float32)
            share = float(region.mean())
            if share > 0:
                out.append({"label": f"LocalBlend mask ({share:.0%} of the image may change)",
                            "uri": _overlay_png(generated.image_1, region, (37, 99, 235),
                                                max_side, nearest=True)})
            else:
                notes.append("LocalBlend mask is empty (no LocalBlend words for this edit)")
        else:
            notes.append("no LocalBlend mask of shape (h, w) in the .npz")
    except (OSError, ValueError) as error:  # an image that does not decode
        return [], f"overlays skipped: {error}"
    return out, "; ".join(notes) or None


def _overlay_png(image_path: Path, heat: Any, color: tuple[int, int, int], max_side: int,
                 nearest: bool = False) -> str:
    """The image, greyed so the colour stands out, with `heat` (h, w in 0..1, upsampled to the
    image) laid over it in `color`."""
    import numpy as np
    from PIL import Image

    with Image.open(image_path) as opened:
        base = opened.convert("RGB")
    base.thumbnail((max_side, max_side))
    layer = Image.fromarray((np.asarray(heat, dtype=np.float32) * 255).round().astype(np.uint8),
                            "L").resize(base.size, Image.Resampling.NEAREST if nearest
                                        else Image.Resampling.BILINEAR)
    pixels = np.asarray(base, dtype=np.float32)
    grey = 0.35 * pixels + 0.65 * pixels.mean(axis=2, keepdims=True)
    alpha = np.asarray(layer, dtype=np.float32)[..., None] / 255.0 * 0.7
    mixed = grey * (1 - alpha) + np.asarray(color, dtype=np.float32) * alpha
    buffer = io.BytesIO()
    Image.fromarray(mixed.clip(0, 255).round().astype(np.uint8), "RGB").save(
        buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
