"""Import and compile real caption pairs written by others, and say how much of it is right.

    python benchmarks/real_data.py                       # COCO-CF, SocialCF, SugarCrepe slices
    python benchmarks/real_data.py FILE.jsonl ...        # any caption-pair files
    python benchmarks/real_data.py DIR/                  # every SugarCrepe file in DIR
    python benchmarks/real_data.py --json                # one JSON object on stdout

For each file: every item goes through `cfspec import` (auto-detected shape) and the written
.scm through `cfspec compile`, in memory. A SugarCrepe file (a JSON object keyed by number, each
`{"filename", "caption", "negative_caption"}`) is read as caption pairs (`id` the file's stem
and the key, `caption_0` the caption, `caption_1` the negative), one row per pair; a folder
stands for its `*.json` files, one result per file (SugarCrepe's categories). Printed per file:

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
- `single-run pairs`: pairs whose captions, split into words with case and punctuation set
  aside, differ in one contiguous run and in no other way (once the common start and end are
  taken off, the two middles share no word, so no alignment could see two changes), and of
  those `exact`: written with one `do()` on one variable, no error, compiled to one pair whose
  `prompt_0` is the caption and `prompt_1` the counterfactual caption, character for character
  once leading and trailing whitespace is set aside (the text encoder strips it);
- every pair: `compiled exactly` (one pair, both prompts the captions, no error), how many
  `do()` and `set` targets the written counterfactual has, how many counterfactuals the
  import noted as a swap, and how many carry agreement (`set` targets that follow an
  intervened noun);
- the diagnostics by name and severity, internal errors, and the seconds taken.

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
from cfspec.lang.words import exact, split_words  # noqa: E402
from cfspec.lint import check  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real"
DEFAULT_FILES = (
    REAL / "coco_counterfactuals_captions_1-5000.jsonl",
    REAL / "social_counterfactuals_race_gender_1-60.jsonl",
    REAL / "sugarcrepe_1-100",
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
    single_run: int = 0
    single_run_exact: int = 0
    single_run_wrong: list[str] = field(default_factory=list)
    compiled_exactly: int = 0  # pairs (not sets): one pair, both prompts the captions
    interventions: Counter[int] = field(default_factory=Counter)  # do() targets per pair
    with_sets: int = 0  # pairs whose counterfactual has `set` targets (consequences)
    swaps_noted: int = 0  # counterfactuals the import wrote as a swap of two things
    internal_errors: int = 0  # `internal-error` diagnostics from import or lint
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
            "single_run_pairs": self.single_run, "single_run_exact": self.single_run_exact,
            "compiled_exactly": self.compiled_exactly,
            "interventions": {str(k): v for k, v in sorted(self.interventions.items())},
            "with_sets": self.with_sets, "swaps_noted": self.swaps_noted,
            "internal_errors": self.internal_errors,
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


def _plain_words(caption: str) -> list[str]:
    return [exact(w) for w, _, _ in split_words(caption) if any(c.isalnum() for c in w)]


def single_run(caption_0: str, caption_1: str) -> bool:
    """Whether the captions' words (case and punctuation aside) differ in exactly one
    contiguous run: once their common start and end are taken off, something is left and the
    two middles share no word, so that no alignment of them could find two changes."""
    w0, w1 = _plain_words(caption_0), _plain_words(caption_1)
    head = 0
    while head < min(len(w0), len(w1)) and w0[head] == w1[head]:
        head += 1
    tail = 0
    while tail < min(len(w0), len(w1)) - head and w0[-1 - tail] == w1[-1 - tail]:
        tail += 1
    m0, m1 = w0[head:len(w0) - tail], w1[head:len(w1) - tail]
    return bool(m0 or m1) and not set(m0) & set(m1)


def sugarcrepe_rows(text: str, stem: str) -> str | None:
    """A SugarCrepe file (`{"0": {"filename", "caption", "negative_caption"}, ...}`) as caption
    pair lines (`id`, `caption_0`, `caption_1`); None for any other text."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not data or not all(
            isinstance(v, dict) and "caption" in v and "negative_caption" in v
            for v in data.values()):
        return None
    return "".join(json.dumps({"id": f"{stem}_{key}", "caption_0": row["caption"],
                               "caption_1": row["negative_caption"]}) + "\n"
                   for key, row in data.items())


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
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        text = sugarcrepe_rows(text, path.stem) or text
    lines = text.splitlines(keepends=True)
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
            result.internal_errors += d.code.name == "internal-error"
        pair = captions[number] if number < len(captions) else None
        if pair is not None and pair[2] is not None:
            result.ids_total += 1
            result.ids_kept += item.item_id.startswith(pair[2][:20])
        if item.scm is None:
            if pair is not None and single_run(*pair[:2]):
                result.single_run += 1
                result.single_run_wrong.append(f"{item.item_id}: nothing written")
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
        if pair is None:
            continue
        pair_facts(result, parsed, compiled, item, *pair[:2])
        swap = single_swap(*pair[:2])
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


