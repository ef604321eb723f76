"""A byte-level tokenizer and a tiny random-weight causal LM, built here (no hub), saved to a
folder and loaded back by path, the way `cfspec ask --model PATH` loads a real one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# A few multi-byte tokens, so a token can span several grammar lexemes.
MERGED = ("scm", "var", "counterfactual", "do(", "->", ' "', '" ', "  ", "\n", "edit", "}")


def byte_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    vocab = {"<eos>": 0}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    merges = []
    for word in MERGED:
        enc = "".join(piece for piece, _ in byte_level.pre_tokenize_str(word))
        cur = enc[0]
        for ch in enc[1:]:
            if cur + ch not in vocab:
                vocab[cur + ch] = len(vocab)
                merges.append((cur, ch))
            cur = cur + ch
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant: {% endif %}")


def tiny_llm(folder: Path, seed: int = 0) -> Path:
    """A 2-layer Llama with random weights, saved with its tokenizer into `folder`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = byte_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=8192, eos_token_id=tok.eos_token_id,
                         bos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
