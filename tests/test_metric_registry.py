"""The metric registry (cfspec/workspace/metrics.py) is the one place a metric is named: a
metric registered there with its function is computed by evaluate, checked when metrics.jsonl
is read, averaged in the summary, gated on by the filter, exported as a column (and described in
the card and Croissant), and shown by the report, with no other change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pq = pytest.importorskip("pyarrow.parquet")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from test_export import PAIRS, build_out  # noqa: E402

from cfspec.gpu.evaluate.stage import Sample, evaluate  # noqa: E402
from cfspec.stages.export import export  # noqa: E402
from cfspec.stages.filter import Gates, parse_bound, run_filter  # noqa: E402
from cfspec.stages.html_report import build_report  # noqa: E402
from cfspec.workspace import metrics as registry  # noqa: E402
from cfspec.workspace.filter_lines import read_filter  # noqa: E402
from cfspec.workspace.layout import METRICS_FILE, image_paths  # noqa: E402
from cfspec.workspace.metrics_rows import read_metrics  # noqa: E402
from cfspec.workspace.reading import read_pair_file  # noqa: E402


def red_share(sample: Sample) -> float:
    return float((sample.image_1[..., 0] > 127).mean())


DUMMY = registry.Metric(
    "red_share_1", "share of red pixels in image 1",
    "Fraction of the counterfactual image's pixels whose red channel exceeds 127.",
    low=0, high=1, fmt="{:.3f}", plotted=True, per_seed=red_share,
)


@pytest.fixture
def dummy_metric() -> Iterator[registry.Metric]:
    saved = list(registry.METRICS)
    registry.register(DUMMY)
    try:
        yield DUMMY
    finally:
        registry.METRICS[:] = saved


def expected(out: Path, pair_id: str, seed: int) -> float:
    png_1 = image_paths(out, pair_id, seed)[1]
    with Image.open(png_1) as image:
        pixels = np.asarray(image.convert("RGB"))
    return float((pixels[..., 0] > 127).mean())


def test_a_registered_metric_reaches_every_stage(tmp_path: Path,
                                                 dummy_metric: registry.Metric) -> None:
    out = build_out(tmp_path / "out")
    result = evaluate(out, clip_model="tiny", quiet=True, bootstrap_resamples=200)
    values = {(r.id, r.seed): r.values["red_share_1"] for r in result.rows}
    assert values == {key: expected(out, *key) for key in values}  # exact: same arithmetic
    assert len(set(values.values())) > 1  # the random test images differ

    summary = json.loads((out / "metrics_summary.json").read_text())
    per_pair: dict[str, list[float]] = {}
    for (pair_id, _), value in values.items():
        per_pair.setdefault(pair_id, []).append(value)
    mean = sum(sum(v) / len(v) for v in per_pair.values()) / len(per_pair)
    assert summary["means"]["red_share_1"]["mean"] == pytest.approx(mean, rel=1e-12)

    # The filter gates on it: the bound is between the values, so some seeds fail on it alone.
    ordered = sorted(set(values.values()))
    cut = (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2
    gates = Gates(min_clip=-1.0, min_directional=-1.0, min_image_similarity=-1.0,
                  bounds=(parse_bound(f"red_share_1>={cut}"),))
    decisions = run_filter(out, gates).decisions
    for decision in decisions:
        for verdict in decision.seeds:
            passes = values[(decision.id, verdict.seed)] >= cut
            assert verdict.passed is passes
            if not passes:
                assert verdict.failed[0].metric == "red_share_1"
    assert decisions[0].gates["min_red_share_1"] == cut
    kept = {d.id: d.kept_seed for d in decisions if d.kept_seed is not None}
    assert kept and len(kept) < len(PAIRS) * 2

    dest = tmp_path / "hf"
    exported = export(out, "hf", dest)
    table = pq.read_table(exported.files[0]) if exported.files[0].suffix == ".parquet" else \
        pq.read_table([f for f in exported.files if f.suffix == ".parquet"][0])
    column = dict(zip(table.column("id").to_pylist(), table.column("red_share_1").to_pylist(),
                      strict=True))
    assert column == {pid: values[(pid, seed)] for pid, seed in kept.items()}
    card = (dest / "README.md").read_text()
    assert "`red_share_1`: Fraction of the counterfactual image's pixels" in card
    croissant = json.loads((dest / "croissant.json").read_text())
    fields = {f["name"]: f for rs in croissant["recordSet"] for f in rs["field"]}
    assert fields["red_share_1"]["dataType"] == "sc:Float"

    build_report(out)
    html = (out / "report.html").read_text()
    assert "share of red pixels in image 1" in html
    some_id, some_seed = next(iter(kept.items()))
    assert f"{values[(some_id, some_seed)]:.3f}" in html


def test_the_reader_holds_values_to_the_registered_range(tmp_path: Path,
                                                         dummy_metric: registry.Metric) -> None:
    out = build_out(tmp_path / "out")
    pair = PAIRS[0]
    row = {"id": pair["id"], "seed": 0, "prompt_0": pair["prompt_0"],
           "prompt_1": pair["prompt_1"], "red_share_1": 1.5}
    (out / METRICS_FILE).write_text(json.dumps(row) + "\n", encoding="utf-8")
    pairs, _ = read_pair_file(out)
    rows, problems = read_metrics(out, {p.id: p for p in pairs})
    assert rows == {}
    [problem] = problems
    assert problem.code.name == "invalid-metrics-file"
    assert "field `red_share_1`: expected a number in [0, 1] or null, got 1.5" in problem.message
    assert problem.span.line == 1 and problem.span.column > 1  # at the key on that line


def test_a_number_too_large_for_a_float_is_a_diagnostic(tmp_path: Path) -> None:
    """JSON allows any number of digits; float() of such an integer overflows."""
    out = build_out(tmp_path / "out")
    pair = PAIRS[0]
    huge = int("9" * 400)
    row = {"id": pair["id"], "seed": 0, "prompt_0": pair["prompt_0"],
           "prompt_1": pair["prompt_1"], "clip_score_0": huge}
    (out / METRICS_FILE).write_text(json.dumps(row) + "\n", encoding="utf-8")
    pairs, _ = read_pair_file(out)
    rows, problems = read_metrics(out, {p.id: p for p in pairs})
    assert rows == {} and [d.code.name for d in problems] == ["invalid-metrics-file"]
    line = {"id": pair["id"], "kept_seed": 0, "reason": "", "gates": {"min_clip": huge},
            "seeds": []}
    (out / "filter.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    decisions, problems = read_filter(out, {p.id: p for p in pairs}) or ({}, [])
    assert decisions == {} and "gates" in problems[0].message


def test_reserved_names_cannot_be_metrics() -> None:
    for name in ("height", "seed", "clip_model", "red_reason"):
        with pytest.raises(ValueError, match="reserved"):
            registry.register(registry.Metric(name, "x", "x", per_seed=red_share))


def test_two_bounds_on_one_metric_are_refused() -> None:
    from cfspec.stages.filter import load_gates
    from cfspec.workspace.reading import StageError

    with pytest.raises(StageError, match="more than once"):
        load_gates(bounds=("cld_p_f>=0.3", "cld_p_f>=0.1"))


def test_registering_needs_a_function_and_a_new_name() -> None:
    with pytest.raises(ValueError, match="per_seed"):
        registry.register(registry.Metric("no_function", "x", "x"))
    with pytest.raises(ValueError, match="taken"):
        registry.register(registry.Metric("clip_score_0", "x", "x", per_seed=red_share))


def test_a_gate_on_an_unknown_metric_names_the_known_ones() -> None:
    from cfspec.workspace.reading import StageError

    with pytest.raises(StageError, match="not a numeric metric; one of: clip_score_0"):
        parse_bound("clip_scor_0>=3")
    with pytest.raises(StageError, match="NAME>=VALUE"):
        parse_bound("latent_l2_per_dim=3")
    bound = parse_bound("latent_l2_outside_edit <= 0.25")
    assert (bound.metric, bound.op, bound.threshold) == ("latent_l2_outside_edit", "<=", 0.25)
    assert bound.passes(0.25) and not bound.passes(0.2500001)


def test_the_reserved_names_are_what_a_metrics_row_reads_as_not_metrics() -> None:
    from dataclasses import fields

    from cfspec.workspace.metrics_rows import RowAbout

    about = {f.name for f in fields(RowAbout)}
    assert about | {"id", "seed", "clip_model", "directional_defined"} == registry.RESERVED
