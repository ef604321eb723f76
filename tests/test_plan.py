"""`--shard I/N` (cfspec/workspace/shards.py) and `cfspec plan OUT` (cfspec/stages/plan.py);
sharded generation itself is tested in tests/test_generate.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_export import PAIRS, build_out
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.stages.plan import make_plan
from cfspec.workspace.pairs import write_pairs
from cfspec.workspace.shards import ALL, Shard, parse_shard

runner = CliRunner()


@pytest.mark.parametrize("count", [1, 2, 3, 5, 13, 20])
def test_shards_are_disjoint_and_complete(count: int) -> None:
    items = list(range(13))
    parts = [parse_shard(f"{i}/{count}").select(items) for i in range(count)]
    assert sorted(x for part in parts for x in part) == items
    assert sum(len(part) for part in parts) == len(items)
    # balanced: sizes differ by at most one
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1/0", "a/b", "1", "1/2/3", ""])
def test_a_bad_shard_says_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(text)


def test_the_plan_counts_jobs_rows_and_hours(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_pairs(out, PAIRS)  # 3 pairs, nothing generated yet
    plan, problems = make_plan(out, seeds=4, steps=10, batch_pairs=5, its=2.0)
    assert problems == [] and (plan.jobs, plan.done, plan.pending) == (12, 0, 12)
    # ceil(12 / 5) = 3 calls a step, each of 5 pairs x 2 images x 2 (guidance)
    assert (plan.unet_calls, plan.rows_per_call, plan.unet_rows) == (30, 20, 480)
    assert plan.hours == pytest.approx(30 / 2.0 / 3600, rel=1e-12)
    unguided, _ = make_plan(out, seeds=4, steps=10, batch_pairs=5, guidance=1.0)
    assert (unguided.unet_rows, unguided.hours) == (240, None)


def test_the_plan_counts_what_is_done_and_splits_by_shard(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=(0, 1))  # 3 pairs x seeds 0, 1 on disk
    plan, _ = make_plan(out, seeds=3)
    assert (plan.jobs, plan.done, plan.pending) == (9, 6, 3)
    parts = [make_plan(out, seeds=3, shard=Shard(i, 2))[0] for i in range(2)]
    assert [p.pairs for p in parts] == [2, 1] and sum(p.jobs for p in parts) == plan.jobs
    assert make_plan(out, seeds=3, shard=ALL)[0] == plan


def test_plan_command(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_pairs(out, PAIRS)
    done = runner.invoke(app, ["plan", str(out), "--seeds", "2", "--steps", "5",
                               "--batch-pairs", "4", "--its", "1", "--format", "json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert (data["jobs"], data["unet_calls"], data["shard"]) == (6, 10, "0/1")
    text = runner.invoke(app, ["plan", str(out), "--shard", "1/2"])
    assert text.exit_code == 0 and text.stdout.startswith("shard 1/2: 1 pair(s)")
    assert "pass --its" in text.stdout
    bad = runner.invoke(app, ["plan", str(out), "--shard", "2/2"])
    assert bad.exit_code == 2 and "shards count from 0" in bad.output
    missing = runner.invoke(app, ["plan", str(tmp_path / "nothing")])
    assert missing.exit_code == 2
