"""`cfspec doctor`: can this machine generate, and with what?

Each check returns `Check` records and prints nothing; `render_text` and `render_json` are the
views. What is checked: the Python and library versions; the device (`auto`: CUDA, then MPS,
then the CPU) and which dtypes run attention on it; that the embedded models (`tiny`,
`tiny-sdxl`) load and denoise a Prompt-to-Prompt pair; and that cfspec's attention processors
install on this diffusers and give exactly what diffusers' own `AttnProcessor2_0` gives when
nothing is edited: P2P code breaks on diffusers upgrades (renamed `Attention` attributes, a
changed processor signature), and this is where it shows.

A `FAIL` on something generation needs makes `cfspec doctor` exit 1.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cfspec.workspace.pairs import Pair

OK, FAIL, INFO = "ok", "FAIL", "--"
PACKAGES = ("torch", "diffusers", "transformers", "accelerate")  # generate needs them
OPTIONAL = ("huggingface_hub", "torchmetrics", "pyarrow")  # evaluate and export
EMBEDDED = ("tiny", "tiny-sdxl")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK, FAIL or INFO (for information, or skipped)
    detail: str


def run_checks(device: str = "auto", models: tuple[str, ...] = EMBEDDED) -> list[Check]:
    """Every check, in the order shown. `device`: auto, cpu, cuda[:N] or mps."""
    from cfspec import __version__

    checks = [Check("python", OK, platform.python_version()), Check("cfspec", OK, __version__)]
    importable = True
    for name in PACKAGES + OPTIONAL:
        check = _package(name, needed=name in PACKAGES)
        importable &= check.status != FAIL
        checks.append(check)
    if not importable:
        return checks + [Check("generation", FAIL, "not checked: a library it needs does not "
                               "import (pip install 'cfspec[gpu]')")]
    dev, check = _device(device)
    checks.append(check)
    if dev is None:
        return checks
    checks += _dtypes(dev)
    loaded: dict[str, Any] = {}
    for name in models:
        checks.append(_timed(f"model {name}", partial(_model, name, dev, loaded)))
    if loaded:
        checks.append(_timed("processors", lambda: _processors(loaded)))
    checks.append(Check("pipelines", INFO, _supported()))
    checks.append(Check("hub", INFO, _hub()))
    return checks


def ok(checks: list[Check]) -> bool:
    return all(c.status != FAIL for c in checks)


# -- the checks ------------------------------------------------------------------------------


def _package(name: str, needed: bool) -> Check:
    try:
        version = importlib.metadata.version(name.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        if needed:
            return Check(name, FAIL, "not installed (pip install 'cfspec[gpu]')")
        return Check(name, INFO, "not installed (evaluate or export may need it)")
    try:
        importlib.import_module(name)
    except Exception as error:  # a broken install raises anything at import
        status = FAIL if needed else INFO
        return Check(name, status, f"{version} is installed but does not import: "
                     f"{type(error).__name__}: {error}")
    return Check(name, OK, version)


def _device(name: str) -> tuple[Any, Check]:
    """The device `name` means here (`cfspec.gpu.device.pick`, as every command decides it),
    described; a FAIL when it is not here."""
    import torch

    from cfspec.gpu.device import DeviceError, pick

    try:
        dev = torch.device(pick(name))
    except DeviceError as error:
        return None, Check("device", FAIL, str(error))
    if dev.type == "cuda":
        index = dev.index or 0
        props = torch.cuda.get_device_properties(index)
        return dev, Check("device", OK, f"cuda:{index} {props.name}, "
                          f"{props.total_memory / 2**30:.0f} GiB, compute capability "
                          f"{props.major}.{props.minor}, CUDA {torch.version.cuda}")
    if dev.type == "cpu":
        cuda = torch.cuda.is_available()
        why = ("this torch is a CPU build" if torch.version.cuda is None
               else "no GPU visible") if not cuda else "a GPU is there: --device cuda uses it"
        return dev, Check("device", OK, f"cpu, {torch.get_num_threads()} threads ({why})")
    return dev, Check("device", OK, str(dev))


def _dtypes(dev: Any) -> list[Check]:
    """Attention (SDPA) and a matmul in each dtype on the device; `auto`'s choice is marked."""
    import torch
    import torch.nn.functional as F

    from cfspec.gpu.generate.weights import resolve_dtype

    auto = resolve_dtype("auto", dev)
    out = []
    for label, dtype in (("fp32", torch.float32), ("fp16", torch.float16),
                         ("bf16", torch.bfloat16)):
        chosen = " (what --dtype auto picks here)" if dtype == auto else ""
        try:
            gen = torch.Generator("cpu").manual_seed(0)
            q, k, v = (torch.randn(2, 4, 64, 16, generator=gen).to(dev, dtype) for _ in range(3))
            result = F.scaled_dot_product_attention(q, k, v) @ v.transpose(-1, -2)
            finite = bool(torch.isfinite(result.float()).all())
        except Exception as error:  # an unsupported dtype raises many kinds
            status = FAIL if dtype == auto else INFO
            out.append(Check(f"dtype {label}", status, f"does not run on {dev.type}: "
                             f"{type(error).__name__}: {str(error).splitlines()[0]}{chosen}"))
            continue
        slow = " (slow on a CPU: fp16 is for GPUs)" if dev.type == "cpu" and label == "fp16" \
            else ""
        out.append(Check(f"dtype {label}", OK if finite else FAIL,
                         ("runs" if finite else "gives non-finite values") + slow + chosen))
    return out


