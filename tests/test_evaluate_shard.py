"""`cfspec evaluate --shard I/N`: each shard scores its own pairs into
OUT/metrics.shard-I-of-N.jsonl (disjoint, together complete, metrics.jsonl untouched, no
KID/FID); the unsharded evaluate afterwards reuses every row whose inputs are unchanged,
recomputes stale ones, adds the set-level metrics and writes what one unsharded run writes.
Scored with the tiny CLIP on OUT folders built as test_export.py builds them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from test_evaluate import FAST, MeanColour  # noqa: E402
from test_export import (  # noqa: E402
    PAIRS,
    build_out,
    make_pair,
    runner,
    stage_app,
    write_generated,
)

from cfspec.gpu.evaluate.clip import ClipScorer  # noqa: E402
from cfspec.gpu.evaluate.stage import EvaluateError, evaluate  # noqa: E402
from cfspec.workspace.layout import (  # noqa: E402
    METRICS_FILE,
    SUMMARY_FILE,
    metrics_shard_file,
)
from cfspec.workspace.metrics_rows import INPUTS_KEY  # noqa: E402
from cfspec.workspace.reading import read_pair_file  # noqa: E402
from cfspec.workspace.shards import Shard  # noqa: E402

MORE = [*PAIRS, make_pair("p3__wet", "a dry road", "a wet road"),
        make_pair("p3__old", "a dry road", "an old road")]
SEEDS = (0, 1, 2)


def shard_lines(out: Path, index: int, count: int) -> list[dict[str, Any]]:
    text = (out / metrics_shard_file(index, count)).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of images each CLIP image call embeds."""
    calls: list[int] = []
    original = ClipScorer.embed_images

    def counting(self: ClipScorer, batch: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(batch))
        return original(self, batch, *args, **kwargs)

    monkeypatch.setattr(ClipScorer, "embed_images", counting)
    return calls


def run_shards(out: Path, count: int, *extra: str) -> None:
    for index in range(count):
        result = runner.invoke(stage_app(), ["evaluate", str(out), "--clip-model", "tiny",
                                             "--shard", f"{index}/{count}", "--quiet", *extra])
        assert result.exit_code == 0, result.output


def test_three_shards_then_a_merge_write_what_one_run_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = build_out(tmp_path / "one", MORE, SEEDS)
    evaluate(one, clip_model="tiny", feature_extractor=MeanColour(), **FAST)
    split = tmp_path / "split"
    shutil.copytree(one, split)
    (split / METRICS_FILE).unlink()
    (split / SUMMARY_FILE).unlink()

    run_shards(split, 3)
    assert not (split / METRICS_FILE).exists() and not (split / SUMMARY_FILE).exists()
    pairs, _ = read_pair_file(split)
    keys: list[tuple[str, int]] = []
    for index in range(3):
        lines = shard_lines(split, index, 3)
        # this shard's pairs (the split generate --shard makes), every seed, nothing else
        assert [(x["id"], x["seed"]) for x in lines] == [
            (p.id, s) for p in Shard(index, 3).select(pairs) for s in SEEDS]
        assert all(len(x[INPUTS_KEY]) == 64 for x in lines)
        keys += [(x["id"], x["seed"]) for x in lines]
    assert sorted(keys) == sorted({(p["id"], s) for p in MORE for s in SEEDS})  # disjoint,
    assert len(keys) == len(set(keys))  # and complete

    calls = spy(monkeypatch)
    result = evaluate(split, clip_model="tiny", feature_extractor=MeanColour(), **FAST)
    assert calls == []  # every row reused: no CLIP image call at all
    assert result.reused == len(MORE) * len(SEEDS) and len(result.shard_files) == 3
    # The same bytes: a row holds the numbers of one computation per image, and the tiny
    # CLIP on the CPU gives a row the same numbers in a shard's batches as in one run's.
    assert (split / METRICS_FILE).read_bytes() == (one / METRICS_FILE).read_bytes()
    # and the summary of those rows, with KID over every image, is the one run's too
    merged = json.loads((split / SUMMARY_FILE).read_text(encoding="utf-8"))
    single = json.loads((one / SUMMARY_FILE).read_text(encoding="utf-8"))
    assert merged == single and "kid" in merged["set"]


