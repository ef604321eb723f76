"""Croissant 1.0 metadata (JSON-LD, http://mlcommons.org/croissant/1.0) for `export --to hf`.

`croissant.json` lies beside the dataset card and describes the same Parquet shards: one
`FileObject` (with its SHA-256) per shard, and a `RecordSet` whose fields read the Parquet
columns (the images as `sc:ImageObject` from the struct's `bytes`). `mlcroissant` validates it
and reads its records (tested). Provenance: in Croissant's RAI vocabulary as prose
(`rai:dataCollection`, `rai:dataPreprocessingProtocol`, `rai:dataLimitations`,
`rai:machineAnnotationTools`) and machine-readable as one JSON literal, `cfspec:provenance`:
models, settings, seeds, edit settings, filter gates, cfspec version, the spec files' SHA-256.

Written by plain code from what export already holds: mlcroissant is needed only to check it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfspec import __version__
from cfspec.questions.record import EXPECTS, KINDS
from cfspec.workspace.metrics_rows import read_summary
from cfspec.workspace.provenance import (
    edit_settings,
    file_sha256,
    is_random_weight,
    random_models,
    settings,
    spec_hashes,
)

if TYPE_CHECKING:
    from cfspec.stages.selection import Selection

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
RECORD_SET = "pairs"

# The Croissant 1.0 context (as the spec and mlcroissant write it), plus cfspec's own term.
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "cfspec": "urn:cfspec:",
    "provenance": {"@id": "cfspec:provenance", "@type": "@json"},
}

# hf export column -> Croissant data type; a column not listed is left out of the record set
# (the list-of-struct columns `intervention` and `descendant_changes`: their text is in the
# prompts and graphs, and Croissant 1.0 readers disagree on nested repeated records).
# (The image and photo columns are described in hf_schema.DESCRIBED_COLUMNS.)
_TYPES = {
    "id": "sc:Text",
    "prompt_0": "sc:Text", "prompt_1": "sc:Text", "spec": "sc:Text", "spec_name": "sc:Text",
    "counterfactual": "sc:Text", "edit_type": "sc:Text", "scm": "sc:Text",
    "scm_aug": "sc:Text", "seed": "sc:Integer", "model": "sc:Text", "scheduler": "sc:Text",
    "steps": "sc:Integer", "guidance": "sc:Float", "effective": "sc:Boolean",
    "pair_id": "sc:Text", "rank": "sc:Integer", "cross_replace": "sc:Float",
    "self_replace": "sc:Float", "questions": "sc:Text",
}
# The `questions` column's struct fields (hf_schema._QUESTION), as sub-fields.
_QUESTION_FIELDS = {
    "id": ("sc:Text", "The question's id (q1, q2, ...; parents come first)."),
    "variable": ("sc:Text", "The spec variable it asks about."),
    "kind": ("sc:Text", f"What it asks: {', '.join(KINDS)}."),
    "factual": ("sc:Text", "The question with the factual words (null: absent there)."),
    "counterfactual": ("sc:Text", "The question with the counterfactual words."),
    "expect": ("sc:Text", f"What the causal graph says: {', '.join(EXPECTS)}."),
    "parents": ("sc:Text", "The ids of the questions it presupposes (DSG)."),
    "p_yes_factual": ("sc:Float", "The VQA model's P(yes) for the factual wording on "
                                  "[image_0, image_1]; null where not asked."),
    "p_yes_counterfactual": ("sc:Float", "The same for the counterfactual wording."),
}
_DESCRIPTIONS = {
    "prompt_0": "The factual prompt.",
    "prompt_1": "The counterfactual prompt (after the do() intervention).",
    "spec": "The .scm spec file the pair was compiled from, as recorded.",
    "scm": "Causal graph edges before the intervention, `A → B: description`.",
    "scm_aug": "Causal graph edges after the intervention.",
    "seed": "The seed of the kept candidate.",
    "id": "The row's id: the pair's id, or `<pair_id>__s<seed>` when the filter kept several "
          "seeds per pair (`filter --keep K`).",
    "pair_id": "The pair's id (spec name and counterfactual); several rows share it when the "
               "filter kept several seeds per pair.",
    "rank": "The candidate's rank among its pair's kept seeds by CLIP directional similarity "
            "(1 = best); null when the export is unfiltered.",
    "guidance": "The classifier-free guidance scale the images were made with (drawn per row "
                "where generate sampled it).",
    "cross_replace": "Where generate drew it for this row: the end x of the cross-attention "
                     "replacement window [0, x]; null where the pair's fixed window was used.",
    "self_replace": "Where generate drew it for this row: the end x of the self-attention "
                    "replacement window [0, x]; null where the pair's fixed window was used.",
    "questions": "The spec's yes/no questions about the pair, one per variable, with a VQA "
                 "model's P(yes) per wording on [image_0, image_1] where evaluate "
                 "--vqa-model asked them (the Parquet column holds them all).",
}
_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def croissant_metadata(out: Path, selection: Selection, shards: Sequence[Path], dest: Path,
                       name: str) -> dict[str, Any]:
    """The Croissant JSON-LD for the hf export of `selection` whose Parquet `shards` lie in
    `dest` (names relative to it: the file is read from beside them); `name` is the dataset's
    (the export folder's final name: `dest` may be a staging folder)."""
    from cfspec.stages.hf_schema import DESCRIBED_COLUMNS, KINDS, hf_features
    from cfspec.workspace.metrics import METRICS

    prov = provenance(out, selection)
    distribution: list[dict[str, Any]] = [{
        "@type": "cr:FileObject",
        "@id": path.relative_to(dest).as_posix(),
        "name": path.name,
        "contentUrl": path.relative_to(dest).as_posix(),
        "encodingFormat": "application/x-parquet",
        "sha256": file_sha256(path),
    } for path in shards]
    types = {**_TYPES, **{m.name: "sc:Float" if m.kind == "float" else "sc:Boolean"
                          for m in METRICS},
             **{c.name: KINDS[c.kind][2] for c in DESCRIBED_COLUMNS}}
    descriptions = {**_DESCRIPTIONS, **{m.name: m.meaning for m in METRICS},
                    **{c.name: c.description for c in DESCRIBED_COLUMNS}}
    fields = []
    for column, _, form in hf_features():
        if column not in types:
            continue
        field: dict[str, Any] = {
            "@type": "cr:Field",
            "@id": f"{RECORD_SET}/{column}",
            "name": column,
            "description": descriptions.get(column, f"`{column}`, as in the dataset card."),
            "dataType": types[column],
            "source": {"fileObject": {"@id": distribution[0]["@id"]},
                       "extract": {"column": column}},
        }
        if types[column] == "sc:ImageObject":
            field["source"]["transform"] = {"jsonPath": "bytes"}
        if isinstance(form, dict):  # a list column
            field["repeated"] = True
        if column == "questions":
            field["subField"] = _question_fields(field["source"])
        fields.append(field)
    record_sets = [{"@type": "cr:RecordSet", "@id": RECORD_SET, "name": RECORD_SET,
                    "description": "One counterfactual image pair per record.",
                    "key": {"@id": f"{RECORD_SET}/id"}, "field": fields}]
    if len(shards) > 1:
        # a field reads one file: with several shards the record set reads them as a set
        distribution.append({"@type": "cr:FileSet", "@id": "parquet-shards",
                             "name": "parquet-shards", "encodingFormat": "application/x-parquet",
                             "includes": [d["contentUrl"] for d in distribution]})
        for field in [*fields, *(sub for f in fields for sub in f.get("subField", ()))]:
            field["source"] = {**field["source"], "fileSet": {"@id": "parquet-shards"}}
            del field["source"]["fileObject"]
    name = _NAME.sub("-", name).strip("-.") or "cfspec-dataset"
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": name,
        "description": (f"{len(selection.candidates)} factual/counterfactual image pairs "
                        f"rendered by cfspec {__version__} with Prompt-to-Prompt from checked "
                        "structural causal model specs. Selection: "
                        f"{selection.description}."),
        "keywords": ["counterfactual", "text-to-image", "causal", "prompt-to-prompt",
                     "cfspec"],
        "version": "1.0.0",
        "isLiveDataset": False,
        "rai:dataCollection": _collection_text(prov),
        "rai:dataCollectionType": "Synthetic data generated by a text-to-image model",
        "rai:dataPreprocessingProtocol": _filter_text(selection),
        "rai:dataLimitations": _limitations_text(prov),
        "rai:machineAnnotationTools": [f"cfspec {__version__}"] + [
            f"CLIP {m} (metrics)" for m in prov["models"]["clip"]] + [
            f"VQA {m} (question metrics)" for m in prov["models"]["vqa"]],
        "distribution": distribution,
        "recordSet": record_sets,
        "provenance": prov,
    }


