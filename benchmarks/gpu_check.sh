#!/usr/bin/env bash
# The GPU check: run once on a machine with an NVIDIA GPU (H100/H200: under 8 minutes).
#
#   bash benchmarks/gpu_check.sh [WHEELS]        # results in $OUT (or /tmp/cfspec-gpu-check)
#   bash benchmarks/gpu_check.sh --fetch-wheels DIR   # where PyPI is reachable: the wheels a
#                                                     # bare CUDA image lacks, into DIR
#   GPU_CHECK_SMOKE=1 bash benchmarks/gpu_check.sh    # the same steps, tiny models on the CPU
#
# Needs python3 with torch (CUDA), transformers, accelerate, numpy, pillow. What else cfspec
# needs (diffusers, lark, jsonschema, interegular, ...) is installed from WHEELS (a folder of
# wheels, default ./.whl when it exists) with `pip install --no-index --no-deps` into a private
# folder; nothing is downloaded. The checkout this script is in is what runs (PYTHONPATH).
#
# Steps, in order of importance, each under a time cap and the whole under GPU_CHECK_BUDGET
# seconds (default 470; a step that would start with too little left is skipped and says so):
#   env, doctor, generate_bench on SD 1.5 (random weights, 512 px, fp16, 50 steps: ours, plain
#   and naive at 1 and 8 pairs eager, ours and plain compiled at 8), `cfspec generate` end to
#   end on SD 1.5 (eager and compiled), set_bench (K = 11), evaluate_bench (ViT-L/14, fp16),
#   generate_bench on SDXL (1024 px, 10 steps, ours/plain/naive at 1 and 4 eager, ours
#   compiled at 4), `cfspec generate` end to end on SDXL.
# Each step's result is one JSON line in $OUT/results.jsonl ({"step", "rc", "seconds",
# "result"}); its output is in logs.tar.gz (<step>.out, .err). The summary table at the end
# (benchmarks/gpu_summary.py) checks the goals of issue 24.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
WHEEL_NAMES=(diffusers lark jsonschema jsonschema-specifications referencing rpds-py
             interegular importlib-metadata)

if [ "${1:-}" = "--fetch-wheels" ]; then
  dir="${2:?--fetch-wheels DIR}"
  mkdir -p "$dir"
  # The lent machines run Python 3.12 on x86-64 Linux.
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dir" "${WHEEL_NAMES[@]}"
  exit $?
fi

# $OUT gets results.jsonl, summary.txt and logs.tar.gz (the steps' output) only; everything
# else (installed wheels, generated images) stays in $WORK.
OUT="${OUT:-/tmp/cfspec-gpu-check}"
WORK="${GPU_CHECK_WORK:-/tmp/cfspec-gpu-work}"
rm -rf "$WORK"
mkdir -p "$OUT" "$WORK/logs"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
BUDGET="${GPU_CHECK_BUDGET:-470}"
START=$(date +%s)
SMOKE="${GPU_CHECK_SMOKE:-0}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

