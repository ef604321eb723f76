"""Caption sets: one caption and many counterfactual captions of it (SocialCounterfactuals'
`caption`, `output_1` ... `output_N`), imported as ONE spec with a counterfactual per output.

The variables are found from all the outputs together. Each output is aligned with the caption
word by word (`runs.changed_runs`, the alignment lint uses); a caption word belongs to a
variable when some output changes it, and two neighbouring changed words belong to the same
variable when every output changes both or neither. So `a White male barber` with `a White
female barber`, `a Black male barber` and `a Black female barber` has two variables, `White`
and `male`, although the last output changes both words at once; a value of several words
(`Middle Eastern`) is one value. An `a`/`an` that changes only with the word after it joins that
word's variable, and when every value agrees with its article the template says `{{ R | a }}`,
so `an Indian` and `a Middle Eastern` come out of the `a` filter.

Each output's values are the words it puts where each variable's words were (an output that
changes two neighbouring variables at once is split with the values the other outputs show
for each). Variables are named after the item's id when it names them in the caption's place
(`race_gender_barber`: `Race`, `Gender`), else after their words.

When the outputs are exactly every combination of two or more variables' values but the
caption's own (a complete grid, in any order), the row is written as ONE set,
`counterfactuals race_gender { do(Race in ["White", "Black", ...], Gender in ["male",
"female"]) }` (`grid_of`): its members may change several variables at once, and the compiler
picks each pair's edit type, as the explicit blocks' `edit` did (by word counts). Otherwise each
output becomes `counterfactual black_female { do(Race = "Black", Gender = "female") }`, and one
that changes several variables, each of which some other output of the row changes alone, is a
cell of an incomplete grid: the single changes isolate each cause, so the joint one is kept,
marked for `too-many-interventions` on its `do()` line and said in the header.

Outputs that do not fit are left out, each with an `extra-counterfactuals` warning at its place
in the input that says why; the rest of the row is imported: an output with the caption's own
words (it would be a no-op), one that repeats an earlier output, and one that changes a word no
other output of the row changes as well as the row's varied words (a typo or a rewrite). An
output that is not a string is a `syntax-error`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from cfspec.checks.graph import report_empty_graph
from cfspec.checks.interventions import report_too_many
from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Label
from cfspec.diagnostics.source import Span
from cfspec.importers import changes, writer
from cfspec.importers.answer import (
    Answer,
    Declared,
    ImportedItem,
    ImportOptions,
    Output,
    Piece,
    answer_photo,
)
from cfspec.importers.binding import Token, tokens
from cfspec.importers.changes import is_artefact, opcodes
from cfspec.importers.names import cname, word_name
from cfspec.importers.pair import judge_pair
from cfspec.importers.passes.context import (
    Judging,
    point,
    report_artefacts,
    report_length,
    start,
)
from cfspec.importers.passes.spec import article_filter, edit_type, literal_prompt, write_spec
from cfspec.importers.runs import changed_runs
from cfspec.importers.set_atoms import SetOutput, atoms_of, split, strays, words_of
from cfspec.importers.set_names import cf_name, grid_of, names_from_id, set_name
from cfspec.lang.prompt import Frame, parse_template, render

SUPPRESS = "cfspec: ignore[too-many-interventions]"
Atoms = Sequence[tuple[int, int]]
Values = dict[str, str | None]  # an output's new words, by variable


def judge_set(answer: Answer, options: ImportOptions) -> ImportedItem:
    """Judge a caption set and write its .scm text (one spec, a counterfactual per output)."""
    j = start(answer, options)
    assert j.p0 is not None and answer.outputs is not None
    t0 = tokens(j.p0.text)
    # 1. Outputs with nothing new (the caption's own words, a repeat) are left out.
    kept = _sift(j, answer.outputs, t0)
    if not kept:  # nothing to write but the caption: judged as a pair with its first output
        first = answer.outputs[0].piece
        return judge_pair(dataclasses.replace(
            answer, counterfactual=first,
            diagnostics=[d for d in j.bag.items if d.span != first.span(j.source)]), options)
    # 2. The variables, without the outputs that change a word no other output changes.
    atoms, kept = _without_strays(j, t0, kept)
    # 3. Each output's words for each variable.
    kept = _with_values(t0, atoms, kept)
    # 4. The .scm.
    return _write(j, t0, atoms, kept)


# --- which outputs are imported ------------------------------------------------------------


def _sift(j: Judging, outputs: Sequence[Output], t0: list[Token]) -> list[SetOutput]:
    kept: list[SetOutput] = []
    seen: dict[tuple[str, ...], Output] = {}
    for out in outputs:
        t1 = tokens(out.piece.text)
        ops = opcodes(t0, t1)
        changed = frozenset(k for i, k_end in changed_runs(t0, t1, ops)
                            for k in range(i, k_end))
        where = out.piece.span(j.source)
        if not changed:
            same = all(op[0] == "equal" or is_artefact(op, t0, t1) for op in ops)
            j.report(
                "extra-counterfactuals", where,
                f"`{out.key}` is not imported: it has the caption's own words" if same else
                f"`{out.key}` is not imported: it changes only punctuation",
                label="nothing changed",
                notes=["it would be a no-op intervention; the row's other outputs are "
                       "imported"],
                help=f"give `{out.key}` the caption with the varied words changed, or drop "
                "it")
            continue
        key = words_of(t1)
        first = seen.get(key)
        if first is not None:
            j.report(
                "extra-counterfactuals", where,
                f"`{out.key}` is not imported: it repeats `{first.key}`",
                label="the same caption again",
                labels=[Label(first.piece.span(j.source), f"`{first.key}`")],
                notes=["it would be the same counterfactual twice; the row's other outputs "
                       "are imported"],
                help=f"drop `{out.key}`, or give it the combination of values it was meant "
                "to have")
            continue
        seen[key] = out
        kept.append(SetOutput(out, t1, ops, changed))
    return kept


def _without_strays(j: Judging, t0: list[Token], kept: list[SetOutput]
                    ) -> tuple[list[tuple[int, int]], list[SetOutput]]:
    """The atoms, found again each time stray outputs are left out (each reported)."""
    while True:
        atoms = atoms_of(t0, kept)
        stray = strays(atoms, kept)
        if not stray or len(stray) == len(kept):  # every output its own way: keep them
            return atoms, kept
        for n, atom in stray.items():
            _report_stray(j, kept[n], atoms[atom], t0, atoms)
        kept = [o for n, o in enumerate(kept) if n not in stray]


def _report_stray(j: Judging, o: SetOutput, atom: tuple[int, int], t0: list[Token],
                  atoms: list[tuple[int, int]]) -> None:
    assert j.p0 is not None
    p0, piece = j.p0, o.output.piece
    i, k = atom
    found = split(t0, o, atoms, {}) or {}
    lo, hi = found.get(atoms.index(atom), (0, 0))
    old = p0.text[t0[i].start:t0[k - 1].end]
    if lo < hi:
        where = piece.span(j.source, o.t1[lo].start, o.t1[hi - 1].end)
        new = repr(piece.text[o.t1[lo].start:o.t1[hi - 1].end])
    else:
        where, new = piece.span(j.source), "nothing"
    varied = [p0.text[t0[a].start:t0[b - 1].end] for a, b in atoms if (a, b) != atom]
    j.report(
        "extra-counterfactuals", where,
        f"`{o.output.key}` is not imported: it also changes {old!r} to {new}, which no other "
        "output of the row changes", label="changed only here",
        notes=["a typo, a rewrite or a second change: in the set it would change words "
               "that no other counterfactual varies (a non-minimal change); the row's other "
               "outputs are imported",
               "the other outputs vary only " + ", ".join(repr(v) for v in varied)],
        help=f"correct `{o.output.key}` so that it changes only the varied words, or import "
        "it as a caption pair of its own")


def _with_values(t0: list[Token], atoms: Atoms, kept: list[SetOutput]) -> list[SetOutput]:
    """Each output with its words for each atom, cut where the other outputs' values say."""
    lexicon: dict[int, set[tuple[str, ...]]] = {}
    for o in kept:
        found = split(t0, o, atoms, None)
        for n, (lo, hi) in (found or {}).items():
            lexicon.setdefault(n, set()).add(words_of(o.t1[lo:hi]))
    return [dataclasses.replace(o, values=split(t0, o, atoms, lexicon) or {}) for o in kept]


