"""Distinct-n against hand counts."""

from __future__ import annotations

import pytest

from cscprog.evaluation.metrics.distinct import distinct_n


def test_distinct_counts_over_the_corpus():
    texts = ["thank you", "Thank you so much!"]
    # unigrams: thank you thank you so much -> 6, distinct {thank, you, so, much} = 4 -> 66.67
    assert distinct_n(texts, 1) == pytest.approx(400 / 6)
    # bigrams: (thank you) | (thank you)(you so)(so much) -> 4, distinct 3 -> 75
    assert distinct_n(texts, 2) == pytest.approx(75.0)


def test_distinct_chinese_by_characters_and_failures_add_nothing():
    # 好的好的 -> 好 的 好 的: 2 distinct of 4 unigrams; None adds nothing
    assert distinct_n(["好的好的", None], 1) == pytest.approx(50.0)
    # bigrams 好的 的好 好的: 2 distinct of 3
    assert distinct_n(["好的好的"], 2) == pytest.approx(200 / 3)


def test_no_ngrams_is_undefined():
    assert distinct_n(["one", None, ""], 2) is None
    with pytest.raises(ValueError):
        distinct_n(["a"], 0)
