"""Yes/no questions about the images of a pair, built from the spec (issue 26).

`record` is the `Question` every stage reads (pairs.jsonl carries them); `build` makes them from
a spec's model. Torch-free: lint, compile and `cfspec questions` use it, the VQA scorer reads
the records.
"""