# --- the .scm --------------------------------------------------------------------------------


def _write(j: Judging, t0: list[Token], atoms: Atoms, kept: list[SetOutput]) -> ImportedItem:
    a, p0 = j.answer, j.p0
    assert p0 is not None and a.outputs
    names = _variable_names(a.raw_id, t0, atoms)
    declared = [Declared(names[n], None, None, p0.span(j.source, t0[i].start, t0[k - 1].end))
                for n, (i, k) in enumerate(atoms)]
    report_empty_graph(j.report, a.graph_span or point(a.span),
                       "a caption set has no graph: imported as counterfactuals without "
                       "causes", "no edges", severity=Severity.WARNING,
                       notes=["without edges no variable has descendants: each "
                              "counterfactual may change only the words it intervenes on"],
                       help="add the cause-effect edges to the written .scm by hand")
    report_length(j, p0, "the caption")
    per_out = [_new_values(p0, t0, atoms, names, o) for o in kept]
    template, words = _template(p0, t0, atoms, names, per_out)
    draft = writer.Draft(
        name=cname(a.item_id, "pair"), item_id=a.item_id, origin=point(a.span),
        id_origin=point(a.span), prompt_origin=p0.span(j.source), template=template,
        photo=answer_photo(a, j.options))
    for d in declared:
        draft.variables.append(writer.DraftVar(d.name, words[d.name], False, None, d.span))
    item = ImportedItem(a.source, a.shape, a.item_id, a.span, None, [])
    alone = {next(iter(v)) for v in per_out if len(v) == 1}
    frame, errors = parse_template(template)
    taken: set[str] = set()
    grid = False
    for o, vals in zip(kept, per_out, strict=True):
        cf = _counterfactual(j, o, vals, names, words, None if errors else frame, t0,
                             alone, taken)
        grid = grid or cf.do_comment == SUPPRESS
        draft.counterfactuals.append(cf)
        item.written[cf.name] = dict(vals)
    first = draft.counterfactuals[0]
    item.counterfactual, item.edit = first.name, first.edit
    item.interventions = dict(item.written[first.name])
    if all(cf.prompt is None for cf in draft.counterfactuals):
        found_grid = grid_of(names, words, per_out)
        if found_grid is not None:
            _as_set(j, draft, item, found_grid, kept, per_out)
            return _write_set_spec(j, draft, item)
    j.notes.append(
        f"A caption set: the caption and {len(a.outputs)} counterfactual captions "
        f"(`{a.outputs[0].key}` to `{a.outputs[-1].key}`); {len(kept)} imported, one "
        f"counterfactual each, over the variables {', '.join(names)}.")
    if grid:
        j.notes.append(
            "Counterfactuals that change several variables at once are cells of the set's "
            "grid: each of their variables is also changed alone by another counterfactual, "
            f"so their do() lines carry `# {SUPPRESS}`; remove it to hold them to "
            "max-interventions.")
    return _write_set_spec(j, draft, item)


