"""`--device auto|cpu|cuda|cuda:N|mps`: which device a command runs on, decided and checked in
one place for generate, evaluate, plan, run and doctor.

Importing this module imports no torch (the CLI registers its commands without it); `pick`
imports torch when it runs. A name that is not a device, or a device this machine does not
have, is a `DeviceError` whose text is one line with a way out, so every command can say it
and exit 2 before any model loads, instead of failing deep inside torch.
"""

from __future__ import annotations

import re
from typing import Any

AUTO = "auto"  # CUDA when there is a GPU, else MPS (Apple silicon), else the CPU
CHOICES = "auto, cpu, cuda, cuda:N or mps"
_NAME = re.compile(r"(auto|cpu|mps|cuda(:[0-9]+)?)\Z")
_WAY_OUT = "use --device cpu, or --device auto to take what there is"

# `--dtype` names -> torch dtype names; `auto` is fp16 on CUDA and fp32 elsewhere (CPU half
# precision is slow and not always there).
DTYPES = {"fp32": "float32", "float32": "float32", "fp16": "float16", "float16": "float16",
          "bf16": "bfloat16", "bfloat16": "bfloat16"}


class DeviceError(ValueError):
    """Not a device name, or a device this machine does not have; `str()` is one line."""


def check_name(name: str) -> None:
    """The name's shape only (no torch): auto, cpu, cuda, cuda:N or mps."""
    if not _NAME.match(name):
        raise DeviceError(f"--device {name!r}: not a device; choose {CHOICES}")


def pick(name: str) -> str:
    """The device `name` means on this machine, checked: `auto` becomes `cuda` when CUDA sees
    a GPU, else `mps` when there is MPS, else `cpu`; `cuda`, `cuda:N` and `mps` must be there.
    Returns the name as torch takes it; DeviceError otherwise. Without torch installed, `auto`
    is the CPU (where the command then says what it needs)."""
    check_name(name)
    if name == "cpu":
        return name
    try:
        import torch
    except ImportError:
        if name == AUTO:
            return "cpu"
        raise DeviceError(f"--device {name}: needs torch (pip install 'cfspec[gpu]')") from None
    cuda = bool(torch.cuda.is_available())
    mps = _mps_available(torch)
    if name == AUTO:
        return "cuda" if cuda else "mps" if mps else "cpu"
    if name == "mps":
        if not mps:
            raise DeviceError("--device mps: MPS is not available here (it needs Apple silicon "
                              f"and a torch built with MPS); {_WAY_OUT}")
        return name
    if not cuda:
        raise DeviceError(f"--device {name}: no CUDA device: {_why_no_cuda(torch)}; {_WAY_OUT}")
    count = int(torch.cuda.device_count())
    index = int(name.partition(":")[2] or 0)
    if index >= count:
        raise DeviceError(f"--device {name}: this machine has {count} CUDA device(s), "
                          f"cuda:0 to cuda:{count - 1}")
    return name


def kind(name: str) -> str:
    """`cuda`, `mps` or `cpu`: the device type of a name `pick` returned."""
    return name.partition(":")[0]


def dtype_name(dtype: str | None, device: str) -> str:
    """The torch dtype name (`float32`, `float16`, `bfloat16`) that `--dtype` means on
    `device` (a name `pick` returned); ValueError for an unknown one."""
    name = (dtype or "auto").lower()
    if name == "auto":
        return "float16" if kind(device) == "cuda" else "float32"
    if name not in DTYPES:
        raise ValueError(f"unknown --dtype {dtype!r}; choose auto, fp32, fp16 or bf16")
    return DTYPES[name]


def _mps_available(torch: Any) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _why_no_cuda(torch: Any) -> str:
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU build"
    return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU (check the "
            "driver and CUDA_VISIBLE_DEVICES)")
