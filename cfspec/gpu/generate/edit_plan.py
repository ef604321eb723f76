"""A pair's edit map, rebuilt for the pipeline's real CLIP tokenizer.

`pairs.jsonl` addresses attention columns by token index. The generator tokenizes each whole
prompt with the pipeline's tokenizer, so the text encoder sees exactly the ids a plain
`StableDiffusionPipeline` would (a punctuation run such as `".` or `!!` stays one token), and
ties tokens to words by their character offsets. When the pair was compiled without a CLIP
tokenizer (`alignment.source == "words"`), index i is the i-th word (0 is the start token), so
every mapper and index list is rebuilt from words. A `clip`-sourced pair is used as written
when our tokenizer reproduces its tokens, and rebuilt from words otherwise.

The result, `EditPlan`, is plain Python (no torch): the attention control turns it into tensors.
Columns beyond the prompt (the padding after the end token) are aligned end to end: the k-th
padding column after prompt_1's end token reads the k-th after prompt_0's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cfspec.compile.align import Tokens, refine_map, replace_map, words_of_spans
from cfspec.gpu.generate import published
from cfspec.lang.tokens import MAX_TOKENS, bytes_to_unicode, locate_pieces
from cfspec.lang.words import find_phrase, split_words
from cfspec.workspace.pairs import Alignment, CrossReplace, EditMap, Pair

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"


class PlanError(ValueError):
    """The pair's edit map cannot be applied (says which field and why)."""


@dataclass(frozen=True)
class EditPlan:
    """Everything the attention control needs for one pair, in real CLIP token positions.

    `mapper` is sparse (i0, i1, weight) over all 77 columns; `keep` is 1 where the counterfactual
    column is taken from the factual (refine's alphas), 0 where it keeps its own attention;
    `equalizer` multiplies prompt_1 columns (reweight). Windows are fractions of the schedule.
    """

    kind: str
    ids_0: tuple[int, ...]
    ids_1: tuple[int, ...]
    pieces_0: tuple[str, ...]
    pieces_1: tuple[str, ...]
    mapper: tuple[tuple[int, int, float], ...]
    keep: tuple[float, ...]
    equalizer: tuple[float, ...]
    cross_default: tuple[float, float]
    cross_words: tuple[tuple[tuple[int, ...], tuple[float, float]], ...]
    self_window: tuple[float, float]
    blend_0: tuple[int, ...]
    blend_1: tuple[int, ...]
    threshold: float
    words_0: tuple[str, ...] = ()
    words_1: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    compat: str = "cfspec"  # "published": LocalBlend reads the edited maps, as published
    blend_start: float | None = None  # the pair's own `local_blend.start`, else the run's
    ids2_0: tuple[int, ...] = ()  # the second tokenizer's ids (SDXL); () for one encoder
    ids2_1: tuple[int, ...] = ()