# -- what cfspec needs beyond the image ------------------------------------------------------
WHEELS="${1:-}"
[ -z "$WHEELS" ] && [ -d "$ROOT/.whl" ] && WHEELS="$ROOT/.whl"
SITE="$WORK/site"
if ! "$PY" -c "import diffusers, lark, jsonschema, interegular" 2>/dev/null; then
  if [ -n "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$WHEELS"/*.whl || exit 1
  else
    echo "gpu_check: diffusers, lark, jsonschema or interegular missing and no wheels given" \
         "(bash benchmarks/gpu_check.sh --fetch-wheels .whl where PyPI is reachable)" >&2
    exit 2
  fi
fi
export PYTHONPATH="$ROOT${SITE:+:$SITE}${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT" || exit 1

# -- one step: a command whose last stdout line is a JSON object ------------------------------
step() {  # step NAME CAP_SECONDS command...
  local name="$1" cap="$2"; shift 2
  local left=$(( BUDGET - ($(date +%s) - START) ))
  if [ "$left" -lt 30 ]; then
    echo "{\"step\": \"$name\", \"rc\": null, \"skipped\": \"budget spent\"}" >> "$RESULTS"
    echo "== $name: skipped (budget spent)" >&2
    return
  fi
  [ "$cap" -gt "$left" ] && cap="$left"
  echo "== $name (at most ${cap}s)" >&2
  local t0; t0=$(date +%s.%N)
  timeout --kill-after=10 "$cap" "$@" > "$WORK/logs/$name.out" 2> "$WORK/logs/$name.err"
  local rc=$?
  local t1; t1=$(date +%s.%N)
  "$PY" - "$name" "$rc" "$t0" "$t1" "$WORK/logs/$name.out" "$WORK/logs/$name.err" \
    >> "$RESULTS" <<'EOF'
import json, sys
name, rc, t0, t1, out, err = sys.argv[1:]
result = None
for line in reversed(open(out, encoding="utf-8", errors="replace").read().splitlines()):
    if line.startswith("{"):
        try:
            result = json.loads(line)
        except ValueError:
            pass
        break
tail = open(err, encoding="utf-8", errors="replace").read()[-1500:]
print(json.dumps({"step": name, "rc": int(rc), "seconds": round(float(t1) - float(t0), 1),
                  "result": result, **({"stderr_tail": tail} if int(rc) != 0 else {})}))
EOF
  echo "   rc=$rc" >&2
}

if [ "$SMOKE" = 1 ]; then
  DEV=cpu; SD=tiny; XL=tiny-sdxl; CLIP=tiny; SIZE=(--size 32)
  SD_BENCH=(--steps 2 --batches 1,2 --compile-batches 2)
  XL_BENCH=(--steps 2 --batches 1,2 --compile-batches 2)
  E2E=(--steps 2 --height 32 --width 32 --batch-pairs 2)
  XL_E2E=(--steps 2 --height 32 --width 32 --batch-pairs 2 --limit 4)
  SET=(--steps 2 --ks 3 --size 32); EVAL=(--quick --batch 4)
else
  DEV=cuda; SD=random-sd15; XL=random-sdxl; CLIP=random-vit-l-14; SIZE=()
  SD_BENCH=(--steps 50 --batches 1,8 --compile-batches 8)
  XL_BENCH=(--steps 10 --batches 1,4 --compile-batches 4)
  E2E=(--steps 50 --batch-pairs 8)
  XL_E2E=(--steps 10 --batch-pairs 4 --limit 8)
  SET=(--steps 5 --ks 11); EVAL=(--quick)
fi

step env 60 "$PY" - <<'EOF'
import json, platform
import torch
cuda = torch.cuda.is_available()
print(json.dumps({"torch": torch.__version__, "python": platform.python_version(),
                  "cuda": torch.version.cuda, "device": torch.cuda.get_device_name() if cuda
                  else platform.processor() or "cpu",
                  "capability": list(torch.cuda.get_device_capability()) if cuda else None,
                  "memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30,
                                      1) if cuda else None}))
EOF
step doctor 90 "$PY" -m cfspec doctor --device "$DEV" --format json
step bench_sd15 260 "$PY" benchmarks/generate_bench.py --json --device "$DEV" --model "$SD" \
  "${SIZE[@]}" "${SD_BENCH[@]}" --repeats 1 --compile ours,plain
step e2e_sd15 120 "$PY" benchmarks/gpu_e2e.py --model "$SD" --device "$DEV" \
  --out "$WORK/e2e_sd15" "${E2E[@]}" --compile
step set_bench 60 "$PY" benchmarks/set_bench.py --json --model "$SD" --device "$DEV" \
  "${SET[@]}" --repeats 1
step evaluate_bench 60 "$PY" benchmarks/evaluate_bench.py --json --device "$DEV" \
  --model "$CLIP" "${EVAL[@]}"
step bench_sdxl 240 "$PY" benchmarks/generate_bench.py --json --device "$DEV" --model "$XL" \
  "${SIZE[@]}" "${XL_BENCH[@]}" --repeats 1 --compile ours
step e2e_sdxl 90 "$PY" benchmarks/gpu_e2e.py --model "$XL" --device "$DEV" \
  --out "$WORK/e2e_sdxl" "${XL_E2E[@]}"

"$PY" benchmarks/gpu_summary.py "$RESULTS" | tee "$OUT/summary.txt"
tar -czf "$OUT/logs.tar.gz" -C "$WORK" logs
echo "results: $RESULTS ($(( $(date +%s) - START ))s)" >&2
