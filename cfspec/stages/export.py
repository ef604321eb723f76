"""`cfspec export OUT --to hf|coco-cf|cf-json -o DIR`: datasets other tools load.

What is exported (`stages.selection`): the filter's kept candidate of each pair when
OUT/filter.jsonl exists (pairs with no kept seed are left out), else every pair's first (lowest)
generated seed. A candidate
whose image or .npz is damaged (`workspace.integrity`, the check evaluate and report share) is
left out, listed and reported as `damaged-file`: the export then exits 1. After
`filter --keep K` with K > 1, every kept (pair, seed) is a row, best first within its pair, and
a row's id is `<pair id>__s<seed>` (`layout.row_id`: unique and path-safe; with K = 1 it is the
pair's id, as before); `pair_id`, `seed` and `rank` (1 = best) say which pair and candidate it
is. Each row also carries the guidance it was made with and any edit window generate drew for
it (`cross_replace`, `self_replace`; null when fixed), read through `ManifestLine.drawn`.
Every file is written inside DIR, under names built only from validated pair ids and integer
seeds; images are read only from inside OUT/images. DIR is replaced whole: the new export is
built in a staging folder beside it and swapped in with one rename, so a kill at any moment
leaves the previous complete export or the new one, never a mix; the next export removes what
a killed one left. `DIR/.cfspec-export.json` lists the files an export wrote; files a user
adds to DIR are carried into the next export.

A pair with a photo (`image` in its spec, `generate --inversion`) carries it too: the photo as
generate inverted it (OUT/images/<id>/photo.png: cropped and resized to the model's size, a PNG,
not the original's bytes), the original file's name and SHA-256 (as compile recorded them in
pairs.jsonl) and the inversion method; null (or no file) for a pair without one.

* `hf`: `DIR/data/train-0000k-of-0000n.parquet` (shards of about 500 MB) with three Image columns
  `image_0`, `image_1`, `photo` (structs `{bytes, path}` holding the PNG bytes; `photo` null
  without one), `photo_source`, `photo_source_sha256`, `inversion`, plus the prompts, the
  intervention, the causal graphs, pair_id, seed, rank, model, guidance, drawn windows and
  metrics, and `DIR/README.md`, a dataset card
  whose YAML header (`configs`, `dataset_info.features`) lets `datasets.load_dataset(DIR)` load
  it without a loading script. The Parquet schema also carries the `huggingface` features
  metadata that `datasets` itself writes (one list of columns, `stages.hf_schema`, gives both).
  Beside them, `DIR/croissant.json`: Croissant 1.0
  metadata (JSON-LD) describing the same files and columns, with the provenance a reviewer asks
  for (models, scheduler, steps, guidance, seeds, edit settings, filter gates, cfspec version,
  each spec file's SHA-256) in Croissant's RAI properties and under `cfspec:provenance`.
  Needs pyarrow.
* `coco-cf`: `DIR/examples.jsonl` with the COCO-Counterfactuals columns `id, caption_0,
  caption_1, image_0, image_1`; `image_k` is a file stem as in that dataset (`<id>_img_0`) and
  the PNG `<stem>.png` lies beside the file; a row's photo is `<id>_photo.png` beside them (the
  five columns stay COCO-Counterfactuals').
* `cf-json`: `DIR/counterfactual_dataset.json`, the reference study's list of `{id,
  original_prompt, counterfactual_prompt, original_image, counterfactual_image, SCM, SCM_aug}`
  (those keys first, as the reference has them), then `pair_id, seed, rank, guidance,
  cross_replace, self_replace, photo, photo_source, photo_source_sha256, inversion`, with
  `original_<id>.png`, `counterfactual_<id>.png` and `photo_<id>.png` (`photo`) beside it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfspec import __version__
from cfspec.diagnostics.records import Diagnostic
from cfspec.stages.hf_schema import (
    DESCRIBED_COLUMNS,
    arrow_schema,
    yaml_features,
    yaml_str,
)
from cfspec.stages.selection import Candidate, Selection, row_extras, select
from cfspec.workspace.answers import Answer, questions_column, read_answers
from cfspec.workspace.atomic import write_text_atomic
from cfspec.workspace.layout import (
    CF_JSON_FILE,
    COCO_CF_FILE,
    CROISSANT_FILE,
    MAX_ID_LENGTH,
    is_safe_id,
)
from cfspec.workspace.metrics import METRICS
from cfspec.workspace.metrics_rows import read_summary
from cfspec.workspace.outdir import check_link, remove_stale_staging, replace_dir, staging_dir
from cfspec.workspace.reading import StageError, json_line, read_pair_file

FORMATS = ("hf", "coco-cf", "cf-json")
HF_SHARD_BYTES = 500 * 1024 * 1024
EXPORT_MARKER = ".cfspec-export.json"  # which files of DIR the export wrote
HF_ROWS_PER_GROUP = 100  # Parquet row groups of ~100 rows: what the Hub's viewer reads well

class ExportError(StageError):
    """The export cannot be written (bad format or destination, missing inputs): exit 2."""


class NothingToExport(ExportError):
    """The selection is empty (no images, or the filter kept no pair): nothing is written."""

    def __init__(self, selection: Selection) -> None:
        reasons = "; ".join(selection.left_out[:3]) + (
            f"; and {len(selection.left_out) - 3} more" if len(selection.left_out) > 3 else "")
        super().__init__(f"nothing to export from {selection.description}"
                         + (f" ({reasons})" if reasons else ""))
        self.selection = selection



@dataclass
class ExportResult:
    format: str
    out_dir: Path
    dest: Path
    files: list[Path]
    rows: int
    selection: Selection

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.selection.diagnostics



def export(out_dir: str | Path, to: str, dest: str | Path) -> ExportResult:
    """Export OUT's selected candidates to DIR in format `to` (see the module docstring).

    The whole folder (data, card, images and the EXPORT_MARKER listing them) is built in a
    staging folder beside DIR and swapped in with one rename, so DIR always holds either the
    previous complete export or the new one; what a killed run left is removed first."""
    out = Path(out_dir)
    if to not in FORMATS:
        raise ExportError(f"unknown --to {to!r}; choose one of {', '.join(FORMATS)}")
    target = _export_target(out, Path(dest))
    selection = select(out)
    if not selection.candidates:
        raise NothingToExport(selection)
    writers: dict[str, Callable[[Path, Path, Selection], list[Path]]] = {
        "hf": functools.partial(_write_hf, name=target.name), "coco-cf": _write_coco_cf,
        "cf-json": _write_cf_json}
    writer = writers[to]
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    staged = staging_dir(target)
    try:
        names = [p.relative_to(staged).as_posix() for p in writer(out, staged, selection)]
        _carry_over(target, staged, set(names))
        write_text_atomic(staged / EXPORT_MARKER, json.dumps(
            {"cfspec": __version__, "format": to, "files": sorted(names)}, indent=2) + "\n")
        replace_dir(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    files = [target / name for name in names]
    return ExportResult(to, out, target, files, len(selection.candidates), selection)


def _export_target(out: Path, target: Path) -> Path:
    """-o DIR checked: not OUT nor a folder holding OUT, no one else's symlink on the way
    (workspace.outdir's policy; your own is followed, and the swap happens where it points), and
    either new, empty, or an earlier export (it has EXPORT_MARKER): the swap replaces it all."""
    if os.path.abspath(out) == os.path.abspath(target) or target.resolve() == out.resolve():
        raise ExportError(f"-o {target}: is OUT itself; choose a separate folder (it may be "
                          "inside OUT)")
    if out.resolve().is_relative_to(target.resolve()):
        raise ExportError(f"-o {target}: holds OUT ({out}); choose a separate folder (it may "
                          "be inside OUT)")
    inside_out = os.path.abspath(target).startswith(os.path.abspath(out) + os.sep)
    root = Path(os.path.abspath(out)) if inside_out else Path(os.path.abspath(target)).parent
    path = root
    for part in Path(os.path.abspath(target)).relative_to(root).parts:
        path = path / part
        check_link(path)
    if target.is_symlink():
        target = target.resolve()
    if target.exists() and not target.is_dir():
        raise ExportError(f"-o {target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not (target / EXPORT_MARKER).is_file():
        raise ExportError(f"-o {target}: a folder that no cfspec export wrote (no "
                          f"{EXPORT_MARKER}); each export replaces its folder whole, so choose "
                          "a new or empty one")
    return target


def _carry_over(old: Path, new: Path, written: set[str]) -> None:
    """Files a user added to an earlier export's folder are kept (hard-linked, else copied)
    in the new one; the earlier export's own files (listed in its marker) are not."""
    if not old.is_dir():
        return
    try:
        ours = set(json.loads((old / EXPORT_MARKER).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        ours = set()
    ours |= written | {EXPORT_MARKER}
    for folder, dirs, names in os.walk(old):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            source = Path(folder) / name
            relative = source.relative_to(old).as_posix()
            if relative in ours or (relative.startswith("data/") and _SHARD.match(name)):
                continue
            copy = new / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                os.symlink(os.readlink(source), copy)
                continue
            try:
                os.link(source, copy)
            except OSError:
                shutil.copy2(source, copy)


# --- path safety ---------------------------------------------------------------------------------


# A row id may carry `__s<seed>` after a pair id of up to MAX_ID_LENGTH characters.
_MAX_ROW_ID = MAX_ID_LENGTH + 32


def _safe_name(pair_id: str) -> str:
    """The id itself, after checking it is path-safe (it was validated on reading; this is the
    second wall: no separator, no leading dot, bounded length)."""
    if not is_safe_id(pair_id, _MAX_ROW_ID):
        raise ExportError(f"pair id {pair_id!r} is not path-safe; refused")
    return pair_id


def _inside(root: Path, name: str) -> Path:
    """root / name, refused unless it resolves inside root (a symlink pointing out included)."""
    path = root / name
    if not path.resolve().is_relative_to(root.resolve()):
        raise ExportError(f"{path}: resolves outside {root}; refused")
    return path


def _copy(source: Path, target: Path) -> None:
    from cfspec.workspace.atomic import atomic_write

    with open(source, "rb") as handle:
        atomic_write(target, lambda out: shutil.copyfileobj(handle, out))


# --- coco-cf and cf-json -------------------------------------------------------------------------


def _copy_images(dest: Path, cand: Candidate, names: tuple[str, str, str]) -> list[Path]:
    """The candidate's factual and counterfactual PNGs and its photo (where it has one), copied
    into `dest` under `names`."""
    sources = (cand.generated.image_0, cand.generated.image_1, cand.generated.photo)
    targets = [_inside(dest, name) for name, source in zip(names, sources, strict=True)
               if source is not None]
    for source, target in zip((s for s in sources if s is not None), targets, strict=True):
        _copy(source, target)
    return targets


def _photo_columns(cand: Candidate) -> dict[str, Any]:
    """Where the row's photo came from (hf_schema.DESCRIBED_COLUMNS after `photo`): the
    original file's name and SHA-256 as pairs.jsonl records them, and the inversion; null
    without one."""
    line = cand.generated.line
    source = cand.pair.image if line.records_photo else None
    return {"photo_source": Path(source.path).name if source is not None else None,
            "photo_source_sha256": source.sha256 if source is not None else None,
            "inversion": line.inversion_method() if line.records_photo else None}


def _write_coco_cf(out: Path, dest: Path, selection: Selection) -> list[Path]:
    files: list[Path] = []
    lines = []
    for cand in selection.candidates:
        name = _safe_name(cand.id)
        stems = (f"{name}_img_0", f"{name}_img_1")
        files += _copy_images(dest, cand, (f"{stems[0]}.png", f"{stems[1]}.png",
                                           f"{name}_photo.png"))
        lines.append(json_line({"id": cand.id, "caption_0": cand.pair.prompt_0,
                                "caption_1": cand.pair.prompt_1, "image_0": stems[0],
                                "image_1": stems[1]}))
    target = _inside(dest, COCO_CF_FILE)
    write_text_atomic(target, "".join(lines))
    return [target, *files]


def _write_cf_json(out: Path, dest: Path, selection: Selection) -> list[Path]:
    files: list[Path] = []
    records = []
    for cand in selection.candidates:
        name = _safe_name(cand.id)
        names = (f"original_{name}.png", f"counterfactual_{name}.png", f"photo_{name}.png")
        files += _copy_images(dest, cand, names)
        records.append({
            "id": cand.id,
            "original_prompt": cand.pair.prompt_0,
            "counterfactual_prompt": cand.pair.prompt_1,
            "original_image": names[0],
            "counterfactual_image": names[1],
            "SCM": list(cand.pair.scm),
            "SCM_aug": list(cand.pair.scm_aug),
            **row_extras(cand),
            "photo": names[2] if cand.generated.photo is not None else None,
            **_photo_columns(cand),
        })
    target = _inside(dest, CF_JSON_FILE)
    write_text_atomic(target, json.dumps(records, ensure_ascii=False, indent=2) + "\n")
    return [target, *files]



# --- hf ------------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _hf_row(cand: Candidate, answers: Mapping[tuple[str, int], Mapping[str, Answer]]
            ) -> dict[str, Any]:
    name = _safe_name(cand.id)
    pair, line = cand.pair, cand.generated.line
    row: dict[str, Any] = {
        "id": cand.id,
        "image_0": {"bytes": cand.generated.image_0.read_bytes(),
                    "path": f"{name}_{cand.seed}_0.png"},
        "image_1": {"bytes": cand.generated.image_1.read_bytes(),
                    "path": f"{name}_{cand.seed}_1.png"},
        "photo": None if cand.generated.photo is None else {
            "bytes": cand.generated.photo.read_bytes(), "path": f"{name}_photo.png"},
        **_photo_columns(cand),
        "prompt_0": pair.prompt_0,
        "prompt_1": pair.prompt_1,
        "intervention": [a.to_json() for a in pair.intervention],
        "descendant_changes": [a.to_json() for a in pair.descendant_changes],
        "spec": pair.spec,
        "spec_name": pair.spec_name,
        "counterfactual": pair.counterfactual,
        "edit_type": pair.edit_type,
        "scm": list(pair.scm),
        "scm_aug": list(pair.scm_aug),
        "questions": questions_column(pair.questions, answers.get((cand.pair_id, cand.seed),
                                                                  {})),
        "seed": cand.seed,
        "model": line.text("model"),
        "scheduler": line.text("scheduler"),
        "steps": line.integer("steps"),
    }
    extras = row_extras(cand)
    row.update(pair_id=extras["pair_id"], rank=extras["rank"], guidance=extras["guidance"],
               cross_replace=extras["cross_replace"], self_replace=extras["self_replace"])
    for metric in METRICS:
        value = cand.metrics.values.get(metric.name) if cand.metrics is not None else None
        if metric.kind == "bool":
            row[metric.name] = value if isinstance(value, bool) else None
        else:
            row[metric.name] = _number(value)
    return row


def _answers(out: Path, selection: Selection) -> dict[tuple[str, int], dict[str, Answer]]:
    """OUT/answers.jsonl (evaluate --vqa-model), {} without it; its bad lines join the
    selection's diagnostics (the export goes on without them)."""
    pairs, _ = read_pair_file(out)  # select() reported its problems
    found, problems = read_answers(out, {p.id: p for p in pairs})
    selection.diagnostics += problems
    return found


def _shards(candidates: Sequence[Candidate]) -> list[list[Candidate]]:
    """Consecutive groups of about HF_SHARD_BYTES of PNG data each (at least one group)."""
    shards: list[list[Candidate]] = [[]]
    size = 0
    for cand in candidates:
        weight = sum(path.stat().st_size for path in (
            cand.generated.image_0, cand.generated.image_1, cand.generated.photo) if path)
        if shards[-1] and size + weight > HF_SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(cand)
        size += weight
    return shards


def _batches(items: Sequence[Candidate], size: int) -> Iterator[Sequence[Candidate]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_SHARD = re.compile(r"^train-\d{5}-of-\d{5}(-[0-9a-f]{12})?\.parquet$")


def _write_hf(out: Path, dest: Path, selection: Selection, name: str = "") -> list[Path]:
    """Parquet shards named `train-0000k-of-0000n-<sha256[:12]>.parquet`, listed by name in
    the card and in `croissant.json` (Croissant metadata of dataset `name`). The digest is
    there because `datasets` caches a local folder under its base name and a hash of the card's
    YAML only: without it, a second export to a folder of the same name (or a re-export) would
    load the first one's cached rows."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ExportError("--to hf needs pyarrow (`pip install 'cfspec[gpu]'` or "
                          "`pip install pyarrow`)") from error
    from cfspec.workspace.atomic import atomic_write

    schema = arrow_schema()
    answers = _answers(out, selection)
    data = dest / "data"
    data.mkdir(exist_ok=True)
    shards = _shards(selection.candidates)
    files: list[Path] = []
    for index, shard in enumerate(shards):
        stem = f"train-{index:05d}-of-{len(shards):05d}"
        written = _inside(dest, f"data/{stem}.parquet")

        def write(handle: Any, shard: list[Candidate] = shard) -> None:
            with pq.ParquetWriter(handle, schema, compression="zstd") as writer:
                for batch in _batches(shard, HF_ROWS_PER_GROUP):
                    rows = [_hf_row(c, answers) for c in batch]
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))

        atomic_write(written, write)
        digest = hashlib.sha256()
        with open(written, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        target = _inside(dest, f"data/{stem}-{digest.hexdigest()[:12]}.parquet")
        os.replace(written, target)
        files.append(target)
    card = _inside(dest, "README.md")
    names = [f.relative_to(dest).as_posix() for f in files]
    write_text_atomic(card, dataset_card(out, selection, names))
    from cfspec.stages.croissant import croissant_metadata

    croissant = _inside(dest, CROISSANT_FILE)
    write_text_atomic(croissant, json.dumps(
        croissant_metadata(out, selection, files, dest, name or dest.name), ensure_ascii=False,
        indent=2) + "\n")
    return [card, croissant, *files]




def dataset_card(out: Path, selection: Selection, shards: Sequence[str]) -> str:
    """README.md: the YAML header `datasets` reads, then what the data is."""
    models = sorted({str(c.generated.line.text("model")) for c in selection.candidates})
    specs = sorted({str(c.pair.spec) for c in selection.candidates})
    n = len(selection.candidates)
    header = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path:",
        *[f"    - {yaml_str(name)}" for name in shards],
        "dataset_info:",
        "  features:",
        *yaml_features(),
        "tags:",
        "- counterfactual",
        "- text-to-image",
        "- cfspec",
        "---",
    ]
    summary = read_summary(out) or {}
    means = summary.get("means", {}) if isinstance(summary.get("means"), dict) else {}
    metric_lines = []
    for name, entry in means.items():
        try:
            pairs_n = entry.get("n_pairs", entry["n"])
            if entry.get("ci95") is None:  # too few pairs for an interval that holds
                interval = f"none ({entry.get('ci_reason') or 'too few pairs'})"
            else:
                low, high = entry["ci95"]
                interval = f"[{low:.4g}, {high:.4g}]"
            metric_lines.append(f"| `{name}` | {pairs_n} | {entry['mean']:.4g} | {interval} |")
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    body = [
        "",
        "# Counterfactual image pairs (cfspec)",
        "",
        f"{n} factual/counterfactual image pairs rendered by cfspec {__version__} from "
        f"{len(specs)} spec file(s) with Prompt-to-Prompt on "
        f"{', '.join(f'`{m}`' for m in models) or 'no model'}.",
        "",
        *_card_photos(selection),
        f"Selection: {selection.description}.",
        "",
        "Load it with `datasets.load_dataset(\"path/to/this/folder\")` (no loading script). "
        f"`{CROISSANT_FILE}` describes the same files as Croissant 1.0 metadata, with the full "
        "provenance (`cfspec:provenance`).",
        "",
        *_card_provenance(out, selection),
        "## Columns",
        "",
        *(f"- `{c.name}`: {c.description}" for c in DESCRIBED_COLUMNS),
        "- `prompt_0`, `prompt_1`, `intervention` (`do()` assignments), `descendant_changes`, "
        "`scm` and `scm_aug` (edges `A → B: description` before and after the intervention).",
        "- `pair_id`: the pair the row belongs to; `id` is the pair's id, or "
        "`<pair_id>__s<seed>` when the filter kept several seeds per pair (`--keep`).",
        "- `seed`, `rank`: the candidate (seed) and its rank among its pair's kept seeds by "
        "directional similarity (1 = best; null when unfiltered).",
        "- `model`, `scheduler`, `steps`, `guidance`: how the images were made; `guidance` is "
        "the scale actually used, drawn per row where generate sampled it.",
        "- `cross_replace`, `self_replace`: the end x of the cross- and self-attention "
        "replacement windows [0, x] where generate drew them for the row; null where the "
        "pair's fixed windows were used.",
        "- `questions`: the spec's yes/no questions about the pair (per variable: its wording "
        "with the factual and the counterfactual words, the questions it presupposes, and "
        "`expect`, what the causal graph says: `change`, `follow`, `may-change`, `hold`), with "
        "a VQA model's P(yes) for each wording on [image_0, image_1] where `cfspec evaluate "
        "--vqa-model` asked them"
        + (f" (here {vqa_model})" if (vqa_model := summary.get("vqa_model")) else "")
        + ": enough to score them again with another VQA model.",
        "- Metrics, null where not measured:",
        *(f"  - `{m.name}`: {m.meaning}" for m in METRICS),
        "",
    ]
    if metric_lines:
        body += ["## Means over pairs (each pair's mean over its seeds)", "",
                 "| metric | pairs | mean | 95% interval (pairs, then seeds within pairs, "
                 "resampled) |", "|---|---|---|---|",
                 *metric_lines, ""]
    if len(shards) > 1:
        body += [f"The data is split into {len(shards)} Parquet shards.", ""]
    return "\n".join(header + body)


def _card_photos(selection: Selection) -> list[str]:
    """How many rows start from a real photo, and what the photo columns hold (nothing when
    none does)."""
    photos = sum(c.generated.photo is not None for c in selection.candidates)
    if not photos:
        return []
    return [f"{photos} of the {len(selection.candidates)} row(s) start from a real photo: "
            "`image_0` is its reconstruction by inversion, `image_1` the photo edited, and "
            "`photo` the photo itself as it was inverted (centre-cropped and resized to the "
            "model's size, re-encoded as PNG: not the original file, whose name and SHA-256 "
            "are `photo_source` and `photo_source_sha256`). The other rows' photo columns are "
            "null.", ""]


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _card_provenance(out: Path, selection: Selection) -> list[str]:
    """The card's provenance section: a random-weights warning first, then the settings."""
    from cfspec.stages.croissant import provenance

    prov = provenance(out, selection)
    lines = []
    if prov["random_weight_models"]:
        lines += [f"> **Warning: random-weight models** ({', '.join(prov['random_weight_models'])}"
                  "). The images are noise and the scores meaningless: this set tests the "
                  "pipeline and is not fit for publication.", ""]
    lines += ["## Provenance", ""]
    for key, values in prov["generation"].items():
        shown = ", ".join(f"`{_plain(v['value'])}`"
                          + (f" ({v['rows']} rows)" if len(values) > 1 else "") for v in values)
        lines.append(f"- {key}: {shown}")
    for key, span in prov["drawn"].items():
        lines.append(f"- {key}, the values drawn: {span['min']:g} to {span['max']:g} "
                     f"({span['rows']} rows; column `{key}`)")
    if prov["seeds_per_pair"] > 1:
        lines.append(f"- seeds kept per pair: up to {prov['seeds_per_pair']} (filter --keep; "
                     "columns `pair_id`, `rank`)")
    lines.append(f"- CLIP model (metrics): {', '.join(prov['models']['clip']) or 'unknown'}")
    lines.append(f"- seeds: {', '.join(str(s) for s in prov['seeds'])}")
    gates = prov["filter_gates"]
    lines.append("- filter gates: " + (", ".join(f"{k} >= {v}" for k, v in gates.items())
                                       if gates else "none (unfiltered)"))
    for spec in prov["spec_files"]:
        lines.append(f"- spec `{spec['path']}`: sha256 {spec['sha256'] or 'unreadable'}")
    return [*lines, ""]
