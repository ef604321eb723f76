"""What `cfspec run` checks before the first image: everything each later stage needs, so a run
never spends its GPU hours only to fail in evaluate or export.

Each check is cheap and touches no network: the diffusion and CLIP models resolve (`tiny`, a
local folder with the right file, or a hub id; offline, a hub id must be in the local cache),
OUT can be written under workspace.outdir's symlink policy, and the libraries of the GPU stages
and of the Parquet export are installed. Nothing heavy is imported.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

BUILT_IN_MODELS = ("tiny", "tiny-sdxl", "random-sd15", "random-sdxl")  # = weights.BUILT_IN
BUILT_IN_CLIPS = ("tiny", "random-vit-l-14")  # = cfspec.gpu.evaluate.clip.TINY, RANDOM_VIT_L14


def run_problems(out: Path, *, model: str, clip_model: str,
                 inception_weights: Path | None = None) -> list[str]:
    """One line per thing that would stop a later stage of `cfspec run`, each with a way out;
    empty when the run can go ahead."""
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
    problems += _model_problem("--model", model, "model_index.json", BUILT_IN_MODELS)
    problems += _pipeline_problem(model, BUILT_IN_MODELS)
    problems += _model_problem("--clip-model", clip_model, "config.json", BUILT_IN_CLIPS)
    if inception_weights is not None and not inception_weights.expanduser().is_file():
        problems.append(f"--inception-weights {inception_weights}: no such file (pass a local "
                        "copy of pt_inception-2015-12-05-6726825d.pth, or leave it out)")
    return problems


def _model_problem(option: str, name: str, marker: str, built_in: tuple[str, ...]) -> list[str]:
    """Why `name` will not load, if that can be told without loading it."""
    if name in built_in:
        return []
    local = Path(name).expanduser()
    if local.exists():
        if (local / marker).is_file():
            return []
        return [f"{option} {name}: a folder without {marker} (pass a saved model folder)"]
    if not is_offline():
        return []  # a hub id: downloaded when the stage runs
    if _cached(name, marker):
        return []
    return [f"{option} {name}: not in the local Hugging Face cache, and HF_HUB_OFFLINE is set "
            f"(download it once with network: `hf download {name}`; or pass a local folder; "
            f"or {' / '.join(built_in)}, built in)"]


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
        return [f"--model {error}"]
    except ValueError as error:
        return [f"--model {model}: {error}"]
    return []


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


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
