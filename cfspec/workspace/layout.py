"""The one place every name in OUT is spelled, and the rule every id that becomes a path obeys.

OUT/
  pairs.jsonl            compile: one line per counterfactual (pair.schema.json)
  manifest.jsonl         generate: one line per (pair, seed) rendered, appended
  images/<id>/<seed>_0.png, <seed>_1.png, <seed>.npz
  images/<id>/photo.png  generate, for a pair with a photo: the photo as it was inverted
  metrics.jsonl          evaluate: one line per (pair, seed)
  metrics.shard-I-of-N.jsonl  evaluate --shard I/N: that shard's rows, each with the digest
                         of what it was computed from; the unsharded evaluate reuses them
  metrics_summary.json   evaluate: means and intervals over pairs
  answers.jsonl          evaluate --vqa-model: one line per (pair, seed, question), P(yes)
  filter.jsonl           filter: one decision per pair (its top --keep seeds)
  report.html            report
  dataset/               export's default folder (`cfspec run`): examples.jsonl,
                         counterfactual_dataset.json, croissant.json, images
"""

from __future__ import annotations

import re
from pathlib import Path

PAIRS_FILE = "pairs.jsonl"
MANIFEST_FILE = "manifest.jsonl"
IMAGES_DIR = "images"
# A photo pair's photo as generate inverted it (cropped and resized to the model's size, PNG),
# one per pair folder: every seed of the pair starts from it.
PHOTO_FILE = "photo.png"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "metrics_summary.json"
ANSWERS_FILE = "answers.jsonl"
FILTER_FILE = "filter.jsonl"
REPORT_FILE = "report.html"
DATASET_DIR = "dataset"

# evaluate --shard I/N's own file (never metrics.jsonl: shards run at once), and the pattern
# the unsharded evaluate finds them by.
METRICS_SHARD_PATTERN = re.compile(r"metrics\.shard-(\d+)-of-(\d+)\.jsonl")
METRICS_SHARD_GLOB = "metrics.shard-*-of-*.jsonl"


def metrics_shard_file(index: int, count: int) -> str:
    """`metrics.shard-I-of-N.jsonl` for shard I (from 0) of N."""
    return f"metrics.shard-{index}-of-{count}.jsonl"


# Inside an export folder.
COCO_CF_FILE = "examples.jsonl"
CF_JSON_FILE = "counterfactual_dataset.json"
CROISSANT_FILE = "croissant.json"

# Ids become folder names (OUT/images/<id>), so they are held to what every file system takes:
# no separators, no leading dot, no `..`. pair.schema.json spells the same pattern (a test
# compares them).
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
SAFE_ID = re.compile(ID_PATTERN)
MAX_ID_LENGTH = 255  # a pair id: the spec id plus the counterfactual's name
MAX_SPEC_ID_LENGTH = 128  # leaves room for the counterfactual's name in the pair id


def is_safe_id(text: str, limit: int = MAX_ID_LENGTH) -> bool:
    return len(text) <= limit and SAFE_ID.fullmatch(text) is not None


# A row of an export that keeps several seeds per pair (`filter --keep K`, K > 1):
# `<pair id>__s<seed>`. Unique, because the seed is unique within a pair and the suffix is read
# back unambiguously from the right (`__s` then digits only to the end, which no seed contains);
# path-safe, because a safe id followed by `__s` and digits is still one. With K = 1 a row's id
# is the pair's id, as it always was.
ROW_SEED_SEPARATOR = "__s"


def row_id(pair_id: str, seed: int, several: bool) -> str:
    """The id of an exported (pair, seed): the pair's id, or `<pair id>__s<seed>` when the
    export holds several seeds per pair."""
    return f"{pair_id}{ROW_SEED_SEPARATOR}{seed}" if several else pair_id


def image_paths(out: Path, pair_id: str, seed: int) -> tuple[Path, Path, Path]:
    """OUT/images/<id>/<seed>_0.png, <seed>_1.png, <seed>.npz, from a safe id and a seed >= 0."""
    if not is_safe_id(pair_id):
        raise ValueError(f"pair id {pair_id!r} is not path-safe")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed {seed!r} is not a non-negative integer")
    folder = out / IMAGES_DIR / pair_id
    return folder / f"{seed}_0.png", folder / f"{seed}_1.png", folder / f"{seed}.npz"


def photo_path(out: Path, pair_id: str) -> Path:
    """OUT/images/<id>/photo.png, from a safe id."""
    if not is_safe_id(pair_id):
        raise ValueError(f"pair id {pair_id!r} is not path-safe")
    return out / IMAGES_DIR / pair_id / PHOTO_FILE
