"""The summary table of a GPU check (benchmarks/gpu_check.sh): one results.jsonl in, a table
and issue 24's goals out.

    python benchmarks/gpu_summary.py /tmp/cfspec-gpu-check/results.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

METHODS = ("ours", "plain", "naive", "ours_compiled", "plain_compiled")


def load(path: Path) -> dict[str, dict[str, Any]]:
    steps = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            steps[record["step"]] = record
    return steps


def _row(results: list[dict[str, Any]], batch: int) -> dict[str, Any] | None:
    return next((r for r in results if r.get("batch_pairs") == batch), None)


def _ratio(row: dict[str, Any] | None, num: str, den: str) -> float | None:
    if row is None or num not in row or den not in row:
        return None
    return float(row[num]["seconds"]) / float(row[den]["seconds"])


def goal(lines: list[str], text: str, value: float | None, ok: bool | None) -> None:
    mark = "  n/a" if value is None or ok is None else (" PASS" if ok else " FAIL")
    shown = "-" if value is None else f"{value:.3f}"
    lines.append(f"[{mark}] {text}: {shown}")


def bench_table(lines: list[str], title: str, report: dict[str, Any]) -> None:
    peak = report.get("peak", {})
    lines.append(f"{title}: {report.get('model')} {report.get('resolution')} px "
                 f"{report.get('dtype')}, {report.get('steps')} steps on {report.get('device')}"
                 f" (peak {peak.get('tflops', 0):.1f} TFLOP/s, {peak.get('dtype')} matmul)")
    lines.append(f"  {'pairs':>5}  {'method':<15}{'seconds':>9}{'pairs/s':>9}{'TFLOP/s':>9}"
                 f"{'of peak':>9}{'MiB':>9}")
    for row in report.get("results", []):
        for method in METHODS:
            if method in row:
                m = row[method]
                lines.append(f"  {row['batch_pairs']:>5}  {method:<15}{m['seconds']:>9.3f}"
                             f"{m['pairs_per_s']:>9.3f}{m['tflops']:>9.1f}"
                             f"{100 * m['of_peak']:>8.1f}%{m['peak_mib']:>9.0f}")
    compiled = report.get("compile_seconds") or {}
    if compiled:
        lines.append(f"  compile: {compiled}")
    agreement = {k: v for k, v in report.items() if "pixel_diff" in k}
    if agreement:
        lines.append(f"  agreement (grey levels): {agreement}")


def summarise(steps: dict[str, dict[str, Any]]) -> str:
    lines = ["step             rc  seconds"]
    for name, record in steps.items():
        rc = record.get("rc")
        note = record.get("skipped", "")
        lines.append(f"{name:<16} {'-' if rc is None else rc:>2} {record.get('seconds', 0):>8}"
                     f"  {note}")
    lines.append("")
    reports = {name: record.get("result") or {} for name, record in steps.items()}
    sd, xl = reports.get("bench_sd15", {}), reports.get("bench_sdxl", {})
    for title, report in (("SD 1.5", sd), ("SDXL", xl)):
        if report.get("results"):
            bench_table(lines, title, report)
            lines.append("")
    for name in ("e2e_sd15", "e2e_sdxl"):
        report = reports.get(name, {})
        for mode in ("eager", "compiled"):
            if mode in report:
                lines.append(f"{name} {mode}: {report[mode]}")
    sets = reports.get("set_bench", {})
    for s in sets.get("summary", []):
        lines.append(f"set_bench K={s['k']}: sets / per-pair {s['speedup']:.2f}x pairs/s "
                     f"(rows {s['rows_ratio']:.2f}x)")
    ev = reports.get("evaluate_bench", {})
    if ev:
        lines.append(f"evaluate_bench {ev.get('model')} {ev.get('dtype')}: "
                     f"{ev.get('pairs_per_s', 0):.1f} pairs/s, {ev.get('tflops', 0):.1f} "
                     f"TFLOP/s ({100 * ev.get('of_peak', 0):.1f}% of peak)")
    lines.append("")

    lines.append("goals (issue 24)")
    sd_results = sd.get("results", [])
    big = max((r for r in sd_results if "ours_compiled" in r),
              key=lambda r: r["batch_pairs"], default=None)
    share = None if big is None else float(big["ours_compiled"]["of_peak"])
    goal(lines, "SD 1.5 compiled ours at 8+ pairs >= 50% of peak", share,
         None if share is None else share >= 0.5)
    speed = _ratio(big, "ours", "ours_compiled")
    goal(lines, "SD 1.5 compiled ours >= 1.6x today's eager ours", speed,
         None if speed is None else speed >= 1.6)
    xl_big = max((r for r in xl.get("results", []) if "ours_compiled" in r),
                 key=lambda r: r["batch_pairs"], default=None)
    xl_speed = _ratio(xl_big, "ours", "ours_compiled")
    goal(lines, "SDXL compiled ours >= 1.5x today's eager ours", xl_speed,
         None if xl_speed is None else xl_speed >= 1.5)
    for label, num, den in (("eager ours / eager plain", "ours", "plain"),
                            ("compiled ours / compiled plain", "ours_compiled",
                             "plain_compiled")):
        worst = [r for r in (_ratio(row, num, den) for row in sd_results) if r is not None]
        value = max(worst) if worst else None
        goal(lines, f"SD 1.5 overhead {label} <= 1.05", value,
             None if value is None else value <= 1.05)
    beats = _ratio(big, "ours_compiled", "plain")
    goal(lines, "SD 1.5 compiled ours faster than eager plain (time ratio < 1)", beats,
         None if beats is None else beats < 1.0)
    for name in ("e2e_sd15", "e2e_sdxl"):
        for mode in ("eager", "compiled"):
            value = reports.get(name, {}).get(mode, {}).get("stage_vs_loop")
            goal(lines, f"{name} {mode}: stage / loop <= 1.10", value,
                 None if value is None else value <= 1.10)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: gpu_summary.py RESULTS.jsonl", file=sys.stderr)
        return 2
    print(summarise(load(Path(args[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
