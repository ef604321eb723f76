"""Set generation (one factual row per group and seed, every counterfactual edited against it)
against per-pair generation, and the sampled settings (`--guidance uniform(lo, hi)`, a pair's
`edit.sample`). Tiny models, CPU.

Tolerances: where the two runs' UNet batches are the same rows in the same order (set
generation with `batch_pairs=1` cuts every set into [factual, one counterfactual] batches,
exactly the per-pair layout), images, latents and maps must be bit for bit equal. Where the
batches differ (a set's K + 1 rows against K per-pair batches), fp32 sums may be reordered by
the kernels' batch-size-dependent blocking (tests/numeric.py): latents within that bound,
images within 1 grey level, as test_images_do_not_depend_on_batch_size allows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import numpy as np  # noqa: E402
from numeric import assert_reordered_close  # noqa: E402
from test_generate import images, manifest_lines, pair, write_pairs  # noqa: E402

from cfspec.gpu.generate.stage import GenerateError, WouldReplace, generate  # noqa: E402
from cfspec.workspace.batching import Uniform, draws, group_key  # noqa: E402
from cfspec.workspace.shards import Shard  # noqa: E402

STEPS = 6


def blended(line: dict[str, Any]) -> dict[str, Any]:
    """The tiny model's maps are nearly flat: only a high threshold leaves cells outside the
    LocalBlend mask, so the blend has something to keep."""
    line["edit"]["local_blend"]["threshold"] = 0.95
    return line


def sampled(line: dict[str, Any], cross: list[float] | None = None,
            self_: list[float] | None = None) -> dict[str, Any]:
    sample = {}
    if cross is not None:
        sample["cross_replace"] = {"uniform": cross}
    if self_ is not None:
        sample["self_replace"] = {"uniform": self_}
    line["edit"]["sample"] = sample
    return line


def group_pairs() -> list[dict[str, Any]]:
    """Two groups: four counterfactuals of one factual (replace with LocalBlend, replace,
    refine, reweight; one with sampled windows) and a pair of its own."""
    return [
        blended(pair("pear__apple", "a pear on a plate", "a apple on a plate")),
        sampled(pair("pear__cake", "a pear on a plate", "a cake on a plate"), [0.2, 0.9],
                [0.1, 0.6]),
        blended(pair("pear__big", "a pear on a plate", "a big pear on a plate", kind="refine",
                     refine_map=[0, 1, -1, 2, 3, 4, 5, 6])),
        pair("pear__heavy", "a pear on a plate", "a pear on a plate", kind="reweight",
             equalizer={"pear": 2.0}),
        blended(pair("cat__dog", "a cat on a red couch", "a dog on a red couch")),
    ]


def extras(out: Path) -> dict[str, dict[str, np.ndarray]]:
    found = {}
    for path in sorted((out / "images").rglob("*.npz")):
        with np.load(path) as data:
            found[str(path.relative_to(out))] = {key: data[key] for key in data.files}
    return found


def run(root: Path, name: str, lines: list[dict[str, Any]], **options: Any) -> Path:
    out = write_pairs(root / name, lines)
    options = {"model": "tiny", **options}
    size = 64 if options["model"] == "tiny-sdxl" else 32
    result = generate(out, steps=STEPS, height=size, width=size, quiet=True,
                      **options)  # type: ignore[arg-type]
    assert result.ok and result.generated == result.total, result.failed
    return out


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(("model", "compat"), [("tiny", "cfspec"), ("tiny", "published"),
                                               ("tiny-sdxl", "cfspec")])
def test_sets_make_the_images_per_pair_generation_makes(tmp_path: Path, model: str,
                                                        compat: str) -> None:
    lines = group_pairs()
    if model == "tiny-sdxl":  # its random weights attend even more evenly
        for line in lines:
            if line["edit"]["local_blend"]["threshold"] == 0.95:
                line["edit"]["local_blend"]["threshold"] = 0.999
    common = {"model": model, "p2p_compat": compat, "seeds": 2,
              "guidance": "uniform(5, 9)" if compat == "published" else 7.5}
    per_pair = run(tmp_path, "per_pair", lines, per_pair=True, batch_pairs=1, **common)
    # batch_pairs=1: every set is cut into [factual, counterfactual] batches, the per-pair
    # layout row for row, so every number is the same.
    cut = run(tmp_path, "cut", lines, batch_pairs=1, **common)
    # batch_pairs=4: the group of four is one batch of five rows (per-pair: eight).
    whole = run(tmp_path, "whole", lines, batch_pairs=4, **common)

    reference, reference_extras = images(per_pair), extras(per_pair)
    assert len(reference) == 2 * 2 * len(lines)
    got = images(cut)
    assert got.keys() == reference.keys()
    assert all(np.array_equal(got[k], reference[k]) for k in reference)
    for name, arrays in extras(cut).items():
        for key, array in arrays.items():
            assert np.array_equal(array, reference_extras[name][key]), (name, key)

    got = images(whole)
    assert got.keys() == reference.keys()
    for k in reference:
        assert np.abs(got[k] - reference[k]).max() <= 1, k
    for name, arrays in extras(whole).items():
        for key in ("latents", "attention"):
            assert_reordered_close(arrays[key], reference_extras[name][key], STEPS)
    # Every pair's folder has its factual image: one computation, the same bytes in each.
    for seed in (0, 1):
        factuals = {(whole / "images" / p["id"] / f"{seed}_0.png").read_bytes()
                    for p in lines[:4]}
        assert len(factuals) == 1
    # The manifests say the same, line for line.
    assert manifest_lines(whole) == manifest_lines(cut) == manifest_lines(per_pair)
    # LocalBlend did something: some mask keeps part of the latent from the factual.
    masks = [a["mask"] for a in reference_extras.values()]
    assert any(0 < m.sum() < m.size for m in masks)


def test_a_group_larger_than_a_batch_is_cut_into_chunks(tmp_path: Path) -> None:
    many = [pair(f"pear__{w}", "a pear on a plate", f"a {w} on a plate")
            for w in ("apple", "cake", "dog", "cat", "lemon")]
    per_pair = run(tmp_path, "per_pair", many, per_pair=True, batch_pairs=1)
    chunked = run(tmp_path, "chunked", many, batch_pairs=2)  # chunks of 3 and 2 pairs
    reference, got = images(per_pair), images(chunked)
    assert got.keys() == reference.keys()
    for k in reference:
        assert np.abs(got[k] - reference[k]).max() <= 1, k


def test_a_group_resumes_per_image(tmp_path: Path) -> None:
    lines = group_pairs()[:4]
    out = write_pairs(tmp_path / "out", lines)
    first = generate(out, model="tiny", only=["pear__cake"], batch_pairs=4, steps=STEPS, height=32,
                     width=32, quiet=True)
    assert first.generated == 1
    done = (out / "images/pear__cake/0_0.png").read_bytes()
    again = generate(out, model="tiny", batch_pairs=4, steps=STEPS, height=32, width=32,
                     quiet=True)
    # The set's job holds only the three pairs still missing; the finished one stays as it was.
    assert (again.generated, again.skipped) == (3, 1)
    assert (out / "images/pear__cake/0_0.png").read_bytes() == done
    factual = images(out)
    for p in lines:
        assert np.abs(factual[f"images/{p['id']}/0_0.png"]
                      - factual["images/pear__cake/0_0.png"]).max() <= 1
    assert len(manifest_lines(out)) == 4


def test_a_pair_that_fails_leaves_its_group_to_generate(tmp_path: Path) -> None:
    bad = pair("pear__bad", "a pear on a plate", "a fig on a plate")
    bad["edit"]["cross_replace_steps"]["default"] = [0.9, 0.2]
    backwards = sampled(pair("pear__back", "a pear on a plate", "a kiwi on a plate"),
                        [0.8, 0.3])
    lines = [*group_pairs()[:2], bad, backwards]
    out = write_pairs(tmp_path / "out", lines)
    result = generate(out, model="tiny", batch_pairs=4, steps=2, height=32, width=32,
                      quiet=True)
    assert [f.id for f in result.failed] == ["pear__bad"]
    # A sampled range with low above high is no pair at all: pairs.jsonl's reader says so
    # (for plan, export and report too), and the run exits 1 as for any invalid line.
    assert len(result.invalid) == 1 and "low <= high" in result.invalid[0]
    assert [r["id"] for r in manifest_lines(out)] == ["pear__apple", "pear__cake"]


# -- sampled settings ---------------------------------------------------------------------------


def test_sampled_settings_are_drawn_per_group_or_pair_and_seed(tmp_path: Path) -> None:
    lines = group_pairs()
    fast = {"model": "tiny", "steps": 2, "height": 32, "width": 32, "quiet": True, "seeds": 3,
            "guidance": "uniform(7.5, 15)"}
    one = write_pairs(tmp_path / "one", lines)
    generate(one, batch_pairs=1, **fast)  # type: ignore[arg-type]
    three = write_pairs(tmp_path / "three", lines)
    for i in range(3):
        generate(three, batch_pairs=4, shard=Shard(i, 3), **fast)  # type: ignore[arg-type]
    drawn = {(r["id"], r["seed"]): r for r in manifest_lines(one)}
    assert len(drawn) == 15
    for record in manifest_lines(three):
        assert record == drawn[record["id"], record["seed"]]
    for (pair_id, seed), record in drawn.items():
        values = record["drawn"]
        assert record["guidance_range"] == [7.5, 15.0]
        assert record["guidance"] == values["guidance"] and 7.5 <= values["guidance"] <= 15
        # One guidance per (group, seed): the factual row is shared.
        group = [r for (_, s), r in drawn.items() if s == seed
                 and r["prompt_0"] == record["prompt_0"]]
        assert {r["guidance"] for r in group} == {record["guidance"]}
        if pair_id == "pear__cake":
            assert set(values) == {"guidance", "cross_replace", "self_replace"}
            assert 0.2 <= values["cross_replace"] <= 0.9 and 0.1 <= values["self_replace"] <= 0.6
        else:
            assert set(values) == {"guidance"}
    # Each seed draws anew.
    assert len({drawn["pear__cake", s]["drawn"]["cross_replace"] for s in range(3)}) == 3
    assert len({drawn["cat__dog", s]["guidance"] for s in range(3)}) == 3
    # The draws are a function of the pair (or group) and seed alone.
    pear = [p for p in lines if p["id"] == "pear__cake"][0]
    from cfspec.workspace.pairs import Pair

    expected = draws(Pair.from_json(pear), 2, Uniform(7.5, 15.0)).to_json()
    assert drawn["pear__cake", 2]["drawn"] == expected
    assert Uniform(7.5, 15.0).draw(group_key(Pair.from_json(pear)), 2, "guidance") == \
        drawn["pear__apple", 2]["guidance"]
    a, b = images(one), images(three)
    assert a.keys() == b.keys()
    for k in a:
        assert np.abs(a[k] - b[k]).max() <= 1, k


def test_fixed_settings_record_no_draws_and_resume_matches_the_range(tmp_path: Path) -> None:
    lines = group_pairs()[:2]
    out = write_pairs(tmp_path / "out", lines)
    fast = {"model": "tiny", "steps": 2, "height": 32, "width": 32, "quiet": True}
    generate(out, guidance=7.5, **fast)  # type: ignore[arg-type]
    fixed = manifest_lines(out)
    assert fixed[0]["guidance"] == 7.5 and "guidance_range" not in fixed[0]
    assert "drawn" not in fixed[0]  # pear__apple samples nothing
    assert set(fixed[1]["drawn"]) == {"cross_replace", "self_replace"}  # pear__cake's windows
    assert generate(out, guidance="7.5", **fast).generated == 0  # type: ignore[arg-type]

    # Another guidance (a range for a scale): a replacement, made only when asked to.
    with pytest.raises(WouldReplace, match=r"guidance: 7\.5 -> uniform\(8\.0, 12\.0\)"):
        generate(out, guidance="uniform(8, 12)", **fast)  # type: ignore[arg-type]
    ranged = generate(out, guidance="uniform(8, 12)", overwrite=True,
                      **fast)  # type: ignore[arg-type]
    assert ranged.generated == 2
    first = manifest_lines(out)
    # The same range: done, whatever value each line drew.
    assert generate(out, guidance=" uniform( 8 , 12 ) ", **fast).generated == 0  # type: ignore[arg-type]
    assert manifest_lines(out) == first
    with pytest.raises(WouldReplace, match=r"uniform\(8\.0, 12\.0\) -> uniform\(8\.0, 13\.0\)"):
        generate(out, guidance="uniform(8, 13)", **fast)  # type: ignore[arg-type]
    assert generate(out, guidance="uniform(8, 13)", overwrite=True,
                    **fast).generated == 2  # type: ignore[arg-type]
    assert generate(out, guidance=7.5, overwrite=True, **fast).generated == 2  # type: ignore[arg-type]
    assert [r["guidance"] for r in manifest_lines(out)] == [7.5, 7.5]
    assert all("guidance_range" not in r for r in manifest_lines(out))


@pytest.mark.parametrize("text", ["uniform(1, 5)", "uniform(9, 8)", "uniform(a, b)", "high",
                                  "nan", "uniform(7)"])
def test_a_bad_guidance_is_a_usage_error(tmp_path: Path, text: str) -> None:
    out = write_pairs(tmp_path / "out", group_pairs()[:1])
    with pytest.raises(GenerateError, match="--guidance"):
        generate(out, model="tiny", guidance=text, steps=1, height=32, width=32, quiet=True)


def test_the_command_takes_a_range(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from cfspec.cli.generate import generate_command

    app = typer.Typer()
    app.command()(generate_command)
    out = write_pairs(tmp_path / "out", group_pairs()[:1])
    args = [str(out), "--model", "tiny", "--device", "cpu", "--steps", "1", "--height", "32",
            "--width", "32", "--quiet"]
    done = CliRunner().invoke(app, [*args, "--guidance", "uniform(7.5, 15)"])
    assert done.exit_code == 0, done.output
    assert manifest_lines(out)[0]["guidance_range"] == [7.5, 15.0]
    bad = CliRunner().invoke(app, [*args, "--guidance", "uniform(0.5, 2)"])
    assert bad.exit_code == 2 and "1 < lo <= hi" in bad.output


# -- the engine ---------------------------------------------------------------------------------


def test_each_set_of_a_batch_keeps_its_own_guidance(comps: Any, words: Any) -> None:
    """Sets with different guidance in one batch (the per-row scale) make what each makes
    alone with that guidance as the run's scalar (diffusers' own arithmetic)."""
    import torch

    from cfspec.gpu.generate.edit_plan import build_plan
    from cfspec.gpu.generate.engine import Engine, Job, Settings
    from cfspec.workspace.pairs import Pair

    plans = [build_plan(Pair.from_json(p), words) for p in group_pairs()]
    sets = [[Job("a", 0, plans[0], 5.0), Job("b", 0, plans[2], 5.0)],
            [Job("c", 1, plans[4], 11.0)]]
    cpu = torch.device("cpu")
    together = Engine(comps, cpu, torch.float32, Settings(steps=STEPS, height=32, width=32))
    try:
        outputs = together.run_sets(sets)
        with pytest.raises(ValueError, match="cannot share a factual row"):
            together.run_sets([[sets[0][0], sets[1][0]]])
    finally:
        together.close()
    assert [o.job.pair_id for o in outputs] == ["a", "b", "c"]
    for scale, members, got in ((5.0, sets[0], outputs[:2]), (11.0, sets[1], outputs[2:])):
        alone = Engine(comps, cpu, torch.float32,
                       Settings(steps=STEPS, height=32, width=32, guidance=scale))
        try:
            want = alone.run_sets([[Job(j.pair_id, j.seed, j.plan) for j in members]])
        finally:
            alone.close()
        for a, b in zip(got, want, strict=True):
            assert_reordered_close(a.latents, b.latents, STEPS)
            for x, y in zip(a.images, b.images, strict=True):
                assert np.abs(np.asarray(x, np.int16) - np.asarray(y, np.int16)).max() <= 1
    # The shared factual is one row: both pairs of the first set carry the same image.
    assert np.array_equal(outputs[0].latents[0], outputs[1].latents[0])


def test_manifest_lines_are_json_with_the_effective_guidance(tmp_path: Path) -> None:
    out = write_pairs(tmp_path / "out", group_pairs()[:1])
    generate(out, model="tiny", guidance="uniform(7.5, 7.5)", steps=1, height=32, width=32,
             quiet=True)
    (line,) = [json.loads(t) for t in (out / "manifest.jsonl").read_text().splitlines()]
    assert line["guidance"] == 7.5 and line["drawn"] == {"guidance": 7.5}


def test_a_set_runs_its_factual_row_once(tmp_path: Path) -> None:
    """UNet rows, counted by a forward hook: K + 1 per step for K counterfactuals of one
    factual (per pair: 2K), twice that with guidance."""
    from torch.nn.modules.module import register_module_forward_pre_hook

    lines = group_pairs()[:4]  # one group of four
    rows: dict[str, list[int]] = {}

    def count(name: str, **options: Any) -> None:
        seen: list[int] = []

        def hook(module: Any, args: Any) -> None:
            if type(module).__name__ == "UNet2DConditionModel" and args:
                seen.append(int(args[0].shape[0]))

        handle = register_module_forward_pre_hook(hook)
        try:
            run(tmp_path, name, lines, **options)
        finally:
            handle.remove()
        rows[name] = seen[1:]  # the first call is the engine's one-row probe

    count("sets", batch_pairs=4)
    count("per_pair", batch_pairs=4, per_pair=True)
    count("unguided", batch_pairs=4, guidance=1.0)
    assert rows["sets"] == [2 * 5] * STEPS
    assert rows["per_pair"] == [2 * 8] * STEPS
    assert rows["unguided"] == [5] * STEPS


def test_a_base_must_be_a_factual_row() -> None:
    """Bases must use every factual row 0..F-1 (no gaps); the per-layer formulas with shared
    factual rows are test_p2p's test_processors_match_the_published_formulas[shared-factuals]."""
    import torch
    from test_p2p import _plan

    from cfspec.gpu.generate.edit_plan import MAX_TOKENS
    from cfspec.gpu.generate.p2p_batch import BatchEdit

    identity = [(i, i, 1.0) for i in range(MAX_TOKENS)]
    ones = [1.0] * MAX_TOKENS
    plans = [_plan("replace", identity, ones, ones, (0.0, 1.0), (0.0, 1.0))] * 4
    with pytest.raises(ValueError, match="base"):
        BatchEdit(plans, 10, torch.device("cpu"), True, 0.2, bases=[0, 2, 2, 0])


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_per_row_guidance_is_each_rows_scalar_guidance(dtype: str) -> None:
    """The per-row scale gives every row exactly what diffusers' scalar guidance gives it
    (scales that fp16 cannot hold included), so a set's rows do not depend on their batch."""
    import torch

    from cfspec.gpu.generate.engine import classifier_free

    dt = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(0)
    uncond = torch.randn(4, 4, 8, 8, generator=gen).to(dt)
    text = torch.randn(4, 4, 8, 8, generator=gen).to(dt)
    scales = [7.3, 11.123456, 7.3, 9.9]
    rows = torch.tensor(scales, dtype=torch.float32).view(-1, 1, 1, 1)
    got = classifier_free(uncond, text, rows)
    for n, g in enumerate(scales):
        want = uncond[n : n + 1] + g * (text[n : n + 1] - uncond[n : n + 1])
        assert torch.equal(got[n : n + 1], want)
        assert torch.equal(classifier_free(uncond[n : n + 1], text[n : n + 1], g), want)
