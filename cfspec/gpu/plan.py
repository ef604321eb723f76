"""A pair's edit map, rebuilt for the pipeline's real CLIP tokenizer.

`pairs.jsonl` addresses attention columns by token index. When it was compiled without a CLIP
tokenizer (`alignment.source == "words"`), index i is the i-th word (0 is the start token), which
is not where the text encoder puts it. So the generator re-tokenizes both prompts word by word
with the pipeline's tokenizer (Prompt-to-Prompt does the same), and rebuilds every mapper and
index list from words. A `clip`-sourced pair is used as written when our tokenizer reproduces its
tokens, and rebuilt from words otherwise.

The result, `EditPlan`, is plain Python (no torch): the attention control turns it into tensors.
Columns beyond the prompt (the padding after the end token) are aligned end to end: the k-th
padding column after prompt_1's end token reads the k-th after prompt_0's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cfspec.align import Tokens, refine_map, replace_map
from cfspec.prompt import normalize, split_words

MAX_TOKENS = 77
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


TokenizeWord = Callable[[str], list[int]]


class WordTokenizer:
    """Word -> CLIP token ids and pieces through a Hugging Face tokenizer, cached per word."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.bos_id: int = int(tokenizer.bos_token_id)
        self.eos_id: int = int(tokenizer.eos_token_id)
        pad = tokenizer.pad_token_id
        self.pad_id: int = int(pad if pad is not None else tokenizer.eos_token_id)
        self._cache: dict[str, tuple[list[int], list[str]]] = {}

    def word(self, text: str) -> tuple[list[int], list[str]]:
        hit = self._cache.get(text)
        if hit is None:
            ids = list(self.tokenizer(text, add_special_tokens=False).input_ids)
            hit = (ids, list(self.tokenizer.convert_ids_to_tokens(ids)))
            self._cache[text] = hit
        return hit

    def prompt(self, text: str) -> list[str]:
        """The pieces of a whole prompt, start and end tokens included (for `clip` checks)."""
        ids = list(self.tokenizer(text).input_ids)
        return [str(p) for p in self.tokenizer.convert_ids_to_tokens(ids)]


@dataclass
class _Tokenized:
    tokens: Tokens  # pieces and word_of, truncated to 77
    ids: list[int]  # padded to 77
    truncated: bool


def _tokenize_words(words: Sequence[str], tok: WordTokenizer) -> _Tokenized:
    pieces, word_of, ids = [BOS], [-1], [tok.bos_id]
    for index, word in enumerate(words):
        word_ids, word_pieces = tok.word(word)
        ids += word_ids
        pieces += word_pieces
        word_of += [index] * len(word_ids)
    truncated = len(ids) + 1 > MAX_TOKENS
    if truncated:  # keep the end token, as the pipeline's tokenizer does when it truncates
        cut = MAX_TOKENS - 1
        ids, pieces, word_of = ids[:cut], pieces[:cut], word_of[:cut]
    ids.append(tok.eos_id)
    pieces.append(EOS)
    word_of.append(-1)
    padded = ids + [tok.pad_id] * (MAX_TOKENS - len(ids))
    return _Tokenized(Tokens(tuple(pieces), tuple(word_of)), padded, truncated)


def _strip_bpe(piece: str) -> str:
    return piece.replace("</w>", "")


def _same_pieces(ours: Sequence[str], theirs: Sequence[str]) -> bool:
    return [_strip_bpe(p) for p in ours] == [_strip_bpe(p) for p in theirs]


def _prompt_words(pair: dict[str, Any], which: int) -> list[str]:
    alignment = pair["edit"]["alignment"]
    if alignment["source"] == "words":
        # Word-level tokens are exactly the prompt's words (lowercased), start/end excluded.
        return [str(w) for w in alignment[f"tokens_{which}"][1:-1]]
    return [w for w, _, _ in split_words(pair[f"prompt_{which}"])]


def _find_phrase(words: Sequence[str], phrase: str) -> list[int]:
    """Word indices of `phrase` in `words` (case-, punctuation- and plural-insensitive)."""
    wanted = [normalize(w) for w, _, _ in split_words(phrase) if normalize(w)]
    keys = [normalize(w) for w in words]
    n = len(wanted)
    for i in range(len(keys) - n + 1):
        if n and keys[i : i + n] == wanted:
            return list(range(i, i + n))
    return []


def _window(value: Any, where: str) -> tuple[float, float]:
    start, end = float(value[0]), float(value[1])
    if not 0.0 <= start <= end <= 1.0:
        raise PlanError(f"{where}: window {value!r} must satisfy 0 <= start <= end <= 1")
    return start, end


