"""`cfspec evaluate OUT`: `clip` (our CLIP wrapper), `metrics` (pure metric functions) and
`stage` (reads OUT, writes metrics.jsonl and metrics_summary.json)."""
