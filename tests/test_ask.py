"""`cfspec ask`: grammar-constrained decoding with a tiny random-weight model (every answer
parses), the repair loop against a stub server that returns recorded real LLM answers, the
cache, resume after a kill, retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cfspec.ask.backends import Reply
from cfspec.ask.captions import Caption, read_captions
from cfspec.ask.runner import LOG, Options, Runner, judge
from cfspec.diagnostics.records import DiagnosticBag
from cfspec.diagnostics.source import SourceFile
from cfspec.lang.config import Config
from cfspec.lang.parser import parse

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")
COCO = SHARED / "real" / "coco_counterfactuals_captions_1-5000.jsonl"
PLATE = SHARED / "reference" / "llm_plate_fork.json"


def parses(text: str) -> bool:
    source = SourceFile("x.scm", text.replace("\r\n", "\n").replace("\r", "\n"))
    bag = DiagnosticBag(source)
    module = parse(source, bag)
    return module is not None and not bag.items and len(module.specs) == 1


def log_records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / LOG).read_text().splitlines() if line]


# -- in process, with the grammar ------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("llguidance")
    pytest.importorskip("transformers")
    from llm_models import tiny_llm

    return tiny_llm(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture(scope="module")
def local(tiny: Path) -> Any:
    from cfspec.ask.backends import LocalBackend

    return LocalBackend(str(tiny))  # loaded back from the folder, as --model PATH does


def test_every_constrained_answer_parses(local: Any) -> None:
    """Random weights pick tokens at random among those the grammar allows: the test of the
    constraint. Without it, the same model writes nothing that parses."""
    messages = [{"role": "user", "content": "A woman cuts a cake."}]
    replies = [local.complete(messages, max_tokens=64, temperature=1.0, seed=s)
               for s in range(12)]
    texts = [r.text for r in replies]
    assert all(parses(t) for t in texts), [t for t in texts if not parses(t)]
    assert len(set(texts)) == len(texts)  # really sampled
    # most run out of tokens mid-spec and are closed by the decoder: that path is tested too
    assert sum(r.finish_reason == "forced" for r in replies) >= 6
    free = local.model.generate(messages, grammar=None, max_tokens=96, temperature=1.0, seed=0)
    assert not parses(free.text)


class Counting:
    """A backend wrapper that counts requests and can fail after `fail_after` of them."""

    def __init__(self, inner: Any, fail_after: int | None = None) -> None:
        self.inner, self.fail_after, self.calls = inner, fail_after, 0
        self.name = inner.name

    def describe(self) -> dict[str, Any]:
        return dict(self.inner.describe())

    def complete(self, messages: list[dict[str, str]], **kw: Any) -> Reply:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")  # as a kill: nothing after this runs
        self.calls += 1
        return self.inner.complete(messages, **kw)


def test_ask_writes_parseable_specs_and_resumes(local: Any, tmp_path: Path) -> None:
    lines = COCO.read_text(encoding="utf-8").splitlines()[:8]
    captions_file = tmp_path / "captions.jsonl"
    captions_file.write_text("\n".join(lines) + "\n")
    captions = read_captions([str(captions_file)]).items
    assert [c.item_id for c in captions][:2] == ["158956_0", "164602_4"]
    out = tmp_path / "out"
    options = Options(repairs=1, max_tokens=80, temperature=1.0, examples=0, jobs=1)

    first = Counting(local, fail_after=5)
    with pytest.raises(KeyboardInterrupt):
        Runner(first, out, Config(), options, "tiny").run(captions)
    assert first.calls == 5
    done_before = {r["id"] for r in log_records(out) if r["event"] == "final"}
    assert 0 < len(done_before) < len(captions)

    second = Counting(local)
    totals = Runner(second, out, Config(), options, "tiny").run(captions)
    assert sum(o.cached for o in totals.outcomes) == 5  # nothing answered was asked again
    assert second.calls == sum(o.asked for o in totals.outcomes)
    for outcome in totals.outcomes:
        assert outcome.path is not None and outcome.path.name == f"{outcome.caption.item_id}.scm"
        text = outcome.path.read_text(encoding="utf-8")
        assert parses(text), outcome.path
        assert f'id "{outcome.caption.item_id}"' in text
    assert len(list(out.glob("*.scm"))) == len(captions)

    third = Counting(local)
    again = Runner(third, out, Config(), options, "tiny").run(captions)
    assert third.calls == 0
    assert [o.judged.scm for o in again.outcomes] == [o.judged.scm for o in totals.outcomes]
    finals = [r for r in log_records(out) if r["event"] == "final"]
    assert len(finals) == len(done_before) + 2 * len(captions)


# -- over HTTP: a stub server with recorded real answers ---------------------------------------

class Stub:
    """An OpenAI-compatible chat endpoint on loopback that answers with recorded LLM answers:
    the first answer for a caption is the real one (`llm_plate_fork.json`, which has a cycle),
    and an answer to a repair message is the same answer with `P → F` taken out."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = fail_first
        real = PLATE.read_text(encoding="utf-8")
        fixed = "\n".join(line for line in real.splitlines() if "P → F" not in line)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                if stub.fail_first > 0:
                    stub.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                last = body["messages"][-1]["content"]
                text = fixed if "has these problems" in last else real
                data = json.dumps({
                    "id": "x", "object": "chat.completion", "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 50,
                              "total_tokens": 150}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> Stub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


@pytest.fixture
def stub() -> Iterator[Stub]:
    pytest.importorskip("openai")
    with Stub(fail_first=1) as s:
        yield s


CAPTION = "A white plate with a sliced up piece of food on top of it."


def test_repair_loop_sends_the_diagnostics_back(stub: Stub, tmp_path: Path) -> None:
    from cfspec.ask.backends import OpenAIBackend

    backend = OpenAIBackend("llama-3.1-70b", stub.url, api_key=None)
    out = tmp_path / "out"
    options = Options(repairs=2, backoff=0.01, jobs=2)
    caption = Caption("plate_fork", CAPTION, "test")
    totals = Runner(backend, out, Config(), options, "llama").run([caption])
    outcome = totals.outcomes[0]
    assert outcome.retried == 1  # the 503 was tried again
    rounds = [r for r in log_records(out) if r["event"] == "round"]
    assert rounds[0]["errors"] > 0 and "cycle F -> P -> F" in rounds[0]["diagnostics"]
    repair = stub.requests[-1]["messages"]
    assert [m["role"] for m in repair] == ["user", "assistant", "user"]
    assert repair[1]["content"] == PLATE.read_text(encoding="utf-8")
    assert "error[SCM201]: cycle F -> P -> F" in repair[2]["content"]
    assert "answer:11:6" in repair[2]["content"]  # positions in the model's own answer
    assert "cycle" not in rounds[1]["diagnostics"]
    assert outcome.rounds == len(rounds) >= 2
    assert outcome.path is not None and outcome.path.read_text().count('id "plate_fork"') == 1
    assert outcome.prompt_tokens == 100 * len(rounds)

    sent = len(stub.requests)
    again = Runner(backend, out, Config(), options, "llama").run([caption])
    assert len(stub.requests) == sent and again.outcomes[0].cached == len(rounds)


def test_cli_against_the_stub(stub: Stub, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cfspec.cli.app import app

    captions = tmp_path / "captions.txt"
    captions.write_text(CAPTION + "\n\nA woman is cutting into a cake with a large knife.\n")
    result = CliRunner().invoke(app, ["ask", str(captions), "-o", str(tmp_path / "out"),
                                      "--model", "m", "--base-url", stub.url, "--repairs", "0",
                                      "--retries", "2"])
    assert result.exit_code == 1, result.output  # the recorded answer has a cycle
    assert "error[SCM201]" in result.stdout and "captions_line1.scm" in result.stdout
    assert "0 of 2 captions clean; 2 requests sent" in result.stderr
    assert "Answer with a single `scm` block" in stub.requests[-1]["messages"][0]["content"]
    result = CliRunner().invoke(app, ["ask", CAPTION, "-o", str(tmp_path / "json"), "--model",
                                      "m", "--base-url", stub.url, "--repairs", "0",
                                      "--shape", "json"])
    assert "Answer with a single JSON object" in stub.requests[-1]["messages"][0]["content"]
    assert result.exit_code == 1 and "1 request sent" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.scm")) == [
        "captions_line1.scm", "captions_line3.scm"]


def test_bad_input_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cfspec.cli.app import app

    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"id": "a", "caption_0": "x y"}\n{"id": "b", "caption_0": "A dog.", '
                   '"caption_1": "A cat."}\n')
    r = CliRunner().invoke(app, ["ask", "missing.txt", "-o", str(tmp_path / "o"), "--model",
                                 "m", "--base-url", "http://127.0.0.1:9/v1"])
    assert r.exit_code == 2 and "missing.txt: no such file" in r.stderr
    r = CliRunner().invoke(app, ["ask", "A dog runs.", "-o", str(tmp_path / "o"),
                                 "--model", "no-such-model"], env={"OPENAI_API_KEY": ""})
    assert r.exit_code == 2 and "give --base-url" in r.stderr
    read = read_captions([str(bad)])
    assert [c.item_id for c in read.items] == ["b"]
    assert read.diagnostics and read.diagnostics[0].span.line == 1


