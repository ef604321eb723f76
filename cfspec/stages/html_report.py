"""`cfspec report OUT`: one self-contained `OUT/report.html`.

For each pair (one candidate: the filter's kept seed, else the seed with the highest
directional similarity, else the first): both images side by side (embedded as base64 data
URIs), both prompts with the changed words and the LocalBlend words highlighted where the
compiler put them (the pair's `word_spans` in pairs.jsonl: the report does not diff the
prompts again, so it shows what lint and generate saw), the causal graph before and after the
intervention (the pair's `scm` and `scm_aug` edges as text; an SVG drawn by Graphviz when `dot`
is installed, embedded as an image so nothing in it can run), its metrics, and the filter's
decision for every seed. Beside the images, the changed words' cross-attention and the
LocalBlend mask saved by generate (`OUT/images/<id>/<seed>.npz`) are drawn over them. Pairs the
filter dropped get their own section with the reasons. A shown (pair, seed) whose image or
.npz is damaged (`workspace.integrity`, the check evaluate and export share) is shown as
damaged, without its images, and reported as `damaged-file` (the command then exits 1).
Summary plots of the metric distributions (matplotlib, Agg backend, when installed) are
embedded as PNG.

At the top: the generation settings every manifest line records (model, scheduler, steps,
guidance, size and whatever else generate writes there, read generically), the CLIP model of
evaluate, a banner when any of those models has random weights, and an index of the pairs that
sorts and filters by metric, status and spec.

Rendered with `lang.templates.render_template` (sandboxed Jinja, autoescaped HTML): every string
from the data is escaped, so a prompt holding markup stays text. The page carries a
Content-Security-Policy that allows no outside resource and one script only: the index's
sorting (`templates/report.js`), allowed by its SHA-256. Without it the page reads the same;
only the index stops sorting.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfspec import __version__
from cfspec.diagnostics.records import Diagnostic
from cfspec.stages.report_graph import edge_rows, graph_uri
from cfspec.stages.report_graph import graph_dot as graph_dot
from cfspec.stages.report_graph import parse_edge as parse_edge
from cfspec.stages.report_images import data_uri, overlay_images
from cfspec.stages.report_questions import question_rows
from cfspec.workspace.answers import read_answers
from cfspec.workspace.atomic import write_text_atomic
from cfspec.workspace.filter_lines import FilterLine, GateFailure, read_filter
from cfspec.workspace.integrity import RunCheck, check_generated
from cfspec.workspace.layout import METRICS_FILE, REPORT_FILE
from cfspec.workspace.manifest_lines import Generated, read_manifest
from cfspec.workspace.metrics import METRICS
from cfspec.workspace.metrics_rows import MetricsRow, read_metrics, read_summary
from cfspec.workspace.pairs import Assignment, Pair
from cfspec.workspace.provenance import random_models, settings
from cfspec.workspace.reading import finite, read_pair_file

DEFAULT_MAX_PAIRS = 200
SCRIPT_FILE = "report.js"  # the index's sorting, in templates/



def _labels() -> dict[str, tuple[str, str]]:
    """metric key -> (label, format), in the registry's order (the display order)."""
    return {metric.name: (metric.label, metric.fmt) for metric in METRICS}


# metric key -> the filter gate drawn on its histogram (a cosine for the CLIP scores: x 100)
_GATE_LINES = {"clip_score_0": ("min_clip", 100.0), "clip_score_1": ("min_clip", 100.0),
               "directional_similarity": ("min_directional", 1.0),
               "image_image_similarity": ("min_image_similarity", 1.0)}


@dataclass
class ReportResult:
    path: Path
    shown: int
    total: int
    diagnostics: list[Diagnostic] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    damaged: int = 0  # pairs shown as damaged (their shown seed's files)


