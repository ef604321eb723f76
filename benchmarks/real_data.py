"""Import and compile real caption pairs written by others, and say how much of it is right.

    python benchmarks/real_data.py                       # the COCO-CF and SocialCF slices
    python benchmarks/real_data.py FILE.jsonl ...        # any caption-pair files
    python benchmarks/real_data.py --json                # one JSON object on stdout

For each file: every item goes through `cfspec import` (auto-detected shape) and the written
.scm through `cfspec compile`, in memory. Printed per file:

- `items`, `pairs written`: items read, and pairs the compiler produced from them;
- `crashes`: Python exceptions anywhere in import or compile (must be 0);
- `single-word swaps`: pairs whose captions, split into words, have the same length and differ
  in exactly one position (case aside), and of those `exact`: imported as exactly that swap (one
  `do()` whose variable's words are the old word and whose value is the new one, no `set`,
  `edit replace`, no error), and the ones that are not, with their verdicts;
- `caption sets`: rows with one caption and several counterfactual captions (`caption`,
  `output_1` ... `output_N`, SocialCounterfactuals), and of those `exact`: written as one spec
  that lints without errors and compiles to one pair per output, in order, whose `prompt_0` is
  the caption and whose `prompt_1` is that output, character for character (the pair named
  `<id>__<counterfactual>` after the one the import wrote for that output), and how many were
  written as one `counterfactuals` block (a complete grid of values);
- the diagnostics by name and severity, and the seconds taken.

Nothing here knows about these datasets: the same code runs on any caption-pair file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: import the cfspec beside it
    sys.path.insert(0, str(ROOT))

from cfspec.compile.pairs import compile_spec  # noqa: E402
from cfspec.diagnostics.codes import Severity  # noqa: E402
from cfspec.diagnostics.source import SourceFile  # noqa: E402
from cfspec.importers import import_source  # noqa: E402
from cfspec.lang.config import Config  # noqa: E402
from cfspec.lang.prompt import exact, split_words  # noqa: E402
from cfspec.lint import check  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real"
DEFAULT_FILES = (
    REAL / "coco_counterfactuals_captions_1-5000.jsonl",
    REAL / "social_counterfactuals_race_gender_1-60.jsonl",
)


@dataclass
class FileResult:
    name: str
    items: int = 0
    pairs: int = 0
    crashes: list[str] = field(default_factory=list)
    swaps: int = 0
    swaps_exact: int = 0
    swaps_wrong: list[str] = field(default_factory=list)
    sets: int = 0
    sets_exact: int = 0
    sets_as_one_block: int = 0  # written as one `counterfactuals` block, no explicit ones
    sets_wrong: list[str] = field(default_factory=list)
    ids_kept: int = 0
    ids_total: int = 0
    diagnostics: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.name, "items": self.items, "pairs_written": self.pairs,
            "crashes": len(self.crashes), "single_word_swaps": self.swaps,
            "swaps_exact": self.swaps_exact,
            "swaps_exact_share": round(self.swaps_exact / self.swaps, 5) if self.swaps else None,
            "caption_sets": self.sets, "sets_exact": self.sets_exact,
            "sets_as_one_block": self.sets_as_one_block,
            "ids_kept": self.ids_kept, "ids_total": self.ids_total,
            "diagnostics": dict(sorted(self.diagnostics.items())),
            "seconds": round(self.seconds, 2),
        }


def single_swap(caption_0: str, caption_1: str) -> tuple[str, str] | None:
    """(old word, new word) when the captions differ in exactly one word position."""
    w0 = [w for w, _, _ in split_words(caption_0)]
    w1 = [w for w, _, _ in split_words(caption_1)]
    if len(w0) != len(w1):
        return None
    diff = [(a, b) for a, b in zip(w0, w1, strict=True) if exact(a) != exact(b)]
    return diff[0] if len(diff) == 1 else None


def captions_of(line: str) -> tuple[str, str, str | None] | None:
    """The two captions and the id of one JSON line of a caption-pair file, if it is one."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict):
        return None
    c0 = next((row[k] for k in ("caption_0", "original_caption", "caption") if k in row), None)
    c1 = next((row[k] for k in ("caption_1", "counterfactual_caption", "output_1") if k in row),
              None)
    raw_id = next((str(row[k]) for k in ("coco-counterfactual-index", "id", "filename")
                   if k in row), None)
    if isinstance(c0, str) and isinstance(c1, str):
        return c0, c1, raw_id
    return None


