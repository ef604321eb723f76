"""Caption sets: one caption and many counterfactual captions of it (SocialCounterfactuals'
`caption`, `output_1` ... `output_N`), imported as ONE spec with a counterfactual per output.

The variables are found from all the outputs together. Each output is aligned with the caption
word by word (`coco_cf.changed_runs`, the alignment lint uses); a caption word belongs to a
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

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from cfspec.checks.graph import report_empty_graph
from cfspec.checks.interventions import report_too_many
from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Label
from cfspec.diagnostics.source import Span
from cfspec.importers import changes, writer
from cfspec.importers.analysis import _article_filter, _edit_type, _Judge, _point, cname
from cfspec.importers.answer import Answer, Declared, ImportedItem, ImportOptions, Output
from cfspec.importers.binding import STOPWORDS, Token, tokens
from cfspec.importers.changes import is_artefact, opcodes
from cfspec.importers.coco_cf import changed_runs
from cfspec.lang import ast
from cfspec.lang.keywords import keywords
from cfspec.lang.prompt import (
    ARTICLES,
    Opcode,
    align,
    exact,
    parse_template,
    render,
    says_the_same,
    split_words,
)
from cfspec.lang.set_expansion import value_slug

_MAX_NAME = 60  # a counterfactual's name: the pair id is the spec id, `__` and this
_MAX_SPLIT = 12  # words of one change split among variables by trying every cut
_MAX_SET_NAME = 40  # a set's name; its members add a slug per variable
_MAX_ORDERED = 5  # variables whose orders are tried to match the outputs' (5! = 120)
_NOWHERE = Span(1, 1, 1, 1, 0, 0)  # a value built only to be named as a set member is
SUPPRESS = "cfspec: ignore[too-many-interventions]"


@dataclass
class _Out:
    output: Output
    t1: list[Token]
    ops: list[Opcode]
    changed: set[int]  # factual token indexes the output changes
    values: dict[int, tuple[int, int]] = field(default_factory=dict)  # atom -> its cf tokens


def _punct(tok: Token) -> bool:
    return not any(c.isalnum() for c in tok.text)


def _words(toks: Sequence[Token]) -> tuple[str, ...]:
    return tuple(exact(t.text) for t in toks)


def atoms_of(t0: Sequence[Token], outs: Sequence[_Out]) -> list[tuple[int, int]]:
    """The variables' factual token ranges: maximal runs of changed words that every output
    changes all or none of; an article that changes only with the run after it joins it."""
    sig: dict[int, frozenset[int]] = {}
    for n, o in enumerate(outs):
        for k in o.changed:
            sig[k] = sig.get(k, frozenset()) | {n}
    runs: list[tuple[int, int]] = []
    for k in sorted(sig):
        if runs and runs[-1][1] == k and sig[runs[-1][0]] == sig[k]:
            runs[-1] = (runs[-1][0], k + 1)
        else:
            runs.append((k, k + 1))
    merged: list[tuple[int, int]] = []
    for i, j in runs:
        prev = merged[-1] if merged else None
        if prev is not None and prev[1] == i and prev[1] - prev[0] == 1 \
                and t0[prev[0]].plain in ARTICLES and sig[prev[0]] <= sig[i]:
            merged[-1] = (prev[0], j)
        else:
            merged.append((i, j))
    return merged


def _support(atoms: Sequence[tuple[int, int]], outs: Sequence[_Out]) -> list[list[int]]:
    """For each atom, the outputs that change it."""
    return [[n for n, o in enumerate(outs) if any(k in o.changed for k in range(i, j))]
            for i, j in atoms]


def strays(atoms: Sequence[tuple[int, int]], outs: Sequence[_Out]) -> dict[int, int]:
    """Outputs that change a word no other output changes as well as words others change (a
    typo, a rewrite): output index -> the first such atom."""
    support = _support(atoms, outs)
    out: dict[int, int] = {}
    for n in range(len(outs)):
        mine = [a for a, s in enumerate(support) if n in s]
        alone = [a for a in mine if support[a] == [n]]
        if alone and len(alone) < len(mine):
            out[n] = alone[0]
    return out


def split(t0: Sequence[Token], o: _Out, atoms: Sequence[tuple[int, int]],
          lexicon: dict[int, set[tuple[str, ...]]] | None) -> dict[int, tuple[int, int]] | None:
    """Each atom's counterfactual tokens in output `o`. Atom ends inside one change (two
    neighbouring variables changed at once) are cut where the pieces are values the other
    outputs show (`lexicon`), else in proportion; None when there is a cut to make and no
    lexicon yet."""
    starts = {i for i, _ in atoms}
    lo: dict[int, int] = {}
    hi: dict[int, int] = {}
    inner: list[tuple[Opcode, list[int]]] = []
    cuts = sorted({p for ij in atoms for p in ij})
    for op in o.ops:
        tag, a0, a1, b0, b1 = op
        if tag == "equal":
            for p in range(a0, a1 + 1):
                lo[p] = min(lo.get(p, b0 + p - a0), b0 + p - a0)
                hi[p] = max(hi.get(p, b0 + p - a0), b0 + p - a0)
            continue
        lo[a0], hi[a0] = min(lo.get(a0, b0), b0), max(hi.get(a0, b0), b0)
        lo[a1], hi[a1] = min(lo.get(a1, b1), b1), max(hi.get(a1, b1), b1)
        inside = [p for p in cuts if a0 < p < a1]
        if inside:
            inner.append((op, inside))
    at: dict[int, int] = {}
    for op, inside in inner:
        _, a0, a1, b0, b1 = op
        if lexicon is None:
            return None
        bounds = [a0, *inside, a1]
        ends = {n: (lo.get(i, b0), lo.get(j, b1) if j in starts else hi.get(j, b1))
                for n, (i, j) in enumerate(atoms)}
        at.update(zip(inside, _cut(t0, o.t1, bounds, b0, b1, atoms, ends, lexicon),
                      strict=True))
    out: dict[int, tuple[int, int]] = {}
    for n, (i, j) in enumerate(atoms):
        begin = at.get(i, lo.get(i, 0))
        end = at[j] if j in at else (lo.get(j, 0) if j in starts else hi.get(j, 0))
        out[n] = (begin, max(begin, end))
    return out


def _cut(t0: Sequence[Token], t1: Sequence[Token], bounds: list[int], b0: int, b1: int,
         atoms: Sequence[tuple[int, int]], ends: dict[int, tuple[int, int]],
         lexicon: dict[int, set[tuple[str, ...]]]) -> list[int]:
    """Where the counterfactual words b0..b1 are cut at the factual cuts inside `bounds`: the
    cut that makes the most variables' words known values of theirs (a literal piece must keep
    its words), then the one nearest to the factual proportions. `ends`: each atom's
    counterfactual range where it reaches past this change."""
    atom_at = {k: n for n, (i, j) in enumerate(atoms) for k in range(i, j)}
    segments = list(itertools.pairwise(bounds))
    width = max(1, bounds[-1] - bounds[0])
    prop = [b0 + round((b1 - b0) * (p - bounds[0]) / width) for p in bounds[1:-1]]
    if b1 - b0 > _MAX_SPLIT or len(segments) > 6:
        return prop
    best: tuple[float, list[int]] | None = None
    for chosen in itertools.combinations_with_replacement(range(b0, b1 + 1), len(bounds) - 2):
        points = [b0, *chosen, b1]
        score = 0.0
        for (f0, f1), c0, c1 in zip(segments, points, points[1:], strict=False):
            n = atom_at.get(f0)
            if n is None:  # words between variables: kept as they are, or this cut is wrong
                score += 0 if _words(t1[c0:c1]) == _words(t0[f0:f1]) else -10
                continue
            i, j = atoms[n]
            whole = _words(t1[ends[n][0] if i < f0 else c0:ends[n][1] if j > f1 else c1])
            score += 3 if whole in lexicon.get(n, ()) else (1 if c0 < c1 else -1)
        score -= 0.01 * sum(abs(c - p) for c, p in zip(chosen, prop, strict=True))
        if best is None or score > best[0]:
            best = (score, list(chosen))
    return best[1] if best is not None else prop


def names_from_id(raw_id: str | None, t0: Sequence[Token], atoms: Sequence[tuple[int, int]]
                  ) -> dict[int, str]:
    """Variable names from an item id that writes the caption with the varied words replaced
    by what they are (`a_photo_of_race_gender_barber` for `A photo of a White male barber`):
    where the id's words stand in for exactly as many variables, in order."""
    if not raw_id:
        return {}
    id_words = [w for w in raw_id.replace("-", "_").replace(" ", "_").split("_") if w]
    words = [k for k, t in enumerate(t0) if not _punct(t)]
    if not id_words or not words:
        return {}
    position = {k: n for n, k in enumerate(words)}
    caption = {exact(t0[k].text) for k in words}
    out: dict[int, str] = {}
    for tag, a0, a1, b0, b1 in align([exact(t0[k].text) for k in words],
                                     [exact(w) for w in id_words]):
        if tag != "replace":
            continue
        inside = [n for n, (i, j) in enumerate(atoms)
                  if all(a0 <= position.get(k, -1) < a1 for k in range(i, j)
                         if not _punct(t0[k]))]
        given = id_words[b0:b1]
        covered = {k for n in inside for k in range(*atoms[n])}
        others = [t0[words[p]] for p in range(a0, a1) if words[p] not in covered]
        if inside and len(inside) == len(given) and all(w.isalpha() for w in given) \
                and all(t.plain in STOPWORDS for t in others) \
                and not any(exact(w) in caption for w in given):
            for n, w in zip(inside, given, strict=True):
                out[n] = w[:1].upper() + w[1:]
    return out


