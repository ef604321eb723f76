"""The GPU benchmarks run, in their smallest configuration, on the tiny CPU model: they are
what a lent GPU runs unattended, so a benchmark broken by an API change must fail here, not
there. No timing is asserted: only that each produced its JSON and that the images it compares
agree (the numbers themselves are the benchmarks' business)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_generate_bench_runs_and_its_methods_agree() -> None:
    result = _run("generate_bench.py", "--quick", "--json", "--batches", "2", "--repeats", "1",
                  "--device", "cpu")
    assert [r["batch_pairs"] for r in result["results"]] == [2]
    assert {"ours", "plain", "naive"} <= set(result["results"][0])
    # ours against the published loop and the plain pipeline: the same images at 32 px
    assert result["ours_vs_naive_counterfactual_max_pixel_diff"] <= 1
    assert result["ours_vs_plain_factual_max_pixel_diff"] <= 1


def test_set_bench_runs_and_counts_rows() -> None:
    result = _run("set_bench.py", "--quick", "--json", "--ks", "1,3", "--repeats", "1")
    rows = {(r["k"], r["method"]): r["unet_rows_per_step"] for r in result["results"]}
    # K counterfactuals: 2K image rows per pair, K + 1 as a set, x2 with guidance; counted by
    # the benchmark's forward hook on the UNet, so this checks what actually ran.
    assert rows == {(1, "per_pair"): 4, (1, "sets"): 4, (3, "per_pair"): 12, (3, "sets"): 8}
    assert [s["rows_ratio"] for s in result["summary"]] == [1.0, 1.5]


def test_evaluate_bench_runs() -> None:
    result = _run("evaluate_bench.py", "--quick", "--json", "--device", "cpu", "--batch", "4")
    assert result["pairs"] == result["batches"] * 4 and result["pairs_per_s"] > 0


def test_inversion_bench_runs_and_counts_unet_calls() -> None:
    result = _run("inversion_bench.py", "--quick", "--json", "--device", "cpu")
    calls = {r["method"]: r["unet_calls_per_step"] for r in result["results"]}
    # Counted by the benchmark's forward hook: DDIM inversion's call per step, plus for
    # null-text the conditional prediction, 10 inner steps (no early stop on random weights)
    # and the guided step.
    assert calls == {"plain": 1.0, "null-text": 13.0, "negative-prompt": 1.0, "ddim": 1.0}