def caption_set(line: str) -> tuple[str, list[str]] | None:
    """The caption and its counterfactual captions, in order, of a row with several
    (`caption`, `output_1` ... `output_N`)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict) or not isinstance(row.get("caption"), str):
        return None
    numbered = sorted((int(k.split("_")[1]), v) for k, v in row.items()
                      if k.startswith("output_") and k.split("_")[1].isdigit())
    outputs = [v for _, v in numbered]
    if len(outputs) < 2 or not all(isinstance(v, str) for v in outputs):
        return None
    return row["caption"], outputs


def is_exact_set(pairs: list[Any], item_id: str, members: list[str], caption: str,
                 outputs: list[str]) -> tuple[bool, str]:
    """Whether the compiled pairs are one per output, each rendering the caption and that
    output exactly. `members`: the counterfactual the import wrote for each output, in the
    outputs' order (`race_gender_black_female`, a set's member); its pair is
    `<item_id>__<member>`, whatever order the spec lists or expands them in."""
    if len(pairs) != len(outputs) or len(members) != len(outputs):
        return False, f"{len(pairs)} pairs and {len(members)} counterfactuals for " \
            f"{len(outputs)} outputs"
    by_id = {pair["id"]: pair for pair in pairs}
    for n, (member, want) in enumerate(zip(members, outputs, strict=True), start=1):
        pair = by_id.get(f"{item_id}__{member}")
        if pair is None:
            return False, f"output_{n}: no pair `{item_id}__{member}`"
        if pair["prompt_0"] != caption or pair["prompt_1"] != want:
            return False, f"output_{n}: {pair['prompt_0']!r} -> {pair['prompt_1']!r}, not " \
                f"{want!r}"
    return True, ""


def is_exact_swap(scm: str, old: str, new: str) -> tuple[bool, str]:
    """Whether a written .scm says exactly `do(X = new)` on X bound to `old`, nothing else."""
    parsed = check(SourceFile("item.scm", scm), Config())
    errors = [d.code.name for d in parsed.diagnostics if d.level is Severity.ERROR]
    if errors or not parsed.models:
        return False, "errors: " + ", ".join(sorted(set(errors)))
    model = parsed.models[0]
    if len(model.counterfactuals) != 1:
        return False, f"{len(model.counterfactuals)} counterfactuals"
    cm = model.counterfactuals[0]
    if cm.sets or len(cm.interventions) != 1:
        return False, f"do {sorted(cm.interventions)} set {sorted(cm.sets)}"
    (name,) = cm.interventions
    before, after = model.words().get(name), cm.new_words()[name]
    edit = next((e.type.text for e in cm.node.edits if e.type is not None), None)
    if (before, after, edit) != (old, new, "replace"):
        return False, f"do({name}: {before!r} -> {after!r}) edit {edit}"
    return True, ""


def measure(path: Path, limit: int | None = None) -> FileResult:
    result = FileResult(path.name)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if limit is not None:
        lines = lines[:limit]
    text = "".join(lines)
    start = time.perf_counter()
    try:
        items = import_source(SourceFile(str(path), text))
    except Exception:  # noqa: BLE001 - counting crashes is the point
        result.crashes.append("import: " + traceback.format_exc(limit=3))
        result.seconds = time.perf_counter() - start
        return result
    result.items = len(items)
    rows = [line for line in lines if line.strip()]
    captions = [captions_of(line) for line in rows]
    config = Config()
    for number, item in enumerate(items):
        for d in item.diagnostics:
            result.diagnostics[f"{d.code.name} ({d.level.value})"] += 1
        pair = captions[number] if number < len(captions) else None
        if pair is not None and pair[2] is not None:
            result.ids_total += 1
            result.ids_kept += item.item_id.startswith(pair[2][:20])
        if item.scm is None:
            continue
        compiled: list[Any] = []
        try:
            parsed = check(SourceFile(f"{item.item_id}.scm", item.scm), config)
            for model in parsed.models:
                if not parsed.spec_has_errors(model.spec):
                    compiled += compile_spec(model, f"{item.item_id}.scm")
        except Exception:  # noqa: BLE001
            result.crashes.append(f"{item.item_id}: " + traceback.format_exc(limit=3))
            continue
        result.pairs += len(compiled)
        many = caption_set(rows[number]) if number < len(rows) else None
        if many is not None:
            result.sets += 1
            spec = parsed.module.specs[0] if parsed.module and parsed.module.specs else None
            result.sets_as_one_block += spec is not None and not spec.counterfactuals \
                and len(spec.counterfactual_sets) == 1
            ok, why = is_exact_set(compiled, item.item_id, list(item.written), *many)
            if ok:
                result.sets_exact += 1
            else:
                result.sets_wrong.append(f"{item.item_id}: {why}")
            continue
        swap = single_swap(*pair[:2]) if pair is not None else None
        if swap is None:
            continue
        result.swaps += 1
        ok, why = is_exact_swap(item.scm, *swap)
        if ok:
            result.swaps_exact += 1
        else:
            result.swaps_wrong.append(f"{item.item_id}: {swap[0]} -> {swap[1]}: {why}")
    result.seconds = time.perf_counter() - start
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="caption-pair files (default: the "
                        "slices in ../shared/data/real)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--limit", type=int, help="only the first N lines of each file")
    parser.add_argument("--show", type=int, default=10,
                        help="list up to N wrong swaps and crashes per file (default 10)")
    args = parser.parse_args(argv)
    files = args.files or [f for f in DEFAULT_FILES if f.is_file()]
    if not files:
        parser.error("no input files (the default slices are not beside this checkout)")
    results = [measure(f, args.limit) for f in files]
    if args.json:
        print(json.dumps({"files": [r.as_dict() for r in results]}, indent=2))
    else:
        for r in results:
            print(render(r, args.show))
    return 1 if any(r.crashes for r in results) else 0


def render(r: FileResult, show: int) -> str:
    out = [f"== {r.name}",
           f"items {r.items}, pairs written {r.pairs}, crashes {len(r.crashes)}, "
           f"{r.seconds:.1f} s ({r.items / max(r.seconds, 1e-9):.0f} items/s)"]
    if r.ids_total:
        out.append(f"ids kept from the data: {r.ids_kept} of {r.ids_total}")
    if r.swaps:
        share = 100.0 * r.swaps_exact / r.swaps
        out.append(f"single-word swaps: {r.swaps}, imported as exactly that swap: "
                   f"{r.swaps_exact} ({share:.2f}%)")
        out += [f"  wrong: {w}" for w in r.swaps_wrong[:show]]
    if r.sets:
        out.append(f"caption sets: {r.sets}, one spec with a pair per output, each prompt "
                   f"exactly the caption and the output: {r.sets_exact}; written as one "
                   f"`counterfactuals` block: {r.sets_as_one_block}")
        out += [f"  wrong: {w}" for w in r.sets_wrong[:show]]
    out += [f"  crash: {c.strip().splitlines()[-1]}  ({c.split(':')[0]})" for c in r.crashes[:show]]
    out.append("diagnostics:")
    out += [f"  {n:<40} {c:>6}" for n, c in sorted(r.diagnostics.items(), key=lambda x: -x[1])]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