_REPEATED_QUESTION_FIELDS = ("parents", "p_yes_factual", "p_yes_counterfactual")


def _question_fields(source: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"@type": "cr:Field", "@id": f"{RECORD_SET}/questions/{name}", "name": name,
             "description": description, "dataType": kind,
             "source": {**source, "transform": {"jsonPath": name}},
             **({"repeated": True} if name in _REPEATED_QUESTION_FIELDS else {})}
            for name, (kind, description) in _QUESTION_FIELDS.items()]


def provenance(out: Path, selection: Selection) -> dict[str, Any]:
    """What a reviewer asks of a generated dataset, from the exported rows' manifest lines,
    their pairs, the filter's gates, the metrics summary and the spec files."""
    # A drawn guidance shows among the settings as the range it was drawn from
    # (`provenance.settings`); the values drawn are summarized under `drawn` as what was seen.
    drawn: dict[str, list[float]] = {}
    for cand in selection.candidates:
        for key, value in cand.generated.line.drawn().sampled().items():
            drawn.setdefault(key, []).append(value)
    found = settings(c.generated.line.settings for c in selection.candidates)
    models = [str(value) for value, _ in found.get("model", [])]
    summary = read_summary(out) or {}
    clip = [str(summary["clip_model"])] if isinstance(summary.get("clip_model"), str) else []
    vqa = [str(summary["vqa_model"])] if isinstance(summary.get("vqa_model"), str) else []

    def counted(values: list[tuple[Any, int]], what: str) -> list[dict[str, Any]]:
        return [{"value": value, what: n} for value, n in values]

    return {
        "cfspec_version": __version__,
        "models": {"diffusion": models, "clip": clip, "vqa": vqa},
        "random_weight_models": random_models(models, clip) + [
            f"VQA model {m} (evaluate)" for m in vqa if is_random_weight(m)],
        "generation": {key: counted(values, "rows") for key, values in found.items()},
        "seeds": sorted({c.seed for c in selection.candidates}),
        "seeds_per_pair": selection.keep,
        "drawn": {key: {"rows": len(values), "min": min(values), "max": max(values)}
                  for key, values in drawn.items()},
        "selection": selection.description,
        "filter_gates": selection.gates,
        "edit": {key: counted(values, "pairs") for key, values in
                 edit_settings(c.pair.edit for c in selection.candidates).items()},
        "spec_files": spec_hashes(str(c.pair.spec) for c in selection.candidates),
    }


