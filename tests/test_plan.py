"""`--shard I/N` (cfspec/workspace/shards.py) and `cfspec plan OUT` (cfspec/stages/plan.py);
sharded generation itself is tested in tests/test_generate.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_export import PAIRS, build_out
from test_export import make_pair as _pair
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.stages.plan import make_plan
from cfspec.workspace.pairs import Pair, write_pairs
from cfspec.workspace.sets import batches, chunks, group_key, pack
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
    # Two groups: p1 (2 counterfactuals of "a cat on a table": 3 rows a seed) and p2 (1: 2
    # rows). Sets in order, packed into 2 x 5 = 10 image rows: p1/0, p1/1, p1/2 (9 rows);
    # p1/3 and p2/0..2 (9); p2/3 (2). 3 calls a step; 4 x 3 + 4 x 2 = 20 image rows, x2 for
    # guidance, x10 steps.
    assert (plan.groups, plan.sets) == (2, 8)
    assert (plan.unet_calls, plan.rows_per_call, plan.unet_rows) == (30, 20, 400)
    assert plan.hours == pytest.approx(30 / 2.0 / 3600, rel=1e-12)
    unguided, _ = make_plan(out, seeds=4, steps=10, batch_pairs=5, guidance=1.0)
    assert (unguided.unet_rows, unguided.hours) == (200, None)
    sampled, _ = make_plan(out, seeds=4, steps=10, batch_pairs=5, guidance="uniform(5, 9)")
    assert sampled.unet_rows == 400  # a sampled guidance is always above 1
    # Per pair: ceil(12 / 5) = 3 calls a step, each of 5 pairs x 2 images x 2 (guidance).
    per_pair, _ = make_plan(out, seeds=4, steps=10, batch_pairs=5, per_pair=True)
    assert (per_pair.unet_calls, per_pair.unet_rows) == (30, 480)
    # One pair per call: p1's sets are cut into [factual, one counterfactual], as per pair.
    single, _ = make_plan(out, seeds=4, steps=10, batch_pairs=1)
    assert (single.unet_calls, single.unet_rows) == (120, 480)
    with pytest.raises(ValueError, match="--guidance"):
        make_plan(out, guidance="uniform(0, 9)")


def test_the_plan_counts_k_plus_one_rows_per_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    lines = [_pair(f"p__{n}", "a cat on a table", f"a cat on a {w}")
             for n, w in enumerate(["chair", "bed", "sofa", "rug", "box", "shelf", "car",
                                    "roof", "desk", "tree", "wall"])]
    write_pairs(out, lines)
    for steps in (1, 7):
        # K = 11 counterfactuals of one factual: 12 rows where per pair needs 22.
        plan, _ = make_plan(out, steps=steps, batch_pairs=6)
        assert (plan.unet_calls, plan.unet_rows) == (steps, 12 * 2 * steps)
        per_pair, _ = make_plan(out, steps=steps, batch_pairs=6, per_pair=True)
        assert (per_pair.unet_calls, per_pair.unet_rows) == (2 * steps, 22 * 2 * steps)
    # 2 x 4 = 8 rows a call: chunks of 7 and 4 counterfactuals, each with its factual row.
    cut, _ = make_plan(out, seeds=2, batch_pairs=4, steps=1, guidance=1.0)
    assert (cut.sets, cut.unet_calls, cut.unet_rows) == (2, 4, 2 * (8 + 5))


def test_packing_arithmetic() -> None:
    assert chunks(list(range(11)), 6) == [list(range(11))]
    assert chunks(list(range(11)), 4) == [list(range(7)), list(range(7, 11))]
    assert chunks(list(range(3)), 1) == [[0], [1], [2]]
    # Whole sets while their rows (pairs + 1) fit 2 x batch_pairs; order kept.
    assert pack([[1, 2], [3], [4, 5, 6]], 3) == [[[1, 2], [3]], [[4, 5, 6]]]
    assert pack([[1], [2], [3]], 2) == [[[1], [2]], [[3]]]
    # generate's batches: a set per (group, seed), groups as first met, then seeds.
    jobs = [("a", 0), ("b", 0), ("a", 1), ("a", 0)]
    assert batches(jobs, lambda j: j[0], lambda j: j[1], 2) == [
        [[("a", 0), ("a", 0)]], [[("a", 1)], [("b", 0)]]]
    assert batches([1, 2, 3], str, lambda j: 0, 2, per_pair=True) == [[[1], [2]], [[3]]]
    for batch_pairs in (1, 2, 3, 8):
        sets = [list(range(k)) for k in (1, 5, 11, 2, 3)]
        packed = pack(sets, batch_pairs)
        assert all(sum(len(piece) + 1 for piece in batch) <= 2 * batch_pairs
                   for batch in packed)
        assert [x for batch in packed for piece in batch for x in piece] == [
            x for members in sets for x in members]


def test_shards_split_by_group(tmp_path: Path) -> None:
    texts = [("a cat on a table", "a dog on a table"), ("a cat on a table", "a cat on a chair"),
             ("a blue car", "a red car"), ("a cat on a table", "a cat on a bed"),
             ("a red bus", "a red van"), ("a blue car", "a blue van")]
    pairs = [Pair.from_json(_pair(f"p{n}", a, b)) for n, (a, b) in enumerate(texts)]
    for count in (1, 2, 3, 4):
        parts = [Shard(i, count).select(pairs) for i in range(count)]
        assert sorted(p.id for part in parts for p in part) == sorted(p.id for p in pairs)
        assert sum(len(part) for part in parts) == len(pairs)
        for part in parts:  # a group's pairs all in one shard, in pairs.jsonl order
            assert [p.id for p in part] == [p.id for p in pairs if p in part]
            others = [p for q in parts if q is not part for p in q]
            assert not {group_key(p) for p in part} & {group_key(p) for p in others}
    # Groups by their first pair: cat (p0, p1, p3), car (p2, p5), bus (p4).
    assert [[p.id for p in Shard(i, 3).select(pairs)] for i in range(3)] == [
        ["p0", "p1", "p3"], ["p2", "p5"], ["p4"]]
    # Another spec (or spec_name) is another group, even with the same prompt.
    other = Pair.from_json({**_pair("q", "a cat on a table", "a dog on a table"),
                            "spec": "other.scm"})
    assert group_key(other) != group_key(pairs[0])


def test_the_plan_counts_what_is_done_and_splits_by_shard(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", seeds=(0, 1))  # 3 pairs x seeds 0, 1 on disk
    plan, _ = make_plan(out, seeds=3, steps=4)  # as the manifest lines were made
    assert (plan.jobs, plan.done, plan.pending) == (9, 6, 3)
    # Images made with other steps or guidance are not done: generate would redo them.
    for other in ({"steps": 7}, {"guidance": 9.0}, {"guidance": "uniform(5, 9)"}):
        options = {"steps": 4, **other}
        assert make_plan(out, seeds=3, **options)[0].done == 0, other  # type: ignore[arg-type]
    parts = [make_plan(out, seeds=3, steps=4, shard=Shard(i, 2))[0] for i in range(2)]
    assert [p.pairs for p in parts] == [2, 1] and sum(p.jobs for p in parts) == plan.jobs
    assert make_plan(out, seeds=3, steps=4, shard=ALL)[0] == plan


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
