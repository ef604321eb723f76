"""Checked specs to paired prompts: `pairs` (one pair per counterfactual), `align` (CLIP token
maps for Prompt-to-Prompt), `dot` (a spec's graph as DOT) and `stage` (`cfspec compile`)."""
