"""Judging one answer as a sequence of passes, each a function that reads the records of the
passes before it and returns its own frozen record:

    context.start -> graph.judge_graphs -> binding.bind_variables -> intervention.intervene
    -> minimality.judge_minimality -> surgery.judge_surgery -> spec.write_pair

Diagnostics go into the `Judging` context's bag as they are found (a pass never prints);
`cfspec.importers.pair` composes the passes for a single pair, `cfspec.importers.sets` composes
the context, the shared checks and `spec.write_spec` for a caption set.
"""