def _model(name: str, dev: Any, loaded: dict[str, Any]) -> str:
    """Load the embedded model, denoise one replace pair for 2 steps; raise if anything is
    off. What loaded goes into `loaded`, for the processors' check."""
    import torch

    from cfspec.gpu.generate.edit_plan import PromptTokenizer, build_plan
    from cfspec.gpu.generate.engine import Engine, Job, Settings
    from cfspec.gpu.generate.weights import load_components

    comps = loaded[name] = load_components(name, dev, torch.float32)
    engine = Engine(comps, dev, torch.float32, Settings(steps=2, height=32, width=32))
    try:
        plan = build_plan(_pair(), PromptTokenizer(comps.tokenizer, comps.tokenizer_2))
        output = engine.run([Job("doctor", 0, plan)])[0]
    finally:
        engine.close()
    if not _finite(output.latents):
        raise RuntimeError("denoising gave non-finite latents")
    if (output.latents[0] == output.latents[1]).all():
        raise RuntimeError("the edit changed nothing: the counterfactual equals the factual")
    layout = "SDXL layout" if comps.is_xl else "SD 1.x layout"
    return (f"loads and denoises a P2P pair ({layout}, {comps.default_size} px default, "
            f"{len(comps.unet.attn_processors)} attention layers)")


def _processors(loaded: dict[str, Any]) -> str:
    """P2P processors on every attention layer give diffusers' AttnProcessor2_0 output when no
    edit is active (the same prologue and epilogue, the same kernel), then restore."""
    import torch
    from diffusers import __version__ as diffusers_version
    from diffusers.models.attention_processor import AttnProcessor2_0

    from cfspec.gpu.generate.p2p import P2PControl
    from cfspec.gpu.generate.p2p_processor import P2PAttnProcessor

    counts = []
    for name, comps in loaded.items():
        unet = comps.unet
        gen = torch.Generator("cpu").manual_seed(0)
        channels = int(unet.config.in_channels)

        def rand(*shape: int, gen: Any = gen, unet: Any = unet) -> Any:
            return torch.randn(*shape, generator=gen).to(unet.device, unet.dtype)

        sample = rand(2, channels, 16, 16)
        context = rand(2, 77, int(unet.config.cross_attention_dim))
        added = None
        if getattr(unet.config, "addition_embed_type", None) == "text_time":
            pooled = int(unet.add_embedding.linear_1.in_features) - 6 * int(
                unet.config.addition_time_embed_dim)
            added = {"text_embeds": rand(2, pooled),
                     "time_ids": torch.tensor([[32.0, 32, 0, 0, 32, 32]] * 2).to(
                         unet.device, unet.dtype)}
        unet.set_attn_processor(AttnProcessor2_0())
        with torch.inference_mode():
            stock = unet(sample, 10, encoder_hidden_states=context,
                         added_cond_kwargs=added).sample
        control = P2PControl()
        control.install(unet)
        installed = sum(isinstance(p, P2PAttnProcessor) and p.control is control
                        for p in unet.attn_processors.values())
        if installed != len(unet.attn_processors):
            raise RuntimeError(f"{name}: P2P processors took {installed} of "
                               f"{len(unet.attn_processors)} attention layers")
        with torch.inference_mode():
            ours = unet(sample, 10, encoder_hidden_states=context, added_cond_kwargs=added).sample
        control.restore(unet)
        if not torch.equal(ours, stock):
            diff = float((ours - stock).abs().max())
            raise RuntimeError(f"{name}: with no edit, P2P processors differ from "
                               f"AttnProcessor2_0 by {diff:.3g}")
        if any(isinstance(p, P2PAttnProcessor) for p in unet.attn_processors.values()):
            raise RuntimeError(f"{name}: the original processors did not come back")
        counts.append(f"{len(unet.attn_processors)} layers of {name}")
    return (f"install on diffusers {diffusers_version} ({', '.join(counts)}), give exactly "
            "AttnProcessor2_0's output when nothing is edited, and restore")


