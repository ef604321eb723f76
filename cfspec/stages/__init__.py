"""The pipeline's stages after compile: generate, evaluate, filter, export, report.

Only `generate/` and `evaluate/` import torch, and only when their modules are imported."""
