"""Word tokens for the overlap metrics (ROUGE-L, Distinct-n): Chinese by characters, other text by words.

One tokenizer serves both languages, so a corpus that mixes Chinese and English (or a Chinese reply holding
``ATM`` or ``[手机号码]``) needs no per-text switch:

* every CJK ideograph is a token of its own (Chinese is scored by characters);
* every other run of letters, digits and apostrophes is one token, lowercased (English by lowercased words);
* whitespace and punctuation are dropped.

BLEU does not use this module: it uses sacrebleu's own ``zh`` and ``13a`` tokenizers (see
:mod:`cscprog.evaluation.metrics.bleu`).

Example:
    ```python
    from cscprog.evaluation.metrics.tokens import word_tokens

    word_tokens("Hello, I can't log in!")   # ['hello', 'i', "can't", 'log', 'in']
    word_tokens("您好，ATM机在哪？")          # ['您', '好', 'atm', '机', '在', '哪']
    ```
"""

from __future__ import annotations

import re

__all__ = ["ngrams", "rouge_score_tokens", "word_tokens"]

_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK_RANGES}]|[^\W{_CJK_RANGES}](?:[^\W{_CJK_RANGES}]|['’](?=[^\W{_CJK_RANGES}]))*")


def word_tokens(text: str) -> list[str]:
    """Split ``text`` into CJK characters and lowercased words (punctuation and spaces dropped).

    Example:
        ```python
        word_tokens("It's 5 PM.")   # ["it's", '5', 'pm']
        ```
    """
    return [token.lower() for token in _TOKEN.findall(text or "")]


_ROUGE_SCORE_TOKEN = re.compile(r"[a-z0-9]+")


def rouge_score_tokens(text: str) -> list[str]:
    """Tokens as the rouge-score package's default tokenizer makes them: lowercased runs of ``a-z`` and ``0-9``.

    Every other character, Chinese included, is a separator, so a pure-Chinese text has no tokens (the ``paper``
    profile's ROUGE-L, :mod:`cscprog.evaluation.metrics.conventions`).

    Example:
        ```python
        rouge_score_tokens("Hi, 您好 ATM-2")   # ['hi', 'atm', '2']
        ```
    """
    return _ROUGE_SCORE_TOKEN.findall((text or "").lower())


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    """The contiguous ``n``-grams of ``tokens`` in order (empty when there are fewer than ``n`` tokens).

    Example:
        ```python
        ngrams(["a", "b", "c"], 2)   # [('a', 'b'), ('b', 'c')]
        ```
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
