"""ROUGE-L against hand-computed LCS values."""

from __future__ import annotations

import pytest

from cscprog.evaluation.metrics.rouge import corpus_rouge_l, lcs_length, rouge_l, rouge_l_tokens
from cscprog.evaluation.metrics.tokens import ngrams, word_tokens


def test_lcs_length_textbook_case():
    # CLRS example: LCS("ABCBDAB", "BDCABA") = 4 (e.g. BCBA)
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
    assert lcs_length([], ["a"]) == 0


def test_english_is_lowercased_words_without_punctuation():
    assert word_tokens("Hello, I can't log in!") == ["hello", "i", "can't", "log", "in"]
    # same words, different case and punctuation -> identical
    assert rouge_l("Your card is BLOCKED.", "your card is blocked") == 1.0
    # hyp 4 tokens, ref 5 tokens, LCS "card is blocked" = 3: P 3/4, R 3/5, F = 2*0.75*0.6/1.35 = 0.66667
    assert rouge_l("the card is blocked", "your card is now blocked") == pytest.approx(2 / 3)


def test_chinese_is_scored_by_characters():
    assert word_tokens("您好，ATM机") == ["您", "好", "atm", "机"]
    # 您的卡已冻结 (6) vs 您的银行卡已冻结 (8): LCS 6 -> P 1, R 3/4, F = 1.5/1.75 = 6/7
    assert rouge_l("您的卡已冻结", "您的银行卡已冻结") == pytest.approx(6 / 7)


def test_empty_sides():
    assert rouge_l_tokens([], ["a"]) == 0.0
    assert rouge_l_tokens(["a"], []) == 0.0
    assert rouge_l_tokens([], []) == 1.0
    assert rouge_l(None, "a b") == 0.0


def test_corpus_mean_keeps_failures():
    # pair 1: 1.0; pair 2: failed -> 0; pair 3: a b c vs a c: LCS 2, P 2/3, R 1, F 0.8 -> mean 1.8/3 = 60
    assert corpus_rouge_l(["a b", None, "a b c"], ["a b", "c", "a c"]) == pytest.approx(60.0)
    with pytest.raises(ValueError):
        corpus_rouge_l(["a"], [])


def test_ngrams():
    assert ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")]
    assert ngrams(["a"], 2) == []
    with pytest.raises(ValueError):
        ngrams(["a"], 0)
