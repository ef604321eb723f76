"""Lint throughput, linearity and start-up, against a bare lark parse of the same texts.

    python benchmarks/lint_bench.py            # 10,000 specs, 2..500 variables
    python benchmarks/lint_bench.py --quick    # ~500 specs, 2..100 variables
    python benchmarks/lint_bench.py --json     # one JSON object on stdout, nothing else

The corpus is generated in memory (seeded, so every run lints the same texts): each spec is a
valid DAG whose prompt template places at most four variables (the rest are `latent`, so the
prompt stays far below CLIP's 77 tokens), with edges and 1-3 counterfactuals. Three passes
over the same texts are timed: (a) `Lark(grammar, parser="lalr").parse` with no transformer
(a parse tree only: the floor any lark-based linter stands on), (b) `cfspec.lang.parser.parse`
(our AST, comments and spans) and (c) `cfspec.lint.check` (parse, model, every check,
suppressions, sorting). See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: import the cfspec beside it
    sys.path.insert(0, str(ROOT))

from lark import Lark  # noqa: E402

from cfspec.compile.pairs import compile_spec  # noqa: E402
from cfspec.diagnostics.records import DiagnosticBag  # noqa: E402
from cfspec.diagnostics.source import SourceFile  # noqa: E402
from cfspec.lang.config import Config  # noqa: E402
from cfspec.lang.parser import grammar_path, parse  # noqa: E402
from cfspec.lint import check  # noqa: E402

GOAL_LINT_OVER_PARSE = 2.0
GOAL_STARTUP = 1.5  # issue 12: within 1.5x of `python -c "import lark, networkx"`
BUCKETS = (10, 50, 200, 500)  # upper bounds of variable count per bucket

# --- the corpus -------------------------------------------------------------------------------

# Words that start with a consonant sound, so `a {{ X }}` stays grammatical whatever a
# counterfactual puts in X (article-mismatch would otherwise fire on purpose-free specs).
NOUNS = ("woman", "man", "baker", "cake", "knife", "fork", "table", "dog", "cat", "bicycle",
         "guitar", "window", "lamp", "chair", "tree", "boat", "horse", "kite", "pizza", "bench")
VERBS = ("cutting", "holding", "riding", "painting", "carrying", "watching", "pushing",
         "washing", "lifting", "reading")
PLACED_TEMPLATE = (
    "A {{ %s }} is next to a {{ %s }}.",
    "A {{ %s }} is %s a {{ %s }} near a {{ %s }}.",
    "A {{ %s }} is %s a {{ %s }} near a {{ %s }} with a {{ %s }}.",
)


@dataclass(frozen=True)
class Spec:
    name: str
    variables: int
    text: str


def generate_spec(index: int, n: int, rng: random.Random) -> str:
    """One valid spec with `n` variables (n >= 2): a DAG, a template prompt placing at most
    four of them (the rest are latent), and 1-3 counterfactuals, each one do() on a placed
    variable, sometimes a `set` on a placed descendant and an edit block."""
    names = [f"V{i}" if i % 3 else f"thing_{i}" for i in range(n)]
    placed = names[: min(n, rng.choice((2, 3, 4)))]
    words = {name: rng.choice(NOUNS) for name in names}
    lines = [f"# generated spec {index}: {n} variables", f"scm spec_{index} {{",
             f'  id "gen_{index}"']
    if len(placed) == 2:
        prompt = PLACED_TEMPLATE[0] % tuple(placed)
    elif len(placed) == 3:
        prompt = PLACED_TEMPLATE[1] % (placed[0], rng.choice(VERBS), placed[1], placed[2])
    else:
        prompt = PLACED_TEMPLATE[2] % (placed[0], rng.choice(VERBS), *placed[1:4])
    lines.append(f'  prompt "{prompt}"')
    lines.append("")
    for name in names:
        if name in placed:
            lines.append(f'  var {name}: object = "{words[name]}" "the {words[name]} in the image"')
        elif rng.random() < 0.5:
            lines.append(f'  var {name}: latent = "factor {name}" "an unobserved cause"')
        else:
            lines.append(f'  var {name}: latent = "factor {name}"')
    lines.append("")
    # A DAG: every variable after the first gets one parent before it (so none is unused),
    # plus some extra forward edges; never a repeat.
    edges: set[tuple[int, int]] = set()
    for target in range(1, n):
        edges.add((rng.randrange(target), target))
    for _ in range(n // 2):
        a, b = sorted(rng.sample(range(n), 2))
        edges.add((a, b))
    children: dict[int, list[int]] = {}
    for a, b in sorted(edges, key=lambda e: (e[1], e[0])):
        children.setdefault(a, []).append(b)
        arrow = "->" if rng.random() < 0.9 else "→"
        if rng.random() < 0.3:
            lines.append(f'  {names[a]} {arrow} {names[b]} "{names[a]} affects {names[b]}."')
        else:
            lines.append(f"  {names[a]} {arrow} {names[b]}")
    lines.append("")
    for k in range(rng.randint(1, 3)):
        target = placed[k % len(placed)]
        i = names.index(target)
        new = rng.choice([w for w in NOUNS if w != words[target]])
        body = [f'do({target} = "{new}")']
        downstream = _descendants(i, children)
        later = [p for p in placed if names.index(p) in downstream]
        if later and rng.random() < 0.5:
            other = later[0]
            body.append(f'set {other} = "{rng.choice([w for w in NOUNS if w != words[other]])}"')
        roll = rng.random()
        if roll < 0.3:
            body.append("edit refine { cross_replace 0.8  self_replace 0.4 }")
        elif roll < 0.5:
            body.append(f'edit {{ cross_replace [0.0, 0.8]  self_replace 0.4  '
                        f'blend "{words[target]}" -> "{new}" }}')
        if len(body) == 1 and rng.random() < 0.5:
            lines.append(f"  counterfactual cf_{k} {{ {body[0]} }}")
        else:
            lines.append(f"  counterfactual cf_{k} {{")
            lines.extend(f"    {stmt}" for stmt in body)
            lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _descendants(node: int, children: dict[int, list[int]]) -> set[int]:
    seen: set[int] = set()
    stack = [node]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def sizes(count: int, largest: int, power: float) -> Iterator[int]:
    """Variable counts that grow from 2 to `largest` over `count` specs, as 2 + x**power of
    the range. The curve is steep (most specs are small, like real captions) so that the full
    corpus lints in minutes, yet every bucket up to `largest` gets megabytes enough to time."""
    for i in range(count):
        x = i / max(1, count - 1)
        yield max(2, round(2 + (largest - 2) * x**power))


def corpus(count: int, largest: int, power: float, seed: int = 0) -> list[Spec]:
    rng = random.Random(seed)
    return [Spec(f"spec_{i}.scm", n, generate_spec(i, n, rng))
            for i, n in enumerate(sizes(count, largest, power))]


# --- timing -----------------------------------------------------------------------------------


def bare_parser() -> Callable[[str], object]:
    parser = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr")
    return parser.parse


def our_parse(name: str, text: str) -> object:
    source = SourceFile(name, text)
    return parse(source, DiagnosticBag(source))


def run_passes(specs: list[Spec], repeat: int = 1, clock: Callable[[], float] = time.perf_counter
               ) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Seconds per spec for each pass, in corpus order (the minimum over `repeat` rounds),
    and the diagnostics full lint found, counted by name (the corpus is meant to be clean:
    any count here is a generator or checker bug).

    The passes are interleaved spec by spec, in an order that rotates, so that a machine
    shared with other work (or changing its clock) slows all three alike, not one."""
    bare = bare_parser()
    config = Config()
    found: Counter[str] = Counter()

    def lint(s: Spec) -> None:
        for d in check(SourceFile(s.name, s.text), config).diagnostics:
            found[d.code.name] += 1

    def lint_and_compile(s: Spec) -> None:
        # What `cfspec compile` does per file, minus writing: lint, then pairs for clean specs.
        parsed = check(SourceFile(s.name, s.text), config)
        for model in parsed.models:
            if not parsed.spec_has_errors(model.spec):
                compile_spec(model, s.name)

    runs: dict[str, Callable[[Spec], object]] = {
        "bare_parse": lambda s: bare(s.text),
        "our_parse": lambda s: our_parse(s.name, s.text),
        "full_lint": lint,
        "compile": lint_and_compile,
    }
    # Warm up each path once (lark's lexer compiles its regexes lazily) before timing.
    for run in runs.values():
        run(specs[0])
    found.clear()
    keys = list(runs)
    best = {key: [float("inf")] * len(specs) for key in keys}
    # The harness's own heap (the corpus, lark's grammar objects) is set aside, so that the
    # cyclic GC passes triggered while timing scan what linting allocates, as in a CLI run.
    counts: dict[str, int] = {}
    gc.collect()
    gc.freeze()
    for round_ in range(repeat):
        for i, spec in enumerate(specs):
            shift = (i + round_) % len(keys)
            for key in keys[shift:] + keys[:shift]:
                t0 = clock()
                runs[key](spec)
                elapsed = clock() - t0
                if elapsed < best[key][i]:
                    best[key][i] = elapsed
        if round_ == 0:
            counts = dict(sorted(found.items()))
    gc.unfreeze()
    return best, counts