def build_report(out_dir: str | Path, max_pairs: int = DEFAULT_MAX_PAIRS) -> ReportResult:
    """Write OUT/report.html from what the stages left in OUT (only pairs.jsonl and the
    manifest are required; metrics, summary and filter decisions are shown when present)."""
    from cfspec.lang.templates import render_template

    out = Path(out_dir)
    pairs, diagnostics = read_pair_file(out)
    by_id = {p.id: p for p in pairs}
    generated, problems = read_manifest(out, by_id)
    diagnostics += problems
    metrics: dict[str, dict[int, MetricsRow]] = {}
    notes: list[str] = []
    if (out / METRICS_FILE).is_file():
        metrics, problems = read_metrics(out, by_id)
        diagnostics += problems
    else:
        notes.append("no metrics.jsonl: run `cfspec evaluate` for metrics and plots")
    decisions: dict[str, FilterLine] | None = None
    read = read_filter(out, by_id)
    if read is not None:
        decisions, problems = read
        diagnostics += problems
    else:
        notes.append("no filter.jsonl: every pair is shown; run `cfspec filter` to choose "
                     "the best seed per pair")
    summary = read_summary(out)
    gates = _gates(decisions)
    answers, problems = read_answers(out, by_id)  # evaluate --vqa-model's, else none
    diagnostics += problems

    # Each shown pair's shown seed, its files checked as evaluate and export check them.
    shown = {pair.id: _shown_seed(generated.get(pair.id, {}), metrics.get(pair.id, {}),
                                  None if decisions is None else decisions.get(pair.id))
             for pair in pairs[:max_pairs]}
    check = check_generated(out, [generated[pid][seed] for pid, (seed, _) in shown.items()
                                  if seed is not None and seed in generated.get(pid, {})],
                            "shown as damaged in the report, without its images")
    diagnostics += check.diagnostics
    entries = []
    for pair in pairs[:max_pairs]:
        entries.append(_pair_entry(pair, generated.get(pair.id, {}),
                                   metrics.get(pair.id, {}),
                                   None if decisions is None else decisions.get(pair.id),
                                   check))
    columns = index_columns([e["row"] for e in entries])
    for entry in entries:
        entry["index"] = [_index_cell(entry["row"], key, fmt) for key, _, fmt in columns]
        entry["metrics"] = _metric_list(entry["row"], [k for k, _, _ in columns])
        entry["questions"] = question_rows(by_id[entry["id"]],
                                           answers.get((entry["id"], entry["seed"]), {}))
    settings = generation_settings(
        [g.line.settings for seeds in generated.values() for g in seeds.values()])
    clip_models = _clip_models(summary, metrics)
    script, script_hash = report_script()
    if len(pairs) > max_pairs:
        notes.append(f"showing the first {max_pairs} of {len(pairs)} pairs (--max-pairs)")
    plot, plot_note = _plots([r for seeds in metrics.values() for r in seeds.values()], gates)
    if plot_note:
        notes.append(plot_note)
    if any(p.word_spans is None for p in pairs[:max_pairs]):
        notes.append("changed words not highlighted: pairs.jsonl was compiled by an earlier "
                     "cfspec, without word_spans; re-run `cfspec compile` (the images stay "
                     "valid: the edit map is unchanged)")
    if entries and shutil.which("dot") is None:
        notes.append("causal graphs as text only: Graphviz `dot` is not installed")

    html = render_template(
        "report.html.j2",
        title=f"cfspec report: {out.name or out}",
        version=__version__,
        counts={
            "pairs": len(pairs),
            "generated": sum(1 for p in pairs if generated.get(p.id)),
            "evaluated": sum(1 for p in pairs if metrics.get(p.id)),
            "kept": None if decisions is None else _kept_count(decisions),
        },
        gates=gates,
        settings=settings,
        clip_models=clip_models,
        random_models=random_models(
            [str(v["text"]) for s in settings if s["name"] == "model" for v in s["values"]],
            clip_models),
        columns=[{"key": k, "label": label} for k, label, _ in columns],
        entries=entries,
        specs=sorted({e["spec"] for e in entries}),
        statuses=[s for s in ("kept", "dropped", "unfiltered", "damaged", "missing")
                  if any(e["status"] == s for e in entries)],
        script=script,
        script_hash=script_hash,
        summary=_summary_view(summary),
        plot=plot,
        kept=[e for e in entries if e["status"] != "dropped"],
        dropped=[e for e in entries if e["status"] == "dropped"],
        filtered=decisions is not None,
        notes=notes,
        problems=[d.message for d in diagnostics],
    )
    target = out / REPORT_FILE
    write_text_atomic(target, html)
    return ReportResult(target, len(entries), len(pairs), diagnostics, notes,
                        sum(1 for e in entries if e["damage"]))


# --- one pair ------------------------------------------------------------------------------------