def _variable_names(raw_id: str | None, t0: list[Token], atoms: Atoms) -> list[str]:
    """From the item's id where it names them, else after their words; each unique."""
    from_id = names_from_id(raw_id, t0, atoms)
    names: list[str] = []
    for n, (i, k) in enumerate(atoms):
        base = cname(from_id.get(n) or word_name(t0, i, k), "V")
        name, m = base, 2
        while name in names:
            name, m = f"{base}_{m}", m + 1
        names.append(name)
    return names


def _new_values(p0: Piece, t0: list[Token], atoms: Atoms, names: list[str], o: SetOutput
                ) -> Values:
    """The output's new words for each variable it changes."""
    text = o.output.piece.text
    vals: Values = {}
    for n, (lo, hi) in sorted(o.values.items()):
        new = text[o.t1[lo].start:o.t1[hi - 1].end] if lo < hi else None
        i, k = atoms[n]
        if new is not None and words_of(o.t1[lo:hi]) == words_of(t0[i:k]):
            continue
        vals[names[n]] = new
    return vals


def _template(p0: Piece, t0: list[Token], atoms: Atoms, names: list[str],
              per_out: list[Values]) -> tuple[str, dict[str, str]]:
    """The caption with each variable's words as `{{ Name }}`, `{{ Name | a }}` where every
    value agrees with its article (the values in `per_out` then lose theirs), and each
    variable's factual words."""
    words = {names[n]: p0.text[t0[i].start:t0[k - 1].end] for n, (i, k) in enumerate(atoms)}
    filters: dict[str, str] = {}
    for name in names:
        tried = [dict(v) for v in per_out]
        found = {article_filter(words[name], v, name) for v in tried if name in v}
        found.add(article_filter(words[name], {}, name))
        if len(found) == 1 and "" not in found:
            filters[name] = found.pop()
            for v, t in zip(per_out, tried, strict=True):
                if name in v:
                    v[name] = t[name]
    pieces, pos = [], 0
    for n, (i, k) in enumerate(atoms):
        start = t0[i + 1].start if names[n] in filters else t0[i].start
        pieces += [p0.text[pos:t0[i].start],
                   "{{ " + names[n] + filters.get(names[n], "") + " }}"]
        words[names[n]] = p0.text[start:t0[k - 1].end]
        pos = t0[k - 1].end
    pieces.append(p0.text[pos:])
    return "".join(pieces), words


