"""The variables of a caption set (`sets.py` says how they are found): the caption's words that
the outputs change together (`atoms_of`), outputs that change a word no other output changes
(`strays`), and each output's words for each variable (`split`)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cfspec.importers.answer import Output
from cfspec.importers.binding import Token
from cfspec.lang.words import ARTICLES, Opcode, exact

_MAX_SPLIT = 12  # words of one change split among variables by trying every cut


@dataclass(frozen=True)
class SetOutput:
    """One output of a caption set, aligned with the caption."""

    output: Output
    t1: list[Token]
    ops: list[Opcode]
    changed: frozenset[int]  # factual token indexes the output changes
    values: Mapping[int, tuple[int, int]] = field(default_factory=dict)  # atom -> its cf tokens


def words_of(toks: Sequence[Token]) -> tuple[str, ...]:
    """The tokens' words, compared case and punctuation aside (`exact`)."""
    return tuple(exact(t.text) for t in toks)


def atoms_of(t0: Sequence[Token], outs: Sequence[SetOutput]) -> list[tuple[int, int]]:
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


def _support(atoms: Sequence[tuple[int, int]], outs: Sequence[SetOutput]) -> list[list[int]]:
    """For each atom, the outputs that change it."""
    return [[n for n, o in enumerate(outs) if any(k in o.changed for k in range(i, j))]
            for i, j in atoms]


def strays(atoms: Sequence[tuple[int, int]], outs: Sequence[SetOutput]) -> dict[int, int]:
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


def split(t0: Sequence[Token], o: SetOutput, atoms: Sequence[tuple[int, int]],
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
                score += 0 if words_of(t1[c0:c1]) == words_of(t0[f0:f1]) else -10
                continue
            i, j = atoms[n]
            whole = words_of(t1[ends[n][0] if i < f0 else c0:ends[n][1] if j > f1 else c1])
            score += 3 if whole in lexicon.get(n, ()) else (1 if c0 < c1 else -1)
        score -= 0.01 * sum(abs(c - p) for c, p in zip(chosen, prop, strict=True))
        if best is None or score > best[0]:
            best = (score, list(chosen))
    return best[1] if best is not None else prop
