"""The report's causal graphs: a pair's `scm` and `scm_aug` edges as rows (each marked where the
intervention changed it) and as one SVG drawn by Graphviz's `dot` when it is installed."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from cfspec.workspace.pairs import Pair

DOT_TIMEOUT_S = 20


_EDGE = re.compile(r"^(?P<source>.+?) → (?P<target>.+?)(?::\s*(?P<text>.*))?$", re.S)


def parse_edge(edge: str) -> tuple[str, str, str]:
    """`A → B: description` -> (A, B, description); the description may be empty."""
    match = _EDGE.match(edge.strip())
    if match is None:
        return edge, "", ""
    return (match["source"].strip(), match["target"].strip(), (match["text"] or "").strip())


def edge_rows(edges: Sequence[str], other: Sequence[str]) -> list[dict[str, Any]]:
    others = {parse_edge(e)[:2] for e in other}
    out = []
    for edge in edges:
        source, target, text = parse_edge(edge)
        out.append({"source": source, "target": target, "text": text,
                    "differs": (source, target) not in others})
    return out


def graph_dot(pair: Pair) -> str:
    """Both graphs side by side as DOT (every label quoted by `lang.templates.dot_string`)."""
    from cfspec.lang.templates import dot_string

    lines = ["digraph pair {", "  rankdir=LR;", "  node [shape=ellipse, fontsize=11];"]
    graphs = (("factual", pair.scm, pair.scm_aug), ("counterfactual", pair.scm_aug, pair.scm))
    for index, (name, edges, other) in enumerate(graphs):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={dot_string(name)};")
        others = {parse_edge(e)[:2] for e in other}
        nodes: dict[str, str] = {}
        for edge in edges:
            source, target, _ = parse_edge(edge)
            for node in (source, target):
                if node and node not in nodes:
                    nodes[node] = f"n{index}_{len(nodes)}"
                    lines.append(f"    {nodes[node]} [label={dot_string(node)}];")
            if source and target:
                style = ' [color="#c2410c", penwidth=2]' if (source, target) not in others else ""
                lines.append(f"    {nodes[source]} -> {nodes[target]}{style};")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def graph_uri(pair: Pair) -> str | None:
    """The graphs as an SVG data URI, or None without Graphviz (or when dot fails)."""
    dot = shutil.which("dot")
    if dot is None or not (pair.scm or pair.scm_aug):
        return None
    try:
        done = subprocess.run([dot, "-Tsvg"], input=graph_dot(pair).encode("utf-8"),
                              capture_output=True, timeout=DOT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or b"<svg" not in done.stdout:
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(done.stdout).decode("ascii")