def _values(prov: dict[str, Any], key: str) -> str:
    return ", ".join(str(v["value"]) for v in prov["generation"].get(key, [])) or "unrecorded"


def _guidance(prov: dict[str, Any]) -> str:
    drawn = prov["drawn"].get("guidance")
    declared = _values(prov, "guidance")
    if drawn is None:
        return declared
    return (f"{declared} (the values drawn: {drawn['min']:g} to {drawn['max']:g} over "
            f"{drawn['rows']} row(s))")


def _collection_text(prov: dict[str, Any]) -> str:
    return (f"Rendered with {_values(prov, 'model')} (scheduler {_values(prov, 'scheduler')}, "
            f"{_values(prov, 'steps')} steps, guidance {_guidance(prov)}, "
            f"{_values(prov, 'width')} x {_values(prov, 'height')} px) from prompts compiled "
            f"by cfspec {__version__}; each pair's two images share their initial noise and "
            "the counterfactual one is edited with Prompt-to-Prompt attention control. The "
            "full settings, seeds and spec file hashes are in `cfspec:provenance`.")


def _filter_text(selection: Selection) -> str:
    if selection.gates is None:
        return f"No filter: {selection.description}."
    gates = ", ".join(f"{k[4:] if k.startswith('max_') else k} "
                      f"{'<=' if k.startswith('max_') else '>='} {v}"
                      for k, v in selection.gates.items())
    best = ("best seed" if selection.keep == 1 else
            f"up to {selection.keep} best seeds per pair, ranked (column `rank`),")
    return (f"Candidates kept by cfspec filter (gates {gates}; {best} by directional "
            f"similarity): {selection.description}.")


def _limitations_text(prov: dict[str, Any]) -> str:
    text = ("Synthetic images: they show what the model draws for the prompts, not real "
            "scenes; CLIP-based metrics inherit CLIP's biases.")
    if prov["random_weight_models"]:
        text = ("RANDOM-WEIGHT MODELS: made or scored with "
                + ", ".join(prov["random_weight_models"])
                + ". The images are noise and the scores meaningless; for testing only, not "
                "for publication. " + text)
    return text