def _timed(name: str, run: Callable[[], str]) -> Check:
    started = time.perf_counter()
    try:
        detail = run()
    except Exception as error:  # the point of the check is to catch whatever breaks
        first = str(error).splitlines()[0] if str(error) else ""
        return Check(name, FAIL, f"{type(error).__name__}: {first}")
    return Check(name, OK, f"{detail}: {time.perf_counter() - started:.1f} s")


def _finite(array: Any) -> bool:
    import numpy as np

    return bool(np.isfinite(array).all())


def _pair() -> Pair:
    """A words-sourced replace pair with LocalBlend, as `cfspec compile` writes one."""
    from cfspec.workspace.pairs import Pair, schema_errors

    tokens_0 = ["<|startoftext|>", "a", "dog", "on", "a", "table", "<|endoftext|>"]
    tokens_1 = ["<|startoftext|>", "a", "cat", "on", "a", "table", "<|endoftext|>"]
    line = {
        "id": "doctor", "spec": "cfspec doctor", "counterfactual": "cat",
        "prompt_0": "a dog on a table", "prompt_1": "a cat on a table",
        "intervention": [{"variable": "A", "from": "dog", "to": "cat"}],
        "scm": [], "scm_aug": [],
        "edit": {
            "type": "replace",
            "cross_replace_steps": {"default": [0.0, 0.8], "words": {}},
            "self_replace_steps": [0.0, 0.4],
            "local_blend": {"words_0": ["dog"], "words_1": ["cat"], "tokens_0": [2],
                            "tokens_1": [2], "threshold": 0.3},
            "equalizer": {"words": [], "values": [], "tokens": []},
            "alignment": {"source": "words", "tokens_0": tokens_0, "tokens_1": tokens_1,
                          "words": [[i, i] for i in range(5)],
                          "token_map": [[i, i, 1.0] for i in range(7)]},
        },
    }
    assert schema_errors(line) == [], schema_errors(line)  # cfspec's own record must be valid
    return Pair.from_json(line)


def _supported() -> str:
    from cfspec.gpu.generate.pipelines import SUPPORTED_TEXT

    return f"--model PATH|HUB_ID drives {SUPPORTED_TEXT}; built in: tiny, tiny-sdxl, " \
        "random-sd15, random-sdxl (random weights)"


def _hub() -> str:
    from cfspec.gpu.models import is_offline

    try:
        from huggingface_hub import constants

        cache = str(constants.HF_HUB_CACHE)
    except Exception:  # an old or missing huggingface_hub: the cache is unknown
        cache = "unknown"
    mode = ("HF_HUB_OFFLINE is set: hub ids load from the cache only" if is_offline()
            else "online: hub ids download on first use")
    return f"{mode}; cache {cache}"


# -- views ---------------------------------------------------------------------------------


def render_text(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{c.status:<4}  {c.name:<{width}}  {c.detail}" for c in checks]
    failed = [c.name for c in checks if c.status == FAIL]
    if failed:
        lines.append(f"{len(failed)} problem(s): {', '.join(failed)}")
    else:
        lines.append("no problems: `cfspec generate` can run here")
    return "\n".join(lines) + "\n"


def render_json(checks: list[Check]) -> str:
    return json.dumps({"ok": ok(checks), "checks": [asdict(c) for c in checks]}, indent=2) + "\n"
