"""Token sequences and Prompt-to-Prompt alignments between a factual and a counterfactual prompt.

Token index 0 is the start token, as in the text encoder's 77 positions, so every index here
addresses a cross-attention column directly. Without a CLIP tokenizer, each word and each
punctuation mark is one token (`source: "words"`), and the generator tokenizes the whole
prompts with the pipeline's tokenizer and maps words to tokens by character offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cfspec.lang.prompt import BoundPrompt
from cfspec.lang.tokens import BOS_TOKEN, EOS_TOKEN, ClipTokenizer


@dataclass(frozen=True)
class Tokens:
    """`pieces[i]` is token i (0: start, last: end); `word_of[i]` the indices of the words its
    characters overlap: one word as a rule, several for a punctuation run such as `".` or `!!`
    (CLIP's one token over the words `"` and `.`), none for the start and end tokens."""

    pieces: tuple[str, ...]
    word_of: tuple[tuple[int, ...], ...]

    def of_word(self, index: int) -> list[int]:
        return [i for i, words in enumerate(self.word_of) if index in words]


def words_of_spans(
    word_spans: Sequence[tuple[int, int]], token_spans: Sequence[tuple[int, int]]
) -> list[tuple[int, ...]]:
    """For each token's character span, the words it overlaps. An empty span (a piece whose
    text the cleanup changed) belongs to the word it stands in."""
    out: list[tuple[int, ...]] = []
    for s, e in token_spans:
        if s == e:
            out.append(tuple(w for w, (a, b) in enumerate(word_spans) if a <= s < b))
        else:
            out.append(tuple(w for w, (a, b) in enumerate(word_spans) if a < e and s < b))
    return out


def tokenize(prompt: BoundPrompt, tokenizer: ClipTokenizer | None) -> Tokens:
    """The prompt's tokens. With a tokenizer, the whole prompt is tokenized as CLIP does (a
    punctuation run is one token), and each token is tied to words by its character offsets.
    Without one, every word and every punctuation mark is one token."""
    if tokenizer is None:
        pieces = [BOS_TOKEN, *(word.text.lower() for word in prompt.words), EOS_TOKEN]
        word_of = [(), *((i,) for i in range(len(prompt.words))), ()]
        return Tokens(tuple(pieces), tuple(word_of))
    spans = tokenizer.tokenize_spans(prompt.text)
    word_spans = [(word.start, word.end) for word in prompt.words]
    words = words_of_spans(word_spans, [(s, e) for _, s, e in spans])
    return Tokens(
        (BOS_TOKEN, *(piece for piece, _, _ in spans), EOS_TOKEN), ((), *words, ())
    )


def replace_map(
    t0: Tokens, t1: Tokens, word_pairs: list[tuple[int, int]]
) -> list[tuple[int, int, float]]:
    """Sparse replace mapper: (token in prompt_0, token in prompt_1, weight).

    Words are paired one to one. A changed word whose token counts differ spreads its weight
    evenly over the counterfactual's tokens (P2P's replacement mapper does the same).
    """
    cells: dict[tuple[int, int], float] = {(0, 0): 1.0}
    for w0, w1 in word_pairs:
        s, t = t0.of_word(w0), t1.of_word(w1)
        if not s or not t:
            continue  # a word cut off by truncation has no column
        # A token shared by two words (`".`) is paired once, by its first word.
        if len(s) == len(t):
            for a, b in zip(s, t, strict=True):
                cells.setdefault((a, b), 1.0)
        else:
            ratio = round(1.0 / len(t), 6)
            for a in s:
                for b in t:
                    cells.setdefault((a, b), ratio)
    cells.setdefault((len(t0.pieces) - 1, len(t1.pieces) - 1), 1.0)
    return [(a, b, w) for (a, b), w in cells.items()]


def refine_map(t0: Tokens, t1: Tokens) -> list[int]:
    """Global alignment of the two token sequences (match +1, mismatch -1, gap 0, as P2P's
    refinement mapper): for each token of prompt_1, its token in prompt_0, or -1 if inserted."""
    a, b = t0.pieces, t1.pieces
    n, m = len(a), len(b)
    # Longest common subsequence table: with gap 0 and mismatch -1 the optimum is an LCS.
    score = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = score[i], score[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = below[j + 1] + 1 if a[i] == b[j] else max(below[j], row[j + 1])
    mapper = [-1] * m
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            mapper[j] = i
            i += 1
            j += 1
        elif score[i + 1][j] >= score[i][j + 1]:
            i += 1
        else:
            j += 1
    return mapper
