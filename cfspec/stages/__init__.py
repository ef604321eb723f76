"""The torch-free stages: filter, export (with croissant), the HTML report, `plan` and run's
preflight. The stages that run models, generate and evaluate, are in `cfspec/gpu/`."""
