"""`--shard I/N` (cfspec/workspace/shards.py) and `cfspec plan OUT` (cfspec/stages/plan.py);
sharded generation itself is tested in tests/test_generate.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_export import PAIRS, build_out
from test_export import make_pair as _pair
from typer.testing import CliRunner

from cfspec.cli.app import app
from cfspec.stages.options import GenerateOptions
from cfspec.stages.plan import Plan, make_plan
from cfspec.workspace.batching import batches, chunks, group_key, pack
from cfspec.workspace.pairs import Pair, write_pairs
from cfspec.workspace.shards import ALL, Shard, parse_shard

runner = CliRunner()


def plan_of(out: Path, its: float | None = None, **given: Any) -> tuple[Plan, list[Any]]:
    """The plan with generate's options `given` (the rest at their defaults)."""
    return make_plan(out, GenerateOptions(**given), its)


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
    plan, problems = plan_of(out, seeds=4, steps=10, batch_pairs=5, its=2.0)
    assert problems == [] and (plan.jobs, plan.done, plan.pending) == (12, 0, 12)
    # Two groups: p1 (2 counterfactuals of "a cat on a table": 3 rows a seed) and p2 (1: 2
    # rows). Sets in order, packed into 2 x 5 = 10 image rows: p1/0, p1/1, p1/2 (9 rows);
    # p1/3 and p2/0..2 (9); p2/3 (2). 3 calls a step; 4 x 3 + 4 x 2 = 20 image rows, x2 for
    # guidance, x10 steps.
    assert (plan.groups, plan.sets) == (2, 8)
    assert (plan.unet_calls, plan.rows_per_call, plan.unet_rows) == (30, 20, 400)
    assert plan.hours == pytest.approx(30 / 2.0 / 3600, rel=1e-12)
    unguided, _ = plan_of(out, seeds=4, steps=10, batch_pairs=5, guidance=1.0)
    assert (unguided.unet_rows, unguided.hours) == (200, None)
    sampled, _ = plan_of(out, seeds=4, steps=10, batch_pairs=5, guidance="uniform(5, 9)")
    assert sampled.unet_rows == 400  # a sampled guidance is always above 1
    # Per pair: ceil(12 / 5) = 3 calls a step, each of 5 pairs x 2 images x 2 (guidance).
    per_pair, _ = plan_of(out, seeds=4, steps=10, batch_pairs=5, per_pair=True)
    assert (per_pair.unet_calls, per_pair.unet_rows) == (30, 480)
    # One pair per call: p1's sets are cut into [factual, one counterfactual], as per pair.
    single, _ = plan_of(out, seeds=4, steps=10, batch_pairs=1)
    assert (single.unet_calls, single.unet_rows) == (120, 480)
    with pytest.raises(ValueError, match="--guidance"):
        plan_of(out, guidance="uniform(0, 9)")


def test_the_plan_counts_k_plus_one_rows_per_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    lines = [_pair(f"p__{n}", "a cat on a table", f"a cat on a {w}")
             for n, w in enumerate(["chair", "bed", "sofa", "rug", "box", "shelf", "car",
                                    "roof", "desk", "tree", "wall"])]
    write_pairs(out, lines)
    for steps in (1, 7):
        # K = 11 counterfactuals of one factual: 12 rows where per pair needs 22.
        plan, _ = plan_of(out, steps=steps, batch_pairs=6)
        assert (plan.unet_calls, plan.unet_rows) == (steps, 12 * 2 * steps)
        per_pair, _ = plan_of(out, steps=steps, batch_pairs=6, per_pair=True)
        assert (per_pair.unet_calls, per_pair.unet_rows) == (2 * steps, 22 * 2 * steps)
    # 2 x 4 = 8 rows a call: chunks of 7 and 4 counterfactuals, each with its factual row.
    cut, _ = plan_of(out, seeds=2, batch_pairs=4, steps=1, guidance=1.0)
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


def built_as_generate_makes(root: Path, seeds: tuple[int, ...] = (0, 1)) -> Path:
    """test_export's OUT, its manifest lines completed as generate writes them now (with the
    compat profile, which those lines predate)."""
    out = build_out(root, seeds=seeds)
    manifest = out / "manifest.jsonl"
    lines = [json.loads(x) for x in manifest.read_text("utf-8").splitlines()]
    manifest.write_text("".join(json.dumps({**line, "p2p_compat": "cfspec"}) + "\n"
                                for line in lines), "utf-8")
    return out


# The settings test_export's lines were made with: tiny, steps 4, guidance 7.5, fp32.
AS_MADE = {"model": "tiny", "steps": 4, "device": "cpu"}