def word_name(t0: Sequence[Token], i: int, j: int) -> str:
    """A variable named after its words' last content word (`White`, `male`)."""
    content = [t for t in t0[i:j] if not _punct(t) and t.plain not in STOPWORDS]
    head = (content or list(t0[i:j]))[-1].text
    return cname(head[:1].upper() + head[1:], "V")


def cf_name(values: Sequence[tuple[str, str | None, str]]) -> str:
    """A counterfactual named after its new values: `black_female`, `middle_eastern`,
    `no_hat` (variable, new words or None, the factual words)."""
    parts = []
    for new, old in ((v, o) for _, v, o in values):
        words = (new or "").split()
        while words and words[0].lower() in ARTICLES:
            words = words[1:]
        if not words:  # removed, or only its article is left (`a big ball` -> `a ball`)
            content = [w for w in old.split() if w.lower() not in ARTICLES]
            parts.append("no_" + cname((content or ["x"])[-1], "x").lower())
            continue
        parts.append(cname(" ".join(words), "v").lower())
    name = "_".join(parts)[:_MAX_NAME].rstrip("_") or "cf"
    return name if name[0].isalpha() else f"cf_{name}"


def set_name(variables: Sequence[str]) -> str:
    """`race_gender` for Race and Gender: their names in lower case, cut to a path-safe
    length, never a keyword (`cross_replace` would be one)."""
    name = "_".join(v.lower() for v in variables)[:_MAX_SET_NAME].rstrip("_")
    return f"{name}_set" if name in keywords() else name


