"""In-process generation with a transformers causal LM, its logits masked by llguidance so that
every token keeps the text inside the grammar (`cfspec grammar --target llguidance`).

A model can run out of tokens mid-spec. Then (and only then, in the last `reserve` tokens) the
decoder stops sampling and closes the spec by the shortest way the grammar allows: close the
open string, comment or braces first. So an answer always parses, even from random weights.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

# Preferred bytes when closing, by situation; the first one the grammar allows is taken.
_CLOSE_OUTSIDE = ("}", ")", "]", "{", "(", "=", " ", '"', "0", ",", "-", ">", "x")
_RESERVE = 48


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # stop, length, forced (closed by the decoder)


class LocalModel:
    """A model folder loaded once; `generate` is serialised (one forward pass at a time)."""

    def __init__(self, path: str, device: str = "cpu") -> None:
        from cfspec.workspace.usercache import private_torch_caches

        private_torch_caches()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.torch: Any = torch
        self.tokenizer: Any = AutoTokenizer.from_pretrained(path)
        self.model: Any = AutoModelForCausalLM.from_pretrained(path)
        self.model.to(device)  # type: ignore[arg-type]
        self.model.eval()
        self.device = device
        self.lock = threading.Lock()
        import inspect

        # transformers 5 calls the KV cache `cache`; 4.x `past_key_values`
        self.cache_arg = ("cache" if "cache" in inspect.signature(self.model.forward).parameters
                          else "past_key_values")
        self._ll: dict[str, Any] = {}
        self._single: dict[str, int] | None = None

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            return list(ids)
        text = "".join(f"{m['role']}: {m['content']}\n\n" for m in messages) + "assistant: "
        return list(tok(text, add_special_tokens=False)["input_ids"])

    def _lltok(self) -> Any:
        if "tok" not in self._ll:
            import llguidance.hf

            self._ll["tok"] = llguidance.hf.from_tokenizer(self.tokenizer)
        return self._ll["tok"]

    def check_grammar(self, lark: str | None) -> None:
        """The tokenizer works with llguidance and the grammar compiles; ValueError if not."""
        import llguidance

        if lark is None:
            return
        matcher = llguidance.LLMatcher(self._lltok(), llguidance.LLMatcher.grammar_from_lark(lark),
                                       log_level=0)
        if matcher.is_error():
            raise ValueError(f"llguidance refused the grammar: {matcher.get_error()}")

    def _single_bytes(self) -> dict[str, int]:
        """Token ids that decode to exactly one ASCII character (for closing a spec)."""
        if self._single is None:
            found: dict[str, int] = {}
            for tid in range(len(self.tokenizer)):
                s = self.tokenizer.decode([tid])
                if len(s) == 1 and s.isascii() and s not in found:
                    found[s] = tid
            self._single = found
        return self._single

    def generate(self, messages: list[dict[str, str]], *, grammar: str | None, max_tokens: int,
                 temperature: float, seed: int) -> Generation:
        with self.lock:
            return self._generate(messages, grammar, max_tokens, temperature, seed)

    def _generate(self, messages: list[dict[str, str]], grammar: str | None, max_tokens: int,
                  temperature: float, seed: int) -> Generation:
        torch = self.torch
        ids = self.prompt_ids(messages)
        eos = self.tokenizer.eos_token_id
        matcher = None
        if grammar is not None:
            import llguidance

            matcher = llguidance.LLMatcher(self._lltok(), grammar, log_level=0)
            if matcher.is_error():
                raise ValueError(f"llguidance refused the grammar: {matcher.get_error()}")
        gen = torch.Generator().manual_seed(seed)
        out: list[int] = []
        past = None
        inputs = torch.tensor([ids], device=self.device)
        finish = "length"
        forced = False
        with torch.no_grad():
            for step in range(max_tokens):
                result = self.model(input_ids=inputs, use_cache=True,
                                    **{self.cache_arg: past})
                past = getattr(result, "cache", None) or result.past_key_values
                logits = result.logits[0, -1].float().cpu()
                vocab = logits.shape[0]
                if matcher is not None:
                    if matcher.is_accepting() and matcher.is_stopped():
                        finish = "stop"
                        break
                    if max_tokens - step <= _RESERVE:
                        token = self._closing_token(matcher, out)
                        forced = True
                    else:
                        allowed = torch.frombuffer(bytearray(matcher.compute_logit_bias()),
                                                   dtype=torch.uint8)[:vocab] > 0
                        if allowed.shape[0] < vocab:
                            allowed = torch.cat([allowed, torch.zeros(vocab - allowed.shape[0],
                                                                      dtype=torch.bool)])
                        logits = logits.masked_fill(~allowed, float("-inf"))
                        token = _sample(torch, logits, temperature, gen)
                    if token == eos or (token is None):
                        finish = "stop"
                        break
                    if not matcher.consume_token(token):
                        raise RuntimeError(f"llguidance refused token {token}: "
                                           f"{matcher.get_error()}")
                else:
                    token = _sample(torch, logits, temperature, gen)
                    if token == eos:
                        finish = "stop"
                        break
                out.append(token)
                inputs = torch.tensor([[token]], device=self.device)
        if forced and finish == "stop":
            finish = "forced"
        text = self.tokenizer.decode(out, skip_special_tokens=True)
        return Generation(text, len(ids), len(out), finish)

    def _closing_token(self, matcher: Any, out: list[int]) -> int | None:
        """The next token on the shortest way to a complete spec (see the module docstring)."""
        eos = self.tokenizer.eos_token_id
        bias = matcher.compute_logit_bias()
        if eos is not None and eos < len(bias) and bias[eos] and matcher.is_accepting():
            return int(eos)
        single = self._single_bytes()
        text = self.tokenizer.decode(out, skip_special_tokens=True)
        in_string, escaped, in_comment = _scan(text)
        if in_comment:
            order: tuple[str, ...] = ("\n", '"')
        elif in_string:
            order = ("x",) if escaped else ('"', "\n")
        else:
            order = _CLOSE_OUTSIDE
        last = text[-1:] if text else ""
        for ch in order:
            if ch == " " and (not last or last.isspace()):
                continue
            if ch in ("0", "x") and (last.isalnum() or last == "_"):
                continue
            tid = single.get(ch)
            if tid is not None and tid < len(bias) and bias[tid]:
                return tid
        for tid in range(len(bias)):  # anything but a comment or more of the same word
            if bias[tid] and tid != eos:
                s = self.tokenizer.decode([tid])
                if s and "#" not in s and not s.isspace():
                    return tid
        return None


def _scan(text: str) -> tuple[bool, bool, bool]:
    """(inside a string, right after a backslash in it, inside a comment) at the end of text."""
    in_string = escaped = in_comment = False
    for ch in text:
        if in_comment:
            in_comment = ch not in "\n\r"  # a lone CR ends a line for cfspec
        elif in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch in '"\n\r':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "#":
            in_comment = True
    return in_string, escaped, in_comment


def _sample(torch: Any, logits: Any, temperature: float, gen: Any) -> int:
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=gen))
