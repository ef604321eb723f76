"""The metric registry: one line per metric that `cfspec evaluate` writes into metrics.jsonl.

Everything downstream reads this table instead of spelling metric names: the reader of
metrics.jsonl checks each value against its kind and range, the summary averages the
`summarized` ones, the filter can gate on any of them, export makes a column of each (and the
dataset card a line), Croissant gives each its type, and the report labels, formats and plots
them from here.

Adding a metric is one `Metric(...)` line below plus its function: a `per_seed` function takes
a `cfspec.gpu.evaluate.stage.Sample` (one (pair, seed): both images, prompts, the .npz
extras) and returns a float or None (not measured). The built-in metrics have no `per_seed`:
evaluate computes them in batches (CLIP on the GPU, latents, masks), which is far faster than
one sample at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cfspec.workspace import reconstruction

Kind = Literal["float", "bool"]
Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Metric:
    name: str  # the key in metrics.jsonl and the column in the export
    label: str  # how the report and the card name it
    meaning: str  # one sentence for the dataset card
    kind: Kind = "float"
    low: float = -math.inf  # the range a valid value lies in (closed)
    high: float = math.inf
    better: Better | None = None  # which way is better, where one is
    fmt: str = "{:.4f}"  # the report's format
    summarized: bool = True  # averaged over pairs, with an interval, in metrics_summary.json
    plotted: bool = False  # a histogram in the report
    per_seed: Callable[..., float | None] | None = None  # None: computed by evaluate's batches

    def valid(self, value: object) -> bool:
        """Whether `value` (not None) is of this metric's kind and inside its range."""
        if self.kind == "bool":
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            value = float(value)  # an integer past the float range is not a valid value
        except OverflowError:
            return False
        # fp32 arithmetic can land a cosine a few ulps past 1: allow a relative 1e-5.
        slack = 1e-5 * max(1.0, abs(self.low) if math.isfinite(self.low) else 1.0,
                           abs(self.high) if math.isfinite(self.high) else 1.0)
        return math.isfinite(value) and self.low - slack <= value <= self.high + slack

    def describe_range(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if math.isinf(self.low) and math.isinf(self.high):
            return "a finite number"
        return f"a number in [{self.low:g}, {self.high:g}]"


METRICS: list[Metric] = [
    Metric("clip_score_0", "CLIP score, image 0 / prompt 0",
           "100 x the CLIP cosine of the factual image with its own prompt.",
           low=-100, high=100, better="higher", fmt="{:.2f}", plotted=True),
    Metric("clip_score_1", "CLIP score, image 1 / prompt 1",
           "100 x the CLIP cosine of the counterfactual image with its own prompt.",
           low=-100, high=100, better="higher", fmt="{:.2f}", plotted=True),
    Metric("directional_similarity", "directional similarity",
           "CLIP cosine of the image change with the prompt change (InstructPix2Pix).",
           low=-1, high=1, better="higher", plotted=True),
    Metric("image_image_similarity", "image-image similarity",
           "CLIP cosine of the two images.", low=-1, high=1, better="higher", plotted=True),
    Metric("effective", "effective",
           "Whether each image is closer in CLIP space to its own prompt than to the other's.",
           kind="bool", fmt="{}"),
    Metric("effectiveness_margin", "effectiveness margin",
           "The smaller of the two own-prompt minus other-prompt CLIP score gaps.",
           better="higher", fmt="{:.2f}", plotted=True),
    Metric("latent_l2_per_dim", "latent L2 per dim",
           "L2 distance of the two final latents over the square root of their size.",
           low=0, plotted=True),
    Metric("latent_cosine_distance", "latent cosine distance",
           "1 - cosine of the two final latents.", low=0, high=2),
    Metric("background_ssim", "background SSIM",
           "SSIM of the two images outside the changed words' attention.",
           low=-1, high=1, better="higher", plotted=True),
    Metric("background_psnr", "background PSNR (dB)",
           "PSNR of the two images outside the changed words' attention.",
           better="higher", fmt="{:.2f}", plotted=True),
    Metric("background_lpips", "background LPIPS",
           "LPIPS of the two images outside the changed words' attention.",
           low=0, better="lower"),
    Metric("latent_l2_outside_edit", "latent L2 outside the edit",
           "Minimality: latent change outside the changed words' attention; lower is more "
           "minimal.", low=0, better="lower"),
    Metric("latent_l2_inside_edit", "latent L2 inside the edit",
           "Latent change inside the changed words' attention.", low=0),
    Metric("latent_change_share_outside_edit", "share of the change outside the edit",
           "Fraction of the squared latent change that lies outside the edit.",
           low=0, high=1, better="lower"),
    Metric("edit_area_outside", "area outside the edit",
           "Fraction of the latent grid outside the changed words' attention.", low=0, high=1),
    Metric("cld", "CLD",
           "The published counterfactual latent divergence: null when both images share their "
           "noise, which makes it a constant."),
    Metric("cld_p_cf", "CLD p(cf)", "CLD's counterfactual-side probability.", low=0, high=1),
    Metric("cld_p_f", "CLD p(f)", "CLD's factual-side probability.", low=0, high=1),
    Metric("latent_change_vs_reseed", "latent change vs reseed",
           "The edit's latent change relative to the change of drawing another seed.", low=0),
    # With `evaluate --vqa-model`: the spec's questions (cfspec.workspace.question_metrics).
    Metric("intervention_success", "intervention success (VQA)",
           "Share of the intervened variable's questions the counterfactual image answers with "
           "the new value and not the old.", low=0, high=1, better="higher", fmt="{:.2f}",
           plotted=True),
    Metric("factual_fidelity", "factual fidelity (VQA)",
           "Share of the intervened variable's questions the factual image answers with the "
           "old value and not the new.", low=0, high=1, better="higher", fmt="{:.2f}"),
    Metric("held_fixed", "held fixed (VQA)",
           "Share of the non-descendants' questions both images answer alike.",
           low=0, high=1, better="higher", fmt="{:.2f}", plotted=True),
    Metric("descendants_followed", "descendants followed (VQA)",
           "Share of the set descendants' questions the counterfactual image answers with the "
           "value the counterfactual sets.", low=0, high=1, better="higher", fmt="{:.2f}"),
    # Pairs with a photo (`image` in the spec, `generate --inversion`); None for the others.
    Metric("reconstruction_psnr", "reconstruction PSNR (dB)",
           "PSNR of the factual image (the inverted photo's reconstruction) against the photo.",
           low=0, high=reconstruction.PSNR_CAP_DB, better="higher", fmt="{:.2f}",
           per_seed=reconstruction.reconstruction_psnr),
    Metric("reconstruction_ssim", "reconstruction SSIM",
           "SSIM of the factual image (the inverted photo's reconstruction) against the photo.",
           low=-1, high=1, better="higher", per_seed=reconstruction.reconstruction_ssim),
    # Computed with evaluate's batches, as background_lpips is (cfspec.gpu.evaluate.perceptual).
    Metric("reconstruction_lpips", "reconstruction LPIPS",
           "LPIPS of the factual image (the inverted photo's reconstruction) against the photo.",
           low=0, better="lower"),
]


# Keys of a metrics.jsonl line that are not metrics (workspace.metrics_rows.MetricsRow reads them as
# what the row is about); `<metric>_reason` says why a metric is null.
RESERVED = frozenset({"id", "seed", "spec", "counterfactual", "prompt_0", "prompt_1", "model",
                      "clip_model", "height", "width", "directional_defined"})


def by_name() -> dict[str, Metric]:
    return {metric.name: metric for metric in METRICS}


def numeric() -> list[Metric]:
    return [metric for metric in METRICS if metric.kind == "float"]


def register(metric: Metric) -> None:
    """Add a metric from outside this file (a plugin, a test); evaluate then computes it with
    its `per_seed` function, and every later stage picks it up."""
    if metric.per_seed is None:
        raise ValueError(f"metric {metric.name!r}: a registered metric needs a per_seed function")
    if not metric.name.isidentifier() or metric.name in by_name():
        raise ValueError(f"metric name {metric.name!r} is taken or not an identifier")
    if metric.name in RESERVED or metric.name.endswith("_reason"):
        raise ValueError(f"metric name {metric.name!r} is reserved: metrics.jsonl uses it for "
                         "what a row is about, or for why a metric is null")
    METRICS.append(metric)