def bucket_of(n: int) -> int:
    return next(b for b in BUCKETS if n <= b)


def summarise(specs: list[Spec], times: dict[str, list[float]]) -> dict[str, object]:
    total_bytes = sum(len(s.text.encode("utf-8")) for s in specs)
    passes: dict[str, dict[str, float]] = {}
    for key, per_spec in times.items():
        seconds = sum(per_spec)
        passes[key] = {
            "seconds": seconds,
            "specs_per_s": len(specs) / seconds,
            "mb_per_s": total_bytes / seconds / 1e6,
        }
    buckets: dict[str, dict[str, float]] = {}
    for bound in BUCKETS:
        chosen = [i for i, s in enumerate(specs) if bucket_of(s.variables) == bound]
        if not chosen:
            continue
        nbytes = sum(len(specs[i].text.encode("utf-8")) for i in chosen)
        entry: dict[str, float] = {"specs": len(chosen), "bytes": nbytes}
        for key, per_spec in times.items():
            entry[f"{key}_us_per_kb"] = sum(per_spec[i] for i in chosen) / nbytes * 1e6 * 1e3
        buckets[f"<={bound}"] = entry
    linearity: dict[str, float] = {}
    if len(buckets) >= 2:
        first, last = list(buckets.values())[0], list(buckets.values())[-1]
        for key in times:
            linearity[key] = last[f"{key}_us_per_kb"] / first[f"{key}_us_per_kb"]
    return {
        "specs": len(specs),
        "bytes": total_bytes,
        "variables": [min(s.variables for s in specs), max(s.variables for s in specs)],
        "passes": passes,
        "lint_over_bare_parse": passes["full_lint"]["seconds"] / passes["bare_parse"]["seconds"],
        "parse_over_bare_parse": passes["our_parse"]["seconds"] / passes["bare_parse"]["seconds"],
        "compile_over_lint": passes["compile"]["seconds"] / passes["full_lint"]["seconds"],
        "buckets": buckets,
        "linearity_largest_over_smallest": linearity,
    }


