"""The set level and the summary of `cfspec evaluate`: KID/FID features gathered batch by
batch (`SetFeatures`), OUT/metrics_summary.json (`make_summary`: means with cluster-bootstrap
intervals, the set-level figures, the notes) and the table the command prints."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from cfspec import __version__
from cfspec.workspace.metrics import METRICS
from cfspec.workspace.metrics_rows import MetricsRow
from cfspec.workspace.pairs import Pair

if TYPE_CHECKING:
    from cfspec.gpu.evaluate.stage import Sample


# --- set level ---------------------------------------------------------------------------------


class SetFeatures:
    """Feature rows of the factual images (each distinct image once) and of the
    counterfactual images, computed batch by batch so no image set is held in memory."""

    def __init__(self, extractor: torch.nn.Module) -> None:
        self.extractor = extractor
        self.reference: list[torch.Tensor] = []
        self.candidate: list[torch.Tensor] = []
        self.seen: set[str] = set()
        self.duplicates = 0

    def add(self, group: Sequence[Sample], im0: torch.Tensor, im1: torch.Tensor) -> None:
        from cfspec.gpu.evaluate.set_distances import extract_features

        keep = []
        for i, item in enumerate(group):
            digest = hashlib.sha256(item.image_0.tobytes()).hexdigest()
            if digest in self.seen:
                self.duplicates += 1
            else:
                self.seen.add(digest)
                keep.append(i)
        if keep:
            ref = im0[keep].permute(0, 3, 1, 2).contiguous()
            self.reference.append(extract_features(ref, self.extractor))
        self.candidate.append(extract_features(im1.permute(0, 3, 1, 2).contiguous(),
                                               self.extractor))

    def distances(self) -> dict[str, Any]:
        from cfspec.gpu.evaluate.set_distances import (
            FID_MIN_IMAGES,
            fid_from_features,
            kid_from_features,
        )

        ref, cand = torch.cat(self.reference), torch.cat(self.candidate)
        out: dict[str, Any] = {
            "reference": "factual images (image_0), each distinct image once",
            "candidate": "counterfactual images (image_1)",
            "n_reference": int(ref.shape[0]), "n_candidate": int(cand.shape[0]),
            "feature_size": int(ref.shape[1]),
        }
        if self.duplicates:
            out["reference_duplicates_dropped"] = self.duplicates
        try:
            out["kid"] = kid_from_features(ref, cand).as_dict()
        except ValueError as error:
            out["kid"] = {"refused": f"KID refused: {error}"}
        n = min(int(ref.shape[0]), int(cand.shape[0]))
        if n < FID_MIN_IMAGES:
            out["fid"] = {"refused": f"FID refused: {n} images per set (reference "
                          f"{ref.shape[0]}, candidate {cand.shape[0]}); it needs at least "
                          f"{FID_MIN_IMAGES} (use KID on small sets)"}
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # noted in its `notes`
                out["fid"] = fid_from_features(ref, cand).as_dict()
        return out


# --- the summary -------------------------------------------------------------------------------


def make_summary(rows: list[MetricsRow], pairs: list[Pair], clip_name: str,
                 device: str, features: SetFeatures | None, notes: list[str], resamples: int,
                 not_generated: list[str], set_skipped: str | None = None) -> dict[str, Any]:
    from cfspec.workspace.intervals import CI_METHOD, CI_MIN_PAIRS, cluster_bootstrap_ci

    seeds_per_pair: dict[str, int] = {}
    for row in rows:
        seeds_per_pair[row.id] = seeds_per_pair.get(row.id, 0) + 1
    means: dict[str, Any] = {}
    for name in (m.name for m in METRICS if m.summarized):  # a bool averages to a share
        used = [(r.id, value) for r in rows if (value := _usable(r, name)) is not None]
        if not used:
            continue
        ci = cluster_bootstrap_ci([value for _, value in used], [pid for pid, _ in used],
                                  n_resamples=resamples)
        # ci95 is null below CI_MIN_PAIRS pairs (`ci_reason` says why); n counts (pair, seed)s.
        means[name] = {"mean": ci.mean,
                       "ci95": None if ci.low is None else [ci.low, ci.high],
                       "n": ci.n_values, "n_pairs": ci.n_pairs}
        if ci.reason is not None:
            means[name]["ci_reason"] = ci.reason
    for name in ("background_ssim", "background_psnr", "latent_l2_per_dim"):
        missing = [r for r in rows if r.values.get(name) is None]
        if missing:
            reasons = {r.reasons.get(name) or r.reasons.get("background")
                       or r.reasons.get("latent") or "not measured" for r in missing}
            notes.append(f"{name} undefined for {len(missing)} of {len(rows)} (pair, seed)(s): "
                         + "; ".join(sorted(reasons)[:3]))
    undefined = sum(1 for r in rows if r.directional_defined is False)
    if undefined:
        notes.append(f"directional_similarity: {undefined} (pair, seed)(s) left out of the mean "
                     "(no change in CLIP space, so no direction)")
    summary: dict[str, Any] = {
        "cfspec": __version__,
        "clip_model": clip_name,
        "device": device,
        "pairs": len(pairs),
        "pairs_evaluated": len(seeds_per_pair),
        "pairs_not_generated": not_generated,
        "rows": len(rows),
        "seeds_per_pair": {"min": min(seeds_per_pair.values()),
                           "max": max(seeds_per_pair.values())},
        "means": means,
        "bootstrap": {"resamples": resamples, "confidence": 0.95,
                      "method": "studentized two-stage cluster", "unit": "pair",
                      "min_pairs": CI_MIN_PAIRS, "description": CI_METHOD},
    }
    if set_skipped is not None:
        summary["set"] = {"skipped": set_skipped}
    elif features is None:
        summary["set"] = {"skipped": "no --inception-weights: KID and FID need a local "
                          "Inception weights file"}
        notes.append("KID/FID skipped: pass --inception-weights PATH (a local file)")
    else:
        summary["set"] = features.distances()
        for metric in ("fid", "kid"):
            entry = summary["set"][metric]
            if "refused" in entry:
                notes.append(entry["refused"])
            notes += [f"{metric.upper()}: {note}" for note in entry.get("notes", [])]
    summary["notes"] = list(notes)
    return summary


def _usable(row: MetricsRow, name: str) -> float | None:
    """The value that enters the mean (a bool as 0 or 1), or None when it does not."""
    value = row.values.get(name)
    if name == "directional_similarity" and row.directional_defined is False:
        return None
    if isinstance(value, bool):
        return float(value)
    return row.number(name)


def dumps_summary(summary: dict[str, Any]) -> str:
    return json.dumps(summary, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def summary_table(summary: dict[str, Any]) -> Any:
    """A rich Table of the means (with 95% intervals) and the set-level figures."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"cfspec evaluate: {summary['rows']} (pair, seed) of "
                  f"{summary['pairs_evaluated']} pair(s), CLIP {summary['clip_model']}")
    table.add_column("metric")
    table.add_column("N", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("95% CI", justify="right")
    # Why a mean has no interval: the summary's own `ci_reason`, each distinct one once, below.
    reasons: dict[str, int] = {}
    for name, entry in summary["means"].items():
        ci = entry.get("ci95")
        if ci:
            interval = f"[{ci[0]:.4g}, {ci[1]:.4g}]"
        else:
            reason = str(entry.get("ci_reason") or "no reason recorded")
            interval = f"none [{reasons.setdefault(reason, len(reasons) + 1)}]"
        table.add_row(name, f"{entry['n']} ({entry.get('n_pairs', '?')} pairs)",
                      f"{entry['mean']:.4g}", interval)
    if reasons:
        table.caption = "\n".join(f"[{n}] {escape(reason)}"
                                   for reason, n in reasons.items())
        table.caption_justify = "left"
    set_level = summary.get("set", {})
    for metric in ("kid", "fid"):
        entry = set_level.get(metric)
        if not isinstance(entry, dict):
            continue
        if "refused" in entry:
            table.add_row(metric.upper(), "", "refused", "")
            continue
        floor = entry.get("noise_floor")
        # the floor is comparable with the value at the floor's sizes, not with `value`
        floor_text = (f"floor {floor:.4g} vs {entry['value_at_floor_sizes']:.4g} at "
                      f"{entry['noise_floor_reference_n']}/{entry['noise_floor_n']}"
                      if floor is not None else "no floor")
        table.add_row(f"{metric.upper()} ({entry['feature_size']}-d)",
                      f"{entry['n_reference']}/{entry['n_candidate']}",
                      f"{entry['value']:.4g}", floor_text)
    return table