def grid_of(names: Sequence[str], factual: dict[str, str],
            outputs: Sequence[dict[str, str | None]]
            ) -> tuple[list[str], dict[str, list[str | None]], list[str]] | None:
    """Whether the outputs are exactly a set: every combination of each variable's values (the
    caption's first) but the caption's own, each once, in any order. Returns the variables in
    the set's order, each one's value list, and each output's member name; None otherwise.

    The lists hold the values in order of first appearance; the variables are ordered so that
    the set expands in the outputs' order when some order does (SocialCounterfactuals lists
    Race outermost), else as in the caption."""
    if len(names) < 2:  # one variable: a set would be the explicit blocks renamed
        return None
    lists: dict[str, list[str | None]] = {n: [factual[n]] for n in names}
    keys: dict[str, list[tuple[str, ...] | None]] = {n: [_key(factual[n])] for n in names}
    cells: list[dict[str, int]] = []
    for vals in outputs:
        cell: dict[str, int] = {}
        for n in names:
            if n not in vals:
                cell[n] = 0
                continue
            value, key = vals[n], _key(vals[n])
            if key in keys[n]:
                at = keys[n].index(key)
                # The set compares values by their words: two spellings of one value, or a
                # value that is the caption's, would not expand to this output.
                if at == 0 or lists[n][at] != value:
                    return None
            else:
                at = len(lists[n])
                lists[n].append(value)
                keys[n].append(key)
            cell[n] = at
        cells.append(cell)
    sizes = [len(lists[n]) for n in names]
    if any(size < 2 for size in sizes) or len(outputs) != math.prod(sizes) - 1:
        return None
    seen = {tuple(c[n] for n in names) for c in cells}
    if len(seen) != len(cells):
        return None  # then some combination is missing: the grid is incomplete
    order = list(names)
    if len(names) <= _MAX_ORDERED:
        for tried in itertools.permutations(names):
            expanded = [combo for combo in itertools.product(
                *(range(len(lists[n])) for n in tried)) if any(combo)]
            if expanded == [tuple(c[n] for n in tried) for c in cells]:
                order = list(tried)
                break
    prefix = set_name(order)
    slugs = {n: [value_slug(_ast_value(v), k + 1) for k, v in enumerate(lists[n])]
             for n in names}
    members = ["_".join([prefix, *(slugs[n][c[n]] for n in order)]) for c in cells]
    if len(set(members)) != len(members):
        return None  # values whose names are alike (`Black` and `black!`) would collide
    return order, lists, members