# --- start-up ---------------------------------------------------------------------------------


def _wall(argv: list[str], cwd: str, runs: int, env: dict[str, str]) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False, env=env)
        out.append(time.perf_counter() - t0)
    return out


def cfspec_script() -> str:
    """The console script installed beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name("cfspec")
    if beside.is_file():
        return str(beside)
    found = shutil.which("cfspec")
    if found is None:
        raise SystemExit("the cfspec console script is not installed: pip install -e .")
    return found


def startup(runs: int = 5) -> dict[str, object]:
    """Median wall time of `python -c "import lark, networkx"` and of `cfspec lint one.scm`,
    each in a fresh process, alternating. Bytecode is cached in a temporary folder
    (PYTHONPYCACHEPREFIX, PYTHONDONTWRITEBYTECODE unset) so that both sides start as an
    installed package does, whatever this shell's settings; `as_is` repeats the measurement
    with the environment unchanged."""
    script = cfspec_script()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "one.scm"
        spec.write_text(generate_spec(0, 4, random.Random(1)), encoding="utf-8")
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        base_argv = [sys.executable, "-c", "import lark, networkx"]
        lint_argv = [script, "lint", str(spec)]
        out: dict[str, object] = {"runs": runs}
        for label, env in (("cached", cached), ("as_is", dict(os.environ))):
            # One untimed run each: the first writes .pyc files and lark's table cache.
            _wall(base_argv, tmp, 1, env)
            _wall(lint_argv, tmp, 1, env)
            imports: list[float] = []
            lint: list[float] = []
            for _ in range(runs):
                imports += _wall(base_argv, tmp, 1, env)
                lint += _wall(lint_argv, tmp, 1, env)
            out[label] = {
                "import_lark_networkx_s": statistics.median(imports),
                "cfspec_lint_s": statistics.median(lint),
                "ratio": statistics.median(lint) / statistics.median(imports),
            }
        out["cfspec_lint_exit"] = subprocess.run(lint_argv, cwd=tmp, capture_output=True,
                                                 check=False, env=cached).returncode
        out["imports"] = import_times(lint_argv, tmp, cached)
    return out


def import_times(argv: list[str], cwd: str, env: dict[str, str], top: int = 8) -> list[
        tuple[str, float]]:
    """The slowest top-level imports of a run (`python -X importtime`), cumulative ms."""
    run = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=cwd, env=env,
                         capture_output=True, text=True, check=False)
    rows = []
    for line in run.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        if name.startswith("  "):  # only what the program itself imported
            continue
        rows.append((name.strip(), int(parts[1]) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:top]


# --- profile ----------------------------------------------------------------------------------


def profile(specs: list[Spec], top: int = 25) -> str:
    """cProfile of the full-lint pass over a slice of the corpus, by cumulative and own time."""
    config = Config()
    profiler = cProfile.Profile()
    profiler.enable()
    for s in specs:
        check(SourceFile(s.name, s.text), config)
    profiler.disable()
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buffer.getvalue()


# --- output -----------------------------------------------------------------------------------


def table(result: dict[str, object]) -> str:
    r = result
    passes = r["passes"]
    assert isinstance(passes, dict)
    out = [
        f"corpus: {r['specs']:,} specs, {r['bytes'] / 1e6:.1f} MB, variables "
        f"{r['variables'][0]}..{r['variables'][1]}, diagnostics from full lint: "  # type: ignore[index]
        f"{r['diagnostics'] or 'none'}",
        "",
        f"{'pass':<12} {'seconds':>9} {'specs/s':>10} {'MB/s':>8}   ({r['clock']} clock)",
    ]
    for key, p in passes.items():
        out.append(f"{key:<12} {p['seconds']:>9.2f} {p['specs_per_s']:>10,.0f} "
                   f"{p['mb_per_s']:>8.2f}")
    ratio = r["lint_over_bare_parse"]
    out += [
        "",
        f"full lint / bare parse : {ratio:.2f}  (goal <= {GOAL_LINT_OVER_PARSE})  "
        f"{'ok' if ratio <= GOAL_LINT_OVER_PARSE else 'OVER'}",  # type: ignore[operator]
        f"our parse / bare parse : {r['parse_over_bare_parse']:.2f}",
        f"compile / full lint    : {r['compile_over_lint']:.2f}  (pairs with P2P edit maps)",
        "",
        "time per KB by variable count (us/KB)",
        f"{'bucket':<8} {'specs':>6} {'MB':>7} {'bare':>8} {'parse':>8} {'lint':>8}",
    ]
    buckets = r["buckets"]
    assert isinstance(buckets, dict)
    for name, b in buckets.items():
        out.append(f"{name:<8} {b['specs']:>6} {b['bytes'] / 1e6:>7.2f} "
                   f"{b['bare_parse_us_per_kb']:>8.1f} {b['our_parse_us_per_kb']:>8.1f} "
                   f"{b['full_lint_us_per_kb']:>8.1f}")
    lin = r["linearity_largest_over_smallest"]
    assert isinstance(lin, dict)
    out.append("linearity (largest bucket / smallest, goal ~1): "
               + ", ".join(f"{k} {v:.2f}" for k, v in lin.items()))
    s = r.get("startup")
    if isinstance(s, dict):
        out += ["", f"start-up (median of {s['runs']} fresh processes, ms)"]
        for label in ("cached", "as_is"):
            x = s[label]
            out.append(
                f"  {label:<7} import lark, networkx {x['import_lark_networkx_s'] * 1e3:6.0f}   "
                f"cfspec lint one.scm {x['cfspec_lint_s'] * 1e3:6.0f}   ratio {x['ratio']:.2f}"
                f"  (goal <= {GOAL_STARTUP}) {'ok' if x['ratio'] <= GOAL_STARTUP else 'OVER'}")
        out.append(f"  cfspec lint exit status: {s['cfspec_lint_exit']}")
        out.append("  slowest top-level imports of `cfspec lint` (cumulative ms): "
                   + ", ".join(f"{name} {ms:.0f}" for name, ms in s["imports"]))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~500 specs of 2..100 variables")
    ap.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    ap.add_argument("--profile", action="store_true",
                    help="also print a cProfile of full lint over part of the corpus")
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up measurement")
    ap.add_argument("--repeat", type=int, default=0,
                    help="time each spec this many times and keep the fastest "
                    "(default: 3 with --quick, else 1)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="time passes by wall clock (default) or by this process's CPU time, "
                    "which other work on a busy machine does not inflate")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    # full: ~36 MB, 7,100 specs of <= 10 variables and 740 of 201..500; quick: ~1.2 MB.
    count, largest, power = (500, 100, 3.0) if args.quick else (10_000, 500, 12.0)
    t0 = time.perf_counter()
    specs = corpus(count, largest, power, args.seed)
    generated = time.perf_counter() - t0
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    times, found = run_passes(specs, args.repeat or (3 if args.quick else 1), clock)
    result = summarise(specs, times)
    result["mode"] = "quick" if args.quick else "full"
    result["clock"] = args.clock
    result["generate_seconds"] = generated
    result["diagnostics"] = found
    result["python"] = sys.version.split()[0]
    result["cpus"] = os.cpu_count()
    if not args.no_startup:
        result["startup"] = startup()
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        print(table(result))
    if args.profile:
        out = sys.stderr if args.json else sys.stdout
        print(profile(specs[-max(1, len(specs) // 20):]), file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
