"""The instruction that asks an LLM for a spec of a caption (templates/llm_prompt.j2), with
few-shot examples from the bundled specs/."""

from __future__ import annotations

import json
from pathlib import Path

from cfspec import resources
from cfspec.lang.templates import render_template

# Examples in the order a reader learns best from: the running example first.
_EXAMPLES = ("cake.scm", "plate_fork.scm", "surfboard_horse.scm")

_JSON_EXAMPLE = {
    "original_prompt": "A woman is cutting into a cake with a large knife.",
    "counterfactual_prompt": "A man is cutting into a cake with a large knife.",
    "SCM": [
        "W → A: The woman's intention causes the cutting.",
        "W → K: She holds the knife.",
        "K → A: The knife is the tool of the cutting.",
        "C → A: The cake is what is cut.",
    ],
    "SCM_aug": [
        "M → A: The man's intention causes the cutting.",
        "M → K: He holds the knife.",
        "K → A: The knife is the tool of the cutting.",
        "C → A: The cake is what is cut.",
    ],
}


def specs_dir() -> Path | None:
    return resources.find("specs")


def _examples(limit: int) -> list[str]:
    folder = specs_dir()
    if folder is None or limit == 0:
        return []
    files = [folder / n for n in _EXAMPLES if (folder / n).is_file()]
    files += [f for f in sorted(folder.glob("*.scm")) if f not in files]
    out = []
    for path in files[:limit]:
        lines = path.read_text(encoding="utf-8").splitlines()
        # Drop the provenance comments at the top; the model needs the spec, not its history.
        while lines and (lines[0].startswith("#") or not lines[0].strip()):
            lines.pop(0)
        out.append("\n".join(lines).strip())
    return out


def instruction(caption: str, *, shape: str = "scm", count: int = 1, examples: int = 2) -> str:
    return render_template(
        "llm_prompt.j2",
        caption=" ".join(caption.split()),
        shape=shape,
        count=count,
        examples=_examples(examples),
        json_example=json.dumps(_JSON_EXAMPLE, ensure_ascii=False, indent=2),
    )
