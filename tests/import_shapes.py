"""Large LLM answers for the import's linearity tests (tests/test_import_linear.py) and its
benchmark (benchmarks/import_bench.py): each shape is a graph of `n` edges written the way an
LLM writes it, built to reach one place where an importer could keep a structure that grows
with the square of the graph (all pairs of nodes, a rescan of every edge per node, a copy of a
long line per diagnostic)."""

from __future__ import annotations

import json
from collections.abc import Callable

PROMPT = "A woman is cutting a cake with a knife."
COUNTERFACTUAL = "A man is cutting a cake with a knife."


def _answer(edges: list[str], aug: list[str] | None = None, *, indent: int | None = 1) -> str:
    doc: dict[str, object] = {"original_prompt": PROMPT, "counterfactual_prompt": COUNTERFACTUAL,
                              "SCM": edges}
    if aug is not None:
        doc["SCM_aug"] = aug
    return json.dumps(doc, indent=indent)


def chain(n: int) -> str:
    """`V0 -> V1 -> ... -> Vn`, one edge string each: the issue's 16,000-edge answer."""
    return _answer([f"V{i} -> V{i + 1}: x" for i in range(n)])


def chain_one_line(n: int) -> str:
    """The same chain as compact JSON: the whole answer is one line, so every diagnostic's
    snippet is an excerpt of a line as long as the file."""
    return _answer([f"V{i} → V{i + 1}: x" for i in range(n)], indent=None)


def chain_with_aug(n: int) -> str:
    """A chain and an identical counterfactual graph: every node compared with the other
    graph's."""
    edges = [f"V{i} -> V{i + 1}: x" for i in range(n)]
    return _answer(edges, edges)


def renamed(n: int) -> str:
    """SCM_aug renames every node (`V3` -> `W3`): every vanished node is paired with a new one
    in its place."""
    return _answer([f"V{i} -> V{i + 1}: x" for i in range(n)],
                   [f"W{i} -> W{i + 1}: x" for i in range(n)])


def reversed_edges(n: int) -> str:
    """SCM_aug reverses every edge: each reversal matched with the edge it reverses."""
    return _answer([f"V{i} -> V{i + 1}: x" for i in range(n)],
                   [f"V{i + 1} -> V{i}: x" for i in range(n)])


def cycle(n: int) -> str:
    """One cycle through every node: one diagnostic labelling every edge."""
    return _answer([f"V{i} -> V{(i + 1) % n}: x" for i in range(n)])


def star(n: int) -> str:
    """A hub with `n` leaves, all renamed in SCM_aug: every leaf holds the same position."""
    return _answer([f"H -> L{i}: x" for i in range(n)], [f"H -> M{i}: x" for i in range(n)])


def text_chain(n: int) -> str:
    """The chain as a free-text answer (`llm-text`)."""
    lines = [f"Original prompt: {PROMPT}", f"Counterfactual prompt: {COUNTERFACTUAL}", "",
             "Edges:"]
    return "\n".join([*lines, *(f"- V{i} -> V{i + 1}: x" for i in range(n))]) + "\n"


SHAPES: dict[str, Callable[[int], str]] = {
    "chain": chain,
    "chain-one-line": chain_one_line,
    "chain-with-aug": chain_with_aug,
    "renamed": renamed,
    "reversed": reversed_edges,
    "cycle": cycle,
    "star": star,
    "text-chain": text_chain,
}