def _pair_entry(pair: Pair, seeds: Mapping[int, Generated],
                rows: Mapping[int, MetricsRow], decision: FilterLine | None,
                check: RunCheck) -> dict[str, Any]:
    shown, status = _shown_seed(seeds, rows, decision)
    words_0, words_1 = _prompt_pieces(pair)
    images = None
    overlays: list[dict[str, str]] = []
    overlay_note = None
    damage: list[str] = []
    if shown is not None and shown in seeds:
        found = check.damaged(seeds[shown])
        if found:  # no <img> of a file that does not decode, no overlay from a bad .npz
            status = status if status == "dropped" else "damaged"
            damage = [f"{d.path.name}: {d.problem}" for d in found]
        else:
            images = (data_uri(seeds[shown].image_0), data_uri(seeds[shown].image_1))
            overlays, overlay_note = overlay_images(seeds[shown])
    row = rows.get(shown) if shown is not None else None
    verdicts = {v.seed: v for v in decision.seeds} if decision is not None else {}
    seed_rows = []
    for seed in sorted(set(seeds) | set(rows) | set(verdicts)):
        verdict = verdicts.get(seed)
        seed_row = rows.get(seed)
        seed_rows.append({
            "seed": seed,
            "shown": seed == shown,
            "directional": _fmt(None if seed_row is None
                                else seed_row.number("directional_similarity"), "{:.4f}"),
            "passed": None if verdict is None else verdict.passed,
            "failures": [_failure_text(f) for f in verdict.failed] if verdict else [],
        })
    return {
        "id": pair.id,
        "spec": pair.spec,
        "counterfactual": pair.counterfactual,
        "intervention": [_assignment(a) for a in pair.intervention],
        "descendants": [_assignment(a) for a in pair.descendant_changes],
        "edit_type": pair.edit_type,
        "prompt_0": words_0,
        "prompt_1": words_1,
        "prompt_0_text": pair.prompt_0,
        "prompt_1_text": pair.prompt_1,
        "seed": shown,
        "images": images,
        "overlays": overlays,
        "overlay_note": overlay_note,
        "edit": _edit_settings(pair.edit),
        "status": status,
        "damage": damage,
        "reason": None if decision is None else decision.reason,
        "row": row,
        "seeds": seed_rows,
        "scm": edge_rows(pair.scm, pair.scm_aug),
        "scm_aug": edge_rows(pair.scm_aug, pair.scm),
        "graph": graph_uri(pair),
    }


def _kept_count(decisions: Mapping[str, FilterLine]) -> int | str:
    """Pairs kept; with `filter --keep K > 1`, also the kept (pair, seed)s."""
    pairs = sum(1 for d in decisions.values() if d.kept)
    if all(d.keep == 1 for d in decisions.values()):
        return pairs
    return f"{pairs} pair(s), {sum(len(d.kept) for d in decisions.values())} (pair, seed)s"


def _shown_seed(seeds: Mapping[int, Generated], rows: Mapping[int, MetricsRow],
                decision: FilterLine | None) -> tuple[int | None, str]:
    """(seed to show, status): `kept` (the filter's), `dropped` (the filter kept none),
    `unfiltered`, or `missing` (no images)."""
    if decision is not None:
        kept = decision.kept_seed
        if kept is not None and kept in seeds:
            return kept, "kept"
        if kept is None:
            return (min(seeds) if seeds else None), "dropped"
    if not seeds:
        return None, "missing"
    directional = {s: rows[s].number("directional_similarity") for s in seeds if s in rows}
    scored = {s: value for s, value in directional.items() if value is not None}
    if scored:
        return max(scored, key=lambda s: (scored[s], -s)), "unfiltered"
    return min(seeds), "unfiltered"


def _is_number(value: object) -> bool:
    return finite(value) is not None