def test_judge_reads_scm_json_and_fenced_answers() -> None:
    caption = Caption("c1", "A woman cuts a cake.", "test")
    fenced = ('Here is the spec:\n```scm\nscm cake {\n  prompt "A {{ W }} cuts a cake."\n'
              '  var W = "woman"\n  counterfactual man { do(W = "man") }\n}\n```\n')
    j = judge(fenced, caption, Config())
    assert j.shape == "scm" and j.scm is not None and 'id "c1"' in j.scm and not j.errors
    j = judge(PLATE.read_text(encoding="utf-8"), caption, Config())
    assert j.shape == "llm-json" and any(d.code.name == "cycle" for d in j.diagnostics)
    j = judge("", caption, Config())
    assert j.scm is None and j.errors


def test_a_server_that_keeps_failing_is_a_clean_error(tmp_path: Path) -> None:
    pytest.importorskip("openai")
    from typer.testing import CliRunner

    from cfspec.cli.app import app

    with Stub(fail_first=100) as down:
        r = CliRunner().invoke(app, ["ask", "A dog runs.", "-o", str(tmp_path / "o"),
                                     "--model", "m", "--base-url", down.url, "--retries", "1"])
    assert r.exit_code == 2 and r.exception is None or isinstance(r.exception, SystemExit)
    assert "Error code: 503" in r.stderr and "(tried 2 times)" in r.stderr
    assert "run again to go on" in r.stderr and len(down.requests) == 2


