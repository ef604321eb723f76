"""The loop of `cfspec ask`, per caption:

1. the instruction of `cfspec prompt` (the caption and few-shot examples);
2. the answer: from the cache, or from the backend (retried with backoff on transient errors);
3. the answer judged: an .scm answer is linted as it is (its spec id set to the caption's id);
   a JSON or free-text answer goes through `cfspec import` first;
4. on errors, up to `repairs` more rounds: the rendered diagnostics go back to the model,
   which answers with the whole corrected spec;
5. DIR/<id>.scm written (atomically), and every request, answer and verdict appended to
   DIR/ask.jsonl.

Nothing is written outside DIR: the cache is DIR/.cfspec-ask/.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfspec.ask.backends import Backend, Reply, with_retries
from cfspec.ask.cache import Cache, request_key
from cfspec.ask.captions import Caption
from cfspec.diagnostics.codes import Severity
from cfspec.diagnostics.records import Diagnostic
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config

LOG = "ask.jsonl"
CACHE = ".cfspec-ask"
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n(.*?)(?:\n[ \t]*```|\Z)", re.S)

REPAIR = """Your answer has these problems (positions are line:column in your answer):

{diagnostics}
Answer again with the whole corrected spec, in the same form, and nothing else."""


@dataclass
class Options:
    repairs: int = 2
    max_tokens: int = 1024
    temperature: float = 0.0
    seed: int = 0
    examples: int = 2
    jobs: int = 4
    retries: int = 4
    backoff: float = 1.0
    rpm: float | None = None  # requests per minute, at most
    shape: str = "scm"  # the answer asked for: scm or json


@dataclass
class Judged:
    scm: str | None
    diagnostics: list[Diagnostic]
    shape: str  # scm, llm-json, llm-text

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.level is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.level is Severity.WARNING)


@dataclass
class Outcome:
    caption: Caption
    path: Path | None
    judged: Judged
    rounds: int
    asked: int  # requests sent (not from the cache)
    cached: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retried: int = 0

    @property
    def verdict(self) -> str:
        j = self.judged
        if j.errors:
            return f"{j.errors} error{'s' if j.errors != 1 else ''}"
        if j.warnings:
            return f"clean, {j.warnings} warning{'s' if j.warnings != 1 else ''}"
        return "clean"


@dataclass
class Totals:
    outcomes: list[Outcome] = field(default_factory=list)

    def line(self) -> str:
        o = self.outcomes
        clean = sum(1 for x in o if not x.judged.errors)
        asked = sum(x.asked for x in o)
        cached = sum(x.cached for x in o)
        pt = sum(x.prompt_tokens for x in o)
        ct = sum(x.completion_tokens for x in o)
        retried = sum(x.retried for x in o)
        return (f"{clean} of {len(o)} caption{'s' if len(o) != 1 else ''} clean; "
                f"{asked} request{'s' if asked != 1 else ''} sent, {cached} answered from the "
                f"cache{f', {retried} retried' if retried else ''}; tokens sent {pt:,}, "
                f"received {ct:,}")


class _Pace:
    """At most `rpm` requests a minute across all workers."""

    def __init__(self, rpm: float | None) -> None:
        self.gap = 60.0 / rpm if rpm else 0.0
        self.next = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.gap:
            return
        with self.lock:
            now = time.monotonic()
            at = max(now, self.next)
            self.next = at + self.gap
        if at > now:
            time.sleep(at - now)


def extract(answer: str) -> str:
    """The spec inside an answer: the last fenced block that holds one (```scm, ```json or
    bare), else the answer as it is."""
    blocks = _FENCE.findall(answer)
    for _lang, body in reversed(blocks):
        if body.strip():
            return body
    return answer


def judge(answer: str, caption: Caption, config: Config) -> Judged:
    """Lint an .scm answer, or import a JSON or free-text one; spec ids become the caption's."""
    from cfspec.lint import check

    # A lone CR ends a line for cfspec (lint reads it so): the same here, in _with_id and in
    # the file written.
    text = extract(answer).replace("\r\n", "\n").replace("\r", "\n")
    head = text.lstrip()
    if head.startswith(("scm", "#")):
        text = _with_id(text, caption.item_id)
        parsed = check(SourceFile("answer.scm", text), config)
        return Judged(text, list(parsed.diagnostics), "scm")
    from cfspec.importers import ImportOptions, import_source

    items = import_source(SourceFile("answer", text), "auto",
                          ImportOptions(config=config, prompt=caption.text))
    item = items[0]
    scm = item.scm
    if scm is not None:
        scm = _with_id(scm, caption.item_id)
    return Judged(scm, list(item.diagnostics), item.shape)


def _with_id(text: str, item_id: str) -> str:
    """The one spec's `id` set to the caption's (added when missing), so pair ids are the
    dataset's. Text that does not parse, or holds several specs, is left as it is."""
    from cfspec.diagnostics.records import DiagnosticBag
    from cfspec.lang.parser import parse

    source = SourceFile("answer.scm", text)
    module = parse(source, DiagnosticBag(source))
    if module is None or len(module.specs) != 1:
        return text
    spec = module.specs[0]
    literal = json.dumps(item_id)
    if spec.ids:
        decl = spec.ids[0]
        a, b = decl.value.span.start, decl.value.span.end
        return text[:a] + literal + text[b:]
    brace = spec.name.span.end  # the spec's `{`: past whitespace and comments
    while brace < len(text) and text[brace] != "{":
        if text[brace] == "#":
            end = text.find("\n", brace)
            brace = len(text) if end < 0 else end
        brace += 1
    if brace >= len(text):
        return text
    return text[:brace + 1] + f"\n  id {literal}" + text[brace + 1:]


