"""`cfspec generate` end to end against its own loop: how much the stage adds to the engine.

    python benchmarks/gpu_e2e.py --model random-sd15 --device cuda --out /tmp/e2e --compile
    python benchmarks/gpu_e2e.py --model tiny --device cpu --out /tmp/e2e --steps 2 --height 32

Compiles the bundled specs (`specs/*.scm`) into OUT, then runs the generate stage on them
(eagerly, and with `--compile` a second time, compiled, into OUT/compiled), as `cfspec
generate` does. While it runs, the time spent inside `Engine.run_sets` (text encoding,
denoising, decoding to PIL images: what generate_bench times as "ours") is the loop; loading
the model (and building the engine) is the load; the compiled engine's first call per batch
shape is its compile time. `stage_vs_loop` = (stage seconds - load - compile) / (loop seconds
- compile): what writing PNGs, .npz files and the manifest, and everything else the stage
does, costs beyond the loop. Goal: <= 1.10. One JSON object on stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def compile_specs(out: Path, limit: int | None) -> int:
    """specs/*.scm -> out/pairs.jsonl (the first `limit` pairs); the number of pairs."""
    from cfspec.cli.app import app

    try:
        app(["compile", *sorted(str(p) for p in (ROOT / "specs").glob("*.scm")), "-o",
             str(out), "--quiet"], prog_name="cfspec", standalone_mode=False)
    except SystemExit:
        pass
    pairs = out / "pairs.jsonl"
    lines = pairs.read_text(encoding="utf-8").splitlines()
    if limit is not None:
        lines = lines[:limit]
        pairs.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def timed_stage(out: Path, args: argparse.Namespace, compiled: bool) -> dict[str, Any]:
    import torch

    from cfspec.gpu.generate import engine as engine_module
    from cfspec.gpu.generate import weights
    from cfspec.gpu.generate.stage import generate

    spent = {"loop": 0.0, "load": 0.0}
    engines: list[Any] = []
    run_sets, init, load = (engine_module.Engine.run_sets, engine_module.Engine.__init__,
                            weights.load_components)

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed(key: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            sync()
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                sync()
                spent[key] += time.perf_counter() - start
        return wrapper

    def init_and_keep(self: Any, *a: Any, **k: Any) -> None:
        timed("load", init)(self, *a, **k)
        engines.append(self)

    engine_module.Engine.run_sets = timed("loop", run_sets)  # type: ignore[method-assign]
    engine_module.Engine.__init__ = init_and_keep  # type: ignore[method-assign]
    weights.load_components = timed("load", load)
    options: dict[str, Any] = {}
    # Older cfspec: generate()'s own keywords; newer: stages.options.GenerateOptions' fields.
    try:
        from cfspec.stages.options import GenerateOptions

        taken = {f.name for f in dataclasses.fields(GenerateOptions)}
    except ImportError:
        taken = set(inspect.signature(generate).parameters)
    if "per_pair" in taken:
        options["per_pair"] = args.per_pair
    if compiled:
        name = "compile_unet" if "compile_unet" in taken else "compile"
        if name not in taken:
            return {"skipped": "this cfspec's generate() takes no compile option"}
        options[name] = True
    try:
        result = generate(out, model=args.model, seeds=args.seeds, steps=args.steps,
                          device=args.device, batch_pairs=args.batch_pairs,
                          height=args.height, width=args.width, quiet=True, **options)
    finally:
        engine_module.Engine.run_sets = run_sets  # type: ignore[method-assign]
        engine_module.Engine.__init__ = init  # type: ignore[method-assign]
        weights.load_components = load
    compile_s = sum(getattr(e, "compile_seconds", 0.0) for e in engines)
    stage = result.seconds - spent["load"] - compile_s
    loop = spent["loop"] - compile_s
    return {
        "pairs": result.generated, "failed": len(result.failed),
        "stage_seconds": round(result.seconds, 3), "load_seconds": round(spent["load"], 3),
        "compile_seconds": round(compile_s, 3), "loop_seconds": round(spent["loop"], 3),
        "stage_pairs_per_s": round(result.generated / stage, 4) if stage > 0 else None,
        "loop_pairs_per_s": round(result.generated / loop, 4) if loop > 0 else None,
        "stage_vs_loop": round(stage / loop, 4) if loop > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True, help="a folder (emptied first)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--batch-pairs", type=int, default=8)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--limit", type=int, default=24, help="pairs to generate")
    parser.add_argument("--per-pair", action="store_true", default=True,
                        help="each pair its own factual row (default: one batch shape, so "
                        "a compiled engine compiles once)")
    parser.add_argument("--sets", dest="per_pair", action="store_false",
                        help="sets: one factual row per group (shapes vary by batch)")
    parser.add_argument("--compile", action="store_true", help="also run compiled")
    args = parser.parse_args(argv)

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    count = compile_specs(out, args.limit)
    report: dict[str, Any] = {"benchmark": "e2e", "model": args.model, "device": args.device,
                              "steps": args.steps, "batch_pairs": args.batch_pairs,
                              "seeds": args.seeds, "pairs_in_file": count,
                              "per_pair": args.per_pair}
    report["eager"] = timed_stage(out, args, compiled=False)
    if args.compile:
        again = out / "compiled"
        again.mkdir()
        shutil.copy(out / "pairs.jsonl", again / "pairs.jsonl")
        report["compiled"] = timed_stage(again, args, compiled=True)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
