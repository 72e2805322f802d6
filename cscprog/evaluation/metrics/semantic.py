"""A BERTScore-style semantic similarity from embeddings shipped inside a PyPI package (no download at run time).

Method: BERTScore's greedy matching F1 (Zhang et al., 2020) over *static* token embeddings. Both texts are
tokenized; every token gets its unit-normalized embedding; with ``S[i][j]`` the cosine between hypothesis
token i and reference token j::

    P = mean_i max_j S[i][j]     R = mean_j max_i S[i][j]     F = 2PR / (P + R)

No IDF weighting and no baseline rescaling. The corpus score is the mean F over pairs, x100 (like the
paper's BS column, though not the same model: the paper's BERTScore used a contextual BERT, so compare our
numbers with each other, not with the paper's). Greedy matching was preferred over the cosine of mean-pooled
sentence vectors because it is the BERTScore formula and, on our checks, separates paraphrases from
unrelated replies more widely in English; the two agree on ranking.

Model: ``wordllama`` 0.4 (the ``embed`` extra) ships its ``l2_supercat`` 256-dimensional embeddings of the
Llama-2 vocabulary (32k tokens) in the wheel; it needs numpy only (no torch) and is loaded with downloads
disabled. Known limit: the Llama-2 vocabulary holds only the common Chinese characters as tokens; rarer
ones fall back to UTF-8 byte pieces, so Chinese scores are coarser than English ones.

When the package is not installed (or its files are missing), :func:`load_semantic_scorer` returns the reason
instead of a scorer, and callers report the semantic score as unavailable (None) with that reason: never a
substitute number.

Example:
    ```python
    from cscprog.evaluation.metrics.semantic import load_semantic_scorer

    scorer, reason = load_semantic_scorer()
    if scorer is not None:
        scorer.similarity("Hello, how can I help?", "Hi, what can I do for you?")   # about 0.74
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cscprog.evaluation.metrics.pairs import check_pairs

__all__ = ["METHOD", "MODEL", "SemanticScorer", "load_semantic_scorer"]

logger = logging.getLogger(__name__)

MODEL = "wordllama/l2_supercat_256"
"""The embedding table used (package / config and dimension)."""

METHOD = "greedy token-embedding matching F1 (BERTScore formula, no IDF, no rescaling)"
"""What the semantic score is, as written into results."""


class SemanticScorer:
    """Greedy matching F1 between texts over a static token-embedding table.

    Args:
        embeddings: ``(vocab, dim)`` array of token embeddings (normalized here).
        encode: ``encode(text) -> list[int]`` token ids (ids beyond the table are clipped to its last row,
            as wordllama itself does).
        model: A name for results and logs.

    Example:
        ```python
        import numpy as np

        table = np.array([[1.0, 0.0], [0.0, 1.0]])
        scorer = SemanticScorer(table, lambda text: [0 if w == "yes" else 1 for w in text.split()])
        scorer.similarity("yes", "yes no")   # P 1, R 1/2 -> 0.667
        ```
    """

    def __init__(self, embeddings: Any, encode: Callable[[str], list[int]], *, model: str = MODEL) -> None:
        import numpy as np

        table = np.asarray(embeddings, dtype=np.float32)
        if table.ndim != 2 or table.shape[0] == 0:
            raise ValueError(f"embeddings must be a non-empty (vocab, dim) table, got shape {table.shape}")
        norms = np.linalg.norm(table, axis=1, keepdims=True)
        self._table = table / np.where(norms == 0, 1.0, norms)
        self._encode = encode
        self.model = model

    def _vectors(self, text: str) -> Any:
        import numpy as np

        ids = np.asarray(self._encode(text), dtype=np.int64)
        return self._table[np.clip(ids, 0, self._table.shape[0] - 1)]

    def similarity(self, hypothesis: str | None, reference: str) -> float:
        """Greedy matching F1 in [0, 1]; 0 when one side has no tokens (1 when both have none).

        Example:
            ```python
            scorer.similarity("Your card is blocked.", "Your card is blocked.")   # 1.0
            ```
        """
        hyp = self._vectors(hypothesis or "")
        ref = self._vectors(reference)
        if len(hyp) == 0 or len(ref) == 0:
            return 1.0 if len(hyp) == 0 and len(ref) == 0 else 0.0
        cosine = hyp @ ref.T
        precision = float(cosine.max(axis=1).mean())
        recall = float(cosine.max(axis=0).mean())
        if precision + recall <= 0:
            return 0.0
        return max(0.0, min(1.0, 2 * precision * recall / (precision + recall)))

    def corpus(self, hypotheses: Sequence[str | None], references: Sequence[str]) -> float:
        """Mean similarity over pairs x100; a failed generation (None) scores 0 and stays in the mean.

        Raises:
            ValueError: the lists differ in length or are empty.
        """
        check_pairs(hypotheses, references, corpus="semantic similarity")
        total = sum(self.similarity(h, r) for h, r in zip(hypotheses, references, strict=True))
        return 100.0 * total / len(references)


def _import_wordllama() -> Any:
    # wordllama's inference module calls logging.basicConfig(level=INFO) on import, which would turn on
    # INFO logging for the whole process of a library user; undo that side effect.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    return wordllama


def load_semantic_scorer() -> tuple[SemanticScorer | None, str | None]:
    """The wordllama-backed scorer, or ``(None, reason)`` when it cannot be loaded offline.

    Returns:
        ``(scorer, None)``, or ``(None, "why")`` (the reason is also logged as a warning).

    Example:
        ```python
        scorer, reason = load_semantic_scorer()
        ```
    """
    try:
        wordllama = _import_wordllama()
    except ImportError as error:
        reason = f"semantic similarity unavailable: wordllama is not installed ({error}); pip install 'cscprog[embed]'"
        logger.warning(reason)
        return None, reason
    try:
        model = wordllama.WordLlama.load(
            config="l2_supercat", dim=256, cache_dir=Path(wordllama.__file__).parent, disable_download=True
        )
    except Exception as error:  # a missing or corrupt weight file: any failure means "no semantic score"
        reason = f"semantic similarity unavailable: wordllama could not load its packaged embeddings offline ({error})"
        logger.warning(reason)
        return None, reason
    tokenizer = model.tokenizer

    def encode(text: str) -> list[int]:
        encoding = tokenizer.encode(text, add_special_tokens=False)
        return [token for token, keep in zip(encoding.ids, encoding.attention_mask, strict=True) if keep]

    return SemanticScorer(model.embedding, encode, model=MODEL), None
