"""`cfspec plan --its FILE`: the it/s learned from a generate_bench.py report (or a gpu_check
results.jsonl holding one), at the plan's batch size, compiled where it was timed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_export import PAIRS
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.stages.plan import its_from_bench
from cfspec.workspace.pairs import write_pairs


def _report(steps: int = 50) -> dict:
    """The shape generate_bench.py --json prints (the fields plan reads, and others)."""
    return {"benchmark": "generate", "steps": steps, "model": "random-sd15", "results": [
        {"batch_pairs": 1, "ours": {"seconds": 1.5}, "plain": {"seconds": 1.4}},
        {"batch_pairs": 8, "ours": {"seconds": 5.0}, "ours_compiled": {"seconds": 2.5},
         "plain": {"seconds": 4.8}},
    ]}


def test_its_is_the_benchmarks_calls_per_second_at_the_nearest_batch(tmp_path: Path) -> None:
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(_report()), encoding="utf-8")
    assert its_from_bench(bench, 8) == pytest.approx(50 / 2.5)  # compiled, where timed
    assert its_from_bench(bench, 6) == pytest.approx(50 / 2.5)  # 8 is nearer than 1
    assert its_from_bench(bench, 1) == pytest.approx(50 / 1.5)  # eager: no compiled timing
    # gpu_check's results.jsonl: one line per step, the benchmark's report under "result".
    lines = tmp_path / "results.jsonl"
    lines.write_text(json.dumps({"step": "env", "rc": 0, "result": {"torch": "2.11"}}) + "\n"
                     + json.dumps({"step": "bench_sd15", "rc": 0, "result": _report(10)})
                     + "\n", encoding="utf-8")
    assert its_from_bench(lines, 8) == pytest.approx(10 / 2.5)


def test_a_file_without_a_generate_benchmark_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "set.json"
    other.write_text(json.dumps({"benchmark": "sets", "results": []}), encoding="utf-8")
    with pytest.raises(ValueError, match="no generate_bench.py result"):
        its_from_bench(other, 8)
    with pytest.raises(ValueError, match="cannot read"):
        its_from_bench(tmp_path / "missing.json", 8)


def test_plan_reads_its_from_the_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_pairs(out, PAIRS)
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(_report()), encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(app, ["plan", str(out), "--batch-pairs", "8", "--its", str(bench),
                               "--format", "json"])
    assert done.exit_code == 0, done.output
    plan = json.loads(done.stdout)
    assert plan["its"] == pytest.approx(20.0)
    assert plan["hours"] == pytest.approx(plan["unet_calls"] / 20.0 / 3600)
    bad = runner.invoke(app, ["plan", str(out), "--its", str(tmp_path / "none.json")])
    assert bad.exit_code == 2 and "cannot read" in bad.output
