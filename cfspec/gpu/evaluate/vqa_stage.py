"""`evaluate --vqa-model`: the spec's questions asked of both images of every (pair, seed), the
four question metrics (cfspec.workspace.question_metrics) added to its metrics row, and the
answers for OUT/answers.jsonl (cfspec.workspace.answers).

Only the unsharded run asks: a shard's rows carry no question metrics, and the run after the
shards asks every (pair, seed)'s questions (as it computes KID/FID over every image). The
answers of the previous answers.jsonl seed the scorer's cache, matched by image content,
wording and model: a re-run asks only what changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cfspec.gpu.evaluate.vqa import VqaScorer, image_key
from cfspec.stages.options import EvaluateOptions
from cfspec.stages.progress import progress
from cfspec.workspace.answers import answer_from_json, answers_json
from cfspec.workspace.atomic import write_text_atomic
from cfspec.workspace.layout import ANSWERS_FILE
from cfspec.workspace.manifest_lines import Generated
from cfspec.workspace.pairs import Pair
from cfspec.workspace.question_metrics import QUESTION_METRICS, ask, question_metrics

NO_QUESTIONS = ("pairs.jsonl has no questions for this pair (compile it again with a cfspec "
                "that writes them)")


def add_question_metrics(out: Path, rows: Sequence[dict[str, Any]], jobs: Sequence[Generated],
                         by_id: Mapping[str, Pair], scorer: VqaScorer,
                         load_png: Callable[[Path], np.ndarray], quiet: bool
                         ) -> tuple[list[dict[str, Any]], list[str]]:
    """Set the four metrics (or None and `<metric>_reason`) on each job's row; return the
    answers.jsonl lines (rows' order, then the pair's question order) and the notes.
    `load_png`: a PNG as an (H, W, 3) uint8 array, as the rest of evaluate reads it."""
    seed_cache(scorer, out / ANSWERS_FILE)
    by_key = {(r["id"], r["seed"]): r for r in rows}
    lines: list[dict[str, Any]] = []
    without = 0
    with progress(len(jobs), "asking", quiet) as advance:
        for job in jobs:
            row = by_key[(job.id, job.seed)]
            questions = by_id[job.id].questions
            if not questions:
                without += 1
                row.update(dict.fromkeys(QUESTION_METRICS))
                row.update({f"{name}_reason": NO_QUESTIONS for name in QUESTION_METRICS})
            else:
                images = load_png(job.image_0), load_png(job.image_1)
                answers = ask(questions, *images, scorer.p_yes)
                values, reasons = question_metrics(answers)
                row.update(values)
                row.update({f"{name}_reason": why for name, why in reasons.items()})
                keys = [image_key(im) for im in images]
                lines += [{**line, "images": keys}
                          for line in answers_json(job.id, job.seed, answers, scorer.name)]
            advance(1)
    notes = [f"questions asked with --vqa-model {scorer.name}: P(yes) normalised against no, "
             "yes at >= 0.5; a child question counts only where its parents hold"]
    if without:
        notes.append(f"question metrics null for {without} (pair, seed)(s): {NO_QUESTIONS}")
    return lines, notes


def load_vqa(opts: EvaluateOptions, sharded: bool, out: Path, device: Any,
             notes: list[str]) -> VqaScorer | None:
    """The scorer of --vqa-model, or None: none given, or a shard (the unsharded run asks; a
    note says so). VqaLoadError says why a model does not load."""
    if opts.vqa_model is None:
        return None
    if sharded:
        notes.append(f"questions not asked: shard {opts.shard}'s rows carry no question "
                     f"metrics; `cfspec evaluate {out} --vqa-model {opts.vqa_model}` without "
                     "--shard, after every shard, asks them")
        return None
    return VqaScorer.load(opts.vqa_model, device=device)


def write_answers(out: Path, vqa: VqaScorer | None, lines: Sequence[dict[str, Any]]) -> None:
    """OUT/answers.jsonl (atomic). Without --vqa-model an older one is removed: the new
    metrics.jsonl has no question metrics it would belong to."""
    if vqa is None:
        (out / ANSWERS_FILE).unlink(missing_ok=True)
    else:
        write_text_atomic(out / ANSWERS_FILE, "".join(
            json.dumps(line, ensure_ascii=False) + "\n" for line in lines))


def seed_cache(scorer: VqaScorer, path: Path) -> int:
    """Fill the scorer's cache from a previous answers.jsonl (its lines for this model);
    a line that does not parse is skipped (the run asks again). Returns the entries added."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return 0
    added = 0
    for line in text.split("\n"):
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or data.get("vqa_model") != scorer.name:
                continue
            answer, images = answer_from_json(data), data["images"]
            for world in (0, 1):
                wording = answer.question.text(world)
                for image in (0, 1):
                    value = answer.p_yes(world, image)
                    if wording is not None and value is not None \
                            and isinstance(images[image], str):
                        scorer.cache[(images[image], wording, scorer.name)] = value
                        added += 1
        except (ValueError, KeyError, TypeError, IndexError):
            continue
    return added
