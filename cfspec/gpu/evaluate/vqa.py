"""A yes/no VQA scorer over a BLIP question-answering model: P(yes) per (image, question).

`VqaScorer.load(spec, device)` takes

* `tiny`: a small random `BlipForQuestionAnswering` built in code (2-layer vision, question
  and answer towers, 32 px images, a WordPiece vocabulary of common caption words, letters and
  `yes`/`no`). No download, identical in every process (fixed seed); its answers mean nothing:
  it exists so that tests and CPU runs exercise the real code path.
* a local folder holding a saved BLIP VQA model and its processor, or a hub id such as
  `DEFAULT_VQA` (`Salesforce/blip-vqa-base`), read from the local cache when HF_HUB_OFFLINE is
  set; failures raise `VqaLoadError` saying what to do.

P(yes), as VQAScore (Lin et al., 2024) reads it: the answer decoder's distribution over the
first answer token, given the image and the question. cfspec normalises it against "no":
`p_yes = P("yes") / (P("yes") + P("no"))`, the softmax of the two logits. Why: the metrics
threshold it at 0.5 ("the image says yes"), and over the whole vocabulary a yes/no question's
mass also goes to other tokens (a colour, "2"), so an unnormalised P("yes") of 0.4 can be the
model's clear favourite; normalised, 0.5 is exactly where the model prefers yes to no, and a
model that rarely says either still gives a usable ranking (VQAScore ranks by the unnormalised
number, which the same ordering within one question preserves).

Padding: in transformers 5 the BLIP text layers drop the cross-attention mask (BlipTextLayer
passes it as `attention_mask`, which the cross-attention then replaces with its own, empty,
`encoder_attention_mask`), so in a padded batch the answer decoder attends to the question's
padding and an answer depends on how long the other questions of its batch are
(`BlipForQuestionAnswering.generate` builds an all-ones mask, the same in effect). Here
questions are batched only with questions of the same token length: no padding, so a
question's P(yes) does not depend on its batch, and each one is exactly the computation that
transformers' VQA pipeline did for it alone (tested, with `answers`' greedy decoding).

Answers are cached per (image content, question, model): a question asked of the same image
twice (a pair's factual image under several seeds is not the same image, but a `hold` question
asked in both wordings is) is computed once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cfspec.gpu.models import DEFAULT_VQA, is_offline, looks_like_path, missing_path, not_cached

TINY = "tiny"
TINY_VQA_SEED = 20261205
TINY_IMAGE_SIZE = 32
MAX_QUESTION_TOKENS = 64  # BLIP VQA questions are short; longer ones are truncated

__all__ = ["DEFAULT_VQA", "TINY", "VqaLoadError", "VqaScorer", "image_key", "tiny_vqa"]


class VqaLoadError(RuntimeError):
    """The VQA model could not be loaded; the message says what to do."""


# --- the built-in tiny model -------------------------------------------------------------------

_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]")


def _tiny_vocab() -> dict[str, int]:
    """Special tokens, yes/no, the tiny diffusion model's caption words, then letters and
    digits (bare and as WordPiece continuations) so that every lower-case word tokenizes."""
    from cfspec.gpu.generate.tiny import _WORDS

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    tokens = [*_SPECIAL, "yes", "no", "?", ".", ",", "'", "-", *_WORDS, *letters,
              *("##" + c for c in letters)]
    return {token: index for index, token in enumerate(dict.fromkeys(tokens))}


def tiny_vqa() -> tuple[Any, Any]:
    """The `tiny` model (eval mode) and its `BlipProcessor`, built in code from a fixed seed."""
    from transformers import BertTokenizer, BlipConfig, BlipForQuestionAnswering, BlipProcessor

    vocab = _tiny_vocab()
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, bos_token="[DEC]")
    width = 32
    text = {"vocab_size": len(vocab), "hidden_size": width, "encoder_hidden_size": width,
            "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
            "max_position_embeddings": MAX_QUESTION_TOKENS, "bos_token_id": vocab["[DEC]"],
            "pad_token_id": vocab["[PAD]"], "sep_token_id": vocab["[SEP]"],
            "eos_token_id": vocab["[SEP]"], "initializer_range": 0.2}
    # BLIP's vision default initializer (1e-10) makes every image look alike: 0.2 lets the
    # random model's answers depend on the image, which is what the tests need to see.
    vision = {"hidden_size": width, "intermediate_size": 37, "num_hidden_layers": 2,
              "num_attention_heads": 4, "image_size": TINY_IMAGE_SIZE, "patch_size": 4,
              "initializer_range": 0.2}
    # fork_rng: building the model must not move the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_VQA_SEED)
        model = BlipForQuestionAnswering(BlipConfig(text_config=text, vision_config=vision))
    size = {"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    processor = BlipProcessor(_image_processor_class()(size=size), tokenizer)
    return model.eval(), processor


def _image_processor_class() -> Any:
    """The PIL-backed BLIP image processor (`BlipImageProcessorPil` in transformers 5, where
    `BlipImageProcessor` needs torchvision; `BlipImageProcessor` before it)."""
    try:
        from transformers import BlipImageProcessorPil

        return BlipImageProcessorPil
    except ImportError:  # transformers < 5
        from transformers import BlipImageProcessor

        return BlipImageProcessor


def _from_pretrained(spec: str) -> tuple[Any, Any]:
    from transformers import AutoConfig, BlipForQuestionAnswering, BlipProcessor
    from transformers.utils import logging as tlogging

    tlogging.disable_progress_bar()  # the caller's progress bar is the only one
    local = Path(spec).expanduser()
    if not local.exists() and looks_like_path(spec):
        raise VqaLoadError(missing_path("--vqa-model", spec))
    is_local = local.exists()
    if is_local and not (local / "config.json").is_file():
        raise VqaLoadError(f"--vqa-model {spec}: not a saved model folder (no config.json); "
                           f"pass a BLIP VQA folder, a hub id such as {DEFAULT_VQA}, or tiny")
    source = str(local) if is_local else spec
    kwargs: dict[str, Any] = {"local_files_only": True} if is_local else {}
    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
        if config.model_type != "blip":
            raise VqaLoadError(f"--vqa-model {spec}: a {config.model_type!r} model; cfspec reads "
                               "P(yes) from BLIP's answer decoder, so it takes BLIP VQA models "
                               f"(BlipForQuestionAnswering), such as {DEFAULT_VQA}")
        model = BlipForQuestionAnswering.from_pretrained(source, **kwargs)
        processor = BlipProcessor.from_pretrained(source, **kwargs)
    except VqaLoadError:
        raise
    except Exception as error:  # the hub client raises many kinds; all mean "not here"
        if is_offline() and not is_local:
            raise VqaLoadError(not_cached("--vqa-model", spec, "or --vqa-model tiny for a test "
                                          "run")) from error
        raise VqaLoadError(f"--vqa-model {spec}: cannot load it: {type(error).__name__}: "
                           f"{error} (check the name and the network, or pass a local folder; "
                           "tiny needs no download)") from error
    return model.eval(), processor


def image_key(image: np.ndarray) -> str:
    """An image's content digest (its shape and bytes): the cache's image key."""
    digest = hashlib.sha256(repr((image.shape, image.dtype.str)).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


@dataclass
class VqaScorer:
    """A BLIP VQA model and its processor on one device, in eval mode, with the P(yes) cache."""

    name: str
    model: Any
    processor: Any
    device: torch.device
    dtype: torch.dtype
    yes_id: int
    no_id: int
    cache: dict[tuple[str, str, str], float] = field(default_factory=dict)

    @classmethod
    def load(cls, spec: str = TINY, device: str | torch.device = "cpu",
             dtype: torch.dtype | None = None) -> VqaScorer:
        """`tiny`, a local folder or a hub id. `dtype`: fp16 on CUDA, fp32 elsewhere."""
        model, processor = tiny_vqa() if spec == TINY else _from_pretrained(spec)
        return cls.from_parts(spec, model, processor, torch.device(device), dtype)

    @classmethod
    def from_parts(cls, name: str, model: Any, processor: Any, device: torch.device,
                   dtype: torch.dtype | None = None) -> VqaScorer:
        """Wrap a built model (moved to `device`/`dtype`, eval mode, no grad)."""
        if dtype is None:
            dtype = torch.float16 if device.type == "cuda" else torch.float32
        ids = []
        for word in ("yes", "no"):
            pieces = processor.tokenizer(word, add_special_tokens=False)["input_ids"]
            if len(pieces) != 1:
                raise VqaLoadError(f"--vqa-model {name}: its tokenizer splits {word!r} into "
                                   f"{len(pieces)} tokens; P(yes) needs one token each for "
                                   "'yes' and 'no'")
            ids.append(int(pieces[0]))
        model.to(device=device, dtype=dtype).eval().requires_grad_(False)
        return cls(name, model, processor, device, dtype, ids[0], ids[1])

    # --- P(yes) ------------------------------------------------------------------------------

    def p_yes(self, images: Sequence[np.ndarray], questions: Sequence[str],
              batch_size: int = 32) -> list[float]:
        """P(yes) normalised against no (see the module docstring) for each (image, question):
        images (H, W, 3) uint8. Cached: only (image, question)s not asked before reach the
        model, in batches of `batch_size`."""
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images for {len(questions)} questions")
        # One digest per image object: `ask` passes each image once per wording it is asked.
        distinct = {id(im): im for im in images}
        digests = {ident: image_key(im) for ident, im in distinct.items()}
        keys = [(digests[id(im)], q, self.name) for im, q in zip(images, questions, strict=True)]
        todo: dict[tuple[str, str, str], tuple[np.ndarray, str]] = {}
        for key, image, question in zip(keys, images, questions, strict=True):
            if key not in self.cache:
                todo.setdefault(key, (image, question))
        # Same-length questions only share a batch: no padding (see the module docstring).
        for group in _by_length(self._lengths([q for _, q in todo.values()]), list(todo)):
            for start in range(0, len(group), batch_size):
                chunk = group[start : start + batch_size]
                values = self._p_yes_batch([todo[k][0] for k in chunk],
                                           [todo[k][1] for k in chunk])
                self.cache.update(zip(chunk, values, strict=True))
        return [self.cache[key] for key in keys]

    def _lengths(self, questions: Sequence[str]) -> list[int]:
        if not questions:
            return []
        return [len(ids) for ids in self.processor.tokenizer(
            list(questions), truncation=True, max_length=MAX_QUESTION_TOKENS)["input_ids"]]

    def _inputs(self, images: Sequence[np.ndarray], questions: Sequence[str]) -> Any:
        inputs = self.processor(images=list(images), text=list(questions), truncation=True,
                                max_length=MAX_QUESTION_TOKENS, return_tensors="pt")
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs.to(self.device)

    @torch.inference_mode()
    def _question_states(self, inputs: Any) -> torch.Tensor:
        """The question encoder's states, attending to the image (BLIP's VQA encoder)."""
        image = self.model.vision_model(pixel_values=inputs["pixel_values"])[0]
        image_mask = torch.ones(image.shape[:-1], dtype=torch.long, device=image.device)
        return self.model.text_encoder(input_ids=inputs["input_ids"],
                                       attention_mask=inputs["attention_mask"],
                                       encoder_hidden_states=image,
                                       encoder_attention_mask=image_mask, return_dict=False)[0]

    @torch.inference_mode()
    def _next_logits(self, answer: torch.Tensor, states: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
        """The answer decoder's logits (float32) for the token after `answer` (N, T)."""
        out = self.model.text_decoder(input_ids=answer, encoder_hidden_states=states,
                                      encoder_attention_mask=mask, return_dict=True)
        return out.logits[:, -1].float()

    def _start(self, count: int) -> torch.Tensor:
        return torch.full((count, 1), self.model.decoder_start_token_id, device=self.device)

    def _p_yes_batch(self, images: Sequence[np.ndarray], questions: Sequence[str]
                     ) -> list[float]:
        inputs = self._inputs(images, questions)
        states = self._question_states(inputs)
        logits = self._next_logits(self._start(len(questions)), states, inputs["attention_mask"])
        two = logits[:, [self.yes_id, self.no_id]].softmax(dim=-1)
        return [float(p) for p in two[:, 0].cpu()]

    # --- answers -----------------------------------------------------------------------------

    def answers(self, images: Sequence[np.ndarray], questions: Sequence[str],
                max_new_tokens: int = 10) -> list[str]:
        """The greedy answers, decoded (not cached: for reading, not for the metrics)."""
        found: dict[int, str] = {}
        for group in _by_length(self._lengths(questions), list(range(len(questions)))):
            decoded = self._greedy([images[i] for i in group], [questions[i] for i in group],
                                   max_new_tokens)
            found.update(zip(group, decoded, strict=True))
        return [found[i] for i in range(len(questions))]

    def _greedy(self, images: Sequence[np.ndarray], questions: Sequence[str],
                max_new_tokens: int) -> list[str]:
        inputs = self._inputs(images, questions)
        states = self._question_states(inputs)
        mask = inputs["attention_mask"]
        answer = self._start(len(questions))
        done = torch.zeros(len(questions), dtype=torch.bool, device=self.device)
        sep, pad = self.model.config.text_config.sep_token_id, self.model.decoder_pad_token_id
        for _ in range(max_new_tokens):
            token = self._next_logits(answer, states, mask).argmax(dim=-1)
            token = torch.where(done, torch.full_like(token, pad), token)
            answer = torch.cat([answer, token[:, None]], dim=1)
            done |= token == sep
            if bool(done.all()):
                break
        return list(self.processor.batch_decode(answer, skip_special_tokens=True))


def _by_length(lengths: Sequence[int], items: list[Any]) -> list[list[Any]]:
    """`items` grouped by their question's token length, in first-seen order."""
    groups: dict[int, list[Any]] = {}
    for length, item in zip(lengths, items, strict=True):
        groups.setdefault(length, []).append(item)
    return list(groups.values())
