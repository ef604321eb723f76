"""The compiled engine (`Engine(compile=CompileOptions(...))`) on the tiny CPU model.

The compiled form of the P2P processors switches its edits with tensors, not Python branches,
so dynamo traces one graph per batch shape: every step and every batch of that shape replays
it (no graph break, no recompile). Its images are the eager engine's: exactly the same
arithmetic when dynamo's graph runs eagerly, and within fp32 reordering when inductor compiles
it (its kernels sum in another order). Inductor compiles take a minute on a small CPU, so one
test uses it; the others trace with dynamo's `eager` backend.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import numpy as np  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from numeric import assert_reordered_close  # noqa: E402
from test_p2p import make_pair  # noqa: E402

from cfspec.gpu.generate.edit_plan import PromptTokenizer, build_plan  # noqa: E402
from cfspec.gpu.generate.engine import CompileOptions, Engine, Job, Settings  # noqa: E402
from cfspec.gpu.generate.weights import load_components  # noqa: E402

STEPS = 6
SIZE = 32
CPU = torch.device("cpu")
TRACE_ONLY = CompileOptions(backend="eager", fuse_qkv=False, channels_last=False)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pairs() -> list[Any]:
    """Replace with LocalBlend (identity mapper: fused), refine (explicit, shorter window),
    reweight (explicit, a late self window): every kind of switch changes during the run."""
    return [
        make_pair("r", "a banana on a table", "a apple on a table",
                  blend=(["banana"], ["apple"])),
        make_pair("f", "a dog on a table", "a small dog on a table", kind="refine",
                  refine_map=[0, 1, -1, 2, 3, 4, 5, 6], cross=(0.0, 0.5),
                  blend=(["dog"], ["small"])),
        make_pair("w", "a fluffy sheep in a field", "a fluffy sheep in a field",
                  kind="reweight", equalizer={"fluffy": 2.0}, self_window=(0.2, 0.6)),
    ]


def _jobs(comps: Any, seeds: tuple[int, ...] = (0, 1, 2)) -> list[Job]:
    words = PromptTokenizer(comps.tokenizer, comps.tokenizer_2)
    return [Job(p.id, s, build_plan(p, words)) for p, s in zip(_pairs(), seeds, strict=True)]


def _pixels(image: Any) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def _assert_same_outputs(got: list[Any], expected: list[Any], exact: bool) -> None:
    assert [o.job for o in got] == [o.job for o in expected]
    for a, b in zip(got, expected, strict=True):
        if exact:
            np.testing.assert_array_equal(a.latents, b.latents)
            np.testing.assert_array_equal(a.attention, b.attention)
        else:
            assert_reordered_close(a.latents, b.latents, STEPS)
            assert_reordered_close(a.attention, b.attention, STEPS)
        np.testing.assert_array_equal(a.mask, b.mask)
        for x, y in zip(a.images, b.images, strict=True):
            assert np.abs(_pixels(x) - _pixels(y)).max() <= (0 if exact else 1)


def _run(comps: Any, compat: str, sets: bool, compile: CompileOptions | None) -> tuple[
        list[Any], Engine]:
    engine = Engine(comps, CPU, torch.float32,
                    Settings(steps=STEPS, height=SIZE, width=SIZE, compat=compat),
                    compile=compile)
    try:
        jobs = _jobs(comps)
        if sets:  # a set: two counterfactuals of one factual row (prompt_0 and seed), and one
            words = PromptTokenizer(comps.tokenizer, comps.tokenizer_2)
            pear = make_pair("r2", "a banana on a table", "a pear on a table")
            shared = Job(pear.id, jobs[0].seed, build_plan(pear, words))
            return engine.run_sets([[jobs[0], shared], [jobs[2]]]), engine
        return engine.run(jobs), engine
    finally:
        engine.close()


@pytest.mark.parametrize(("compat", "sets"), [("cfspec", False), ("published", False),
                                              ("cfspec", True)])
def test_traced_static_form_equals_eager_exactly(comps: Any, compat: str, sets: bool) -> None:
    torch._dynamo.reset()
    eager, _ = _run(comps, compat, sets, None)
    traced, engine = _run(comps, compat, sets, TRACE_ONLY)
    assert engine._compiled is not None
    _assert_same_outputs(traced, eager, exact=True)


def test_one_graph_for_every_step_and_every_batch_of_a_shape(comps: Any) -> None:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    engine = Engine(comps, CPU, torch.float32, Settings(steps=STEPS, height=SIZE, width=SIZE),
                    compile=TRACE_ONLY)
    try:
        engine.run(_jobs(comps))
        # Other pairs, other seeds, the same shape: the switches are inputs, nothing retraces.
        other = _jobs(comps, seeds=(7, 8, 9))[::-1]
        engine.run(other)
        assert counters["stats"]["unique_graphs"] == 1
        assert sum(counters["graph_break"].values()) == 0
        # A batch of another size is another shape: one graph more.
        engine.run(other[:1])
        assert counters["stats"]["unique_graphs"] == 2
    finally:
        engine.close()


def test_explain_finds_no_graph_break_in_the_controlled_unet(comps: Any) -> None:
    """`torch._dynamo.explain` of the UNet as the compiled engine calls it, mid-run."""
    torch._dynamo.reset()
    engine = Engine(comps, CPU, torch.float32, Settings(steps=STEPS, height=SIZE, width=SIZE),
                    compile=TRACE_ONLY)
    seen: list[Any] = []

    def explain(sample: Any, t: Any, context: Any, added: Any) -> Any:
        if engine.control.step == 2 and not seen:
            seen.append(torch._dynamo.explain(comps.unet)(
                sample, t, encoder_hidden_states=context, added_cond_kwargs=added))
            engine.control.pending = []  # the explain run's blend terms are not the step's
        return Engine._unet(engine, sample, t, context, added)

    engine._unet = explain  # type: ignore[method-assign]
    try:
        engine.run(_jobs(comps))
    finally:
        engine.close()
    assert seen and seen[0].graph_count == 1 and seen[0].graph_break_count == 0


def test_inductor_compiled_engine_matches_eager_and_reports_compile_time() -> None:
    """Inductor, fused q/k/v projections, channels-last: the same images within fp32
    reordering. Its own model: compiling changes the UNet's modules in place."""
    comps = load_components("tiny", CPU, torch.float32)
    torch._dynamo.reset()
    eager, _ = _run(comps, "cfspec", False, None)
    engine = Engine(comps, CPU, torch.float32, Settings(steps=STEPS, height=SIZE, width=SIZE),
                    compile=CompileOptions())
    try:
        compiled = engine.run(_jobs(comps))
        assert engine.compile_seconds > 0
        first = engine.compile_seconds
        again = engine.run(_jobs(comps))
        assert engine.compile_seconds == first  # a shape already compiled costs nothing more
    finally:
        engine.close()
    _assert_same_outputs(compiled, eager, exact=False)
    _assert_same_outputs(again, compiled, exact=True)


def test_fp8_is_refused_where_it_cannot_run(comps: Any) -> None:
    with pytest.raises(ValueError, match="fp8 needs"):
        Engine(load_components("tiny", CPU, torch.float32), CPU, torch.float32,
               Settings(steps=2, height=SIZE, width=SIZE), compile=CompileOptions(fp8=True))


def test_loading_in_half_precision_says_nothing_about_float32_modules(capfd: Any) -> None:
    """The cast to the target dtype is torch's own: diffusers' `to()` warned on every load,
    though SD's UNet and VAE keep no module in fp32."""
    capfd.readouterr()
    low = load_components("tiny", CPU, torch.float16)
    assert low.unet.dtype == torch.float16 and low.vae.dtype == torch.float16
    captured = capfd.readouterr()
    assert "should be kept in float32" not in captured.err + captured.out
