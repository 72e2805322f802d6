"""Distinct-n (Li et al., 2016): the share of distinct n-grams among all n-grams of the generated replies.

Corpus-level: ``Distinct-n = |set of n-grams over all replies| / (number of n-grams over all replies)``,
x100. n-grams never cross reply boundaries. Tokens come from :func:`cscprog.evaluation.metrics.tokens.word_tokens`
(CJK characters and lowercased words). Failed generations (None) and replies too short for an n-gram
contribute no n-grams. A corpus with no n-gram at all has no defined diversity: the result is None.

Example:
    ```python
    from cscprog.evaluation.metrics.distinct import distinct_n

    distinct_n(["thank you", "thank you so much"], 1)   # 4 distinct / 6 unigrams -> 66.67
    distinct_n(["thank you", "thank you so much"], 2)   # 3 distinct / 4 bigrams  -> 75.0
    ```
"""

from __future__ import annotations

from collections.abc import Iterable

from cscprog.evaluation.metrics.tokens import ngrams, word_tokens

__all__ = ["distinct_n"]


def distinct_n(texts: Iterable[str | None], n: int) -> float | None:
    """Distinct-``n`` of ``texts`` x100, or None when they hold no ``n``-gram.

    Raises:
        ValueError: ``n`` is below 1.

    Example:
        ```python
        distinct_n(["a a a"], 1)   # 1 distinct / 3 -> 33.33
        ```
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text in texts:
        grams = ngrams(word_tokens(text or ""), n)
        total += len(grams)
        seen.update(grams)
    return 100.0 * len(seen) / total if total else None