def _key(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(exact(w) for w, _, _ in split_words(value))


def _ast_value(value: str | None) -> ast.Value:
    return ast.NoneValue(_NOWHERE) if value is None else ast.Text(value, _NOWHERE)


class _SetJudge(_Judge):
    def run(self) -> ImportedItem:
        a = self.answer
        p0 = self.p0
        assert p0 is not None and a.outputs is not None
        t0 = tokens(p0.text)
        kept = self.sift(t0)
        if not kept:  # nothing to write but the caption: judged as a pair with its first output
            first = a.outputs[0].piece
            a.diagnostics = [d for d in self.bag.items if d.span != first.span(self.source)]
            a.counterfactual = first
            return _Judge(a, self.options).run()
        while True:
            atoms = atoms_of(t0, kept)
            stray = strays(atoms, kept)
            if not stray or len(stray) == len(kept):  # every output its own way: keep them
                break
            for n, atom in stray.items():
                self.report_stray(kept[n], atoms[atom], t0, atoms)
            kept = [o for n, o in enumerate(kept) if n not in stray]
        lexicon: dict[int, set[tuple[str, ...]]] = {}
        for o in kept:
            found = split(t0, o, atoms, None)
            for n, (lo, hi) in (found or {}).items():
                lexicon.setdefault(n, set()).add(_words(o.t1[lo:hi]))
        for o in kept:
            o.values = split(t0, o, atoms, lexicon) or {}
        return self.write(t0, atoms, kept)

    # --- which outputs are imported ----------------------------------------------------

    def sift(self, t0: list[Token]) -> list[_Out]:
        assert self.p0 is not None and self.answer.outputs is not None
        kept: list[_Out] = []
        seen: dict[tuple[str, ...], Output] = {}
        for out in self.answer.outputs:
            t1 = tokens(out.piece.text)
            ops = opcodes(t0, t1)
            changed = {k for i, j in changed_runs(self.p0.text, out.piece.text)
                       for k in range(i, j)}
            where = out.piece.span(self.source)
            if not changed:
                same = all(op[0] == "equal" or is_artefact(op, t0, t1) for op in ops)
                self.report(
                    "extra-counterfactuals", where,
                    f"`{out.key}` is not imported: it has the caption's own words" if same else
                    f"`{out.key}` is not imported: it changes only punctuation",
                    label="nothing changed",
                    notes=["it would be a no-op intervention; the row's other outputs are "
                           "imported"],
                    help=f"give `{out.key}` the caption with the varied words changed, or drop "
                    "it")
                continue
            key = _words(t1)
            first = seen.get(key)
            if first is not None:
                self.report(
                    "extra-counterfactuals", where,
                    f"`{out.key}` is not imported: it repeats `{first.key}`",
                    label="the same caption again",
                    labels=[Label(first.piece.span(self.source), f"`{first.key}`")],
                    notes=["it would be the same counterfactual twice; the row's other outputs "
                           "are imported"],
                    help=f"drop `{out.key}`, or give it the combination of values it was meant "
                    "to have")
                continue
            seen[key] = out
            kept.append(_Out(out, t1, ops, changed))
        return kept

    def report_stray(self, o: _Out, atom: tuple[int, int], t0: list[Token],
                     atoms: list[tuple[int, int]]) -> None:
        assert self.p0 is not None
        piece = o.output.piece
        i, j = atom
        found = split(t0, o, atoms, {}) or {}
        lo, hi = found.get(atoms.index(atom), (0, 0))
        old = self.p0.text[t0[i].start:t0[j - 1].end]
        if lo < hi:
            where = piece.span(self.source, o.t1[lo].start, o.t1[hi - 1].end)
            new = repr(piece.text[o.t1[lo].start:o.t1[hi - 1].end])
        else:
            where, new = piece.span(self.source), "nothing"
        varied = [self.p0.text[t0[a].start:t0[b - 1].end] for a, b in atoms if (a, b) != atom]
        self.report(
            "extra-counterfactuals", where,
            f"`{o.output.key}` is not imported: it also changes {old!r} to {new}, which no other "
            "output of the row changes", label="changed only here",
            notes=["a typo, a rewrite or a second change: in the set it would change words "
                   "that no other counterfactual varies (a non-minimal change); the row's other "
                   "outputs are imported",
                   "the other outputs vary only " + ", ".join(repr(v) for v in varied)],
            help=f"correct `{o.output.key}` so that it changes only the varied words, or import "
            "it as a caption pair of its own")

    # --- the .scm -------------------------------------------------------------------------

    def write(self, t0: list[Token], atoms: list[tuple[int, int]], kept: list[_Out]  # noqa: C901
              ) -> ImportedItem:
        a, opts = self.answer, self.options
        p0 = self.p0
        assert p0 is not None and a.outputs
        from_id = names_from_id(a.raw_id, t0, atoms)
        names: list[str] = []
        for n, (i, j) in enumerate(atoms):
            base = cname(from_id.get(n) or word_name(t0, i, j), "V")
            name, k = base, 2
            while name in names:
                name, k = f"{base}_{k}", k + 1
            names.append(name)
        declared = [Declared(names[n], None, None, p0.span(self.source, t0[i].start,
                                                          t0[j - 1].end))
                    for n, (i, j) in enumerate(atoms)]
        report_empty_graph(self.report, self.answer.graph_span or _point(a.span),
                           "a caption set has no graph: imported as counterfactuals without "
                           "causes", "no edges", severity=Severity.WARNING,
                           notes=["without edges no variable has descendants: each "
                                  "counterfactual may change only the words it intervenes on"],
                           help="add the cause-effect edges to the written .scm by hand")
        self.length(p0, "the caption")

        # Each output's new values, by variable.
        words = {names[n]: p0.text[t0[i].start:t0[j - 1].end] for n, (i, j) in enumerate(atoms)}
        per_out: list[dict[str, str | None]] = []
        for o in kept:
            text = o.output.piece.text
            vals: dict[str, str | None] = {}
            for n, (lo, hi) in sorted(o.values.items()):
                new = text[o.t1[lo].start:o.t1[hi - 1].end] if lo < hi else None
                i, j = atoms[n]
                if new is not None and _words(o.t1[lo:hi]) == _words(t0[i:j]):
                    continue
                vals[names[n]] = new
            per_out.append(vals)

        # The template: `{{ R | a }}` where every value agrees with its article.
        filters: dict[str, str] = {}
        for n in range(len(atoms)):
            name = names[n]
            tried = [dict(v) for v in per_out]
            found = {_article_filter(words[name], v, name) for v in tried if name in v}
            found.add(_article_filter(words[name], {}, name))
            if len(found) == 1 and "" not in found:
                filters[name] = found.pop()
                for v, t in zip(per_out, tried, strict=True):
                    if name in v:
                        v[name] = t[name]
        pieces, pos = [], 0
        for n, (i, j) in enumerate(atoms):
            start = t0[i + 1].start if names[n] in filters else t0[i].start
            pieces += [p0.text[pos:t0[i].start],
                       "{{ " + names[n] + filters.get(names[n], "") + " }}"]
            words[names[n]] = p0.text[start:t0[j - 1].end]
            pos = t0[j - 1].end
        pieces.append(p0.text[pos:])
        template = "".join(pieces)
        frame, errors = parse_template(template)

        draft = writer.Draft(
            name=cname(a.item_id, "pair"), item_id=a.item_id, origin=_point(a.span),
            id_origin=_point(a.span), prompt_origin=p0.span(self.source), template=template)
        for d in declared:
            draft.variables.append(writer.DraftVar(d.name, words[d.name], False, None, d.span))
        alone = {next(iter(v)) for v in per_out if len(v) == 1}
        limit = opts.config.max_interventions
        taken: set[str] = set()
        item = ImportedItem(a.source, a.shape, a.item_id, a.span, None, [])
        grid = False
        for o, vals in zip(kept, per_out, strict=True):
            piece = o.output.piece
            targets = [n for n in names if n in vals]
            base = cf_name([(n, vals[n], words[n]) for n in targets])
            name, k = base, 2
            while name in taken:
                name, k = f"{base}_{k}", k + 1
            taken.add(name)
            cf = writer.DraftCounterfactual(name, piece.span(self.source))
            cf.do = [(n, vals[n]) for n in targets]
            if len(targets) > limit:
                if all(n in alone for n in targets):
                    cf.do_comment = SUPPRESS
                    grid = True
                else:
                    spans = [self.value_span(o, names.index(n)) for n in targets]
                    report_too_many(self.report, f"`{o.output.key}`", targets, spans, limit)
            if not opts.fix:
                self.artefacts(p0, piece)
            self.length(piece, f"`{o.output.key}`")
            rendered = None
            if not errors:
                filled: dict[str, str | None] = dict(words)
                filled.update(vals)
                rendered = render(frame, filled).text
            wanted = piece.text
            if rendered is None or rendered.strip() != wanted.strip():
                if opts.fix and rendered is not None and says_the_same(rendered, wanted):
                    self.fixes.append(f"wrote `{o.output.key}` the way the caption is "
                                      f"written: {rendered.strip()!r}")
                else:
                    cf.prompt = wanted
            cf.edit = _edit_type(changes.Plan({}, t0=t0, t1=o.t1), cf.prompt is None)
            draft.counterfactuals.append(cf)
            item.written[name] = dict(vals)
        first = draft.counterfactuals[0]
        item.counterfactual, item.edit = first.name, first.edit
        item.interventions = dict(item.written[first.name])
        found_grid = None
        if all(cf.prompt is None for cf in draft.counterfactuals):
            found_grid = grid_of(names, words, per_out)
        if found_grid is not None:
            order, lists, members = found_grid
            spans = [o.output.piece.span(self.source) for o in kept]
            draft.sets.append(writer.DraftSet(
                set_name(order), spans[0].to(spans[-1]), [(n, lists[n]) for n in order]))
            draft.counterfactuals = []
            item.written = {members[k]: dict(vals) for k, vals in enumerate(per_out)}
            item.counterfactual = members[0]
            self.notes.append(
                f"A caption set: the caption and {len(a.outputs)} counterfactual captions "
                f"(`{a.outputs[0].key}` to `{a.outputs[-1].key}`); {len(kept)} imported, "
                f"written as one set: every combination of the values of {', '.join(order)} "
                "but the caption's own, so the members may change several variables at once. "
                "Each member's edit type is the compiler's to choose.")
            return self.finish_set(draft, item)
        self.notes.append(
            f"A caption set: the caption and {len(a.outputs)} counterfactual captions "
            f"(`{a.outputs[0].key}` to `{a.outputs[-1].key}`); {len(kept)} imported, one "
            f"counterfactual each, over the variables {', '.join(names)}.")
        if grid:
            self.notes.append(
                "Counterfactuals that change several variables at once are cells of the set's "
                "grid: each of their variables is also changed alone by another counterfactual, "
                f"so their do() lines carry `# {SUPPRESS}`; remove it to hold them to "
                "max-interventions.")
        return self.finish_set(draft, item)

    def value_span(self, o: _Out, n: int) -> Span:
        lo, hi = o.values.get(n, (0, 0))
        piece = o.output.piece
        if lo < hi:
            return piece.span(self.source, o.t1[lo].start, o.t1[hi - 1].end)
        return piece.span(self.source)

    def finish_set(self, draft: writer.Draft, item: ImportedItem) -> ImportedItem:
        # What this import reported, at the severity it reported it: an output left out with
        # a warning must not hide the same code as an error on what was written.
        reported = {(d.code.name, d.level) for d in self.bag.items} \
            | {(n, level) for n in self.answer.silent for level in Severity}
        return self.write_spec(draft, item, lambda d: (d.code.name, d.level) not in reported)


def judge_set(answer: Answer, options: ImportOptions) -> ImportedItem:
    """Judge a caption set and write its .scm text (one spec, a counterfactual per output)."""
    return _SetJudge(answer, options).run()

