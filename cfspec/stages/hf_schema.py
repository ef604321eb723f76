"""The columns of `export --to hf`, in the three forms that must agree: the `datasets` features
JSON, the Arrow schema of the Parquet shards, and the dataset card's YAML header. One list,
`hf_features`, is the source of all three and of the Croissant record set (`stages.croissant`).
"""

from __future__ import annotations

import json
from typing import Any

from cfspec.workspace.metrics import METRICS

_STRING = {"dtype": "string", "_type": "Value"}
_FLOAT = {"dtype": "float64", "_type": "Value"}
_ASSIGNMENT = {"variable": _STRING, "from": _STRING, "to": _STRING}
# The spec's questions with a VQA model's P(yes) on [image 0, image 1] per wording
# (cfspec.workspace.answers.questions_column): enough to score them again with another model.
_QUESTION_TEXT = ("id", "variable", "kind", "factual", "counterfactual", "expect")
_QUESTION = {**{k: _STRING for k in _QUESTION_TEXT}, "parents": [_STRING],
             "p_yes_factual": [_FLOAT], "p_yes_counterfactual": [_FLOAT]}


def hf_features() -> list[tuple[str, Any, Any]]:
    """(column, `datasets` features JSON, YAML form) for every column, in order."""
    columns: list[tuple[str, Any, Any]] = [("id", _STRING, "string"),
                                           ("pair_id", _STRING, "string")]
    columns += [(c, {"_type": "Image"}, "image") for c in ("image_0", "image_1")]
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


def arrow_schema() -> Any:
    import pyarrow as pa

    string = pa.string()
    image = pa.struct([("bytes", pa.binary()), ("path", string)])
    assignment = pa.list_(pa.struct([("variable", string), ("from", string), ("to", string)]))
    question = pa.list_(pa.struct([
        *((k, string) for k in _QUESTION_TEXT), ("parents", pa.list_(string)),
        *((k, pa.list_(pa.float64())) for k in ("p_yes_factual", "p_yes_counterfactual"))]))
    types: dict[str, Any] = {
        "image_0": image, "image_1": image, "intervention": assignment,
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
