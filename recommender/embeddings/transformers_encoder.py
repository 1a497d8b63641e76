"""Any Hugging Face encoder (PhoBERT in production) by hub name or local path, mean-pooled.

Weights are never downloaded (``local_files_only=True``): a hub name works only when it is already
in the local Hugging Face cache, otherwise pass a directory holding ``config.json``, the weights and
the tokenizer files. PhoBERT-type tokenizers expect word-segmented input, so their texts go
through pyvi first. Sentence vector = mean of the last hidden states over the attention mask.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recommender.embeddings.base import TextEncoder
from recommender.errors import EncoderError
from recommender.text.normalisation import normalise_text
from recommender.text.segmentation import segment

logger = logging.getLogger(__name__)

MAX_LENGTH_CAP = 256  # PhoBERT has 258 positions; longer product texts add little


def _needs_segmentation(tokenizer: Any) -> bool:
    return "phobert" in type(tokenizer).__name__.lower()


class TransformersEncoder(TextEncoder):
    """Mean-pooled last hidden states of a pretrained encoder; ``fit`` only loads the model."""

    kind: ClassVar[str] = "transformers"

    def __init__(
        self,
        model: str | Path,
        batch_size: int = 32,
        device: str | None = None,
        max_length: int | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__()
        if not model or not str(model).strip():
            raise EncoderError(
                "the transformers encoder needs --model: a Hugging Face name already in the local "
                "cache or a local directory (e.g. a saved vinai/phobert-base)."
            )
        if batch_size < 1:
            raise EncoderError(f"batch_size must be >= 1, got {batch_size}.")
        self.model_ref = str(model)
        self.batch_size = int(batch_size)
        self.requested_device = device
        self.requested_max_length = max_length
        self.progress = progress
        self._tokenizer: Any = None
        self._model: Any = None
        self._device = "cpu"
        self._dim = 0
        self._max_length = 0
        self._segment = False

    @property
    def name(self) -> str:
        return self.model_ref

    @property
    def dim(self) -> int:
        return self._dim

    def params(self) -> dict[str, Any]:
        return {
            "model": self.model_ref,
            "max_length": self._max_length,
            "segmented_input": self._segment,
            "pooling": "mean",
        }

    def _load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        ref = self.model_ref
        looks_like_path = ref.startswith((".", "/", "~")) or Path(ref).expanduser().exists()
        if looks_like_path and not Path(ref).expanduser().is_dir():
            raise EncoderError(
                f"model path {ref} does not exist or is not a directory. Pass a directory with "
                "config.json, the weights and the tokenizer files."
            )
        source = str(Path(ref).expanduser()) if looks_like_path else ref
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            model = AutoModel.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise EncoderError(
                f"cannot load Hugging Face model '{ref}' locally ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}). Models are never downloaded "
                "here: put the model in the local cache or pass a local directory."
            ) from exc
        device = self.requested_device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._device = device
        self._model = model.to(device).eval()
        self._tokenizer = tokenizer
        self._segment = _needs_segmentation(tokenizer)
        config = model.config
        positions = int(getattr(config, "max_position_embeddings", 514) or 514)
        # RoBERTa-family models reserve padding_idx + 1 positions.
        offset = (
            2 if getattr(config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"} else 0
        )
        limits = [positions - offset, MAX_LENGTH_CAP, int(tokenizer.model_max_length or 10**9)]
        if self.requested_max_length:
            limits.append(int(self.requested_max_length))
        self._max_length = max(8, min(limits))
        self._dim = int(config.hidden_size)
        logger.info(
            "transformers: %s on %s, dim %d, max_length %d, segmented input: %s",
            ref,
            device,
            self._dim,
            self._max_length,
            self._segment,
        )

    def _prepare(self, texts: list[str]) -> list[str]:
        out = [normalise_text(t, lowercase=False) for t in texts]
        return [segment(t) for t in out] if self._segment else out

    def _fit(self, texts: list[str]) -> None:
        if self._model is None:
            self._load()

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        prepared = self._prepare(texts)
        # Sorting by length keeps padding small within a batch; rows are put back in order below.
        order = np.argsort([len(t) for t in prepared], kind="stable")
        out = np.zeros((len(prepared), self._dim), dtype=np.float32)
        starts = range(0, len(prepared), self.batch_size)
        # a bar with an ETA on a terminal; elsewhere (logs, CI) one line when done
        bar = tqdm(
            starts,
            desc=f"encoding ({self.model_ref})",
            unit="batch",
            disable=None if self.progress else True,
            leave=False,
        )
        clock = time.perf_counter()
        with torch.inference_mode():
            for start in bar:
                idx = order[start : start + self.batch_size]
                batch = self._tokenizer(
                    [prepared[i] or " " for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self._max_length,
                    return_tensors="pt",
                ).to(self._device)
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
                out[idx] = pooled.float().cpu().numpy()
        if self.progress and bar.disable:
            seconds = time.perf_counter() - clock
            print(
                f"encoded {len(prepared)} texts ({self.model_ref}) in {seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        return out

    def _state(self, directory: Path) -> dict[str, Any]:
        return {
            "model": self.model_ref,
            "batch_size": self.batch_size,
            "max_length": self._max_length,
            "dim": self._dim,
            "segmented_input": self._segment,
        }

    @classmethod
    def _from_state(cls, directory: Path, state: dict[str, Any]) -> TransformersEncoder:
        enc = cls(model=state["model"], batch_size=int(state.get("batch_size", 32)))
        enc.requested_max_length = state.get("max_length")
        enc._load()
        return enc