def _pad_pairs(n0: int, n1: int) -> list[tuple[int, int]]:
    """Padding columns aligned end to end: (column in prompt_0, column in prompt_1)."""
    return [(min(n0 + k, MAX_TOKENS - 1), n1 + k) for k in range(MAX_TOKENS - n1)]


def build_plan(pair: dict[str, Any], tok: WordTokenizer) -> EditPlan:
    """Rebuild `pair["edit"]` for `tok`. Raises PlanError when the map cannot be applied."""
    edit = pair["edit"]
    alignment = edit["alignment"]
    kind = str(edit["type"])
    source = alignment["source"]
    words = (_prompt_words(pair, 0), _prompt_words(pair, 1))
    t0, t1 = _tokenize_words(words[0], tok), _tokenize_words(words[1], tok)
    notes: list[str] = []
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

    def to_tokens(which: int, indices: Sequence[int], texts: Sequence[str]) -> list[int]:
        """Word-level (or foreign clip) token indices -> our token positions in prompt `which`."""
        tokens = (t0, t1)[which].tokens
        if as_written:
            return [i for i in indices if i < len(tokens.pieces)]
        if source == "words":
            word_idx = [i - 1 for i in indices if 1 <= i <= len(words[which])]
        else:  # foreign clip indices: find the words by their text instead
            word_idx = [i for text in texts for i in _find_phrase(words[which], text)]
        return sorted({t for w in word_idx for t in tokens.of_word(w)})

    n0, n1 = len(t0.tokens.pieces), len(t1.tokens.pieces)
    keep = [1.0] * MAX_TOKENS
    mapper: list[tuple[int, int, float]]
    if kind in ("replace", "reweight"):
        if as_written:
            mapper = [(int(a), int(b), float(w)) for a, b, w in alignment["token_map"]]
        else:
            word_pairs = _word_pairs(alignment, len(words[0]), len(words[1]))
            mapper = replace_map(t0.tokens, t1.tokens, word_pairs)
    elif kind == "refine":
        if as_written:
            refine = [int(i) for i in alignment["token_map"]]
        else:
            refine = refine_map(t0.tokens, t1.tokens)
        mapper = [(i0, i1, 1.0) for i1, i0 in enumerate(refine) if i0 >= 0]
        for i1, i0 in enumerate(refine):
            if i0 < 0:
                keep[i1] = 0.0  # inserted token: the counterfactual keeps its own attention
    else:
        raise PlanError(f"edit.type: unknown edit type {kind!r}")
    mapper += [(a, b, 1.0) for a, b in _pad_pairs(n0, n1)]
    for a, b, _ in mapper:
        if not (0 <= a < MAX_TOKENS and 0 <= b < MAX_TOKENS):
            raise PlanError(f"edit.alignment.token_map: column {max(a, b)} is out of range")

    equalizer = [1.0] * MAX_TOKENS
    eq = edit["equalizer"]
    if len(eq["values"]) != len(eq["tokens"]):
        raise PlanError("edit.equalizer: `values` and `tokens` differ in length")
    for k, (value, indices) in enumerate(zip(eq["values"], eq["tokens"], strict=True)):
        texts = [eq["words"][k]] if k < len(eq["words"]) else []
        for col in to_tokens(1, indices, texts):
            equalizer[col] = float(value)
    if kind == "reweight" and eq["tokens"] and all(v == 1.0 for v in equalizer):
        notes.append("the equalizer's words were not found in prompt_1")

    cross = edit["cross_replace_steps"]
    cross_default = _window(cross["default"], "edit.cross_replace_steps.default")
    cross_words: list[tuple[tuple[int, ...], tuple[float, float]]] = []
    for phrase, value in cross["words"].items():
        # Per-word windows address prompt_1's columns (P2P looks the word up in the edited prompt).
        found = _find_phrase(words[1], phrase)
        cols = tuple(sorted({t for w in found for t in t1.tokens.of_word(w)}))
        where = f"edit.cross_replace_steps.words.{phrase}"
        if cols:
            cross_words.append((cols, _window(value, where)))
        else:
            notes.append(f"{where}: not found in prompt_1; the default window applies")

    blend = edit["local_blend"]
    blend_0 = to_tokens(0, blend["tokens_0"], blend["words_0"])
    blend_1 = to_tokens(1, blend["tokens_1"], blend["words_1"])
    return EditPlan(
        kind=kind,
        ids_0=tuple(t0.ids),
        ids_1=tuple(t1.ids),
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
    )


def _word_pairs(alignment: dict[str, Any], n0: int, n1: int) -> list[tuple[int, int]]:
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
