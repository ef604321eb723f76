"""`cfspec evaluate OUT`: `clip` (our CLIP wrapper), `metrics` (pure metric functions) and
`stage` (reads OUT, writes metrics.jsonl and metrics_summary.json) and `summary` (the set-level
features, the summary's means and intervals, the command's table)."""

from cfspec.workspace.usercache import private_torch_caches

# Before any module below imports torch: its compile caches go to the user's own folder, never
# to the shared temp dir (cfspec.workspace.usercache says why).
private_torch_caches()
