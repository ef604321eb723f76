"""Where answers come from: any OpenAI-compatible chat endpoint (vLLM, SGLang, llama.cpp's
server, `transformers serve`, hosted APIs), or a transformers model run in this process.

A server that takes a grammar gets one, in the field it reads (`--server-grammar`):

- `none`: nothing (hosted APIs, `transformers serve`);
- `structured-outputs`: `{"structured_outputs": {"grammar": LARK}}`, the llguidance export
  (vLLM);
- `guided-grammar`: `{"guided_grammar": GBNF}` (older vLLM, xgrammar backend);
- `ebnf`: `{"ebnf": GBNF}` (SGLang);
- `grammar`: `{"grammar": GBNF}` (llama.cpp's server).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

SERVER_GRAMMAR = ("none", "structured-outputs", "guided-grammar", "ebnf", "grammar")


@dataclass
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class TransientError(Exception):
    """Worth another try (connection, timeout, 429, 5xx)."""


class RequestError(Exception):
    """The server refused the request (bad key, unknown model, bad request): no retry."""


class Backend(Protocol):
    name: str

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int,
                 temperature: float, seed: int) -> Reply: ...

    def describe(self) -> dict[str, Any]:
        """What identifies this backend's answers (part of the cache key)."""
        ...


def grammar_for(field: str, one_spec: bool = True) -> tuple[str, str] | None:
    """(target, text) of the grammar a server field takes."""
    from cfspec.lang.grammar_export import export

    if field == "none":
        return None
    target = "llguidance" if field == "structured-outputs" else "gbnf"
    return target, export(target, one_spec=one_spec)


class OpenAIBackend:
    name = "openai"

    def __init__(self, model: str, base_url: str | None, *, api_key: str | None,
                 server_grammar: str = "none", timeout: float = 600.0) -> None:
        import openai

        self.model = model
        self.base_url = base_url
        self.server_grammar = server_grammar
        self.grammar = grammar_for(server_grammar)
        # Retries are ours (counted, with backoff and jitter), not the client's.
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY",
                                    max_retries=0, timeout=timeout)
        self.openai = openai

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url,
                "server_grammar": self.server_grammar,
                "grammar": self.grammar[1] if self.grammar else None}

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int,
                 temperature: float, seed: int) -> Reply:
        extra: dict[str, Any] = {}
        if self.grammar is not None:
            text = self.grammar[1]
            fields: dict[str, dict[str, Any]] = {
                     "structured-outputs": {"structured_outputs": {"grammar": text}},
                     "guided-grammar": {"guided_grammar": text},
                     "ebnf": {"ebnf": text},
                     "grammar": {"grammar": text}}
            extra = fields[self.server_grammar]
        oa = self.openai
        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens,  # type: ignore[arg-type]
                temperature=temperature, seed=seed, extra_body=extra or None)
        except (oa.APIConnectionError, oa.APITimeoutError, oa.RateLimitError,
                oa.InternalServerError) as error:
            raise TransientError(f"{self.base_url or 'the API'}: {error}") from error
        except oa.APIError as error:
            raise RequestError(f"{self.base_url or 'the API'}: {error}") from error
        choice = response.choices[0]
        usage = response.usage
        return Reply(choice.message.content or "",
                     usage.prompt_tokens if usage else 0,
                     usage.completion_tokens if usage else 0,
                     choice.finish_reason or "")


class LocalBackend:
    """A transformers model folder (or a hub id already in the local cache), decoded here with
    llguidance masking the logits (`decode.py`)."""

    name = "local"

    def __init__(self, path: str, *, constrained: bool = True, device: str = "cpu") -> None:
        from cfspec.ask.decode import LocalModel
        from cfspec.lang.grammar_export import export

        self.path = path
        self.grammar_text = export("llguidance", one_spec=True) if constrained else None
        self.model = LocalModel(path, device)
        if constrained:
            self.model.check_grammar(self.grammar_text)  # fail now, not at the first caption

    def describe(self) -> dict[str, Any]:
        import hashlib

        return {"backend": "local", "model": self.path,
                "weights": _folder_digest(self.path),
                "grammar": hashlib.sha256((self.grammar_text or "").encode()).hexdigest()}

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int,
                 temperature: float, seed: int) -> Reply:
        import llguidance

        grammar = (llguidance.LLMatcher.grammar_from_lark(self.grammar_text)
                   if self.grammar_text else None)
        g = self.model.generate(messages, grammar=grammar, max_tokens=max_tokens,
                                temperature=temperature, seed=seed)
        return Reply(g.text, g.prompt_tokens, g.completion_tokens, g.finish_reason)


def _folder_digest(path: str) -> str:
    """Size and mtime of a model folder's files: a changed model is a new cache key."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    root = Path(path)
    if root.is_dir():
        for f in sorted(root.rglob("*")):
            if f.is_file():
                st = f.stat()
                h.update(f"{f.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def with_retries(call: Any, *, retries: int, base_delay: float = 1.0,
                 sleep: Any = time.sleep) -> tuple[Reply, int]:
    """call() with up to `retries` more tries on TransientError, waiting base * 2^k (+ jitter).
    Returns the reply and how many tries failed."""
    failed = 0
    while True:
        try:
            return call(), failed
        except TransientError as error:
            failed += 1
            if failed > retries:
                raise TransientError(f"{error} (tried {failed} times)") from error
            sleep(base_delay * 2 ** (failed - 1) * (1 + random.random() / 2))
