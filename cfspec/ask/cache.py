"""Answers kept under the hash of everything that decides them: the messages (caption,
instruction, earlier rounds), the backend and model, the grammar and the sampling parameters.
One file per answer, written atomically inside the output folder, so a re-run asks nothing
that was answered and a killed run loses at most the requests in flight."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cfspec.ask.backends import Reply
from cfspec.workspace.atomic import write_text_atomic


def request_key(messages: list[dict[str, str]], backend: dict[str, Any],
                params: dict[str, Any]) -> str:
    blob = json.dumps({"messages": messages, "backend": backend, "params": params,
                       "version": 1}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Cache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> Reply | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Reply(str(data["text"]), int(data["prompt_tokens"]),
                         int(data["completion_tokens"]), str(data["finish_reason"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing, or torn by hand: ask again

    def put(self, key: str, reply: Reply) -> None:
        from cfspec.workspace.outdir import output_dir

        folder = output_dir(self.folder, key[:2])
        write_text_atomic(folder / f"{key}.json", json.dumps(
            {"text": reply.text, "prompt_tokens": reply.prompt_tokens,
             "completion_tokens": reply.completion_tokens,
             "finish_reason": reply.finish_reason}, ensure_ascii=False))