def _counterfactual(j: Judging, o: SetOutput, vals: Values, names: list[str],
                    words: Mapping[str, str], frame: Frame | None, t0: list[Token],
                    alone: set[str], taken: set[str]) -> writer.DraftCounterfactual:
    """One output as `counterfactual NAME { do(...) }`, with its own checks. One that changes
    more variables than allowed, each of which another output changes `alone`, is a cell of
    an incomplete grid: kept, its do() line marked."""
    assert j.p0 is not None
    piece, key = o.output.piece, o.output.key
    targets = [n for n in names if n in vals]
    base = cf_name([(n, vals[n], words[n]) for n in targets])
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    cf = writer.DraftCounterfactual(name, piece.span(j.source))
    cf.do = [(n, vals[n]) for n in targets]
    limit = j.options.config.max_interventions
    if len(targets) > limit and all(n in alone for n in targets):
        cf.do_comment = SUPPRESS
    elif len(targets) > limit:
        spans = [_value_span(j, o, names.index(n)) for n in targets]
        report_too_many(j.report, f"`{key}`", targets, spans, limit)
    if not j.options.fix:
        report_artefacts(j, j.p0, piece)
    report_length(j, piece, f"`{key}`")
    rendered = None
    if frame is not None:
        filled: dict[str, str | None] = dict(words)
        filled.update(vals)
        rendered = render(frame, filled).text
    cf.prompt = literal_prompt(j, rendered, piece.text,
                               f"wrote `{key}` the way the caption is written")
    cf.edit = edit_type(changes.Plan({}, t0=t0, t1=o.t1), cf.prompt is None)
    return cf


def _value_span(j: Judging, o: SetOutput, n: int) -> Span:
    lo, hi = o.values.get(n, (0, 0))
    piece = o.output.piece
    if lo < hi:
        return piece.span(j.source, o.t1[lo].start, o.t1[hi - 1].end)
    return piece.span(j.source)


def _as_set(j: Judging, draft: writer.Draft, item: ImportedItem,
            found: tuple[list[str], dict[str, list[str | None]], list[str]],
            kept: Sequence[SetOutput], per_out: Sequence[Values]) -> None:
    """The counterfactuals replaced by one `counterfactuals` set of every combination."""
    a = j.answer
    assert a.outputs
    order, lists, members = found
    spans = [o.output.piece.span(j.source) for o in kept]
    draft.sets.append(writer.DraftSet(
        set_name(order), spans[0].to(spans[-1]), [(n, lists[n]) for n in order]))
    draft.counterfactuals = []
    item.written = {members[k]: dict(vals) for k, vals in enumerate(per_out)}
    item.counterfactual = members[0]
    j.notes.append(
        f"A caption set: the caption and {len(a.outputs)} counterfactual captions "
        f"(`{a.outputs[0].key}` to `{a.outputs[-1].key}`); {len(kept)} imported, "
        f"written as one set: every combination of the values of {', '.join(order)} "
        "but the caption's own, so the members may change several variables at once. "
        "Each member's edit type is the compiler's to choose.")


def _write_set_spec(j: Judging, draft: writer.Draft, item: ImportedItem) -> ImportedItem:
    # What this import reported, at the severity it reported it: an output left out with
    # a warning must not hide the same code as an error on what was written.
    reported = {(d.code.name, d.level) for d in j.bag.items} \
        | {(n, level) for n in j.answer.silent for level in Severity}
    return write_spec(j, draft, item, lambda d: (d.code.name, d.level) not in reported)