def test_the_plan_counts_what_is_done_and_splits_by_shard(tmp_path: Path) -> None:
    out = built_as_generate_makes(tmp_path / "out")  # 3 pairs x seeds 0, 1 on disk
    plan, _ = plan_of(out, seeds=3, **AS_MADE)
    assert (plan.jobs, plan.done, plan.pending, plan.replace) == (9, 6, 3, 0)
    # Images made with any other setting are not done: generate would redo them, and they
    # are counted as replacements, with what differs (as generate refuses without
    # --overwrite).
    others: list[tuple[dict[str, Any], str]] = [
        ({"steps": 7}, "steps: 4 -> 7"), ({"guidance": 9.0}, "guidance: 7.5 -> 9.0"),
        ({"guidance": "uniform(5, 9)"}, "guidance: 7.5 -> uniform(5.0, 9.0)"),
        ({"model": "tiny-sdxl"}, "model: tiny -> tiny-sdxl"),
        ({"scheduler": "euler"}, "scheduler: ddim -> euler"),
        ({"dtype": "bf16"}, "dtype: float32 -> bfloat16"),
        ({"device": "cuda"}, "dtype: float32 -> float16"),  # what --dtype auto means there
        ({"height": 64}, "height: 32 -> 64"),
        ({"blend_start": 0.5}, "blend_start: 0.2 -> 0.5"),
        ({"p2p_compat": "published"}, "blend_start: 0.2 -> 0.0"),
    ]
    for other, change in others:
        replanned, _ = plan_of(out, seeds=3, **{**AS_MADE, **other})
        assert (replanned.done, replanned.pending, replanned.replace) == (0, 9, 6), other
        assert change in replanned.changes, (other, replanned.changes)
    published, _ = plan_of(out, seeds=3, **{**AS_MADE, "p2p_compat": "published"})
    assert published.changes == ("blend_start: 0.2 -> 0.0", "p2p_compat: cfspec -> published")
    parts = [plan_of(out, seeds=3, shard=Shard(i, 2), **AS_MADE)[0]
             for i in range(2)]
    assert [p.pairs for p in parts] == [2, 1] and sum(p.jobs for p in parts) == plan.jobs
    assert plan_of(out, seeds=3, shard=ALL, **AS_MADE)[0] == plan


def test_a_changed_spec_or_a_new_seed_is_no_replacement(tmp_path: Path) -> None:
    """Only images made with other run settings count as replaced: a pair whose prompts
    changed is redone as its spec now asks, a new pair or seed replaces nothing."""
    out = built_as_generate_makes(tmp_path / "out", seeds=(0,))
    lines = [json.loads(x) for x in (out / "pairs.jsonl").read_text("utf-8").splitlines()]
    lines[0]["prompt_1"] += " today"
    write_pairs(out, [*lines, _pair("p_new", "a red car", "a blue car")])
    plan, _ = plan_of(out, seeds=2, **AS_MADE)
    # 4 pairs x 2 seeds; done: the 2 unchanged pairs' seed 0.
    assert (plan.jobs, plan.done, plan.pending, plan.replace) == (8, 2, 6, 0)
    # Missing files: nothing on disk to replace.
    for png in (out / "images").rglob("*.png"):
        png.unlink()
    for npz in (out / "images").rglob("*.npz"):
        npz.unlink()
    assert plan_of(out, seeds=1, **{**AS_MADE, "steps": 9})[0].replace == 0


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


def test_plan_command_counts_replacements_and_checks_the_device(tmp_path: Path) -> None:
    out = built_as_generate_makes(tmp_path / "out")
    same = runner.invoke(app, ["plan", str(out), "--model", "tiny", "--steps", "4",
                               "--device", "cpu", "--format", "json"])
    assert same.exit_code == 0, same.output
    assert (json.loads(same.stdout)["done"], json.loads(same.stdout)["replace"]) == (3, 0)
    # Its defaults are generate's: the real model, 50 steps.
    default = runner.invoke(app, ["plan", str(out), "--device", "cpu"])
    assert default.exit_code == 0, default.output
    assert "0 done, 3 to generate" in default.stdout
    assert ("replace: 3 of those have images made with other settings (model: tiny -> "
            "stable-diffusion-v1-5/stable-diffusion-v1-5; steps: 4 -> 50): generate replaces "
            "them only with --overwrite") in default.stdout
    for device in ("gpu", "cuda:x"):
        bad = runner.invoke(app, ["plan", str(out), "--device", device])
        assert bad.exit_code == 2 and bad.output.count("\n") == 1, bad.output
        assert "not a device; choose auto, cpu, cuda, cuda:N or mps" in bad.output
