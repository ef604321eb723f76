"""What cfspec says about an input: source positions, the code registry, diagnostic records and
their views (text, JSON, SARIF, GitHub annotations), and `explain` pages.

The lowest layer: it imports nothing else of cfspec."""