def _seed(base: int, item_id: str, round_no: int) -> int:
    import hashlib

    digest = hashlib.sha256(f"{base}:{item_id}:{round_no}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def header(caption: Caption, outcome: Outcome, model: str) -> str:
    lines = [f"# cfspec ask: {caption.origin}: {json.dumps(caption.text, ensure_ascii=False)}",
             f"# model {model}; {outcome.rounds} round{'s' if outcome.rounds != 1 else ''}; "
             f"{outcome.verdict}"]
    for d in outcome.judged.diagnostics:
        if d.level is Severity.ERROR:
            lines.append(f"# error[{d.code.name}] {d.span.line}:{d.span.column} "
                         f"{' '.join(d.message.split())}")
    return "\n".join(lines) + "\n"


class Runner:
    def __init__(self, backend: Backend, out: Path, config: Config, options: Options,
                 model_label: str, on_done: Callable[[Outcome], None] | None = None) -> None:
        from cfspec.workspace.outdir import prepare_out

        self.backend = backend
        self.out = prepare_out(out)
        self.cache = Cache(prepare_out(out, CACHE))
        self.config = config
        self.options = options
        self.model_label = model_label
        self.on_done = on_done
        self.pace = _Pace(options.rpm)
        self.describe = backend.describe()

    def run(self, captions: list[Caption]) -> Totals:
        totals = Totals()
        jobs = max(1, self.options.jobs)
        if jobs == 1:
            for c in captions:
                totals.outcomes.append(self._done(self.ask_one(c)))
            return totals
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(self.ask_one, c): i for i, c in enumerate(captions)}
            done: dict[int, Outcome] = {}
            try:
                for fut in as_completed(futures):
                    done[futures[fut]] = self._done(fut.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # what is answered is cached
                raise
        totals.outcomes = [done[i] for i in range(len(captions))]
        return totals

    def _done(self, outcome: Outcome) -> Outcome:
        if self.on_done:
            self.on_done(outcome)
        return outcome

    def _log(self, record: dict[str, Any]) -> None:
        from cfspec.workspace.store import append_record

        append_record(self.out / LOG, record)

    def ask_one(self, caption: Caption) -> Outcome:
        from cfspec.diagnostics.views import render
        from cfspec.importers.instruction import instruction
        from cfspec.workspace.atomic import write_text_atomic

        o = self.options
        params: dict[str, Any] = {"max_tokens": o.max_tokens, "temperature": o.temperature,
                                  "seed": o.seed}
        messages = [{"role": "user",
                     "content": instruction(caption.text, shape=o.shape,
                                            examples=o.examples)}]
        outcome = Outcome(caption, None, Judged(None, [], "scm"), 0, 0, 0)
        for round_no in range(1, o.repairs + 2):
            key = request_key(messages, self.describe, params)
            reply = self.cache.get(key)
            cached = reply is not None
            started = time.monotonic()
            if reply is None:
                # Each caption and round samples with its own seed (else a model that barely
                # reads its context would give every caption the same answer).
                sampling = dict(params, seed=_seed(o.seed, caption.item_id, round_no))

                def call(msgs: list[dict[str, str]] = messages,
                         kw: dict[str, Any] = sampling) -> Reply:
                    self.pace.wait()
                    return self.backend.complete(msgs, **kw)

                reply, failed = with_retries(call, retries=o.retries, base_delay=o.backoff)
                outcome.retried += failed
                self.cache.put(key, reply)
                outcome.asked += 1
                outcome.prompt_tokens += reply.prompt_tokens
                outcome.completion_tokens += reply.completion_tokens
            else:
                outcome.cached += 1
            judged = judge(reply.text, caption, self.config)
            outcome.judged, outcome.rounds = judged, round_no
            rendered = render(judged.diagnostics, "text") if judged.diagnostics else ""
            self._log({"event": "round", "id": caption.item_id, "round": round_no,
                       "key": key, "cached": cached, "messages": messages,
                       "answer": reply.text, "finish_reason": reply.finish_reason,
                       "prompt_tokens": reply.prompt_tokens,
                       "completion_tokens": reply.completion_tokens,
                       "seconds": round(time.monotonic() - started, 3),
                       "shape": judged.shape, "errors": judged.errors,
                       "warnings": judged.warnings, "diagnostics": rendered})
            if not judged.errors or round_no > o.repairs:
                break
            errors_only = [d for d in judged.diagnostics if d.level is Severity.ERROR]
            messages = messages + [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": REPAIR.format(
                    diagnostics=render(errors_only, "text"))}]
        if outcome.judged.scm is not None:
            from cfspec.importers import safe_id

            target = self.out / f"{safe_id(caption.item_id)}.scm"
            write_text_atomic(target, header(caption, outcome, self.model_label)
                              + outcome.judged.scm.rstrip("\n") + "\n")
            outcome.path = target
        self._log({"event": "final", "id": caption.item_id, "caption": caption.text,
                   "origin": caption.origin, "rounds": outcome.rounds,
                   "verdict": outcome.verdict, "errors": outcome.judged.errors,
                   "warnings": outcome.judged.warnings, "asked": outcome.asked,
                   "cached": outcome.cached,
                   "file": outcome.path.name if outcome.path else None})
        return outcome
