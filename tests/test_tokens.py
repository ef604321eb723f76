"""CLIP token counting: BPE on a tiny hand-made vocabulary, loading, and the estimate's bound."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfspec.lang import tokens
from cfspec.lang.tokens import (
    MAX_TOKENS,
    ClipTokenizer,
    TokenizerNotFound,
    bytes_to_unicode,
    count_tokens,
    estimate_count,
    load_tokenizer,
)

# Ranked: earlier merges win. "a t</w>" ranks after "c a", so "cat" becomes "ca"+"t</w>" first;
# "z z</w>" makes a token the vocab lacks, to exercise the unknown-token fallback.
MERGES = [
    ("c", "a"),
    ("ca", "t</w>"),
    ("t", "h"),
    ("th", "e</w>"),
    ("h", "e</w>"),
    ("a", "t</w>"),
    ("d", "o"),
    ("do", "g</w>"),
    ("z", "z</w>"),
]
MERGED = ["ca", "cat</w>", "th", "the</w>", "he</w>", "at</w>", "do", "dog</w>", "zz</w>"]


def tiny_vocab() -> dict[str, int]:
    symbols = list(bytes_to_unicode().values())
    entries = symbols + [s + "</w>" for s in symbols] + MERGED
    entries += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(entries)}


def write_tokenizer(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(tiny_vocab()), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in MERGES]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def _fresh_loader_cache() -> None:
    # load_tokenizer caches per spec string; tests reuse specs against different folders.
    load_tokenizer.cache_clear()


@pytest.fixture
def tok_dir(tmp_path: Path) -> Path:
    return write_tokenizer(tmp_path / "clip")


@pytest.fixture
def tok(tok_dir: Path) -> ClipTokenizer:
    return ClipTokenizer.from_files(tok_dir / "vocab.json", tok_dir / "merges.txt")


def test_bytes_to_unicode_is_a_printable_bijection() -> None:
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert table[ord("a")] == "a"
    assert table[ord(" ")] == "Ġ"  # byte 32 is the 33rd shifted byte: chr(256 + 32)


def test_special_ids_come_from_the_vocab(tok: ClipTokenizer) -> None:
    vocab = tiny_vocab()
    assert tok.bos_token_id == vocab["<|startoftext|>"]
    assert tok.eos_token_id == vocab["<|endoftext|>"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cat", ["cat</w>"]),  # c a t</w> -> ca t</w> -> cat</w>
        ("cats", ["ca", "t", "s</w>"]),  # no "ca t" merge: "t" is not word-final here
        ("scat", ["s", "cat</w>"]),
        ("caca", ["ca", "c", "a</w>"]),  # "c a</w>" is not "c a"
        ("at", ["at</w>"]),
        ("bat", ["b", "at</w>"]),
        ("the", ["the</w>"]),  # "t h" outranks "h e</w>"
        ("he", ["he</w>"]),
        ("dog", ["dog</w>"]),
        ("dogs", ["do", "g", "s</w>"]),
        ("x", ["x</w>"]),
        ("é", ["Ã", "©</w>"]),  # two UTF-8 bytes, byte-encoded
    ],
)
def test_bpe_segmentation(tok: ClipTokenizer, text: str, expected: list[str]) -> None:
    assert tok.tokenize(text) == expected
    vocab = tiny_vocab()
    assert tok.encode(text) == [vocab[t] for t in expected]


def test_punctuation_digits_and_contractions_split(tok: ClipTokenizer) -> None:
    assert tok.tokenize("cat, dog!!") == ["cat</w>", ",</w>", "dog</w>", "!", "!</w>"]
    assert tok.tokenize("at12") == ["at</w>", "1</w>", "2</w>"]  # digits are single pieces
    assert tok.tokenize("cat's") == ["cat</w>", "'", "s</w>"]
    assert tok.tokenize("the_cat") == ["the</w>", "_</w>", "cat</w>"]  # "_" is no letter


def test_pretokenize_follows_clip_classes() -> None:
    assert tokens.pretokenize("a cat's 42 dogs, 'll") == [
        "a", "cat", "'s", "4", "2", "dogs", ",", "'ll",
    ]  # fmt: skip
    assert tokens.pretokenize("x²y ½") == ["x", "²", "y", "½"]  # Nl/No numerals stand alone
    assert tokens.pretokenize("café naïve") == ["café", "naïve"]
    assert tokens.pretokenize("<|startoftext|>cat") == ["<|startoftext|>", "cat"]


def test_cleanup_lowercases_collapses_whitespace_and_unescapes(tok: ClipTokenizer) -> None:
    assert tok.encode("  CAT \n\t DOG ") == tok.encode("cat dog")
    assert tok.encode("Cat") == tok.encode("cat")
    assert tokens.clean_text("A &amp;amp; B") == "a & b"  # unescaped twice, as CLIP does
    assert tokens.clean_text("cafe\u0301") == "café"  # NFC


def test_special_tokens_are_not_split(tok: ClipTokenizer) -> None:
    assert tok.encode("<|startoftext|>cat<|endoftext|>") == [
        tok.bos_token_id, tiny_vocab()["cat</w>"], tok.eos_token_id,
    ]  # fmt: skip


def test_unknown_token_maps_to_endoftext() -> None:
    # A merge whose result is not in the vocab (HF refuses such files; we map it to unk).
    broken = ClipTokenizer(tiny_vocab(), [*MERGES, ("q", "q</w>")])
    assert broken.tokenize("qq") == ["qq</w>"]
    assert broken.encode("qq") == [broken.eos_token_id]


def test_count_adds_bos_and_eos(tok: ClipTokenizer) -> None:
    for text in ["", "cat", "cats and dogs!", "A photo of the cat, 4k"]:
        assert tok.count(text) == len(tok.encode(text)) + 2
    assert tok.count("") == 2
    assert count_tokens("cats", tok) == (5, True)
    assert count_tokens("cats", None) == (3, False)
    assert MAX_TOKENS == 77


def test_bpe_cache_is_per_instance(tok_dir: Path, tok: ClipTokenizer) -> None:
    tok.encode("cats")
    assert "cats" in tok.cache
    other = ClipTokenizer.from_files(tok_dir / "vocab.json", tok_dir / "merges.txt")
    assert "cats" not in other.cache
    assert tok.encode("cats") == other.encode("cats")


def test_estimate_counts_pieces() -> None:
    assert estimate_count("") == 2
    pieces = ["a", "photo", "of", "a", "cat", ",", "4", "k"]
    assert estimate_count("A photo of a cat, 4k") == len(pieces) + 2


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_estimate_is_a_lower_bound(tiny: ClipTokenizer, text: str) -> None:
    assert estimate_count(text) <= tiny.count(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="cadogthe sz'!,. 12\n\tCAT_é²", max_size=60))
def test_estimate_is_a_lower_bound_on_vocab_text(tiny: ClipTokenizer, text: str) -> None:
    assert estimate_count(text) <= tiny.count(text)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> ClipTokenizer:
    # Module-scoped: hypothesis forbids function-scoped fixtures in @given tests.
    folder = write_tokenizer(tmp_path_factory.mktemp("tiny"))
    return ClipTokenizer.from_files(folder / "vocab.json", folder / "merges.txt")


def test_merges_header_is_skipped(tmp_path: Path) -> None:
    folder = write_tokenizer(tmp_path)
    no_header = "\n".join(f"{a} {b}" for a, b in MERGES)
    (folder / "merges.txt").write_text(no_header, encoding="utf-8")
    tok = ClipTokenizer.from_files(folder / "vocab.json", folder / "merges.txt")
    assert tok.bpe_ranks[("c", "a")] == 0
    assert len(tok.bpe_ranks) == len(MERGES)


def test_bad_files_raise_value_error(tmp_path: Path) -> None:
    folder = write_tokenizer(tmp_path)
    (folder / "merges.txt").write_text("#version: 0.2\nc a\nonly\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges.txt:3"):
        ClipTokenizer.from_files(folder / "vocab.json", folder / "merges.txt")
    with pytest.raises(ValueError, match="not a CLIP vocabulary"):
        ClipTokenizer({"a": 0}, [])


def test_load_from_plain_folder(tok_dir: Path) -> None:
    tok = load_tokenizer(str(tok_dir))
    assert tok.tokenize("cat") == ["cat</w>"]
    assert load_tokenizer(str(tok_dir)) is tok  # cached per spec


def test_load_from_diffusers_pipeline_folder(tmp_path: Path) -> None:
    pipeline = tmp_path / "sd15"
    write_tokenizer(pipeline / "tokenizer")
    (pipeline / "model_index.json").write_text("{}", encoding="utf-8")
    assert load_tokenizer(str(pipeline)).tokenize("dog") == ["dog</w>"]
    assert ClipTokenizer.from_directory(pipeline).tokenize("dog") == ["dog</w>"]


def _fake_snapshot(cache: Path, repo_id: str, revision: str, sub: str = "") -> Path:
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / revision
    write_tokenizer(snap / sub if sub else snap)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision, encoding="utf-8")
    return snap


def test_hub_id_found_in_hf_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)  # so the hub id is not also a relative path
    _fake_snapshot(tmp_path / "hub", "openai/clip-vit-large-patch14", "abc123")
    _fake_snapshot(tmp_path / "hub", "runwayml/stable-diffusion-v1-5", "def456", "tokenizer")
    assert load_tokenizer("openai/clip-vit-large-patch14").tokenize("cat") == ["cat</w>"]
    assert load_tokenizer("runwayml/stable-diffusion-v1-5").tokenize("dog") == ["dog</w>"]


def test_hub_cache_prefers_refs_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.chdir(tmp_path)
    main = _fake_snapshot(hub, "org/clip", "main-rev")
    newer = _fake_snapshot(hub, "org/clip", "newer-rev")
    (hub / "models--org--clip" / "refs" / "main").write_text("main-rev", encoding="utf-8")
    # The non-main snapshot has no "c a" merge, so which one loaded shows in the tokens.
    (newer / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    later = time.time() + 10
    os.utime(newer, (later, later))
    assert main != newer
    assert load_tokenizer("org/clip").tokenize("cat") == ["cat</w>"]


def test_hub_cache_from_hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)
    _fake_snapshot(tmp_path / "hf" / "hub", "org/clip", "r1")
    assert load_tokenizer("org/clip").tokenize("the") == ["the</w>"]


def test_missing_local_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "clip"
    with pytest.raises(TokenizerNotFound, match="does not exist|not a local folder") as err:
        load_tokenizer(str(missing))
    assert "vocab.json" in str(err.value)


def test_folder_without_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TokenizerNotFound, match="has no vocab.json"):
        load_tokenizer(str(tmp_path))
    with pytest.raises(TokenizerNotFound):
        ClipTokenizer.from_directory(tmp_path)


def test_uncached_hub_id_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TokenizerNotFound) as err:
        load_tokenizer("openai/clip-vit-large-patch14")
    message = str(err.value)
    assert "Hugging Face cache" in message
    assert str(tmp_path / "hub" / "models--openai--clip-vit-large-patch14") in message
    assert "local folder" in message
    assert isinstance(err.value, ValueError)


SENTENCES = [
    "a cat",
    "The cat and the dog",
    "cats, dogs & bats!!",
    "A photo of a cat in 4K, trending on artstation",
    "don't stop: the dog's bath at 12:30",
    "   Lots   of\tspace\n here  ",
    "zz top",
    "snake_case_words and CamelCase",
    "café crème",
    "",
]


def test_matches_transformers_clip_tokenizer(tok_dir: Path) -> None:
    transformers = pytest.importorskip("transformers")
    # The loading path pipelines use; it validates that every merge result is in the vocab.
    reference = transformers.CLIPTokenizer.from_pretrained(str(tok_dir))
    ours = ClipTokenizer.from_directory(tok_dir)
    for text in SENTENCES:
        expected = reference(text, add_special_tokens=False)["input_ids"]
        assert ours.encode(text) == expected, text
        assert ours.count(text) == len(reference(text)["input_ids"]), text


def test_lone_surrogates_do_not_crash(tok: ClipTokenizer) -> None:
    # Text decoded with errors="surrogateescape" carries lone surrogates.
    text = b"cat \xff dog".decode("utf-8", "surrogateescape")
    assert tok.count(text) >= estimate_count(text) == 5


def test_token_spans_point_into_the_original_text(tok: ClipTokenizer) -> None:
    text = "The  CAT\u2028sat, dog!!"
    spans = tok.tokenize_spans(text)
    assert [t for t, _, _ in spans] == tok.tokenize(text)
    # Every token of a piece ("s" "at</w>", "!" "!</w>") carries the piece's span.
    assert [text[s:e] for _, s, e in spans] == ["The", "CAT", "sat", "sat", ",", "dog", "!!", "!!"]
    # Text the cleanup rewrites (an HTML escape) is skipped over.
    assert tok.tokenize_spans("cat &amp; dog") == [("cat</w>", 0, 3), ("&</w>", 4, 5),
                                                   ("dog</w>", 10, 13)]
    # A piece the cleanup changed beyond lowercasing is not found: an empty span in its word.
    nfd = "cafe\u0301 dog"
    assert [(s, e) for _, s, e in tok.tokenize_spans(nfd)][-1] == (6, 9)
    assert all(s == e == 0 for t, s, e in tok.tokenize_spans(nfd) if t != "dog</w>")