def test_a_shard_never_touches_metrics_jsonl_and_skips_the_set_metrics(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", MORE, (0,))
    (out / METRICS_FILE).write_text("hand-made\n", encoding="utf-8")
    result = evaluate(out, clip_model="tiny", feature_extractor=MeanColour(), shard=Shard(1, 2),
                      **FAST)
    assert (out / METRICS_FILE).read_text(encoding="utf-8") == "hand-made\n"
    assert not (out / SUMMARY_FILE).exists() and result.summary_path is None
    assert result.metrics_path == out / "metrics.shard-1-of-2.jsonl"
    pairs, _ = read_pair_file(out)
    assert [r.id for r in result.rows] == [p.id for p in Shard(1, 2).select(pairs)]
    assert "kid" not in result.summary["set"]
    assert "shard 1/2 sees part of the images" in result.summary["set"]["skipped"]
    # what the CLI says
    cli = runner.invoke(stage_app(), ["evaluate", str(out), "--clip-model", "tiny",
                                      "--shard", "0/2"])
    assert cli.exit_code == 0, cli.output
    assert "of shard 0/2 to" in cli.output and "without --shard merges them" in cli.output


def test_a_stale_shard_row_is_recomputed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np = pytest.importorskip("numpy")
    out = build_out(tmp_path / "out", MORE, (0, 1))
    run_shards(out, 3)
    # p2__red seed 1 regenerated (other pixels): only that row is scored again
    image = np.full((32, 32, 3), 90, dtype=np.uint8)
    write_generated(out, MORE[2], 1, image_0=image)
    calls = spy(monkeypatch)
    result = evaluate(out, clip_model="tiny", **FAST)
    assert calls == [2]  # one (pair, seed): its two images
    assert result.reused == len(MORE) * 2 - 1
    stale = next(x for i in range(3) for x in shard_lines(out, i, 3)
                 if (x["id"], x["seed"]) == ("p2__red", 1))
    fresh = next(r for r in result.rows if (r.id, r.seed) == ("p2__red", 1))
    assert fresh.values["image_image_similarity"] != stale["image_image_similarity"]
    # the same rows as a run that never saw a shard file
    alone = tmp_path / "alone"
    shutil.copytree(out, alone)
    for path in alone.glob("metrics.shard-*"):
        path.unlink()
    evaluate(alone, clip_model="tiny", **FAST)
    assert (alone / METRICS_FILE).read_bytes() == (out / METRICS_FILE).read_bytes()

    # another CLIP model (the same weights saved to a folder: another name) reuses nothing
    scorer = ClipScorer.load("tiny")
    folder = tmp_path / "clip"
    for part in (scorer.model, scorer.tokenizer, scorer.processor):
        part.save_pretrained(folder)
    calls.clear()
    other = evaluate(out, clip_model=str(folder), **FAST)
    assert other.reused == 0 and sum(calls) == len(MORE) * 2 * 2


def test_a_broken_shard_line_is_a_warning_and_recomputed(tmp_path: Path) -> None:
    out = build_out(tmp_path / "out", PAIRS, (0,))
    run_shards(out, 2)
    path = out / metrics_shard_file(0, 2)
    lines = path.read_text(encoding="utf-8").splitlines()
    edited = json.loads(lines[0])
    del edited[INPUTS_KEY]
    path.write_text("\n".join([json.dumps(edited), "{torn", *lines[1:]]) + "\n",
                    encoding="utf-8")
    result = evaluate(out, clip_model="tiny", **FAST)
    assert result.reused == len(PAIRS) - 1 and len(result.rows) == len(PAIRS)
    assert [(d.level.value, d.span.line)
            for d in result.diagnostics] == [("warning", 1), ("warning", 2)]
    assert result.ok


def _empty_shard(out: Path, count: int) -> Shard:
    """A shard of `count` that holds no pair of OUT (more shards than pairs)."""
    pairs, _ = read_pair_file(out)
    return next(s for s in (Shard(i, count) for i in range(count)) if not s.select(pairs))


@pytest.mark.parametrize("bad", ["3/3", "1/0", "-1/2", "a/b", "2", "empty"])
def test_bad_shards_are_usage_errors(tmp_path: Path, bad: str) -> None:
    out = build_out(tmp_path / "out", PAIRS, (0,))  # 3 pairs in 5 shards: some hold none
    value = str(_empty_shard(out, 5)) if bad == "empty" else bad
    result = runner.invoke(stage_app(), ["evaluate", str(out), "--clip-model", "tiny",
                                         "--shard", value])
    assert result.exit_code == 2, result.output
    assert "--shard" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in out.glob("metrics*")) == []
    with pytest.raises(EvaluateError, match="holds no pair"):
        evaluate(out, clip_model="tiny", shard=_empty_shard(out, 5), **FAST)
