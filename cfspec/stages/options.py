"""One stage's options, declared once: `GenerateOptions` and `EvaluateOptions`.

The CLI commands (generate, evaluate, run through cfspec/pipeline.py) build one of these from
their flags and hand it to the stage function, which checks it first (`check()`, every input
problem as one message with a way out, before any model loads). `engine_settings()` is what the
engine is built from and `manifest_params()` what a manifest line records, so that a re-run
with another --model or --steps is seen (workspace.store compares these).

Adding an option: a field here (with its default) and the flag on the command; the field goes
into `manifest_params()` when it changes the images, or into NOT_RECORDED when it does not.
tests/test_options.py checks each field against the command's flags and that split.

Imports no torch: the CLI builds and checks these before any GPU library loads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cfspec.gpu.models import DEFAULT_CLIP, DEFAULT_INVERSION, DEFAULT_MODEL, INVERSION_METHODS
from cfspec.workspace import store
from cfspec.workspace.batching import GuidanceSetting, Uniform, guidance_params, parse_guidance
from cfspec.workspace.shards import ALL, Shard


class OptionError(ValueError):
    """An option out of range or unknown; `str()` names the flag and what to pass instead."""


@dataclass(frozen=True)
class GenerateOptions:
    """`cfspec generate`'s options (the flags, by the command's parameter names), and the
    Python API's own: `eta`, `only` (these pair ids), `per_pair` (each pair its own factual
    row; the same images)."""

    # Those recorded in the manifest first, in the order a changed setting is listed.
    model: str = DEFAULT_MODEL
    scheduler: str = "ddim"
    steps: int = 50
    guidance: float | str | Uniform = 7.5  # a number or uniform(lo, hi)
    dtype: str = "auto"
    blend_start: float | None = None  # None: the --p2p-compat profile's default
    eta: float = 0.0
    p2p_compat: str = "cfspec"
    height: int | None = None
    width: int | None = None
    seeds: int = 1
    device: str = "cpu"
    batch_pairs: int = 1
    seed_base: int = 0
    shard: Shard = ALL
    overwrite: bool = False
    compile_unet: bool = False
    quiet: bool = False
    only: Sequence[str] | None = None
    per_pair: bool = False
    # How a pair's photo (`image` in its spec) becomes its factual image; pairs without one
    # are generated from noise whatever this says. Recorded on those pairs' lines only.
    inversion: str = DEFAULT_INVERSION

    # Fields that do not change the images, so are not recorded (nor compared on re-run).
    NOT_RECORDED: ClassVar[frozenset[str]] = frozenset({
        "seeds", "device", "batch_pairs", "seed_base", "shard", "overwrite", "compile_unet",
        "quiet", "only", "per_pair", "inversion"})
    # The API's own (no flag of `cfspec generate`).
    API_ONLY: ClassVar[frozenset[str]] = frozenset({"eta", "only", "per_pair"})
    CLI_ONLY: ClassVar[frozenset[str]] = frozenset()

    def check(self, device: str | None = None) -> GenerateOptions:
        """These options with guidance parsed and blend_start resolved; OptionError naming the
        flag otherwise. `device`: the one `--device` picked (for what `--dtype auto` means)."""
        for name in ("seeds", "steps", "batch_pairs"):
            if getattr(self, name) < 1:
                raise OptionError(f"{_flag(name)} must be at least 1")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and value < 8:
                raise OptionError(f"{_flag(name)} must be at least 8")
        if self.scheduler.lower() not in SCHEDULER_NAMES:
            raise OptionError(f"unknown --scheduler {self.scheduler!r}; choose one of "
                              f"{', '.join(SCHEDULER_NAMES)}")
        if self.inversion not in INVERSION_METHODS:
            raise OptionError(f"unknown --inversion {self.inversion!r}; choose one of "
                              f"{', '.join(INVERSION_METHODS)}")
        if self.p2p_compat not in store.BLEND_START:
            raise OptionError(f"unknown --p2p-compat {self.p2p_compat!r}; choose "
                              f"{' or '.join(store.BLEND_START)}")
        blend = store.BLEND_START[self.p2p_compat] if self.blend_start is None \
            else self.blend_start
        if not 0.0 <= blend <= 1.0:
            raise OptionError("--blend-start must be between 0 and 1")
        try:
            guidance = parse_guidance(self.guidance)
            self._dtype(device)
        except ValueError as error:
            raise OptionError(str(error)) from None
        return dataclasses.replace(self, guidance=guidance, blend_start=blend)

    def _dtype(self, device: str | None) -> str:
        from cfspec.gpu.device import dtype_name

        return dtype_name(self.dtype, device or self.device)

    @property
    def guidance_setting(self) -> GuidanceSetting:
        return parse_guidance(self.guidance)

    def engine_settings(self) -> dict[str, Any]:
        """The keyword arguments of `engine.Settings` (a sampled guidance: its low end, each
        job carrying its own draw)."""
        setting = self.guidance_setting
        return {"scheduler": self.scheduler.lower(), "steps": self.steps,
                "guidance": setting.low if isinstance(setting, Uniform) else setting,
                "height": self.height, "width": self.width,
                "blend_start": self._blend_start(), "eta": self.eta,
                "compat": self.p2p_compat}

    def _blend_start(self) -> float:
        return store.BLEND_START.get(self.p2p_compat, 0.0) if self.blend_start is None \
            else self.blend_start

    def manifest_params(self, device: str | None = None) -> dict[str, Any]:
        """What a manifest line records and resume compares (store.setting_changes): every
        field but NOT_RECORDED, guidance as its fixed scale or its range, dtype as the torch
        name on `device`."""
        resolved = {"scheduler": self.scheduler.lower(), "dtype": self._dtype(device),
                    "blend_start": self._blend_start()}
        recorded: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # in field order: describe_replacements' order
            if f.name == "guidance":
                recorded.update(guidance_params(self.guidance_setting))
            elif f.name not in self.NOT_RECORDED:
                recorded[f.name] = resolved.get(f.name, getattr(self, f.name))
        return recorded


@dataclass(frozen=True)
class EvaluateOptions:
    """`cfspec evaluate`'s options, and the API's own: `feature_extractor` (uint8 images ->
    (N, F), replaces the Inception network), `lpips`, `bootstrap_resamples`."""

    clip_model: str = DEFAULT_CLIP
    vqa_model: str | None = None  # None: no questions asked, no question metrics
    inception_weights: Path | None = None
    device: str = "cpu"
    batch_size: int = 32
    shard: Shard = ALL
    quiet: bool = True
    feature_extractor: Any = None
    lpips: bool = True
    bootstrap_resamples: int = 2000  # the summary's cluster-bootstrap resamples

    API_ONLY: ClassVar[frozenset[str]] = frozenset({"feature_extractor", "lpips",
                                                     "bootstrap_resamples"})
    # Flags of `cfspec evaluate` that only shape what it prints.
    CLI_ONLY: ClassVar[frozenset[str]] = frozenset({"fmt", "no_color"})
    # Not in a row's setting key: how the work is split and shown, and what only the summary
    # or the unsharded run depends on (set-level features, its intervals, the questions). The
    # device is recorded as the type the scorer runs on, by the stage.
    NOT_RECORDED: ClassVar[frozenset[str]] = frozenset({
        "device", "shard", "quiet", "inception_weights", "feature_extractor",
        "bootstrap_resamples", "vqa_model"})

    def check(self) -> EvaluateOptions:
        """OptionError naming the flag and a way out; nothing loads before this."""
        if self.batch_size < 1:
            raise OptionError("--batch-size must be at least 1")
        if self.inception_weights is not None and self.feature_extractor is not None:
            raise OptionError("give --inception-weights or a feature extractor, not both")
        weights = self.inception_weights
        if weights is not None and not Path(weights).expanduser().is_file():
            raise OptionError(f"--inception-weights {weights}: no such file (FID/KID read "
                              "torch-fidelity's pt_inception-2015-12-05-6726825d.pth from a "
                              "local file; nothing is downloaded)")
        return self

    def manifest_params(self) -> dict[str, Any]:
        """What besides the images decides a metrics row's numbers, as the options give it
        (the stage puts in what the model resolved to): recorded with each row of a shard
        file, whose rows a later run reuses only when this matches."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in self.NOT_RECORDED}


# cfspec.gpu.generate.weights.SCHEDULERS' names (that module imports torch);
# tests/test_options.py checks the two agree.
SCHEDULER_NAMES = ("ddim", "pndm", "euler", "euler-a", "dpm", "ddpm")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
