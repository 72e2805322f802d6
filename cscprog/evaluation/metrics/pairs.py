"""The one check every pairwise metric makes first: as many hypotheses as references (and, for corpus means, some).

Example:
    ```python
    from cscprog.evaluation.metrics.pairs import check_pairs

    check_pairs(["hello", None], ["hi", "hey"])           # fine: a failed generation (None) still counts
    check_pairs([], [], corpus="BLEU")                      # ValueError: BLEU of an empty corpus is undefined
    ```
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["check_pairs"]


def check_pairs(hypotheses: Sequence[str | None], references: Sequence[str], *, corpus: str | None = None) -> None:
    """Refuse lists of different lengths, and, when ``corpus`` names a corpus-level metric, empty lists.

    Args:
        hypotheses: The generated texts (None for a failed generation).
        references: The reference texts, one per hypothesis.
        corpus: The metric's name when it averages over the corpus (an empty corpus has no mean).

    Raises:
        ValueError: the lengths differ, or ``corpus`` is set and there are no pairs.

    Example:
        ```python
        check_pairs(["a b"], ["a c"], corpus="ROUGE-L")
        ```
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if corpus is not None and not references:
        raise ValueError(f"{corpus} of an empty corpus is undefined")
