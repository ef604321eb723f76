#!/usr/bin/env python3
"""The installs users make, checked as they make them: a wheel built from this checkout, put
into a new virtual environment with no extras (then with each extra), and every command of
that install run with an empty HOME and TMPDIR from a folder outside the checkout.

    python .ci/install_check.py [--extras base,lsp,llm,gpu] [--keep DIR]

The development venv hides what a plain install lacks (a dependency only `dev` pulls in, a
file only the checkout has, a cache only an old machine has); this does not. Exit 0 when every
check passes; each failure is printed with the command, its exit status and its output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "diffusers", "transformers", "pygls", "openai")


class Check:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.failures: list[str] = []

    def env(self, venv: Path) -> dict[str, str]:
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.work))
        temp = Path(tempfile.mkdtemp(prefix="tmp-", dir=self.work))
        keep = {k: v for k, v in os.environ.items()
                if k in ("PATH", "LANG", "LC_ALL", "TERM", "SYSTEMROOT")}
        return {**keep, "HOME": str(home), "TMPDIR": str(temp), "NO_COLOR": "1",
                "HF_HUB_OFFLINE": "1", "PATH": f"{venv / 'bin'}{os.pathsep}{keep['PATH']}",
                "VIRTUAL_ENV": str(venv)}

    def run(self, venv: Path, args: list[str], *, cwd: Path, expect: int | tuple[int, ...] = 0,
            stdin: str | None = None, contains: str | None = None,
            home_untouched: bool = True) -> str:
        """`cfspec ARGS` from the venv's console script; checks the exit status, that nothing
        was left in TMPDIR, and (for the core) that nothing was written to HOME."""
        env = self.env(venv)
        command = [str(venv / "bin" / "cfspec"), *args]
        started = time.monotonic()
        result = subprocess.run(command, cwd=cwd, env=env, input=stdin, capture_output=True,
                                text=True, timeout=900, check=False)
        seconds = time.monotonic() - started
        expected = expect if isinstance(expect, tuple) else (expect,)
        output = result.stdout + result.stderr
        problems = []
        if result.returncode not in expected:
            problems.append(f"exit {result.returncode}, expected {expected}")
        if "Traceback (most recent call last)" in output:
            problems.append("a traceback")
        if contains is not None and contains not in output:
            problems.append(f"no {contains!r} in the output")
        left = sorted(str(p.relative_to(env["TMPDIR"])) for p in Path(env["TMPDIR"]).rglob("*"))
        if left:
            problems.append(f"left in TMPDIR: {left[:5]}")
        written = sorted(str(p.relative_to(env["HOME"])) for p in Path(env["HOME"]).rglob("*"))
        if home_untouched and written:
            problems.append(f"written to HOME: {written[:5]}")
        name = f"{venv.name}: cfspec {' '.join(args)}"
        if problems:
            self.failures.append(f"{name}: {'; '.join(problems)}\n{output[-3000:]}")
            print(f"FAIL {name} ({seconds:.1f} s): {'; '.join(problems)}", flush=True)
        else:
            print(f"ok   {name} ({seconds:.1f} s)", flush=True)
        return output

    def python(self, venv: Path, code: str, what: str) -> None:
        result = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=self.work,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            self.failures.append(f"{venv.name}: {what}\n{result.stdout}{result.stderr}")
            print(f"FAIL {venv.name}: {what}", flush=True)
        else:
            print(f"ok   {venv.name}: {what}", flush=True)


def build_wheel(work: Path) -> Path:
    dist = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
                    str(ROOT)], check=True)
    [wheel] = dist.glob("cfspec-*.whl")
    return wheel


def make_venv(work: Path, name: str, requirement: str) -> Path:
    venv = work / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", requirement], check=True)
    return venv


def project(work: Path) -> Path:
    """A folder outside the checkout with what a user would have: some specs, a caption-pair
    file, a spec to format."""
    folder = work / "project"
    shutil.copytree(ROOT / "specs", folder / "specs", ignore=shutil.ignore_patterns("invalid"))
    shutil.copytree(ROOT / "specs" / "invalid", folder / "invalid")
    (folder / "pairs.jsonl").write_text(
        json.dumps({"id": "1", "caption_0": "a dog on a sofa", "caption_1": "a cat on a sofa"})
        + "\n", encoding="utf-8")
    (folder / "messy.scm").write_text(
        'scm  messy{ prompt "a {{ D }} on a sofa"\nvar D = "dog"\n'
        'counterfactual cat {do(D="cat")} }\n', encoding="utf-8")
    return folder


def lsp_session() -> str:
    """initialize, initialized, shutdown and exit, framed as LSP messages."""
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"processId": None, "rootUri": None, "capabilities": {}}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "shutdown"},
        {"jsonrpc": "2.0", "method": "exit"},
    ]
    framed = ""
    for message in messages:
        body = json.dumps(message)
        framed += f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    return framed


def core(check: Check, venv: Path, cwd: Path) -> None:
    """The commands every install runs: no model, no extra."""
    check.run(venv, ["--version"], cwd=cwd)
    check.run(venv, ["lint", "specs/"], cwd=cwd)
    check.run(venv, ["lint", "invalid/cycle.scm"], cwd=cwd, expect=1)
    check.run(venv, ["lint", "-"], cwd=cwd, stdin=(cwd / "specs" / "cake.scm").read_text())
    check.run(venv, ["fmt", "--check", "specs/"], cwd=cwd)
    check.run(venv, ["fmt", "messy.scm"], cwd=cwd)
    check.run(venv, ["compile", "specs/", "-o", "out"], cwd=cwd)
    check.run(venv, ["import", "pairs.jsonl", "-o", "imported"], cwd=cwd)
    check.run(venv, ["explain", "cycle"], cwd=cwd)
    check.run(venv, ["codes", "--format", "json"], cwd=cwd)
    check.run(venv, ["questions", "specs/cake.scm"], cwd=cwd, expect=(0, 2))
    for target in ("lark", "gbnf", "xgrammar", "llguidance"):
        check.run(venv, ["grammar", "--target", target], cwd=cwd)
    check.run(venv, ["graph", "specs/cake.scm"], cwd=cwd)
    check.run(venv, ["prompt", "a dog on a sofa"], cwd=cwd)


def base(check: Check, venv: Path, cwd: Path) -> None:
    core(check, venv, cwd)
    check.python(venv, "import importlib.util as u, sys; "
                       f"found = [m for m in {HEAVY!r} if u.find_spec(m)]; "
                       "sys.exit(f'installed without an extra: {found}' if found else 0)",
                 "no torch, diffusers, transformers, pygls or openai in the base install")
    # The commands of an extra say which extra, in one line: never a traceback.
    check.run(venv, ["lsp"], cwd=cwd, expect=2, contains="cfspec[lsp]")
    check.run(venv, ["generate", "out", "--model", "tiny"], cwd=cwd, expect=2,
              contains="cfspec[gpu]")
    check.run(venv, ["doctor"], cwd=cwd, expect=(1, 2), contains="cfspec[gpu]")


def lsp(check: Check, venv: Path, cwd: Path) -> None:
    output = check.run(venv, ["lsp"], cwd=cwd, stdin=lsp_session())
    if '"capabilities"' not in output:
        check.failures.append(f"{venv.name}: lsp answered no initialize result:\n{output}")
        print(f"FAIL {venv.name}: lsp initialize", flush=True)


def llm(check: Check, venv: Path, cwd: Path) -> None:
    # No server here: a refused connection is a message (exit 2), and nothing is left behind.
    check.run(venv, ["ask", "a dog on a sofa", "-o", "asked", "--model", "m",
                     "--base-url", "http://127.0.0.1:9/v1", "--retries", "0"],
              cwd=cwd, expect=2)


def gpu(check: Check, venv: Path, cwd: Path) -> None:
    core(check, venv, cwd)
    home_may_change = {"home_untouched": False}  # matplotlib keeps a font cache in HOME
    check.run(venv, ["doctor"], cwd=cwd, expect=(0, 1), **home_may_change)
    check.run(venv, ["run", "specs/cake.scm", "-o", "run", "--model", "tiny", "--clip-model",
                     "tiny", "--steps", "2", "--height", "64", "--width", "64", "--device", "cpu",
                     "--min-clip", "0", "--min-directional", "-1",
                     "--min-image-similarity", "-1"], cwd=cwd, **home_may_change)
    check.run(venv, ["generate", "run", "--model", "tiny", "--device", "cuda"], cwd=cwd,
              expect=2, **home_may_change)


EXTRAS: dict[str, Callable[[Check, Path, Path], None]] = {
    "base": base, "lsp": lsp, "llm": llm, "gpu": gpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default=",".join(EXTRAS))
    parser.add_argument("--keep", type=Path, help="Work in DIR and keep it.")
    options = parser.parse_args()
    extras = options.extras.split(",")
    unknown = set(extras) - set(EXTRAS)
    if unknown:
        parser.error(f"unknown extras {sorted(unknown)}; choose from {', '.join(EXTRAS)}")
    work = options.keep or Path(tempfile.mkdtemp(prefix="cfspec-install-"))
    work.mkdir(parents=True, exist_ok=True)
    check = Check(work)
    try:
        wheel = build_wheel(work)
        print(f"built {wheel.name}", flush=True)
        for extra in extras:
            requirement = str(wheel) if extra == "base" else f"{wheel}[{extra}]"
            venv = make_venv(work, f"venv-{extra}", requirement)
            cwd = project(Path(tempfile.mkdtemp(prefix=f"{extra}-", dir=work)))
            EXTRAS[extra](check, venv, cwd)
    finally:
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    for failure in check.failures:
        print(f"\n--- {failure}", file=sys.stderr)
    print(f"{len(check.failures)} failure(s)" if check.failures else "every install check passed")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
