"""The parser's tables ship with the package (cfspec/lang/tables.py): they are fresh, the grammar
is strict, the shipped parser reads every file as one built from the grammar does, and no
command reads or writes anything in the temp dir, where another user could plant a file."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import lark
import pytest
from lark import Lark

from cfspec.lang import lalr_tables, tables

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR = (ROOT / "grammar" / "scm.lark").read_text(encoding="utf-8")


def test_shipped_tables_are_what_the_grammar_builds() -> None:
    # Regenerate with `python -m cfspec.lang.tables` after editing the grammar.
    assert lalr_tables.GRAMMAR_SHA256 == tables.grammar_digest(GRAMMAR)
    if lalr_tables.LARK_VERSION != lark.__version__:
        # Users on another lark build the parser at start-up (tested below); only the lark the
        # tables were made with can tell whether they are byte for byte fresh.
        pytest.skip(f"tables made with lark {lalr_tables.LARK_VERSION}, this is "
                    f"{lark.__version__}: regenerate with python -m cfspec.lang.tables")
    assert tables.MODULE.read_text(encoding="utf-8") == tables.module_text(GRAMMAR)


def test_the_numbering_does_not_depend_on_the_hash_seed() -> None:
    # lark numbers states in set order; the canonical numbering must hide it, or the freshness
    # test above would fail on another run.
    code = ("from pathlib import Path; from cfspec.lang import tables; "
            "print(tables.module_text(Path('grammar/scm.lark').read_text(encoding='utf-8')))")
    outputs = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3")}
    assert len(outputs) == 1


def test_the_grammar_is_strict() -> None:
    # No shift/reduce conflict resolved silently, no terminals that collide (needs interegular,
    # a dev dependency: the installed parser does not check this, the tests do).
    pytest.importorskip("interegular")
    Lark(GRAMMAR, parser="lalr", strict=True)


def test_the_shipped_parser_is_used_and_reads_as_the_built_one() -> None:
    assert (tables.shipped(GRAMMAR) is not None) == (lalr_tables.LARK_VERSION == lark.__version__)
    built = Lark(GRAMMAR, parser="lalr")
    shipped = Lark._load_from_dict(lalr_tables.DATA, lalr_tables.MEMO)
    files = [*ROOT.glob("specs/*.scm"), *ROOT.glob("tests/golden/*.scm")]
    assert len(files) > 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert shipped.parse(text) == built.parse(text), path


def test_other_grammars_or_lark_versions_are_built_not_loaded(monkeypatch) -> None:
    assert tables.shipped(GRAMMAR + "\n// edited\n") is None
    monkeypatch.setattr(lark, "__version__", "0.0.0")
    assert tables.shipped(GRAMMAR) is None


# --- the temp dir -------------------------------------------------------------------------------

# Every file the process opens or lists inside the temp dir, recorded by an audit hook before
# cfspec is imported; then the command runs as the console script would.
PROBE = """
import json, os, sys, tempfile
temp = os.path.realpath(tempfile.gettempdir())
seen = []
def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args \\
            and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if os.path.realpath(path).startswith(temp + os.sep):
            seen.append(f"{event} {path}")
sys.addaudithook(hook)
from cfspec.cli.app import main
sys.argv = ["cfspec", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as stop:
    code = stop.code
print("\\nSEEN " + json.dumps({"seen": seen, "exit": code}))
"""


class _Payload:
    """What a planted pickle would run on load: a file appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (os.system, (f"touch {self.marker}",))


def _plant(temp: Path, marker: Path) -> None:
    """lark's cache names for this grammar under every option set cfspec ever used, each a
    pickle that runs a command when loaded, as another user of a shared machine would leave."""
    scratch = temp.parent / "lark-names"
    scratch.mkdir()
    for strict in (False, True):
        options = {"parser": "lalr", "strict": strict, "cache": True}
        if strict:
            pytest.importorskip("interegular")
        old = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = str(scratch)
        import tempfile

        tempfile.tempdir = None
        try:
            Lark(GRAMMAR, **options)
        finally:
            if old is None:
                os.environ.pop("TMPDIR")
            else:
                os.environ["TMPDIR"] = old
            tempfile.tempdir = None
    names = [p.name for p in scratch.iterdir()]
    assert names
    for name in names:
        (temp / name).write_bytes(pickle.dumps(_Payload(marker)))


def test_no_command_touches_the_temp_dir(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    marker = tmp_path / "pwned"
    _plant(temp, marker)
    planted = sorted(p.name for p in temp.iterdir())
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "out"
    spec = tmp_path / "cake.scm"
    spec.write_text((ROOT / "specs" / "cake.scm").read_text(encoding="utf-8"), encoding="utf-8")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"id": "p1", "caption_0": "a dog on a sofa",
                                 "caption_1": "a cat on a sofa"}) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "LARK"))}
    env.update(TMPDIR=str(temp), HOME=str(home), NO_COLOR="1")
    commands = [
        ["lint", "specs/"],
        ["lint", "specs/invalid/syntax-error.scm"],
        ["fmt", str(spec)],
        ["compile", "specs/", "-o", str(out)],
        ["import", str(pairs), "-o", str(tmp_path / "imported")],
        ["explain", "cycle"],
        ["graph", "specs/cake.scm"],
        ["grammar", "--target", "gbnf"],
    ]
    for command in commands:
        result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(command)], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=300,
                                check=False)
        report = json.loads(result.stdout.rsplit("\nSEEN ", 1)[1])
        assert report["exit"] in (0, 1), (command, result.stderr[-2000:])
        assert report["seen"] == [], command
        assert not marker.exists(), command
    assert sorted(p.name for p in temp.iterdir()) == planted


def test_nothing_is_deserialized_that_could_run_code() -> None:
    # Every file a stage reads back (run folders, shards, caches, checkpoints) is JSON, PNG,
    # safetensors or an .npz read without pickle: a planted file can be wrong, never run code.
    import re

    unsafe = re.compile(r"\bimport (pickle|shelve|dill|joblib|marshal)\b|\bpickle\.|\bmarshal\."
                        r"|allow_pickle\s*=\s*True|(?<!\w)cache\s*=\s*True"
                        r"|weights_only\s*=\s*False"
                        r"|torch\.load\((?![^)]*weights_only\s*=\s*True)")
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in sorted((ROOT / "cfspec").rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if unsafe.search(line) and not line.lstrip().startswith("#")]
    assert found == []