class PromptTokenizer:
    """Whole prompts -> the ids the pipeline's text encoder sees (exactly what
    `StableDiffusionPipeline` feeds it), with each token's character offsets in the prompt.

    With SDXL's second tokenizer (`tokenizer_2`) each prompt also gets that tokenizer's ids.
    Both are CLIP BPEs over the same vocabulary and differ in padding (the end token, or "!"),
    so column i is the same token in both encoders' outputs, which the UNet reads side by
    side; a prompt the two cut differently is a PlanError, since no column map could hold."""

    def __init__(self, tokenizer: Any, tokenizer_2: Any = None) -> None:
        self.tokenizer = tokenizer
        self.tokenizer_2 = tokenizer_2
        self.bos_id: int = int(tokenizer.bos_token_id)
        self.eos_id: int = int(tokenizer.eos_token_id)
        self._cache: dict[str, Encoded] = {}

    def encode(self, text: str) -> Encoded:
        hit = self._cache.get(text)
        if hit is None:
            hit = self._cache[text] = self._encode(text)
        return hit

    def _encode(self, text: str) -> Encoded:
        tok = self.tokenizer
        fast = bool(getattr(tok, "is_fast", False))
        padded = tok(text, padding="max_length", max_length=MAX_TOKENS, truncation=True,
                     **({"return_offsets_mapping": True} if fast else {}))
        ids = [int(i) for i in padded.input_ids]
        n = len(tok(text, max_length=MAX_TOKENS, truncation=True).input_ids)
        truncated = len(tok(text).input_ids) > MAX_TOKENS
        pieces = [str(p) for p in tok.convert_ids_to_tokens(ids[:n])]
        if fast:
            spans = [(int(a), int(b)) for a, b in padded["offset_mapping"][:n]]
        else:
            spans = [(0, 0), *_piece_spans(text, pieces[1:-1]), (0, 0)]
        ids_2: list[int] = []
        if self.tokenizer_2 is not None:
            ids_2 = self._second(text, pieces)
        return Encoded(ids, tuple(pieces), tuple(spans), truncated, ids_2)

    def _second(self, text: str, pieces: Sequence[str]) -> list[int]:
        """The second tokenizer's padded ids, checked to be the same tokens as the first's."""
        tok = self.tokenizer_2
        ids = [int(i) for i in tok(text, padding="max_length", max_length=MAX_TOKENS,
                                   truncation=True).input_ids]
        n = len(tok(text, max_length=MAX_TOKENS, truncation=True).input_ids)
        theirs = [str(p) for p in tok.convert_ids_to_tokens(ids[:n])]
        if len(ids) != MAX_TOKENS or not _same_pieces(theirs, pieces):
            at = next((i for i, (a, b) in enumerate(zip(pieces, theirs, strict=False))
                       if _strip_bpe(a) != _strip_bpe(b)), min(len(pieces), len(theirs)))
            raise PlanError(
                f"the pipeline's two tokenizers cut {text!r} differently (token {at}: "
                f"{pieces[at] if at < len(pieces) else 'end'!r} and "
                f"{theirs[at] if at < len(theirs) else 'end'!r}), so one attention column "
                "would hold two different tokens; Prompt-to-Prompt needs them aligned")
        return ids

    def published(self, text: str) -> tuple[list[int], list[str]]:
        """What the published code reads: `tokenizer.encode(text)` (start and end tokens, no
        truncation) and `decode([id])` of each token between them."""
        ids = [int(i) for i in self.tokenizer(text).input_ids]
        return ids, [str(self.tokenizer.decode([i])) for i in ids[1:-1]]

    def word(self, text: str) -> tuple[list[int], list[str]]:
        """One word's ids and pieces on its own (no start or end token)."""
        encoded = self.encode(text)
        n = len(encoded.pieces)
        return encoded.ids[1 : n - 1], list(encoded.pieces[1:-1])

    def prompt(self, text: str) -> list[str]:
        """The pieces of a whole prompt, start and end tokens included."""
        return list(self.encode(text).pieces)


WordTokenizer = PromptTokenizer  # the name before prompts were tokenized whole


@dataclass(frozen=True)
class Encoded:
    ids: list[int]  # padded to 77
    pieces: tuple[str, ...]  # start token .. end token
    spans: tuple[tuple[int, int], ...]  # each piece's (start, end) in the text; (0, 0) special
    truncated: bool
    ids_2: list[int] = field(default_factory=list)  # the second tokenizer's (SDXL), padded


def _piece_spans(text: str, tokens: Sequence[str]) -> list[tuple[int, int]]:
    """Offsets of BPE tokens (without special tokens) for a tokenizer that gives none: tokens
    are grouped into their pre-tokenization pieces (a piece ends with `</w>`), each piece is
    decoded and found in the text, and its tokens share its span."""
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    groups: list[list[str]] = [[]]
    for token in tokens:
        groups[-1].append(token)
        if token.endswith("</w>"):
            groups.append([])
    groups = [g for g in groups if g]
    texts = []
    for group in groups:
        symbols = "".join(group).replace("</w>", "")
        raw = bytes(decoder[c] for c in symbols if c in decoder)
        texts.append(raw.decode("utf-8", "replace"))
    spans: list[tuple[int, int]] = []
    for group, span in zip(groups, locate_pieces(text, texts), strict=True):
        spans += [span] * len(group)
    return spans


