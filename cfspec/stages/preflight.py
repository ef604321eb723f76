"""What `cfspec run` checks before it does anything, and `cfspec generate` before any model
loads: everything each later stage needs, so a run never spends its GPU hours only to fail in
evaluate or export.

Each check is cheap and touches no network: the device exists (`device_problems`, checked
before compile), the diffusion, CLIP and (with --vqa-model) VQA models resolve (`tiny`, a local
folder with the right file, or a hub id; offline, a hub id must be in the local cache; a string
that looks like a path must be one), OUT can be written under workspace.outdir's symlink
policy, and the libraries of the GPU stages and of the Parquet export are installed. Nothing
heavier than torch (for the device) is imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cfspec.gpu.models import (
    BUILT_IN_CLIPS,
    BUILT_IN_MODELS,
    BUILT_IN_VQAS,
    is_offline,
    looks_like_path,
    missing_path,
    not_cached,
)

TRY_TINY = {
    "--model": "`--model tiny` tries the pipeline with random weights (noise images)",
    "--clip-model": "`--clip-model tiny` tries the stages with random weights (meaningless "
                    "scores)",
    "--vqa-model": "`--vqa-model tiny` tries the question metrics with random weights "
                   "(meaningless answers)",
}


def device_problems(device: str) -> list[str]:
    """Why `--device device` cannot be used here (one line), or nothing."""
    from cfspec.gpu.device import DeviceError, pick

    try:
        pick(device)
    except DeviceError as error:
        return [str(error)]
    return []


def run_problems(out: Path, *, model: str, clip_model: str, vqa_model: str | None = None,
                 inception_weights: Path | None = None) -> list[str]:
    """One message per thing that would stop a later stage of `cfspec run`, each with a way
    out; empty when the run can go ahead. (The device is `device_problems`.)"""
    from cfspec.workspace.layout import IMAGES_DIR
    from cfspec.workspace.outdir import describe_os_error, prepare_out

    problems = []
    missing = [m for m in ("torch", "diffusers", "transformers", "accelerate", "pyarrow")
               if importlib.util.find_spec(m) is None]
    if missing:
        problems.append(f"missing {', '.join(missing)}: generate, evaluate and the hf export "
                        "need them (pip install 'cfspec[gpu]')")
    try:
        prepare_out(out, IMAGES_DIR)
    except OSError as error:
        problems.append(describe_os_error(error))
    problems += model_problems(model)
    problems += _model_problem("--clip-model", clip_model, "config.json", BUILT_IN_CLIPS)
    if vqa_model is not None:
        problems += _model_problem("--vqa-model", vqa_model, "config.json", BUILT_IN_VQAS)
    if inception_weights is not None and not inception_weights.expanduser().is_file():
        problems.append(f"--inception-weights {inception_weights}: no such file (pass a local "
                        "copy of pt_inception-2015-12-05-6726825d.pth, or leave it out)")
    return problems


def model_problems(model: str) -> list[str]:
    """Why `--model model` will not load for generate, if that can be told without loading
    it: a path with nothing there, a folder that is no pipeline, a hub id missing from the
    cache while offline, a pipeline generate does not drive."""
    found = _model_problem("--model", model, "model_index.json", BUILT_IN_MODELS)
    return found or _pipeline_problem(model, BUILT_IN_MODELS)


def _model_problem(option: str, name: str, marker: str, built_in: tuple[str, ...]) -> list[str]:
    """Why `name` will not load, if that can be told without loading it."""
    if name in built_in:
        return []
    local = Path(name).expanduser()
    if local.exists():
        if (local / marker).is_file():
            return []
        return [f"{option} {name}: a folder without {marker} (pass a saved model folder)"]
    if looks_like_path(name):
        return [missing_path(option, name)]
    if not is_offline():
        return []  # a hub id: downloaded when the stage runs
    if _cached(name, marker):
        return []
    return [not_cached(option, name, TRY_TINY[option])]


def _pipeline_problem(model: str, built_in: tuple[str, ...]) -> list[str]:
    """A model whose model_index.json (local, or already in the cache) names a pipeline that
    generate does not drive (SD3, FLUX, ...)."""
    if model in built_in:
        return []
    from cfspec.gpu.generate.pipelines import (
        UnsupportedPipeline,
        check_supported,
        index_file,
        read_index,
    )

    found = index_file(model, download=False)
    if found is None:
        return []
    try:
        check_supported(model, read_index(found))
    except UnsupportedPipeline as error:
        return [str(error)]  # "cannot drive MODEL: ..." with its notes
    except ValueError as error:
        return [f"--model {model}: {error}"]
    return []


def _cached(repo_id: str, filename: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(repo_id, filename)
    except ValueError:  # not a valid repo id
        return False
    return isinstance(found, str)
