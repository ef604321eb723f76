"""What the counterfactual prompt changes, word by word, and which variable each change
belongs to.

The factual prompt is cut into slots (the words each variable is bound to). A change inside a
slot is that variable's new words; words inserted where an empty slot sits (a variable the
factual does not show, `(i, i)`: before token i) are its words; other words inserted next to a
slot extend it (`a cake` -> `a chocolate cake`); an `a`/`an` that changes with the word after it
joins that word's slot. A
clause inserted where no slot is, that holds the new words of an intervened variable the
caption does not show (a latent `knife` replaced by `fork`), is that variable's new words. Any
other changed word is unexplained: `non-minimal-change`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cfspec.importers.binding import Token, tokens
from cfspec.lang.words import (
    ARTICLES,
    Opcode,
    align,
    exact,
    is_punctuation,
    key_places,
    written_alike,
)


def opcodes(t0: Sequence[Token], t1: Sequence[Token]) -> list[Opcode]:
    """The word diff of two prompts: `cfspec.lang.words.align`, the one alignment that lint and
    import share (fewest edits, substitutions preferred)."""
    return align([exact(t.text) for t in t0], [exact(t.text) for t in t1])


@dataclass
class Plan:
    slots: dict[str, tuple[int, int]]  # factual token ranges, articles joined; (i, i): none
    values: dict[str, str | None] = field(default_factory=dict)  # changed -> new words
    owned: dict[str, tuple[int, int]] = field(default_factory=dict)  # their counterfactual tokens
    # Changed words nothing explains, in prompt order: (0, factual token) or (1, counterfactual).
    loose: list[tuple[int, int]] = field(default_factory=list)
    same: bool = False  # the two prompts have the same words
    t0: list[Token] = field(default_factory=list)
    t1: list[Token] = field(default_factory=list)


def is_artefact(op: Opcode, t0: Sequence[Token], t1: Sequence[Token]) -> bool:
    """A change in writing only (`They'll` -> `They 'll`): reported as `caption-artefact`,
    never attributed to a variable."""
    tag, a0, a1, b0, b1 = op
    return tag != "equal" and written_alike([t.text for t in t0[a0:a1]],
                                            [t.text for t in t1[b0:b1]])


def absent_slot(t0: Sequence[Token], at: int, slot: str) -> tuple[int, str]:
    """Where a variable the factual prompt does not show goes, before token `at`: the offset in
    the factual prompt and the text to put there. After the word before it, with a space
    (`A{ X} white umbrella`), or at the very start, with a space after it (`{X }cars are
    stopped`); rendering takes that space away when the variable is `none`."""
    if at > 0:
        return t0[at - 1].end, " " + slot
    return t0[0].start, slot + " "


@dataclass
class _Words:
    """The working state of `plan`: which variable each factual token is bound to (`slot_of`),
    which owns each counterfactual token (`owner`), which counterfactual tokens changed, and
    the variables whose words changed, in order."""

    slot_of: list[str | None]
    owner: list[str | None]
    changed_at: list[bool]
    touched: list[str] = field(default_factory=list)


def plan(
    p0: str,
    p1: str,
    slots: Mapping[str, tuple[int, int]],
    latent: Mapping[str, Sequence[Sequence[str]]] | None = None,
    prefer: set[str] | None = None,
) -> Plan:
    """Attribute every changed word. `latent` maps an intervened variable that has no slot to
    the normalized words its new value may show up as; `prefer` are intervened variables, which
    win an insertion between two slots."""
    t0, t1 = tokens(p0), tokens(p1)
    out = Plan(dict(slots), t0=t0, t1=t1)
    words = _Words([None] * len(t0), [None] * len(t1), [False] * len(t1))
    for name, (i, j) in slots.items():
        for k in range(i, j):
            words.slot_of[k] = name
    absent = {i: name for name, (i, j) in slots.items() if i == j}
    ops = [op for op in opcodes(t0, t1) if not is_artefact(op, t0, t1)]
    out.same = all(tag == "equal" for tag, *_ in ops)
    for op in ops:
        tag, a0, a1, b0, b1 = op
        if tag == "equal":
            for k in range(a1 - a0):
                words.owner[b0 + k] = words.slot_of[a0 + k]
            continue
        for j in range(b0, b1):
            words.changed_at[j] = True
        if tag == "insert" or all(is_punctuation(t.text) for t in t0[a0:a1]):
            _inserted(words, op, absent.get(a0), prefer or set())
        else:
            _replaced(out, words, op)
    _absorb(out, t1, words.owner, words.changed_at, latent or {})
    after = [(1, j) for j in range(len(t1))
             if words.changed_at[j] and words.owner[j] is None and not is_punctuation(t1[j].text)]
    out.loose = sorted([*out.loose, *after], key=lambda sj: _at(sj, ops))
    _new_words(out, p1, slots, words)
    return out


def _inserted(words: _Words, op: Opcode, absent: str | None, prefer: set[str]) -> None:
    """Words put in, or in place of nothing but punctuation (`mountain..` -> `mountain
    goats`): an empty slot's words when one sits there, else they extend the slot next to
    them."""
    _, a0, _, b0, b1 = op
    chosen = absent or _neighbour(words.slot_of, a0, prefer, words.touched)
    if chosen is not None:
        for j in range(b0, b1):
            words.owner[j] = chosen
        words.touched.append(chosen)


def _replaced(out: Plan, words: _Words, op: Opcode) -> None:
    """Words replaced or deleted: each slot's words go to it; a factual word outside every
    slot joins one (an article before its word, a deleted phrase's preposition) or is loose."""
    tag, a0, a1, b0, b1 = op
    slot_of, t0 = words.slot_of, out.t0
    inside = list(dict.fromkeys(v for v in slot_of[a0:a1] if v is not None))
    for i in range(a0, a1):
        if slot_of[i] is not None or is_punctuation(t0[i].text):
            continue
        joined = _article_joins(t0, slot_of, i, inside)
        if joined is None and tag == "delete" and inside:
            # `next to a lamp` goes with the lamp: a deleted phrase is its variable's.
            joined = _nearest(slot_of, i, a0, a1)
        if joined is not None:
            _join(out, slot_of, joined, i)
        else:
            out.loose.append((0, i))
    words.touched.extend(inside)
    if tag == "replace" and inside:
        _share(words.owner, slot_of, a0, a1, b0, b1, inside)


def _new_words(out: Plan, p1: str, slots: Mapping[str, tuple[int, int]], words: _Words
               ) -> None:
    """Each changed variable's new words (None: removed), and the counterfactual tokens it
    owns; a variable whose words came out the same is no change."""
    t0, t1 = out.t0, out.t1
    for name in dict.fromkeys([*words.touched, *out.owned]):
        mine = [j for j in range(len(t1)) if words.owner[j] == name]
        if not mine:
            out.values[name] = None
            continue
        lo, hi = min(mine), max(mine) + 1
        # Punctuation at the edges is the caption's (`beach.`), not the variable's words.
        while hi - lo > 1 and is_punctuation(t1[hi - 1].text):
            hi -= 1
        while hi - lo > 1 and is_punctuation(t1[lo].text):
            lo += 1
        if name in slots:
            i, j = out.slots[name]
            if [exact(t.text) for t in t0[i:j]] == [exact(t.text) for t in t1[lo:hi]]:
                continue  # the same words: not a change
        out.values[name] = p1[t1[lo].start:t1[hi - 1].end]
        out.owned[name] = (lo, hi)


def _at(side_index: tuple[int, int], ops: list[Opcode]) -> tuple[int, int, int]:
    """Sort key: the opcode a loose word belongs to, factual words before counterfactual."""
    side, k = side_index
    for n, (_, a0, a1, b0, b1) in enumerate(ops):
        if (a0 <= k < a1) if side == 0 else (b0 <= k < b1):
            return n, side, k
    return len(ops), side, k


def _nearest(slot_of: list[str | None], i: int, a0: int, a1: int) -> str | None:
    """The slot inside [a0, a1) a loose word belongs to: the next one (a preposition goes with
    the noun after it), else the previous one."""
    for k in range(i + 1, a1):
        if slot_of[k] is not None:
            return slot_of[k]
    for k in range(i - 1, a0 - 1, -1):
        if slot_of[k] is not None:
            return slot_of[k]
    return None


def _join(out: Plan, slot_of: list[str | None], name: str, i: int) -> None:
    """Extend `name`'s slot over token i (and whatever lies between, which is punctuation or
    already its own)."""
    lo, hi = out.slots[name]
    lo, hi = min(lo, i), max(hi, i + 1)
    out.slots[name] = (lo, hi)
    for k in range(lo, hi):
        if slot_of[k] is None:
            slot_of[k] = name


def _neighbour(slot_of: list[str | None], at: int, prefer: set[str], touched: list[str]
               ) -> str | None:
    """The slot an insertion at factual position `at` extends: intervened first, then one
    already changing, then the following slot (`a big dog`), then the preceding one."""
    after = slot_of[at] if at < len(slot_of) else None
    before = slot_of[at - 1] if at > 0 else None
    options = [v for v in (after, before) if v is not None]
    for v in options:
        if v in prefer:
            return v
    for v in options:
        if v in touched:
            return v
    return options[0] if options else None


def _article_joins(t0: list[Token], slot_of: list[str | None], i: int, inside: list[str]
                   ) -> str | None:
    # `An apple` -> `A banana`: the article changes because the word after it does.
    if t0[i].plain not in ARTICLES or i + 1 >= len(t0):
        return None
    nxt = slot_of[i + 1]
    return nxt if nxt in inside else None


def _share(owner: list[str | None], slot_of: list[str | None], a0: int, a1: int, b0: int,
           b1: int, inside: list[str]) -> None:
    """Give each replacing word to the variable whose replaced words sat at the nearest
    relative position in the run (`woman ... cutting` -> `man ... slices`)."""
    where = {v: sum((i - a0 + 0.5) / (a1 - a0) for i in range(a0, a1) if slot_of[i] == v)
             / max(1, sum(1 for i in range(a0, a1) if slot_of[i] == v)) for v in inside}
    for j in range(b0, b1):
        at = (j - b0 + 0.5) / (b1 - b0)
        owner[j] = min(inside, key=lambda v: (abs(where[v] - at), inside.index(v)))


def _absorb(out: Plan, t1: list[Token], owner: list[str | None], changed_at: list[bool],
            latent: Mapping[str, Sequence[Sequence[str]]]) -> None:
    """An inserted clause that shows an intervened latent variable's new words belongs to it:
    `, using a fork to cut` for the knife replaced by a fork."""
    for name, phrases in latent.items():
        # Only changed words that no variable owns yet may show them (`owner` changes only
        # when a phrase is found, and then the loop over `phrases` ends).
        free = [t.key if changed_at[j] and owner[j] is None else None for j, t in enumerate(t1)]
        for phrase in phrases:
            hit = next(key_places(free, phrase), None)
            if hit is None:
                continue
            lo, hi = hit, hit + len(phrase)
            while lo > 0 and changed_at[lo - 1] and owner[lo - 1] is None \
                    and not is_punctuation(t1[lo - 1].text):
                lo -= 1
            while hi < len(t1) and changed_at[hi] and owner[hi] is None \
                    and not is_punctuation(t1[hi].text):
                hi += 1
            for j in range(lo, hi):
                owner[j] = name
            out.owned[name] = (lo, hi)
            break
