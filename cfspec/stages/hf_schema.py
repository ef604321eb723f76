"""The columns of `export --to hf`, in the three forms that must agree: the `datasets` features
JSON, the Arrow schema of the Parquet shards, and the dataset card's YAML header. One list,
`hf_features`, is the source of all three and of the Croissant record set (`stages.croissant`).
The image columns and the photo's provenance are `Column`s, each described once: their type
and their description there give the card's column list and Croissant's fields too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cfspec.gpu.models import INVERSION_METHODS
from cfspec.workspace.metrics import METRICS

_STRING = {"dtype": "string", "_type": "Value"}
_FLOAT = {"dtype": "float64", "_type": "Value"}
_ASSIGNMENT = {"variable": _STRING, "from": _STRING, "to": _STRING}
# The spec's questions with a VQA model's P(yes) on [image 0, image 1] per wording
# (cfspec.workspace.answers.questions_column): enough to score them again with another model.
_QUESTION_TEXT = ("id", "variable", "kind", "factual", "counterfactual", "expect")
_QUESTION = {**{k: _STRING for k in _QUESTION_TEXT}, "parents": [_STRING],
             "p_yes_factual": [_FLOAT], "p_yes_counterfactual": [_FLOAT]}


@dataclass(frozen=True)
class Column:
    """A column described once: its kind (a key of KINDS) and what it holds, in a sentence."""

    name: str
    kind: str
    description: str


# kind -> (`datasets` features JSON, YAML form, Croissant dataType); the Arrow type: `_arrow`.
KINDS: dict[str, tuple[Any, str, str]] = {
    "image": ({"_type": "Image"}, "image", "sc:ImageObject"),
    "string": (_STRING, "string", "sc:Text"),
}

# The images of a row (a PNG each, `{bytes, path}`), then where the photo came from. The
# photo columns are in every export, null in the rows of pairs without a photo: one schema.
DESCRIBED_COLUMNS = (
    Column("image_0", "image", "The factual image (PNG): made from prompt_0; for a pair "
           "with a photo, the photo's reconstruction (its inversion, denoised under "
           "prompt_0)."),
    Column("image_1", "image", "The counterfactual image (PNG): made from prompt_1 with "
           "Prompt-to-Prompt, from the same start as image_0 (for a pair with a photo: the "
           "photo edited)."),
    Column("photo", "image", "The real photo the pair starts from, as it was inverted: the "
           "original centre-cropped to the model's aspect ratio, resized to its size and "
           "re-encoded as PNG (generate's photo.png, what the reconstruction metrics compare "
           "image_0 with); null for a pair without a photo. Not the original file's bytes: "
           "see photo_source_sha256."),
    Column("photo_source", "string", "The file name of the original photo the spec names "
           "(`image \"...\"`; pairs.jsonl records its full path); null without a photo."),
    Column("photo_source_sha256", "string", "The SHA-256 (hex) of the original photo file's "
           "bytes, as compile recorded it: check a copy of `photo_source` against it (the "
           "`photo` column's PNG is a resized re-encoding, so its own digest differs); null "
           "without a photo."),
    Column("inversion", "string", "How the photo was inverted into image_0's start "
           f"(`generate --inversion`: {', '.join(INVERSION_METHODS)}); null without a photo."),
)


def hf_features() -> list[tuple[str, Any, Any]]:
    """(column, `datasets` features JSON, YAML form) for every column, in order."""
    columns: list[tuple[str, Any, Any]] = [("id", _STRING, "string"),
                                           ("pair_id", _STRING, "string")]
    columns += [(c.name, KINDS[c.kind][0], KINDS[c.kind][1]) for c in DESCRIBED_COLUMNS]
    columns += [(c, _STRING, "string") for c in ("prompt_0", "prompt_1")]
    assignment_yaml = [{"name": k, "dtype": "string"} for k in ("variable", "from", "to")]
    columns += [(c, [_ASSIGNMENT], {"list": assignment_yaml})
                for c in ("intervention", "descendant_changes")]
    columns += [(c, _STRING, "string") for c in ("spec", "spec_name", "counterfactual",
                                                  "edit_type")]
    columns += [(c, [_STRING], {"list": "string"}) for c in ("scm", "scm_aug")]
    question_yaml = [*({"name": k, "dtype": "string"} for k in _QUESTION_TEXT),
                     {"name": "parents", "list": "string"},
                     *({"name": k, "list": "float64"}
                       for k in ("p_yes_factual", "p_yes_counterfactual"))]
    columns += [("questions", [_QUESTION], {"list": question_yaml})]
    columns += [(c, {"dtype": "int64", "_type": "Value"}, "int64") for c in ("seed", "rank")]
    columns += [(c, _STRING, "string") for c in ("model", "scheduler")]
    columns += [("steps", {"dtype": "int64", "_type": "Value"}, "int64")]
    columns += [(c, {"dtype": "float64", "_type": "Value"}, "float64")
                for c in ("guidance", "cross_replace", "self_replace")]
    # One column per metric of the registry, null where not measured; the bools last.
    columns += [(m.name, {"dtype": "float64", "_type": "Value"}, "float64")
                for m in METRICS if m.kind == "float"]
    columns += [(m.name, {"dtype": "bool", "_type": "Value"}, "bool")
                for m in METRICS if m.kind == "bool"]
    return columns


def _arrow(kind: str) -> Any:
    """The Arrow type of a Column's kind (an Image is `datasets`' struct of PNG bytes and a
    file name)."""
    import pyarrow as pa

    if kind == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return {"string": pa.string()}[kind]


def arrow_schema() -> Any:
    import pyarrow as pa

    string = pa.string()
    assignment = pa.list_(pa.struct([("variable", string), ("from", string), ("to", string)]))
    question = pa.list_(pa.struct([
        *((k, string) for k in _QUESTION_TEXT), ("parents", pa.list_(string)),
        *((k, pa.list_(pa.float64())) for k in ("p_yes_factual", "p_yes_counterfactual"))]))
    types: dict[str, Any] = {
        **{c.name: _arrow(c.kind) for c in DESCRIBED_COLUMNS}, "intervention": assignment,
        "descendant_changes": assignment, "questions": question, "scm": pa.list_(string),
        "scm_aug": pa.list_(string),
        "seed": pa.int64(), "rank": pa.int64(), "steps": pa.int64(),
        "guidance": pa.float64(), "cross_replace": pa.float64(), "self_replace": pa.float64(),
        **{m.name: pa.float64() if m.kind == "float" else pa.bool_() for m in METRICS},
    }
    features = {name: feature for name, feature, _ in hf_features()}
    metadata = {b"huggingface": json.dumps({"info": {"features": features}}).encode("utf-8")}
    return pa.schema([(name, types.get(name, string)) for name, _, _ in hf_features()],
                     metadata=metadata)


def yaml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


def yaml_features() -> list[str]:
    lines = []
    for name, _, form in hf_features():
        lines.append(f"  - name: {name}")
        if isinstance(form, str):
            lines.append(f"    dtype: {form}")
        elif isinstance(form["list"], str):
            lines.append(f"    list: {form['list']}")
        else:
            lines.append("    list:")
            for field_ in form["list"]:
                lines.append(f"    - name: {yaml_str(field_['name'])}")
                if "list" in field_:  # a list inside the struct
                    lines.append(f"      list: {field_['list']}")
                else:
                    lines.append(f"      dtype: {field_['dtype']}")
    return lines
