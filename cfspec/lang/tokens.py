"""CLIP token counting without torch/transformers: does a prompt fit the 77-token text encoder?

`ClipTokenizer` reimplements OpenAI CLIP's byte-level BPE (`simple_tokenizer.py`, which Hugging
Face's `CLIPTokenizer` follows) in the standard library only, so the lint path stays fast to
import. It loads the `vocab.json` + `merges.txt` pair that `CLIPTokenizer.save_pretrained` writes
(and that every Stable Diffusion pipeline folder has under `tokenizer/`).

Known differences from the reference tokenizers, all outside ordinary captions:

* ftfy is not applied (no mojibake repair, quote uncurling, ligature or full-width folding). The
  text is NFC-normalised (as ftfy and Hugging Face both do), HTML-unescaped twice (as CLIP does),
  whitespace-collapsed, stripped and lowercased. (Hugging Face itself does not unescape, and
  without ftfy it splits CJK ideographs apart; CLIP does neither.)
* The pre-tokenizer uses `re`, which has no `\\p{L}`/`\\p{N}`: letters are `[^\\W\\d_]` and
  numbers `\\d`. `[^\\W\\d_]` also takes the non-decimal numerals (`²`, `½`, `Ⅻ`, categories
  Nl/No), so letter runs holding one are re-split to put each numeral in its own piece, as
  `[\\p{N}]` would. What remains is the Unicode-version skew between `re` and `regex`.
"""

from __future__ import annotations

import functools
import html
import itertools
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path

MAX_TOKENS = 77  # CLIP's text-encoder context, BOS and EOS included

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
VOCAB_FILE = "vocab.json"
MERGES_FILE = "merges.txt"

# Hugging Face reads at most this many merges: what CLIP's 49408-token vocab holds besides its 512
# byte symbols and 2 special tokens. Cutting at the same place keeps over-long files in step.
_MAX_MERGES = 49152 - 256 - 2

# CLIP's pattern with `\p{L}` -> `[^\W\d_]` and `\p{N}` -> `\d`. Punctuation is "neither space,
# letter nor number", so the underscore (a `\w` char but no letter) must be added back explicitly.
_PRETOKENIZE = re.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+"
)
_LETTER_RUN = re.compile(r"[^\W\d_]+")
_WHITESPACE = re.compile(r"\s+")
_NO_RANK = float("inf")


class TokenizerNotFound(ValueError):
    """No CLIP tokenizer files where the configuration said to look."""


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte -> printable-character table.

    Printable Latin-1 bytes map to themselves; the rest are shifted past 255 so that no BPE
    symbol is whitespace or a control character.
    """
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def clean_text(text: str) -> str:
    """CLIP's `basic_clean` + `whitespace_clean` + lowercasing, minus ftfy."""
    text = unicodedata.normalize("NFC", text)
    text = html.unescape(html.unescape(text))  # twice, as CLIP does, for double-escaped captions
    return _WHITESPACE.sub(" ", text).strip().lower()


def pretokenize(text: str) -> list[str]:
    """Split already-cleaned text into the pieces BPE runs on (CLIP's regex, emulated)."""
    pieces: list[str] = []
    for piece in _PRETOKENIZE.findall(text):
        if piece.isalpha() or not _LETTER_RUN.fullmatch(piece):
            pieces.append(piece)
        else:
            pieces.extend(_split_numerals(piece))
    return pieces


def _split_numerals(run: str) -> list[str]:
    # A `[^\W\d_]+` run that holds Nl/No numerals: `\p{L}+` stops at each, `[\p{N}]` takes it alone.
    out: list[str] = []
    letters = ""
    for ch in run:
        if ch.isalpha():
            letters += ch
            continue
        if letters:
            out.append(letters)
            letters = ""
        out.append(ch)
    if letters:
        out.append(letters)
    return out


def locate_pieces(text: str, pieces: Iterable[str]) -> list[tuple[int, int]]:
    """(start, end) offsets in `text` of each piece of its cleaned, lowercased form.

    Pieces are found in order, each at its first occurrence after the previous one (what lies
    between is whitespace, or text the cleanup rewrote, such as the `amp;` of an unescaped
    `&amp;`). A piece the cleanup changed beyond lowercasing (a non-NFC letter) is not found;
    it gets the empty span where the search stands, inside the word it came from.
    """
    # Lowercasing can change a character's length ('İ' -> 'i̇'): keep each one's origin.
    low: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        folded = ch.lower()
        low.append(folded)
        origin.extend([index] * len(folded))
    lowered = "".join(low)
    origin.append(len(text))
    spans: list[tuple[int, int]] = []
    pos = 0
    for piece in pieces:
        found = lowered.find(piece, pos) if piece else -1
        if found >= 0:
            end = found + len(piece)
            spans.append((origin[found], origin[end - 1] + 1))
            pos = end
        else:
            while pos < len(lowered) and lowered[pos].isspace():
                pos += 1
            spans.append((origin[pos], origin[pos]))
    return spans


