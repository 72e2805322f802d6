"""BLEU from per-pair n-gram statistics: corpus BLEU (sacrebleu's formula) and sentence BLEU (nltk's method3).

Both conventions of the profiles (:mod:`cscprog.evaluation.metrics.conventions`) start from the same per-pair
row ``[hyp_len, ref_len, correct_1..N, total_1..N]`` (clipped n-gram matches and hypothesis n-gram counts):

* **corpus** BLEU sums the rows over the corpus and scores the sums as sacrebleu 2.x does (geometric mean of
  the N precisions with uniform weights, brevity penalty ``exp(1 - r/c)`` when ``c < r``, ``exp`` smoothing: the
  k-th order with no match gets precision ``1 / (2**k * total)``; no match at all scores 0);
* **sentence** BLEU scores every row on its own, as nltk's ``sentence_bleu`` with ``SmoothingFunction().method3``
  does, and the corpus score is the mean over pairs. nltk's rules, reproduced: precision denominators are at
  least 1; an order with no match gets ``1 / (2**k * denominator)`` (k counting the unmatched orders from 1); a
  pair with no unigram match scores 0; the brevity penalty is 1 when the hypothesis is longer than the reference,
  0 when it is empty, else ``exp(1 - r/c)``.

Rows make the scores resamplable: :func:`corpus_bleu_from_sums` scores many summed rows at once (one per
bootstrap resample, see :mod:`cscprog.evaluation.intervals`).

Example:
    ```python
    from cscprog.evaluation.metrics.bleu_stats import ngram_row, sentence_bleu

    row = ngram_row(list("您的卡已冻结"), list("您的银行卡已冻结"), 2)
    sentence_bleu(row, 2)     # nltk sentence_bleu(..., weights=(0.5, 0.5), smoothing method3)
    ```
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

__all__ = ["corpus_bleu_from_sums", "ngram_row", "sentence_bleu"]


def _grams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(zip(*(tokens[i:] for i in range(n)), strict=False))


def ngram_row(hypothesis: Sequence[str], reference: Sequence[str], max_order: int) -> list[int]:
    """``[hyp_len, ref_len, correct_1..N, total_1..N]`` for one tokenized pair (clipped matches).

    Raises:
        ValueError: ``max_order`` below 1.

    Example:
        ```python
        ngram_row(["a", "b"], ["a", "c"], 2)   # [2, 2, 1, 0, 2, 1]
        ```
    """
    if max_order < 1:
        raise ValueError(f"max_order must be >= 1, got {max_order}")
    hypothesis, reference = list(hypothesis), list(reference)
    correct = [0] * max_order
    total = [0] * max_order
    for n in range(1, min(max_order, len(hypothesis)) + 1):
        total[n - 1] = len(hypothesis) - n + 1
        correct[n - 1] = (_grams(hypothesis, n) & _grams(reference, n)).total()
    return [len(hypothesis), len(reference), *correct, *total]


def sentence_bleu(row: Sequence[float], max_order: int) -> float:
    """nltk-style sentence BLEU-``max_order`` with smoothing method3 from one row, in [0, 1].

    Example:
        ```python
        sentence_bleu([2, 2, 1, 0, 2, 1], 2)   # sqrt(1/2 * 1/(2*1)) = 0.5
        ```
    """
    hyp_len, ref_len = row[0], row[1]
    correct, total = row[2 : 2 + max_order], row[2 + max_order : 2 + 2 * max_order]
    if correct[0] == 0:
        return 0.0
    log_sum, unmatched = 0.0, 0
    for matched, count in zip(correct, total, strict=True):
        denominator = max(1, count)
        if matched == 0:
            unmatched += 1
            precision = 1.0 / (2**unmatched * denominator)
        else:
            precision = matched / denominator
        log_sum += math.log(precision) / max_order
    if hyp_len > ref_len:
        penalty = 1.0
    elif hyp_len == 0:
        penalty = 0.0
    else:
        penalty = math.exp(1 - ref_len / hyp_len)
    return penalty * math.exp(log_sum)


def corpus_bleu_from_sums(sums: np.ndarray, max_order: int) -> np.ndarray:
    """sacrebleu corpus BLEU (``exp`` smoothing) of each summed row of ``sums`` ``(m, 2 + 2N)``, on 0-100.

    Example:
        ```python
        corpus_bleu_from_sums(np.array([[4, 4, 3, 1, 4, 3]]), 2)   # [sqrt(3/4 * 1/3) * 100] = [50.0]
        ```
    """
    sums = np.asarray(sums, dtype=np.float64)
    hyp_len, ref_len = sums[:, 0], sums[:, 1]
    correct = sums[:, 2 : 2 + max_order]
    total = sums[:, 2 + max_order : 2 + 2 * max_order]
    unmatched = np.cumsum(correct == 0, axis=1)
    safe_total = np.where(total > 0, total, 1.0)
    precision = np.where(correct > 0, correct / safe_total, 1.0 / (2.0**unmatched * safe_total))
    # sacrebleu stops at the first order with no hypothesis n-gram: that order and the later ones count as 0.
    reached = np.cumprod(total > 0, axis=1).astype(bool)
    log_mean = np.where(reached, np.log(np.where(reached, precision, 1.0)), -np.inf).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        penalty = np.where(hyp_len < ref_len, np.where(hyp_len > 0, np.exp(1 - ref_len / np.maximum(hyp_len, 1)), 0.0),
                           1.0)
    score = 100.0 * penalty * np.exp(log_mean)
    return np.where(correct.sum(axis=1) > 0, score, 0.0)
