"""The README and the docs site say what the tool does: every console example is run.

A ```console block holds `$ COMMAND` lines, each followed by the output it prints (stdout and
stderr together, as a terminal shows them). A command may go on over lines ending in `\\`.
Each page runs in a working folder of its own, top to bottom, so a later block may use what an
earlier one wrote (a tutorial's state). The working folder holds a link to every top-level entry
of the repository (`specs/`, `pyproject.toml`, `docs/`, ...), so commands read the repository as
they would from its root, and whatever they write lands in the temporary folder. Commands run in
bash with HF_HUB_OFFLINE=1, NO_COLOR=1, COLUMNS=100, PYTHONUNBUFFERED=1 (so stdout and stderr
interleave as on a terminal) and this virtual environment's `bin` first on PATH.

What the output is compared as, in this order (each rule is a line of code below):

1. Written as shown: the working folder's path and the repository's path are written
   `~/cfspec`, the home folder `~`; lines of rich progress bars (`━`) are dropped; trailing
   spaces are dropped.
2. A line `[...]` alone in a block's output stands for any number of lines (none included).
3. `cfspec doctor` reports versions, thread counts and timings of this machine: in its output,
   these (`NORMALISE` below) are compared as placeholders.

Two HTML comments, put on the line right before a block, change how it runs:

- `<!-- docs-test: illustrative (WHY) -->`: not run (it needs a GPU, downloaded weights or a
  server). Keep these few; the reason is part of the marker.
- `<!-- docs-test: setup` ... `-->`: the lines between run in bash before the block, in the
  page's working folder, their output unseen (to write an input file the prose describes).
  There, `$TINY_RUN` is an output folder that `TINY_RUN_COMMAND` below made once per test
  session (tiny random-weight models on the CPU, 6 pairs x 2 seeds), for pages about the stages
  after generate: `cp -r "$TINY_RUN" out` costs nothing, a run of its own a minute or two.

`CFSPEC_UPDATE_DOCS=1 pytest tests/test_docs.py` rewrites each block whose output differs with
the output the tool prints now (as black's and mypy's test flags do), after the lead merges a
change of behaviour; review the diff. A block with `[...]` keeps its shape: each run of lines
between `[...]` keeps its length and is taken from the part of the new output most like it.

Also here: every relative link in README.md and docs/ resolves (anchors included), the codes
page equals `cfspec codes --format markdown`, and mkdocs.yml's nav lists every page.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
UPDATE = os.environ.get("CFSPEC_UPDATE_DOCS", "") not in ("", "0")
PAGES = sorted([ROOT / "README.md", *DOCS.rglob("*.md")])
SHOWN_ROOT = "~/cfspec"  # how the working folder and the repository's path are written
ELLIPSIS = "[...]"  # a line alone: any number of lines (rustc-style output prints "...")
ILLUSTRATIVE = re.compile(r"<!--\s*docs-test:\s*illustrative\s*\((?P<why>[^)]+)\)\s*-->\s*$")
SETUP = re.compile(r"<!--\s*docs-test:\s*setup\s*\n(?P<script>.*?)-->\s*$", re.S)
# Rule 3: (the command, a pattern in its output, what the pattern is compared as).
NORMALISE: list[tuple[re.Pattern[str], re.Pattern[str], str]] = [
    (re.compile(r"^cfspec doctor\b"), re.compile(r"\b\d+(?:\.\d+)? s\b"), "<seconds> s"),
    (re.compile(r"^cfspec doctor\b"), re.compile(r"\b\d+(?:\.\d+)+[^\s,)]*"), "<version>"),
    (re.compile(r"^cfspec doctor\b"), re.compile(r"\b\d+ threads?\b"), "<n> threads"),
]
# Entries of the repository that the working folder does not link: its own state and outputs.
NOT_LINKED = {".git", ".venv", "out", "site", "build", "dist"}
# What $TINY_RUN holds: three specs, so three groups (evaluate --shard 0/3 .. 2/3), 6 pairs.
TINY_RUN_COMMAND = (
    "cfspec run specs/cake.scm specs/plate_fork.scm specs/bat_box.scm -o {out} --model tiny "
    "--device cpu --clip-model tiny --steps 2 "
    "--height 64 --width 64 --seeds 2 --min-clip 0 --min-directional -1 "
    "--min-image-similarity -1 --quiet")
TIMEOUT_S = 900  # one command; the GPU stages on the tiny model take a minute or two on a CPU


# -- reading blocks -------------------------------------------------------------------------------

@dataclass
class Command:
    text: str  # the command as bash gets it (continuation lines joined by newlines)
    output: list[str]  # the expected output lines
    first_line: int  # index, in the page's lines, of the command's first line
    end_line: int  # index one past its last output line


@dataclass
class Block:
    start: int  # index of the line after the opening fence
    end: int  # index of the closing fence
    marker: str | None  # the HTML comment right before the block, if any
    commands: list[Command] = field(default_factory=list)


CONSOLE_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,})console\s*$")


def read_blocks(lines: list[str]) -> list[Block]:
    """The ```console blocks of a page, with their commands and expected outputs. A block whose
    output holds ``` lines is fenced with more backticks (````console), as Markdown allows."""
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = CONSOLE_FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        end = i + 1
        while lines[end].strip() != fence:
            end += 1
        block = Block(start=i + 1, end=end, marker=_marker_before(lines, i))
        j = i + 1
        while j < end:
            line = lines[j][len(indent):]
            if not line.startswith("$ "):
                raise AssertionError(f"line {j + 1}: a console block starts with `$ COMMAND`")
            first = j
            text = [line[2:]]
            while text[-1].endswith("\\") and j + 1 < end:
                j += 1
                text.append(lines[j][len(indent):])
            j += 1
            out_start = j
            while j < end and not lines[j][len(indent):].startswith("$ "):
                j += 1
            output = [x[len(indent):] if x.startswith(indent) else x.lstrip()
                      for x in lines[out_start:j]]
            block.commands.append(Command("\n".join(text), output, first, j))
        blocks.append(block)
        i = end + 1
    return blocks


def _marker_before(lines: list[str], fence: int) -> str | None:
    """The HTML comment that ends right before a fence, or one blank line before it (it may
    span lines; they are kept as written, so a setup script keeps its indentation)."""
    k = fence - 1
    if k >= 0 and not lines[k].strip():
        k -= 1
    if k < 0 or not lines[k].rstrip().endswith("-->"):
        return None
    last = k
    while k >= 0 and "<!--" not in lines[k]:
        k -= 1
    return "\n".join(lines[k:last + 1]).strip()


# -- running them ---------------------------------------------------------------------------------

def working_folder(tmp: Path) -> Path:
    """A folder that reads like the repository's root and keeps what commands write."""
    for entry in ROOT.iterdir():
        if entry.name not in NOT_LINKED:
            (tmp / entry.name).symlink_to(entry)
    return tmp


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
    env.update(extra or {})
    env.update(HF_HUB_OFFLINE="1", NO_COLOR="1", COLUMNS="100", PYTHONUNBUFFERED="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    return env


def run(script: str, cwd: Path, extra: dict[str, str] | None = None) -> list[str]:
    """The lines a command prints, written as the docs show them (rule 1)."""
    done = subprocess.run(["bash", "-c", script], cwd=cwd, env=environment(extra),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=TIMEOUT_S, check=False)
    text = done.stdout
    for path in sorted({str(cwd), str(cwd.resolve()), str(ROOT)}, key=len, reverse=True):
        text = text.replace(path, SHOWN_ROOT)
    home = str(Path.home())
    if home not in ("", "/"):
        text = text.replace(home + "/", "~/")
    return [line.rstrip() for line in text.splitlines() if "━" not in line]


def normalised(command: str, lines: list[str]) -> list[str]:
    """Rule 3: what stays the same from machine to machine."""
    rules = [(pattern, to) for which, pattern, to in NORMALISE if which.search(command)]
    out = []
    for line in lines:
        for pattern, to in rules:
            line = pattern.sub(to, line)
        out.append(line)
    return out


def _segments(expected: list[str]) -> list[list[str]]:
    """The runs of literal lines between `[...]` lines (an empty first or last run when the
    output starts or ends with `[...]`)."""
    segments: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == ELLIPSIS:
            segments.append([])
        else:
            segments[-1].append(line)
    return segments


def matches(expected: list[str], actual: list[str]) -> bool:
    """Rule 2: `[...]` stands for any number of lines; everything else is equal line for line."""
    segments = _segments(expected)
    if len(segments) == 1:
        return expected == actual
    first, *middle, last = segments
    if actual[: len(first)] != first or len(actual) < len(first) + len(last):
        return False
    if last and actual[len(actual) - len(last):] != last:
        return False
    position, stop = len(first), len(actual) - len(last)
    for segment in middle:  # each as early as it fits: leaves the most room to the rest
        found = next((p for p in range(position, stop - len(segment) + 1)
                      if actual[p:p + len(segment)] == segment), None)
        if found is None:
            return False
        position = found + len(segment)
    return True


def reshaped(expected: list[str], actual: list[str]) -> list[str]:
    """The update mode's new output: `actual`, elided where `expected` elides (each run between
    `[...]` keeps its length, taken from the window of `actual` most like it)."""
    segments = _segments(expected)
    if len(segments) == 1:
        return actual
    first, *middle, last = segments
    stop = len(actual) - len(last)
    if stop < len(first) + sum(map(len, middle)):
        return actual
    out, position = list(actual[: len(first)]), len(first)
    for segment in middle:
        windows = range(position, stop - len(segment) + 1)
        if not windows:
            return actual
        best = max(windows, key=lambda p: difflib.SequenceMatcher(
            None, "\n".join(segment), "\n".join(actual[p:p + len(segment)])).ratio())
        out += [ELLIPSIS, *actual[best:best + len(segment)]]
        position = best + len(segment)
    return [*out, ELLIPSIS, *actual[stop:]]


# -- the tests ------------------------------------------------------------------------------------

def _pages_with_console() -> list[Path]:
    return [p for p in PAGES
            if any(map(CONSOLE_FENCE.match, p.read_text(encoding="utf-8").split("\n")))]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = working_folder(tmp_path_factory.mktemp("tiny_run"))
    out = cwd / "tiny_run"
    printed = run(TINY_RUN_COMMAND.format(out=out), cwd)
    assert (out / "report.html").is_file(), "\n".join(printed)
    return out


@pytest.mark.parametrize("page", _pages_with_console(), ids=lambda p: str(p.relative_to(ROOT)))
def test_console_examples(page: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    text = page.read_text(encoding="utf-8")
    lines = text.split("\n")
    cwd = working_folder(tmp_path)
    extra = {"TINY_RUN": str(request.getfixturevalue("tiny_run"))} if "$TINY_RUN" in text else {}
    failures: list[str] = []
    replacements: list[tuple[int, int, list[str]]] = []  # (start, end, new output lines)
    for block in read_blocks(lines):
        marker = block.marker or ""
        if ILLUSTRATIVE.search(marker):
            continue
        assert "docs-test" not in marker or SETUP.search(marker), (
            f"{page.name}:{block.start}: unknown docs-test marker {marker!r}")
        setup = SETUP.search(marker)
        if setup:
            run(setup["script"], cwd, extra)
        for command in block.commands:
            actual = run(command.text, cwd)
            expected = command.output
            if matches(normalised(command.text, expected), normalised(command.text, actual)):
                continue
            out_start = command.end_line - len(command.output)
            if UPDATE:
                first = lines[command.first_line]
                indent = first[: len(first) - len(first.lstrip())]
                new = [indent + x if x else x for x in reshaped(expected, actual)]
                replacements.append((out_start, command.end_line, new))
                continue
            diff = "\n".join(difflib.unified_diff(expected, actual, "the page", "the tool",
                                                  lineterm=""))
            failures.append(f"{page.relative_to(ROOT)}:{command.first_line + 1}: "
                            f"$ {command.text}\n{diff}")
    if replacements:
        for start, end, new in sorted(replacements, reverse=True):
            lines[start:end] = new
        page.write_text("\n".join(lines), encoding="utf-8")
    assert not failures, (
        "\n\n".join(failures)
        + "\n\nIf the tool is right, rewrite the examples: CFSPEC_UPDATE_DOCS=1 pytest "
        "tests/test_docs.py, and review the diff.")


# -- links ----------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})")


def prose(text: str) -> str:
    """The page without its fenced code blocks and inline code (links there are not links)."""
    kept, fence = [], ""
    for line in text.split("\n"):
        if fence:
            closing = line.strip()
            if closing and set(closing) == {fence[0]} and len(closing) >= len(fence):
                fence = ""
            continue
        opening = FENCE.match(line)
        if opening:
            fence = opening["fence"]
            continue
        kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def slug(heading: str) -> str:
    """A heading's anchor as both GitHub and MkDocs (Python-Markdown's toc) make it, for the
    headings these pages have: lower case, punctuation dropped, spaces as `-`."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings (inline code counts by its text)."""
    return {slug(m[1].replace("`", ""))
            for m in re.finditer(r"^#{1,6}\s+(.*?)\s*$", prose(page.read_text(encoding="utf-8")),
                                 re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for link in LINK.finditer(prose(page.read_text(encoding="utf-8"))):
        target = link["target"].strip("<>")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif page.is_relative_to(DOCS) and not resolved.is_relative_to(DOCS):
            broken.append(f"{target}: outside docs/ (the site would not have it)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


# -- generated and listed pages -------------------------------------------------------------------

def test_codes_page_is_generated_from_the_registry() -> None:
    from typer.testing import CliRunner

    from cfspec.cli.app import app

    page = (DOCS / "codes.md").read_text(encoding="utf-8")
    table = page.split("<!-- codes:start -->\n", 1)[1].split("<!-- codes:end -->", 1)[0]
    generated = CliRunner().invoke(app, ["codes", "--format", "markdown"]).stdout
    if UPDATE and table != generated:
        (DOCS / "codes.md").write_text(page.replace(table, generated), encoding="utf-8")
        return
    assert table == generated, "rewrite it: CFSPEC_UPDATE_DOCS=1 pytest tests/test_docs.py"


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:", 1)[1]
    listed = set(re.findall(r"([\w/.-]+\.md)\s*$", nav, re.M))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages == listed, f"not in the nav: {pages - listed}; no such page: {listed - pages}"


# -- the harness itself ---------------------------------------------------------------------------

def test_ellipsis_matches_any_number_of_lines() -> None:
    assert matches(["a", "[...]", "d"], ["a", "b", "c", "d"])
    assert matches(["a", "[...]", "d"], ["a", "d"])
    assert matches(["[...]", "c", "[...]"], ["a", "b", "c", "d"])
    assert not matches(["a", "[...]", "d"], ["a", "b", "c"])
    assert not matches(["a", "d"], ["a", "b", "d"])
    assert not matches(["[...]", "x", "[...]"], ["a", "b"])
    assert not matches(["a", "...", "d"], ["a", "b", "d"])  # the tool's own "..." is text


def test_update_keeps_the_shape_of_an_elided_block() -> None:
    expected = ["head", "[...]", "error: old wording", "  --> f:1:2", "[...]", "summary 1"]
    actual = ["head", "noise", "error: new wording", "  --> f:1:2", "more", "summary 2"]
    assert reshaped(expected, actual) == [
        "head", "[...]", "error: new wording", "  --> f:1:2", "[...]", "summary 2"]
    assert reshaped(["a", "[...]"], ["a", "b", "c"]) == ["a", "[...]"]
    assert matches(reshaped(expected, actual), actual)


def test_doctor_rules_touch_only_what_varies() -> None:
    line = "ok    torch            2.13.0+cpu"
    assert normalised("cfspec doctor", [line]) == ["ok    torch            <version>"]
    assert normalised("cfspec lint x", [line]) == [line]
    assert normalised("cfspec doctor", ["ok    device  cpu, 16 threads (a CPU build)"]) == [
        "ok    device  cpu, <n> threads (a CPU build)"]
    assert normalised("cfspec doctor", ["loads: 4.2 s"]) == ["loads: <seconds> s"]