def _fmt(value: object, fmt: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_number(value):
        return fmt.format(value)
    return "n/a"


def _metric_list(row: MetricsRow | None, keys: Sequence[str]) -> list[dict[str, str]]:
    """The row's metrics, in `keys` order (the index's columns: known ones, then any other
    numeric key evaluate wrote); a known metric that is absent-but-explained shows its reason."""
    if row is None:
        return []
    out = []
    labels = _labels()
    values = row.values
    for key in [*keys, *(k for k in labels if k in values and k not in keys)]:
        if key in values:
            label, fmt = labels.get(key, (key, "{:.4g}"))
            out.append({"name": label, "key": key, "value": _fmt(values[key], fmt),
                        "reason": row.reasons.get(key, "")})
    return out


# --- settings, models and the index --------------------------------------------------------------

_SETTING_TEXT_MAX = 300
_METRIC_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# numbers evaluate copies beside the metrics that describe the image, not measure it
_NOT_METRICS = frozenset({"seed", "steps", "guidance", "height", "width", "eta", "blend_start"})


def _setting_text(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                             sort_keys=True)
    return text if len(text) <= _SETTING_TEXT_MAX else text[:_SETTING_TEXT_MAX] + "…"


def generation_settings(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every setting the manifest lines record (`workspace.provenance.settings`: a key generate
    adds later is shown too) as `[{name, values: [{text, count}]}]`, each value with how many
    images it made; height and width as one `image size`."""
    sized = []
    for record in records:
        record = dict(record)
        if "height" in record and "width" in record:
            record["image size"] = f"{record.pop('width')} × {record.pop('height')} px"
        sized.append(record)
    found = settings(sized)
    keys = [k for k in found if k != "image size"]
    if "image size" in found:  # where height and width stood: after guidance
        keys.insert(keys.index("guidance") + 1 if "guidance" in keys else 0, "image size")
    return [{"name": key, "values": [{"text": _setting_text(value), "count": count}
                                     for value, count in found[key]]} for key in keys]


def _clip_models(summary: Mapping[str, Any] | None,
                 metrics: Mapping[str, Mapping[int, MetricsRow]]) -> list[str]:
    """The CLIP model(s) evaluate used: the summary's, and any a metrics row names."""
    names = {r.clip_model for seeds in metrics.values() for r in seeds.values()
             if r.clip_model is not None}
    if summary is not None and isinstance(summary.get("clip_model"), str):
        names.add(summary["clip_model"])
    return sorted(names)


def index_columns(rows: Sequence[MetricsRow | None]) -> list[tuple[str, str, str]]:
    """(key, label, format) of the index's metric columns: the known metrics any row has, in
    display order, then every other numeric key of the rows (evaluate may add metrics)."""
    labels = _labels()
    present: set[str] = set()
    for row in rows:
        for key, value in (row.values if row is not None else {}).items():
            if key in labels or (_is_number(value) and key not in _NOT_METRICS
                                        and _METRIC_KEY.match(key)):
                present.add(key)
    known = [(k, *labels[k]) for k in labels if k in present]
    return known + [(k, k, "{:.4g}") for k in sorted(present - set(labels))]


def _index_cell(row: MetricsRow | None, key: str, fmt: str) -> dict[str, str]:
    """Display text and the sort value (`data-v`: a number, or empty for not measured)."""
    value = row.values.get(key) if row is not None else None
    if isinstance(value, bool):
        return {"text": _fmt(value, fmt), "value": "1" if value else "0"}
    if isinstance(value, (int, float)) and _is_number(value):
        return {"text": _fmt(value, fmt), "value": repr(float(value))}
    return {"text": _fmt(value, fmt), "value": ""}


def _edit_settings(edit: Mapping[str, Any]) -> list[dict[str, str]]:
    """The pair's Prompt-to-Prompt settings (everything but the token alignment), generically."""
    out = []
    for key, value in edit.items():
        if key == "alignment":
            continue
        if key == "local_blend" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if not k.startswith("tokens_")}
        out.append({"name": str(key), "text": _setting_text(value)})
    return out


def report_script() -> tuple[str, str]:
    """(the index's inline script, its CSP source `'sha256-...'`), hashed from the exact text
    the page embeds."""
    from cfspec.lang.templates import templates_dir

    text = (templates_dir() / SCRIPT_FILE).read_text(encoding="utf-8")
    if "</" in text:  # would end the <script> element early
        raise ValueError(f"templates/{SCRIPT_FILE} must not contain '</'")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return text, f"'sha256-{digest}'"


def _failure_text(failure: GateFailure) -> str:
    if failure.reason:
        return f"{failure.metric}: {failure.reason} ({failure.gate})"
    value = "n/a" if failure.value is None else f"{failure.value:.4f}"
    beyond = ">" if failure.gate.startswith("max-") else "<"
    return f"{failure.metric} = {value} {beyond} {failure.threshold:g} ({failure.gate})"


def _assignment(assignment: Assignment) -> str:
    return f"{assignment.variable}: {assignment.before} → {assignment.after}"


# --- changed words -------------------------------------------------------------------------------


def highlight(prompt: str, changed: Sequence[Sequence[int]] = (),
              blend: Sequence[Sequence[int]] = ()) -> list[dict[str, str]]:
    """The prompt as consecutive `{"text", "kind"}` pieces that join back to it exactly: kind
    `changed` over the compiler's changed words, `blend` over a LocalBlend word that did not
    change, else ``. `changed` and `blend` are the pair's `word_spans` ([start, end) offsets):
    the report shows what the compiler decided and never diffs the prompts itself. The template
    lets autoescape escape every piece."""
    kinds = [""] * len(prompt)
    for spans, kind in ((blend, "blend"), (changed, "changed")):  # changed wins
        for start, end in spans:
            for index in range(max(0, start), min(len(prompt), end)):
                kinds[index] = kind
    pieces, at = [], 0
    for kind, run in itertools.groupby(kinds):
        size = len(list(run))
        pieces.append({"text": prompt[at : at + size], "kind": kind})
        at += size
    return pieces


def _prompt_pieces(pair: Pair) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Both prompts, highlighted from the pair's `word_spans` (plain when it has none)."""
    spans = pair.word_spans or {}
    return (highlight(pair.prompt_0, spans.get("changed_0", ()), spans.get("blend_0", ())),
            highlight(pair.prompt_1, spans.get("changed_1", ()), spans.get("blend_1", ())))


# --- plots (graphs: stages.report_graph; images, overlays: stages.report_images) ---------------

def _gates(decisions: Mapping[str, FilterLine] | None) -> dict[str, float] | None:
    return next((d.gates for d in (decisions or {}).values() if d.gates), None)


def _plots(rows: Sequence[MetricsRow], gates: dict[str, float] | None
           ) -> tuple[str | None, str | None]:
    """(PNG data URI of the metric histograms, or None; a note when skipped)."""
    if not rows:
        return None, None
    plotted = [metric.name for metric in METRICS if metric.plotted]
    columns = [(k, [v for r in rows if (v := r.number(k)) is not None]) for k in plotted]
    columns = [(k, v) for k, v in columns if v]
    if not columns:
        return None, None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None, "plots skipped: matplotlib is not installed (`pip install matplotlib`)"

    ncols = 2
    nrows = (len(columns) + ncols - 1) // ncols
    figure = Figure(figsize=(10, 2.6 * nrows), dpi=96, layout="constrained")
    FigureCanvasAgg(figure)
    for index, (key, values) in enumerate(columns):
        axes = figure.add_subplot(nrows, ncols, index + 1)
        gate = _GATE_LINES.get(key)
        line = (gates[gate[0]] * gate[1] if gate is not None and gates is not None
                and gate[0] in gates else None)
        # bins over the whole drawn range, so a tight cluster far from the gate stays visible
        low, high = min([*values, line if line is not None else min(values)]), max(
            [*values, line if line is not None else max(values)])
        span = (low, high) if high > low else (low - 0.5, high + 0.5)
        axes.hist(values, bins=30, range=span, color="#2563eb", alpha=0.85)
        axes.set_title(f"{_labels()[key][0]} (N={len(values)})", fontsize=10)
        if line is not None and gate is not None:
            axes.axvline(line, color="#c2410c", linestyle="--",
                         label=f"gate {gate[0].replace('_', '-')}")
            axes.legend(fontsize=8)
        axes.tick_params(labelsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), None


def _summary_view(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The summary's means and set figures as display strings."""
    if summary is None:
        return None
    means = []
    raw_means = summary.get("means")
    for key, entry in (raw_means if isinstance(raw_means, dict) else {}).items():
        try:
            if entry.get("ci95") is None:  # too few pairs for an interval that holds
                ci = f"none: {entry.get('ci_reason') or 'too few pairs'}"
            else:
                low, high = entry["ci95"]
                ci = f"[{float(low):.4g}, {float(high):.4g}]"
            means.append({"name": _labels().get(key, (key, ""))[0],
                          "n": int(entry.get("n_pairs", entry["n"])),
                          "mean": f"{float(entry['mean']):.4g}", "ci": ci})
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    sets = []
    raw_set = summary.get("set")
    set_level = raw_set if isinstance(raw_set, dict) else {}
    for metric in ("kid", "fid"):
        entry = set_level.get(metric)
        if not isinstance(entry, dict):
            continue
        if "refused" in entry:
            sets.append({"name": metric.upper(), "text": str(entry["refused"])})
            continue
        floor = entry.get("noise_floor")
        floor_text = (f"; same-N noise floor {floor:.4g} (N={entry.get('noise_floor_n')})"
                      if _is_number(floor) else "; no noise floor")
        sets.append({"name": metric.upper(), "text": (
            f"{_fmt(entry.get('value'), '{:.4g}')} (reference N={entry.get('n_reference')}, "
            f"candidate N={entry.get('n_candidate')}, {entry.get('feature_size')}-d features"
            f"{floor_text})")})
    if "skipped" in set_level:
        sets.append({"name": "KID / FID", "text": str(set_level["skipped"])})
    notes = summary.get("notes")
    return {
        "clip_model": str(summary.get("clip_model", "?")),
        "rows": summary.get("rows"),
        "means": means,
        "sets": sets,
        "notes": [str(n) for n in notes] if isinstance(notes, list) else [],
    }
