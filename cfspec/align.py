"""Token sequences and Prompt-to-Prompt alignments between a factual and a counterfactual prompt.

Token index 0 is the start token, as in the text encoder's 77 positions, so every index here
addresses a cross-attention column directly. Without a CLIP tokenizer, each word and each
punctuation mark is one token (`source: "words"`), and the generator re-tokenizes.
"""

from __future__ import annotations

from dataclasses import dataclass

from cfspec.prompt import BoundPrompt
from cfspec.tokens import ClipTokenizer


@dataclass(frozen=True)
class Tokens:
    """`pieces[i]` is token i (0: start, last: end); `word_of[i]` the index of its word, or -1."""

    pieces: tuple[str, ...]
    word_of: tuple[int, ...]

    def of_word(self, index: int) -> list[int]:
        return [i for i, w in enumerate(self.word_of) if w == index]


def tokenize(prompt: BoundPrompt, tokenizer: ClipTokenizer | None) -> Tokens:
    pieces, word_of = ["<|startoftext|>"], [-1]
    for index, word in enumerate(prompt.words):
        parts = tokenizer.tokenize(word.text) if tokenizer else [word.text.lower()]
        pieces += parts
        word_of += [index] * len(parts)
    pieces.append("<|endoftext|>")
    word_of.append(-1)
    return Tokens(tuple(pieces), tuple(word_of))


def replace_map(
    t0: Tokens, t1: Tokens, word_pairs: list[tuple[int, int]]
) -> list[tuple[int, int, float]]:
    """Sparse replace mapper: (token in prompt_0, token in prompt_1, weight).

    Words are paired one to one. A changed word whose token counts differ spreads its weight
    evenly over the counterfactual's tokens (P2P's replacement mapper does the same).
    """
    out: list[tuple[int, int, float]] = [(0, 0, 1.0)]
    for w0, w1 in word_pairs:
        s, t = t0.of_word(w0), t1.of_word(w1)
        if len(s) == len(t):
            out += [(a, b, 1.0) for a, b in zip(s, t, strict=True)]
        else:
            ratio = round(1.0 / len(t), 6)
            out += [(a, b, ratio) for a in s for b in t]
    out.append((len(t0.pieces) - 1, len(t1.pieces) - 1, 1.0))
    return out


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