def pair_facts(result: FileResult, parsed: Any, compiled: list[Any], item: Any,
               caption_0: str, caption_1: str) -> None:
    """What a caption pair's written spec says (interventions, consequences, a swap) and
    whether it compiles to exactly the two captions."""
    result.internal_errors += sum(d.code.name == "internal-error" for d in parsed.diagnostics)
    clean = not any(d.level is Severity.ERROR for d in parsed.diagnostics)
    # Leading and trailing whitespace aside: the text encoder strips it, and import does not
    # count it as a change (`caption 0 ` -> `caption 1.` is written from one template).
    exact_prompts = clean and len(compiled) == 1 \
        and compiled[0]["prompt_0"].strip() == caption_0.strip() \
        and compiled[0]["prompt_1"].strip() == caption_1.strip()
    result.compiled_exactly += exact_prompts
    cms = parsed.models[0].counterfactuals if parsed.models else []
    do = len(cms[0].interventions) if len(cms) == 1 else -1
    result.interventions[do] += 1
    result.with_sets += len(cms) == 1 and bool(cms[0].sets)
    result.swaps_noted += "swap of" in (item.scm or "")
    if not single_run(caption_0, caption_1):
        return
    result.single_run += 1
    if exact_prompts and do == 1:
        result.single_run_exact += 1
        return
    why = f"{do} do() targets" if do != 1 else "errors: " + ", ".join(sorted(
        {d.code.name for d in parsed.diagnostics if d.level is Severity.ERROR})) if not clean \
        else f"compiled to {[(p['prompt_0'], p['prompt_1']) for p in compiled]}"
    result.single_run_wrong.append(f"{item.item_id}: {caption_0!r} -> {caption_1!r}: {why}")


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; a folder stands for its `*.json` and `*.jsonl` files, sorted."""
    out: list[Path] = []
    for p in paths:
        out += sorted([*p.glob("*.json"), *p.glob("*.jsonl")]) if p.is_dir() else [p]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="caption-pair files (default: the "
                        "slices in ../shared/data/real)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--limit", type=int, help="only the first N lines of each file")
    parser.add_argument("--show", type=int, default=10,
                        help="list up to N wrong swaps and crashes per file (default 10)")
    args = parser.parse_args(argv)
    files = expand(args.files or [f for f in DEFAULT_FILES if f.exists()])
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
    if r.single_run or r.interventions:
        shown = ", ".join(f"{k if k >= 0 else 'other'}: {v}"
                          for k, v in sorted(r.interventions.items()))
        out.append(f"pairs compiled exactly (one pair, both prompts the captions): "
                   f"{r.compiled_exactly}; do() targets per pair: {shown}; with `set` "
                   f"consequences: {r.with_sets}; noted as swaps: {r.swaps_noted}")
    if r.single_run:
        share = 100.0 * r.single_run_exact / r.single_run
        out.append(f"single-run pairs: {r.single_run}, exact (one do(), prompts the captions): "
                   f"{r.single_run_exact} ({share:.2f}%)")
        out += [f"  wrong: {w}" for w in r.single_run_wrong[:show]]
    out.append(f"internal errors: {r.internal_errors}")
    out += [f"  crash: {c.strip().splitlines()[-1]}  ({c.split(':')[0]})" for c in r.crashes[:show]]
    out.append("diagnostics:")
    out += [f"  {n:<40} {c:>6}" for n, c in sorted(r.diagnostics.items(), key=lambda x: -x[1])]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
