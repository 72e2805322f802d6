"""Corpus-level BLEU-2 and BLEU-4 with sacrebleu, tokenized per text (Chinese by characters, English 13a).

How the score is computed (sacrebleu 2.x, ``BLEU.corpus_score``):

* Each (hypothesis, reference) pair is tokenized with one tokenizer, chosen from the *reference*'s
  language (:func:`cscprog.data.detect_language`): sacrebleu's ``zh`` tokenizer for Chinese (every CJK
  character a token, the rest 13a-tokenized) and ``13a`` (the WMT standard) for English. Pass
  ``tokenize="zh"``/``"13a"``/``"char"``/... to force one tokenizer for every pair. The pre-tokenized
  texts are then scored with ``tokenize="none"`` (split on spaces), so a mixed corpus gets the right
  tokenizer per pair and still one corpus score.
* n-gram matches and totals are summed over the whole corpus (clipped counts), then
  ``BLEU-N = BP * exp(sum_{n=1..N} (1/N) * log p_n)``: BLEU-2 is sacrebleu with ``max_ngram_order=2``,
  i.e. the geometric mean of the unigram and bigram precisions with uniform weights 1/2 each; BLEU-4 uses
  orders 1..4 with weights 1/4. ``BP = exp(1 - r/c)`` when the total hypothesis length ``c`` is below
  the total reference length ``r``, else 1. Case is kept (sacrebleu's default).
* Smoothing: ``exp`` (Chen & Cherry 2014, method 3, the NIST ``mteval`` smoothing and sacrebleu's
  default). It only acts when an order has zero matches over the *whole corpus*: the k-th such order gets
  precision ``1 / (2**k * total_n)`` instead of 0. On a real evaluation set every order has matches and the
  smoothing changes nothing; on a small ``--limit`` run it keeps BLEU-4 from collapsing to exactly 0 while
  staying comparable with any other sacrebleu default-signature score. When no n-gram of any order
  matches, the score is 0.
* Scores are on sacrebleu's 0-100 scale, like the paper's tables.

Example:
    ```python
    from cscprog.evaluation.metrics.bleu import corpus_bleu

    corpus_bleu(["the card is blocked"], ["your card is blocked"], max_order=2)   # 70.71...
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from sacrebleu.metrics import BLEU

from cscprog.data import detect_language
from cscprog.evaluation.metrics.pairs import check_pairs

__all__ = ["AUTO", "SMOOTH_METHOD", "bleu_tokenize", "corpus_bleu", "tokenizer_for"]

AUTO = "auto"
"""The ``tokenize`` value that picks ``zh`` or ``13a`` per pair from the reference's language."""

SMOOTH_METHOD = "exp"
"""sacrebleu's smoothing method used for every BLEU score (see the module docstring)."""

_LANGUAGE_TOKENIZER = {"zh": "zh", "en": "13a"}


@lru_cache(maxsize=32)
def _scorer(tokenize: str, max_order: int) -> BLEU:
    try:
        return BLEU(tokenize=tokenize, max_ngram_order=max_order, smooth_method=SMOOTH_METHOD)
    except (KeyError, ValueError, RuntimeError) as error:
        raise ValueError(f"unknown sacrebleu tokenizer {tokenize!r}: {error}") from None


def tokenizer_for(reference: str, tokenize: str = AUTO) -> str:
    """The sacrebleu tokenizer name used for a pair whose reference is ``reference``.

    Example:
        ```python
        tokenizer_for("您好")       # 'zh'
        tokenizer_for("Hello")     # '13a'
        tokenizer_for("Hello", "char")   # 'char'
        ```
    """
    if tokenize != AUTO:
        return tokenize
    return _LANGUAGE_TOKENIZER[detect_language(reference)]


def bleu_tokenize(text: str, tokenizer: str) -> str:
    """``text`` tokenized by the sacrebleu tokenizer ``tokenizer`` (tokens joined by single spaces).

    Raises:
        ValueError: ``tokenizer`` is not a sacrebleu tokenizer name.

    Example:
        ```python
        bleu_tokenize("您好，ATM", "zh")   # '您 好 ， ATM'
        ```
    """
    return _scorer(tokenizer, 4).tokenizer(text.strip())


def corpus_bleu(
    hypotheses: Sequence[str | None],
    references: Sequence[str],
    *,
    max_order: int = 4,
    tokenize: str = AUTO,
) -> float:
    """Corpus-level BLEU-``max_order`` on the 0-100 scale.

    Args:
        hypotheses: One generated text per pair; None (a failed generation) counts as an empty text,
            so it adds reference length and no matches (it is never dropped).
        references: One reference text per pair.
        max_order: Highest n-gram order (2 for BLEU-2, 4 for BLEU-4), uniform weights ``1/max_order``.
        tokenize: ``"auto"`` (per pair from the reference's language) or a sacrebleu tokenizer name.

    Returns:
        The score in [0, 100].

    Raises:
        ValueError: the lists differ in length, are empty, or ``max_order`` is below 1.

    Example:
        ```python
        corpus_bleu(["a b c d"], ["a b x d"], max_order=2, tokenize="13a")   # 50.0
        ```
    """
    check_pairs(hypotheses, references, corpus="BLEU")
    if max_order < 1:
        raise ValueError(f"max_order must be >= 1, got {max_order}")
    tokenizers: dict[str, BLEU] = {}
    hyp_tokens, ref_tokens = [], []
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        name = tokenizer_for(reference, tokenize)
        if name not in tokenizers:
            tokenizers[name] = _scorer(name, max_order)
        split = tokenizers[name].tokenizer
        hyp_tokens.append(split((hypothesis or "").strip()))
        ref_tokens.append(split(reference.strip()))
    return float(_scorer("none", max_order).corpus_score(hyp_tokens, [ref_tokens]).score)
