"""The `published` compatibility profile: google/prompt-to-prompt's alignment rules, as published.

cfspec's default profile (`cfspec`) fixes a few things the published code does differently (the
README's "Differences from the published Prompt-to-Prompt" lists each). With
`--p2p-compat published`, the plan is built by these functions instead, which reproduce the
published `seq_aligner.py` and `ptp_utils.py` (tests compare them with the published code's own
outputs, stored under tests/golden_p2p/):

* words are the prompt split on single spaces, punctuation attached ("knife." is one word);
* a word's tokens are found by walking the decoded tokens and counting characters
  (`get_word_inds`), so a lookup of "knife" misses "knife." and "a" finds every "a";
* the replacement mapper walks both prompts together, and after the last changed word maps
  column j to column j (`mapper[j, j]`), even when an earlier word changed its token count;
* the refinement mapper is a global alignment (match +1, mismatch -1, gap 0) whose traceback
  prefers a gap in prompt_0 over a gap in prompt_1 over a match on equal scores; columns after
  prompt_1's end token read the column of the same number (padding p <- p);
* a cross-attention window given per word only leaves the default window at (0, 1).

Plain Python, no torch: `decoded` lists are the tokenizer's `decode([id])` of each token.
"""

from __future__ import annotations

from collections.abc import Sequence

from cfspec.lang.tokens import MAX_TOKENS


class PublishedError(ValueError):
    """The published code would refuse (or crash on) this input."""


def word_inds(text: str, word: str | int, decoded: Sequence[str]) -> list[int]:
    """Token columns of a word of `text` (published `get_word_inds`): `word` is a position in
    `text.split(" ")` or a string matched exactly against those words. `decoded` holds the
    decoded tokens of `text` without the start and end tokens."""
    split_text = text.split(" ")
    if isinstance(word, str):
        places = {i for i, w in enumerate(split_text) if w == word}
    else:
        places = {word}
    out: list[int] = []
    if not places:
        return out
    length, ptr = 0, 0
    for i, token in enumerate(decoded):
        length += len(token.strip("#"))
        if ptr in places:
            out.append(i + 1)
        if ptr >= len(split_text):
            raise PublishedError(f"the published word lookup runs past the words of {text!r}")
        if length >= len(split_text[ptr]):
            ptr += 1
            length = 0
    return out


def replace_mapper(x: str, y: str, decoded_x: Sequence[str], decoded_y: Sequence[str]
                   ) -> dict[tuple[int, int], float]:
    """The published replacement mapper (`get_replacement_mapper_`), as {(i0, i1): weight}."""
    words_x, words_y = x.split(" "), y.split(" ")
    if len(words_x) != len(words_y):
        raise PublishedError(
            f"a published replace edit needs prompts of the same number of space-separated "
            f"words; prompt_0 has {len(words_x)}, prompt_1 {len(words_y)}")
    changed = [i for i in range(len(words_y)) if words_y[i] != words_x[i]]
    source = [word_inds(x, i, decoded_x) for i in changed]
    target = [word_inds(y, i, decoded_y) for i in changed]
    mapper: dict[tuple[int, int], float] = {}
    i = j = k = 0
    while i < MAX_TOKENS and j < MAX_TOKENS:
        if k < len(source) and not (source[k] and target[k]):
            raise PublishedError(f"the published word lookup finds no tokens for word "
                                 f"{changed[k]} of {x!r} or {y!r}")
        if k < len(source) and source[k][0] == i:
            s, t = source[k], target[k]
            if len(s) == len(t):
                for a, b in zip(s, t, strict=True):
                    mapper[(a, b)] = 1.0
            else:
                for b in t:
                    for a in s:
                        mapper[(a, b)] = 1.0 / len(t)
            k += 1
            i += len(s)
            j += len(t)
        elif k < len(source):
            mapper[(i, j)] = 1.0
            i += 1
            j += 1
        else:
            mapper[(j, j)] = 1.0  # published: the diagonal, wherever i has got to
            i += 1
            j += 1
    return mapper


def refine_mapper(ids_x: Sequence[int], ids_y: Sequence[int]) -> tuple[list[int], list[float]]:
    """The published refinement mapper and alphas (`get_refinement_mapper`) over 77 columns:
    mapper[j] is prompt_0's column for prompt_1's column j (-1: inserted), alphas[j] 0 where
    inserted. `ids_*` are whole encodings, start and end tokens included."""
    n, m = len(ids_x), len(ids_y)
    score = [[0] * (m + 1) for _ in range(n + 1)]
    trace = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(1, m + 1):
        trace[0][j] = 1  # left: a gap in prompt_0
    for i in range(1, n + 1):
        trace[i][0] = 2  # up: a gap in prompt_1
    trace[0][0] = 4
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            left = score[i][j - 1]
            up = score[i - 1][j]
            diag = score[i - 1][j - 1] + (1 if ids_x[i - 1] == ids_y[j - 1] else -1)
            best = max(left, up, diag)
            score[i][j] = best
            # Ties go left, then up, then diagonal, as published.
            trace[i][j] = 1 if best == left else 2 if best == up else 3
    pairs: list[tuple[int, int]] = []
    i, j = n, m
    while i > 0 or j > 0:
        step = trace[i][j]
        if step == 3:
            i, j = i - 1, j - 1
            pairs.append((j, i))
        elif step == 1:
            j -= 1
            pairs.append((j, -1))
        elif step == 2:
            i -= 1
        else:
            break
    pairs.reverse()
    mapper = [0] * MAX_TOKENS
    alphas = [1.0] * MAX_TOKENS
    for col, (_, source) in enumerate(pairs[:MAX_TOKENS]):
        mapper[col] = source
        alphas[col] = 0.0 if source == -1 else 1.0
    for col in range(len(pairs), MAX_TOKENS):
        mapper[col] = m + (col - len(pairs))  # published: len(y) + k, i.e. column p <- p
    return mapper, alphas
