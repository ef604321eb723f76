"""A spec's causal graph as Graphviz DOT, each counterfactual overlaid (templates/graph.dot.j2)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from cfspec.checks.names import LATENT_KINDS
from cfspec.lang.model import SpecModel
from cfspec.lang.templates import render_template


class GraphvizMissing(RuntimeError):
    pass


def spec_dot(model: SpecModel) -> str:
    spec = model.spec
    variables = [
        {"name": n, "words": v.value if v.value is not None else "(absent)",
         "latent": bool(v.kind and v.kind.text in LATENT_KINDS)}
        for n, v in model.variables.items()
    ]
    edges = [
        {"source": u, "target": v, "description": d["node"].description.value
         if d["node"].description else ""}
        for u, v, d in model.graph.edges(data=True)
    ]
    counterfactuals = []
    for cm in model.counterfactuals:
        words: dict[str, str] = {}
        for name, value in {**model.words(), **cm.new_words()}.items():
            words[name] = "(removed)" if value is None else value
        counterfactuals.append({
            "name": cm.node.name.text,
            "intervened": set(cm.interventions),
            "changed": set(cm.sets),
            "descendants": cm.descendants,
            "words": words,
        })
    title = spec.prompts[0].value.value if spec.prompts else spec.name.text
    return render_template("graph.dot.j2", name=spec.name.text, title=title,
                           variables=variables, edges=edges, counterfactuals=counterfactuals)


def write_graph(dot: str, output: Path) -> None:
    """Write DOT as is, or SVG/PNG through Graphviz's `dot` when it is installed."""
    suffix = output.suffix.lower()
    if suffix in ("", ".dot", ".gv"):
        from cfspec.workspace.atomic import write_text_atomic

        write_text_atomic(output, dot)
        return
    if suffix not in (".svg", ".png", ".pdf"):
        raise GraphvizMissing(f"unknown output type {suffix!r}; use .dot, .svg, .png or .pdf")
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(
            f"writing {suffix} needs Graphviz's `dot`, which is not installed "
            "(apt install graphviz / brew install graphviz); write .dot instead and render it "
            "elsewhere"
        )
    done = subprocess.run([exe, f"-T{suffix[1:]}", "-o", str(output)], input=dot.encode("utf-8"),
                          capture_output=True)
    if done.returncode != 0:
        raise OSError(done.stderr.decode("utf-8", "replace").strip() or f"`dot` failed on {output}")