def _tokenize(text: str, word_spans: Sequence[tuple[int, int]], tok: PromptTokenizer
              ) -> _Tokenized:
    encoded = tok.encode(text)
    words = words_of_spans(word_spans, encoded.spans[1:-1])
    tokens = Tokens(encoded.pieces, ((), *words, ()))
    return _Tokenized(tokens, list(encoded.ids), encoded.truncated, list(encoded.ids_2))


@dataclass
class _Tokenized:
    tokens: Tokens  # pieces and the words of each, truncated to 77
    ids: list[int]  # padded to 77
    truncated: bool
    ids_2: list[int]  # the second tokenizer's (SDXL), padded to 77; empty without one


def _strip_bpe(piece: str) -> str:
    return piece.replace("</w>", "")


def _same_pieces(ours: Sequence[str], theirs: Sequence[str]) -> bool:
    return [_strip_bpe(p) for p in ours] == [_strip_bpe(p) for p in theirs]


def _prompt_words(pair: Pair, which: int) -> list[tuple[str, int, int]]:
    """The prompt's words with their character spans in the prompt."""
    text = pair.prompt(which)
    alignment = pair.edit["alignment"]
    if alignment["source"] == "words":
        # Word-level tokens are exactly the prompt's words (lowercased), start/end excluded.
        tokens = alignment["tokens_1"] if which else alignment["tokens_0"]
        words = [str(w) for w in tokens[1:-1]]
        spans = locate_pieces(text, [w.lower() for w in words])
        return [(w, a, b) for w, (a, b) in zip(words, spans, strict=True)]
    return split_words(text)


def _window(value: Any, where: str) -> tuple[float, float]:
    start, end = float(value[0]), float(value[1])
    if not 0.0 <= start <= end <= 1.0:
        raise PlanError(f"{where}: window {value!r} must satisfy 0 <= start <= end <= 1")
    return start, end


