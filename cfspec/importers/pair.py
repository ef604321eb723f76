"""A single pair judged: the passes of `cfspec.importers.passes`, in order, on one answer."""

from __future__ import annotations

from cfspec.importers.answer import Answer, ImportedItem, ImportOptions
from cfspec.importers.passes.binding import bind_variables
from cfspec.importers.passes.context import report_length, start
from cfspec.importers.passes.graph import judge_graphs
from cfspec.importers.passes.intervention import intervene
from cfspec.importers.passes.minimality import judge_minimality
from cfspec.importers.passes.spec import write_pair
from cfspec.importers.passes.surgery import judge_surgery


def judge_pair(answer: Answer, options: ImportOptions) -> ImportedItem:
    """Judge one answer with a counterfactual prompt and write its .scm text (not the file)."""
    # 1. The context: the answer, the options, what its reader already found.
    j = start(answer, options)
    # 2. The variables and both graphs.
    graphs = judge_graphs(j)
    # 3. The variables' words in the factual prompt.
    bound = bind_variables(j, graphs)
    # 4. What the counterfactual changes, and to what.
    iv = intervene(j, graphs, bound)
    # 5. Interventions and their consequences; whether the change is minimal.
    minimal = judge_minimality(j, graphs, iv)
    # 6. SCM_aug against do()-surgery on SCM.
    judge_surgery(j, graphs, iv)
    for piece, what in ((j.p0, "the original prompt"), (j.p1, "the counterfactual prompt")):
        if piece is not None:
            report_length(j, piece, what)
    # 7. The .scm, linted; what only lint finds is added.
    return write_pair(j, graphs, bound, iv, minimal)
