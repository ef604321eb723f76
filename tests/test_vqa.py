"""The VQA scorer (cfspec.gpu.evaluate.vqa) on the built-in tiny BLIP: its greedy answers are
what transformers' VQA pipeline answered, its P(yes) is the softmax of the answer decoder's
logits as transformers computes them, batches do not change it, and the cache asks the model
once per (image, question)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from cfspec.gpu.evaluate.vqa import VqaLoadError, VqaScorer, image_key  # noqa: E402
from cfspec.gpu.models import random_weights_warning  # noqa: E402

QUESTIONS = ["Is there a cat?", "Is the man holding a red umbrella?", "Are there two dogs?",
             "is it wet?"]


@pytest.fixture(scope="module")
def scorer() -> VqaScorer:
    return VqaScorer.load("tiny")


def _images(count: int, size: tuple[int, int] = (40, 48)) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(count)]


def _pipeline_answer(scorer: VqaScorer, image: np.ndarray, question: str) -> str:
    """What `transformers.pipeline("visual-question-answering")` answered with a generative
    model such as BLIP: `model.generate` on the processor's inputs, decoded without special
    tokens. transformers 5 removed that task (its REMOVED_TASKS), so where the pipeline is
    still there it is used, and otherwise its very steps."""
    import transformers

    try:
        vqa = transformers.pipeline("visual-question-answering", model=scorer.model,
                                    tokenizer=scorer.processor.tokenizer,
                                    image_processor=scorer.processor.image_processor)
    except (KeyError, ValueError):  # transformers >= 5: the task is gone
        inputs = scorer.processor(images=[image], text=[question], return_tensors="pt")
        ids = scorer.model.generate(**inputs, max_new_tokens=10)
        return str(scorer.processor.batch_decode(ids, skip_special_tokens=True)[0])
    from PIL import Image

    return str(vqa(image=Image.fromarray(image), question=question, top_k=1)[0]["answer"])


def test_greedy_answers_equal_transformers_vqa_pipeline(scorer: VqaScorer) -> None:
    images = _images(4)
    mine = [scorer.answers([im], [q])[0] for im, q in zip(images, QUESTIONS, strict=True)]
    theirs = [_pipeline_answer(scorer, im, q) for im, q in zip(images, QUESTIONS, strict=True)]
    assert mine == theirs
    # The random model's answers depend on the image and the question (else equality says
    # little): not all the same.
    assert len(set(mine)) > 1


def test_p_yes_is_the_softmax_of_the_decoders_first_logits(scorer: VqaScorer) -> None:
    images = _images(4)
    got = scorer.p_yes(images, QUESTIONS)
    for image, question, value in zip(images, QUESTIONS, got, strict=True):
        inputs = scorer.processor(images=[image], text=[question], return_tensors="pt")
        out = scorer.model.generate(**inputs, max_new_tokens=1, output_scores=True,
                                    return_dict_in_generate=True)
        probs = out.scores[0][0].double().softmax(dim=-1)  # over the whole vocabulary
        expected = float(probs[scorer.yes_id] / (probs[scorer.yes_id] + probs[scorer.no_id]))
        # fp32 logits of order 1: their softmax agrees to ~1e-6.
        assert value == pytest.approx(expected, abs=1e-5)
    assert all(0.0 < v < 1.0 for v in got)
    assert len({round(v, 6) for v in got}) > 1  # the images and questions matter


def test_batching_does_not_change_p_yes(scorer: VqaScorer) -> None:
    """Questions of different lengths would share a padded batch, whose padding BLIP's answer
    decoder sees in transformers 5: the scorer batches same-length questions only, so one at a
    time and all at once agree (the tiny model moves by ~0.1 when padding leaks in)."""
    images = _images(6, (64, 64))
    questions = [*QUESTIONS, "Is there a dog?", "Is the cat wet?"]  # two of equal length
    together = VqaScorer.from_parts("tiny", scorer.model, scorer.processor, scorer.device)
    alone = VqaScorer.from_parts("tiny", scorer.model, scorer.processor, scorer.device)
    batched = together.p_yes(images, questions, batch_size=4)
    single = [alone.p_yes([im], [q])[0] for im, q in zip(images, questions, strict=True)]
    # Batched fp32 matrix products may round differently from single ones: ~1e-7 here.
    np.testing.assert_allclose(batched, single, atol=1e-5)
    answers = together.answers(images, questions)
    assert answers == [alone.answers([im], [q])[0] for im, q in zip(images, questions,
                                                                    strict=True)]


def test_the_cache_asks_each_image_question_once(scorer: VqaScorer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = VqaScorer.from_parts("tiny", scorer.model, scorer.processor, scorer.device)
    asked: list[int] = []
    compute = fresh._p_yes_batch

    def counting(images: list[np.ndarray], questions: list[str]) -> list[float]:
        asked.append(len(questions))
        return compute(images, questions)

    monkeypatch.setattr(fresh, "_p_yes_batch", counting)
    a, b = _images(2)
    first = fresh.p_yes([a, a, b, a.copy()], ["Is there a cat?"] * 4)
    assert asked == [2]  # a (three times, one a copy with equal content) and b
    assert first[0] == first[1] == first[3]
    again = fresh.p_yes([b, a], ["Is there a cat?", "Is there a cat?"])
    assert asked == [2] and again == [first[2], first[0]]
    fresh.p_yes([a], ["Is there a dog?"])
    assert asked == [2, 1]
    assert image_key(a) != image_key(a[:, ::-1].copy())


def test_tiny_is_the_same_model_in_every_build() -> None:
    images = _images(2)
    one = VqaScorer.load("tiny").p_yes(images, QUESTIONS[:2])
    two = VqaScorer.load("tiny").p_yes(images, QUESTIONS[:2])
    assert one == two


def test_unloadable_models_say_what_to_do(tmp_path: object,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    with pytest.raises(VqaLoadError, match="no such folder"):
        VqaScorer.load(str(base / "missing"))
    (base / "empty").mkdir()
    with pytest.raises(VqaLoadError, match="no config.json"):
        VqaScorer.load(str(base / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(VqaLoadError, match="not in the local Hugging Face cache"):
        VqaScorer.load("nobody-cfspec-test/no-such-vqa-model")


def test_a_saved_model_folder_loads_and_answers_the_same(scorer: VqaScorer,
                                                         tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path)) / "blip"
    scorer.model.save_pretrained(folder)
    scorer.processor.save_pretrained(folder)
    loaded = VqaScorer.load(str(folder))
    images = _images(2)
    np.testing.assert_allclose(loaded.p_yes(images, QUESTIONS[:2]),
                               scorer.p_yes(images, QUESTIONS[:2]), atol=1e-6)


def test_a_model_of_another_kind_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    from transformers import CLIPConfig

    folder = Path(str(tmp_path)) / "clip"
    CLIPConfig().save_pretrained(folder)
    with pytest.raises(VqaLoadError, match="BLIP VQA models"):
        VqaScorer.load(str(folder))


def test_tiny_warns_of_its_random_weights() -> None:
    warning = random_weights_warning("--vqa-model", "tiny")
    assert warning is not None and "Salesforce/blip-vqa-base" in warning
    assert random_weights_warning("--vqa-model", "Salesforce/blip-vqa-base") is None