def _pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(word))


class ClipTokenizer:
    """CLIP's byte-level BPE tokenizer, from a vocab (token -> id) and ranked merges."""

    def __init__(self, vocab: Mapping[str, int], merges: Iterable[tuple[str, str]]) -> None:
        missing = [t for t in (BOS_TOKEN, EOS_TOKEN) if t not in vocab]
        if missing:
            raise ValueError(f"not a CLIP vocabulary: no {', '.join(missing)} token")
        self.encoder: dict[str, int] = dict(vocab)
        self.bpe_ranks: dict[tuple[str, str], int] = {
            pair: rank for rank, pair in enumerate(merges)
        }
        self.byte_encoder = bytes_to_unicode()
        self.bos_token_id = self.encoder[BOS_TOKEN]
        self.eos_token_id = self.encoder[EOS_TOKEN]
        # Special tokens are never split; seeding the cache is how CLIP keeps BPE off them.
        self.cache: dict[str, tuple[str, ...]] = {BOS_TOKEN: (BOS_TOKEN,), EOS_TOKEN: (EOS_TOKEN,)}

    @classmethod
    def from_files(
        cls, vocab_file: str | os.PathLike[str], merges_file: str | os.PathLike[str]
    ) -> ClipTokenizer:
        """Load Hugging Face's `vocab.json` and `merges.txt` (its `#version` header skipped)."""
        with open(vocab_file, encoding="utf-8") as f:
            vocab = json.load(f)
        if not isinstance(vocab, dict):
            raise ValueError(f"{vocab_file}: expected a JSON object of token -> id")
        merges: list[tuple[str, str]] = []
        with open(merges_file, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.split()
                if not parts or (lineno == 1 and line.startswith("#version")):
                    continue
                if len(parts) != 2:
                    raise ValueError(f"{merges_file}:{lineno}: expected two symbols, got {line!r}")
                merges.append((parts[0], parts[1]))
        return cls(vocab, merges[:_MAX_MERGES])

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> ClipTokenizer:
        """Load from a folder holding `vocab.json` + `merges.txt`, or a pipeline folder holding
        them under `tokenizer/`."""
        folder = _tokenizer_dir(Path(path))
        if folder is None:
            raise TokenizerNotFound(
                f"no {VOCAB_FILE} + {MERGES_FILE} in {path} or {Path(path) / 'tokenizer'}"
            )
        return cls.from_files(folder / VOCAB_FILE, folder / MERGES_FILE)

    def bpe(self, piece: str) -> tuple[str, ...]:
        """Merge one pre-tokenized piece (already byte-encoded) into BPE symbols."""
        cached = self.cache.get(piece)
        if cached is not None:
            return cached
        # The end-of-word marker rides on the last symbol, so "cat" at a word end and "cat"
        # inside "cats" are different tokens.
        word = (*piece[:-1], piece[-1] + "</w>")
        ranks = self.bpe_ranks
        pairs = _pairs(word)
        while len(word) > 1:
            bigram = min(pairs, key=lambda p: ranks.get(p, _NO_RANK))
            if bigram not in ranks:
                break
            first, second = bigram
            merged: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    merged.extend(word[i:])
                    break
                merged.extend(word[i:j])
                i = j
                if i < len(word) - 1 and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(first)
                    i += 1
            word = tuple(merged)
            pairs = _pairs(word)
        self.cache[piece] = word
        return word

    def tokenize(self, text: str) -> list[str]:
        """The BPE token strings of `text`, without BOS/EOS."""
        out: list[str] = []
        enc = self.byte_encoder
        for piece in pretokenize(clean_text(text)):
            # Special tokens are ASCII, so byte-encoding leaves them as their pre-cached selves;
            # surrogatepass: text read with surrogateescape must still count, not crash.
            out.extend(self.bpe("".join(enc[b] for b in piece.encode("utf-8", "surrogatepass"))))
        return out

    def tokenize_spans(self, text: str) -> list[tuple[str, int, int]]:
        """The BPE tokens of the whole `text` (as `tokenize`), each with the (start, end)
        character offsets in `text` of the pre-tokenized piece it came from."""
        out: list[tuple[str, int, int]] = []
        enc = self.byte_encoder
        pieces = pretokenize(clean_text(text))
        for piece, (start, end) in zip(pieces, locate_pieces(text, pieces), strict=True):
            symbols = "".join(enc[b] for b in piece.encode("utf-8", "surrogatepass"))
            out.extend((token, start, end) for token in self.bpe(symbols))
        return out

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without BOS/EOS. Tokens missing from the vocab get the
        `<|endoftext|>` id, Hugging Face's unknown token for CLIP."""
        get = self.encoder.get
        unk = self.eos_token_id
        return [get(tok, unk) for tok in self.tokenize(text)]

    def count(self, text: str) -> int:
        """Tokens `text` takes in the encoder window: its ids plus BOS and EOS."""
        return len(self.encode(text)) + 2


def _tokenizer_dir(path: Path) -> Path | None:
    # Diffusers pipeline folders keep the tokenizer one level down, in `tokenizer/`.
    for folder in (path, path / "tokenizer"):
        if (folder / VOCAB_FILE).is_file() and (folder / MERGES_FILE).is_file():
            return folder
    return None


def hf_hub_cache() -> Path:
    """The local Hugging Face hub cache, resolved as `huggingface_hub` does."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "huggingface" / "hub"


def _cached_snapshots(repo_id: str) -> tuple[Path, list[Path]]:
    repo_dir = hf_hub_cache() / ("models--" + repo_id.replace("/", "--"))
    snapshots = repo_dir / "snapshots"
    found: list[Path] = []
    # The revision `main` points at first, then the newest other snapshots.
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        found.append(snapshots / ref.read_text(encoding="utf-8").strip())
    if snapshots.is_dir():
        others = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        found.extend(p for p in others if p not in found)
    return repo_dir, found


_HUB_ID = re.compile(r"[\w.-]+(?:/[\w.-]+)?")


@functools.lru_cache(maxsize=16)
def load_tokenizer(spec: str) -> ClipTokenizer:
    """The tokenizer at `spec`: a local folder (files directly or under `tokenizer/`) or a hub id
    such as `openai/clip-vit-large-patch14`, looked up in the local Hugging Face cache only; the
    network is never used. Raises `TokenizerNotFound` saying where it looked."""
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise TokenizerNotFound(
                f"tokenizer {spec!r} is a file; pass the folder holding {VOCAB_FILE} and "
                f"{MERGES_FILE} (or a pipeline folder with a tokenizer/ subfolder)"
            )
        folder = _tokenizer_dir(path)
        if folder is None:
            raise TokenizerNotFound(
                f"tokenizer folder {spec!r} has no {VOCAB_FILE} + {MERGES_FILE}, neither "
                f"directly nor under tokenizer/; pass the folder that holds them"
            )
        return ClipTokenizer.from_files(folder / VOCAB_FILE, folder / MERGES_FILE)
    if not _HUB_ID.fullmatch(spec):
        raise TokenizerNotFound(
            f"tokenizer path {spec!r} does not exist; pass a folder holding "
            f"{VOCAB_FILE} and {MERGES_FILE}"
        )
    repo_dir, snapshots = _cached_snapshots(spec)
    for snapshot in snapshots:
        folder = _tokenizer_dir(snapshot)
        if folder is not None:
            return ClipTokenizer.from_files(folder / VOCAB_FILE, folder / MERGES_FILE)
    raise TokenizerNotFound(
        f"tokenizer {spec!r} is neither a local folder nor in the Hugging Face cache (looked for "
        f"{VOCAB_FILE} + {MERGES_FILE} under {repo_dir / 'snapshots'}/*[/tokenizer]); the "
        f"network is never used: download it once (e.g. `huggingface-cli download {spec}`) "
        f"or pass a local folder holding {VOCAB_FILE} and {MERGES_FILE}"
    )


def estimate_count(text: str) -> int:
    """Token count without a tokenizer: one per pre-tokenization piece, plus BOS and EOS.

    This is a lower bound of the exact count: BPE turns every piece into at least one token, and
    the pieces come from the same cleanup and split the tokenizer uses. Long or rare words take
    several tokens, so a prompt can fit by this estimate and still overflow.
    """
    return len(pretokenize(clean_text(text))) + 2


def count_tokens(text: str, tokenizer: ClipTokenizer | None) -> tuple[int, bool]:
    """`(count, exact)`: the tokenizer's count when there is one, else `estimate_count`."""
    if tokenizer is None:
        return estimate_count(text), False
    return tokenizer.count(text), True