# -- over HTTP: a real OpenAI-compatible server (`transformers serve`) on the tiny model ---------

def test_transformers_serve(tiny: Path, tmp_path: Path) -> None:
    """The HTTP path end to end against a real server. It takes no grammar, so the random
    model's answers are noise: what is checked is the exchange, the log and the repair round."""
    import shutil
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("no `transformers` command")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([exe, "serve", str(tiny), "--host", "127.0.0.1", "--port",
                               str(port), "--device", "cpu"], stdout=log, stderr=log,
                              env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    try:
        url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 240
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "transformers serve did not start"
                time.sleep(1)
        from typer.testing import CliRunner

        from cfspec.cli.app import app

        out = tmp_path / "out"
        r = CliRunner().invoke(app, ["ask", "A woman cuts a cake.", "A dog runs.", "-o",
                                     str(out), "--model", str(tiny), "--base-url", url,
                                     "--max-tokens", "24", "--examples", "0", "--repairs", "1",
                                     "--jobs", "1"])
        assert r.exit_code in (0, 1), r.output
        rounds = [x for x in log_records(out) if x["event"] == "round"]
        finals = [x for x in log_records(out) if x["event"] == "final"]
        assert len(finals) == 2 and len(rounds) >= 2
        assert all(x["prompt_tokens"] > 0 and x["completion_tokens"] > 0 for x in rounds)
        assert all(x["answer"] and not x["cached"] for x in rounds)
        if any(x["round"] == 2 for x in rounds):  # a repair went to the server too
            second = next(x for x in rounds if x["round"] == 2)
            assert second["messages"][-1]["content"].startswith("Your answer has these problems")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_an_unwritable_out_fails_before_any_request(stub: Stub, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cfspec.cli.app import app

    (tmp_path / "file").write_text("x")
    r = CliRunner().invoke(app, ["ask", "A dog runs.", "-o", str(tmp_path / "file"),
                                 "--model", "m", "--base-url", stub.url])
    assert r.exit_code == 2 and "cfspec: error:" in r.stderr and not stub.requests


def test_the_closing_scan_reads_lines_as_cfspec_does() -> None:
    from cfspec.ask.decode import _scan

    assert _scan('scm a { # c\r x -> y "ab') == (True, False, False)
    assert _scan('scm a { x -> y "a\\') == (True, True, False)
    assert _scan('scm a { # c "\r') == (False, False, False)
    assert _scan("scm a { # c") == (False, False, True)


def test_a_failing_server_stops_the_queue(tmp_path: Path) -> None:
    pytest.importorskip("openai")
    from typer.testing import CliRunner

    from cfspec.cli.app import app

    captions = tmp_path / "c.txt"
    captions.write_text("".join(f"A dog number {i} runs.\n" for i in range(20)))
    with Stub(fail_first=100) as down:
        r = CliRunner().invoke(app, ["ask", str(captions), "-o", str(tmp_path / "o"),
                                     "--model", "m", "--base-url", down.url, "--retries", "0",
                                     "--jobs", "2"])
    assert r.exit_code == 2 and "Error code: 503" in r.stderr
    assert len(down.requests) < 10  # the queued captions were cancelled, not all asked


def test_sigkill_halfway_then_resume(local: Any, tiny: Path, tmp_path: Path) -> None:
    """`cfspec ask` in a subprocess, SIGKILLed at a chosen step (tests/killpoints.py: no timing
    involved): just before the fifth caption's .scm is put in place. Four captions are then
    finished and the fifth answer is cached; the re-run asks only what has no answer in the
    cache, and every caption ends with a spec."""
    from killpoints import events, run_cfspec

    lines = COCO.read_text(encoding="utf-8").splitlines()[8:16]
    args = ["ask", "captions.jsonl", "-o", "out", "--model", str(tiny), "--max-tokens", "48",
            "--examples", "0", "--repairs", "0", "--quiet"]

    def workdir(name: str) -> Path:
        work = tmp_path / name / "work"
        work.mkdir(parents=True)
        (work / "captions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return work

    # A whole run lists the file-system steps; the kill lands on the fifth .scm's rename.
    listing = workdir("listing")
    assert run_cfspec(listing, args).returncode in (0, 1)  # 1: random weights write errors
    scm_renames = [n for n, (name, path) in enumerate(events(listing), start=1)
                   if name == "replace" and path.endswith(".tmp") and ".scm." in path
                   and "/.cfspec-ask/" not in path]
    assert len(scm_renames) == len(lines)
    work = workdir("killed")
    killed = run_cfspec(work, args, kill_at=scm_renames[4])
    assert killed.returncode < 0  # SIGKILL, as planned
    out = work / "out"
    finals = [r for r in log_records_lenient(out) if r["event"] == "final"]
    assert len(finals) == 4 and len(list(out.glob("*.scm"))) == 4

    captions = read_captions([str(work / "captions.jsonl")]).items
    again = Counting(local)
    options = Options(repairs=0, max_tokens=48, examples=0, jobs=1)
    totals = Runner(again, out, Config(), options, "tiny").run(captions)
    cached = sum(o.cached for o in totals.outcomes)
    assert cached == 5 and again.calls + cached == len(captions)
    assert all(o.path is not None and parses(o.path.read_text()) for o in totals.outcomes)


def log_records_lenient(out: Path) -> list[dict[str, Any]]:
    """The log as a killed writer may leave it: a torn last line is skipped."""
    records = []
    for line in (out / LOG).read_text(errors="replace").split("\n"):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def test_a_folder_that_is_no_model_is_a_usage_error(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from typer.testing import CliRunner

    from cfspec.cli.app import app

    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    r = CliRunner().invoke(app, ["ask", "A dog runs.", "-o", str(tmp_path / "o"), "--model",
                                 str(folder)], env={"HF_HUB_OFFLINE": "1"})
    assert r.exit_code == 2 and f"--model {folder}:" in r.stderr, r.output