def _fraction(value: Any, where: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise PlanError(f"{where}: {value!r} must be between 0 and 1")
    return number


def _pad_pairs(n0: int, n1: int) -> list[tuple[int, int]]:
    """Padding columns aligned end to end: (column in prompt_0, column in prompt_1)."""
    return [(min(n0 + k, MAX_TOKENS - 1), n1 + k) for k in range(MAX_TOKENS - n1)]


COMPAT_PROFILES = ("cfspec", "published")


@dataclass(frozen=True)
class _Prompts:
    """Both prompts as this tokenizer cuts them, and how the pair's indices address them."""

    t0: _Tokenized
    t1: _Tokenized
    words: tuple[list[str], list[str]]  # each prompt's words and marks, as split_words gives
    source: str  # the pair's alignment source: "words" or "clip"
    as_written: bool  # a clip-sourced pair whose indices are ours as they stand

    def tokens(self, which: int) -> Tokens:
        return (self.t0, self.t1)[which].tokens

    def to_tokens(self, which: int, indices: Sequence[int], texts: Sequence[str]) -> list[int]:
        """Word-level (or foreign clip) token indices -> our token positions in prompt `which`."""
        tokens = self.tokens(which)
        if self.as_written:
            return [i for i in indices if i < len(tokens.pieces)]
        if self.source == "words":
            word_idx = [i - 1 for i in indices if 1 <= i <= len(self.words[which])]
        else:  # foreign clip indices: find the words by their text instead
            word_idx = [i for text in texts for i in find_phrase(self.words[which], text)]
        return sorted({t for w in word_idx for t in tokens.of_word(w)})


def _prompts(pair: Pair, tok: PromptTokenizer, notes: list[str]) -> _Prompts:
    alignment = pair.edit["alignment"]
    source = alignment["source"]
    spanned = (_prompt_words(pair, 0), _prompt_words(pair, 1))
    t0, t1 = (_tokenize(pair.prompt(k), [(a, b) for _, a, b in spanned[k]], tok)
              for k in (0, 1))
    for which, t in enumerate((t0, t1)):
        if t.truncated:
            notes.append(f"prompt_{which} is longer than {MAX_TOKENS} tokens and was truncated")
    # A clip-sourced pair keeps its own indices if our tokenizer cuts the prompts the same way.
    as_written = source == "clip" and (
        _same_pieces(t0.tokens.pieces, alignment["tokens_0"])
        and _same_pieces(t1.tokens.pieces, alignment["tokens_1"])
    )
    if source == "clip" and not as_written:
        notes.append("token indices were computed with another tokenizer; rebuilt from words")
    words = ([w for w, _, _ in spanned[0]], [w for w, _, _ in spanned[1]])
    return _Prompts(t0, t1, words, source, as_written)


def _mapper(kind: str, alignment: Alignment, prompts: _Prompts
            ) -> tuple[list[tuple[int, int, float]], list[float]]:
    """(token map with the padding columns, kept columns) for a replace/reweight or refine."""
    t0, t1 = prompts.tokens(0), prompts.tokens(1)
    keep = [1.0] * MAX_TOKENS
    mapper: list[tuple[int, int, float]]
    if kind in ("replace", "reweight"):
        if prompts.as_written:
            mapper = [(int(a), int(b), float(w)) for a, b, w in alignment["token_map"]]
        else:
            word_pairs = _word_pairs(alignment, len(prompts.words[0]), len(prompts.words[1]))
            mapper = replace_map(t0, t1, word_pairs)
    elif kind == "refine":
        refine = ([int(i) for i in alignment["token_map"]] if prompts.as_written
                  else refine_map(t0, t1))
        mapper = [(i0, i1, 1.0) for i1, i0 in enumerate(refine) if i0 >= 0]
        for i1, i0 in enumerate(refine):
            if i0 < 0:
                keep[i1] = 0.0  # inserted token: the counterfactual keeps its own attention
    else:
        raise PlanError(f"edit.type: unknown edit type {kind!r}")
    mapper += [(a, b, 1.0) for a, b in _pad_pairs(len(t0.pieces), len(t1.pieces))]
    for a, b, _ in mapper:
        if not (0 <= a < MAX_TOKENS and 0 <= b < MAX_TOKENS):
            raise PlanError(f"edit.alignment.token_map: column {max(a, b)} is out of range")
    return mapper, keep


def _equalizer(edit: EditMap, prompts: _Prompts, notes: list[str]) -> list[float]:
    equalizer = [1.0] * MAX_TOKENS
    eq = edit["equalizer"]
    if len(eq["values"]) != len(eq["tokens"]):
        raise PlanError("edit.equalizer: `values` and `tokens` differ in length")
    for k, (value, indices) in enumerate(zip(eq["values"], eq["tokens"], strict=True)):
        texts = [eq["words"][k]] if k < len(eq["words"]) else []
        for col in prompts.to_tokens(1, indices, texts):
            equalizer[col] = float(value)
    if edit["type"] == "reweight" and eq["tokens"] and all(v == 1.0 for v in equalizer):
        notes.append("the equalizer's words were not found in prompt_1")
    return equalizer


def _cross_words(cross: CrossReplace, prompts: _Prompts, notes: list[str]
                 ) -> list[tuple[tuple[int, ...], tuple[float, float]]]:
    """Per-word cross-attention windows; they address prompt_1's columns (P2P looks the word
    up in the edited prompt)."""
    out: list[tuple[tuple[int, ...], tuple[float, float]]] = []
    for phrase, value in cross["words"].items():
        found = find_phrase(prompts.words[1], phrase)
        cols = tuple(sorted({t for w in found for t in prompts.tokens(1).of_word(w)}))
        where = f"edit.cross_replace_steps.words.{phrase}"
        if cols:
            out.append((cols, _window(value, where)))
        else:
            notes.append(f"{where}: not found in prompt_1; the default window applies")
    return out


def build_plan(pair: Pair, tok: PromptTokenizer, compat: str = "cfspec") -> EditPlan:
    """Rebuild `pair.edit` for `tok`. Raises PlanError when the map cannot be applied.

    `compat="published"` builds the mappers, word lookups and windows as google's published
    code does (see `cfspec.gpu.generate.published`); the default keeps cfspec's fixes."""
    if compat not in COMPAT_PROFILES:
        raise PlanError(f"unknown P2P compatibility profile {compat!r}; choose "
                        f"{' or '.join(COMPAT_PROFILES)}")
    edit = pair.edit
    kind = str(edit["type"])
    notes: list[str] = []
    prompts = _prompts(pair, tok, notes)
    t0, t1 = prompts.t0, prompts.t1
    mapper, keep = _mapper(kind, edit["alignment"], prompts)
    equalizer = _equalizer(edit, prompts, notes)
    cross = edit["cross_replace_steps"]
    cross_default = _window(cross["default"], "edit.cross_replace_steps.default")
    cross_words = _cross_words(cross, prompts, notes)
    blend = edit["local_blend"]
    blend_0 = prompts.to_tokens(0, blend["tokens_0"], blend["words_0"])
    blend_1 = prompts.to_tokens(1, blend["tokens_1"], blend["words_1"])
    plan = EditPlan(
        kind=kind,
        ids_0=tuple(t0.ids),
        ids_1=tuple(t1.ids),
        ids2_0=tuple(t0.ids_2),
        ids2_1=tuple(t1.ids_2),
        pieces_0=t0.tokens.pieces,
        pieces_1=t1.tokens.pieces,
        mapper=tuple(mapper),
        keep=tuple(keep),
        equalizer=tuple(equalizer),
        cross_default=cross_default,
        cross_words=tuple(cross_words),
        self_window=_window(edit["self_replace_steps"], "edit.self_replace_steps"),
        blend_0=tuple(blend_0),
        blend_1=tuple(blend_1),
        threshold=float(blend["threshold"]),
        words_0=tuple(str(w) for w in blend["words_0"]),
        words_1=tuple(str(w) for w in blend["words_1"]),
        notes=tuple(notes),
        blend_start=(None if blend.get("start") is None
                     else _fraction(blend["start"], "edit.local_blend.start")),
    )
    return _published_plan(pair, tok, plan) if compat == "published" else plan


def _published_plan(pair: Pair, tok: PromptTokenizer, plan: EditPlan) -> EditPlan:
    """`plan` with its mapper, kept columns, word lookups and default window replaced by the
    published code's (the ids the text encoder sees are the same in both profiles)."""
    edit = pair.edit
    x, y = str(pair.prompt_0), str(pair.prompt_1)
    ids_x, dec_x = tok.published(x)
    ids_y, dec_y = tok.published(y)
    try:
        if plan.kind == "refine":
            refine, alphas = published.refine_mapper(ids_x, ids_y)
            mapper = [(i0, i1, 1.0) for i1, i0 in enumerate(refine) if i0 >= 0]
            keep = tuple(alphas)
        else:
            cells = published.replace_mapper(x, y, dec_x, dec_y)
            mapper = [(a, b, w) for (a, b), w in cells.items()]
            keep = (1.0,) * MAX_TOKENS

        def lookup(text: str, decoded: list[str], phrase: str) -> list[int]:
            # Published lookups take one space-separated word at a time, matched exactly.
            return sorted({c for w in phrase.split(" ") for c in
                           published.word_inds(text, w, decoded)})

        equalizer = [1.0] * MAX_TOKENS
        eq = edit["equalizer"]
        for phrase, value in zip(eq["words"], eq["values"], strict=False):
            for col in lookup(y, dec_y, str(phrase)):
                equalizer[col] = float(value)
        cross = edit["cross_replace_steps"]
        cross_default = plan.cross_default
        if cross["words"] and not cross.get("default_set", True):
            cross_default = (0.0, 1.0)  # published: a dict without "default_" gets (0, 1)
        cross_words = []
        for phrase, window in cross["words"].items():
            cols = published.word_inds(y, str(phrase), dec_y)
            if cols:
                cross_words.append((tuple(cols), _window(window, "edit.cross_replace_steps")))
        blend = edit["local_blend"]
        blend_0 = [c for w in blend["words_0"] for c in lookup(x, dec_x, str(w))]
        blend_1 = [c for w in blend["words_1"] for c in lookup(y, dec_y, str(w))]
    except published.PublishedError as error:
        raise PlanError(f"--p2p-compat published: {error}") from None
    for a, b, _ in mapper:
        if not (0 <= a < MAX_TOKENS and 0 <= b < MAX_TOKENS):
            raise PlanError(f"--p2p-compat published: column {max(a, b)} is out of range")
    return dataclasses.replace(
        plan, mapper=tuple(mapper), keep=keep, equalizer=tuple(equalizer),
        cross_default=cross_default, cross_words=tuple(cross_words),
        blend_0=tuple(sorted(set(blend_0))), blend_1=tuple(sorted(set(blend_1))),
        compat="published")


def _word_pairs(alignment: Alignment, n0: int, n1: int) -> list[tuple[int, int]]:
    """The replace edit's one-to-one word pairs: `alignment.words`, else read off a word-level
    token_map (token i is word i - 1)."""
    if "words" in alignment:
        pairs = [(int(a), int(b)) for a, b in alignment["words"]]
    elif alignment["source"] == "words":
        pairs = [
            (int(a) - 1, int(b) - 1)
            for a, b, _ in alignment["token_map"]
            if 1 <= int(a) <= n0 and 1 <= int(b) <= n1
        ]
    else:
        raise PlanError("edit.alignment.words: needed to rebuild a replace map for this tokenizer")
    for a, b in pairs:
        if not (0 <= a < n0 and 0 <= b < n1):
            raise PlanError(f"edit.alignment.words: word pair {[a, b]} is out of range")
    return pairs


def dense_mapper(plan: EditPlan) -> list[list[float]]:
    """The 77x77 mapper as nested lists (row: prompt_0 column, column: prompt_1 column)."""
    out = [[0.0] * MAX_TOKENS for _ in range(MAX_TOKENS)]
    for a, b, w in plan.mapper:
        out[a][b] = w
    return out


def cross_alpha(plan: EditPlan, num_steps: int) -> list[list[float]]:
    """Per step (num_steps + 1 rows, as P2P's `get_time_words_attention_alpha`) and prompt_1
    column: 1 where the counterfactual's cross-attention is replaced, else 0."""
    rows = num_steps + 1

    def fill(alpha: list[list[float]], window: tuple[float, float], cols: Sequence[int]) -> None:
        start, end = int(window[0] * rows), int(window[1] * rows)
        for step in range(rows):
            value = 1.0 if start <= step < end else 0.0
            for c in cols:
                alpha[step][c] = value

    alpha = [[0.0] * MAX_TOKENS for _ in range(rows)]
    fill(alpha, plan.cross_default, range(MAX_TOKENS))
    for cols, window in plan.cross_words:
        fill(alpha, window, cols)
    return alpha


def self_steps(plan: EditPlan, num_steps: int) -> tuple[int, int]:
    """Steps [start, end) whose self-attention is replaced (P2P: int(num_steps * fraction))."""
    return int(num_steps * plan.self_window[0]), int(num_steps * plan.self_window[1])
