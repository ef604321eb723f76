"""Shared test settings: nothing waits on a model hub; golden files can be rewritten."""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_COLOR", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite tests/golden/*.jsonl from the current compiler output.",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


# The tiny diffusion model and its word tokenizer, shared by the attention-control tests. Built
# once per module (a test may change the model's processors); torch is imported only here, so
# the lint-only test modules never load it.
@pytest.fixture(scope="module")
def comps() -> Any:
    torch = pytest.importorskip("torch")
    from cfspec.gpu.generate.weights import load_components

    return load_components("tiny", torch.device("cpu"), torch.float32)


@pytest.fixture(scope="module")
def words(comps: Any) -> Any:
    from cfspec.gpu.generate.edit_plan import WordTokenizer

    return WordTokenizer(comps.tokenizer)


# One torch thread for the modules that run the tiny models (`pytestmark =
# pytest.mark.usefixtures("one_torch_thread")`): their kernels gain nothing from more, and on a
# busy machine several threads spend their time spin-waiting for a core.
@pytest.fixture(scope="module")
def one_torch_thread() -> Any:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
