"""BLEU-2/4 against values computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from cscprog.evaluation.metrics.bleu import bleu_tokenize, corpus_bleu, tokenizer_for


def test_bleu2_english_single_pair():
    # hyp "the card is blocked" / ref "your card is blocked" (13a, 4 tokens each, BP = 1)
    # p1 = 3/4 (card, is, blocked); p2 = 2/3 ("card is", "is blocked" of 3 bigrams)
    # BLEU-2 = sqrt(3/4 * 2/3) = sqrt(1/2) = 0.70711
    assert corpus_bleu(["the card is blocked"], ["your card is blocked"], max_order=2) == pytest.approx(
        100 * math.sqrt(0.5))


def test_bleu4_uses_exp_smoothing_for_an_order_without_matches():
    # same pair: p3 = 1/2 ("card is blocked" of 2 trigrams); p4 = 0/1 -> exp smoothing: 1 / (2**1 * 1) = 1/2
    # BLEU-4 = (3/4 * 2/3 * 1/2 * 1/2) ** (1/4) = 0.125 ** 0.25 = 0.59460
    assert corpus_bleu(["the card is blocked"], ["your card is blocked"], max_order=4) == pytest.approx(
        100 * 0.125 ** 0.25)


def test_chinese_is_scored_by_characters_with_brevity_penalty():
    # hyp 您的卡已冻结 (6 chars) / ref 您的银行卡已冻结 (8 chars), zh tokenizer = one token per character
    # p1 = 6/6; bigrams of hyp: 您的 的卡 卡已 已冻 冻结 -> 4 of 5 in ref (的卡 is not): p2 = 4/5
    # BP = exp(1 - 8/6) = exp(-1/3); BLEU-2 = exp(-1/3) * sqrt(4/5) = 0.64089
    expected = math.exp(-1 / 3) * math.sqrt(0.8)
    assert corpus_bleu(["您的卡已冻结"], ["您的银行卡已冻结"], max_order=2) == pytest.approx(100 * expected)


def test_corpus_level_sums_counts_over_pairs():
    # pair 1: "a b c d" / "a b x d": p1 3/4, p2 1/3 ("a b"); pair 2: "e f" / "e f": p1 2/2, p2 1/1
    # corpus: p1 = 5/6, p2 = 2/4, BP 1 -> sqrt(5/6 * 1/2) = 0.64550 (not the mean of the two sentence scores)
    score = corpus_bleu(["a b c d", "e f"], ["a b x d", "e f"], max_order=2)
    assert score == pytest.approx(100 * math.sqrt(5 / 12))


def test_failed_hypothesis_counts_as_empty_and_stays_in_the_corpus():
    # pair 2 failed (None): corpus hyp length 2, ref length 4; p1 = 2/2, p2 = 1/1, BP = exp(1 - 4/2) = exp(-1)
    score = corpus_bleu(["e f", None], ["e f", "g h"], max_order=2)
    assert score == pytest.approx(100 * math.exp(-1))
    assert corpus_bleu([None], ["x y"], max_order=2) == 0.0


def test_tokenizer_is_chosen_per_pair_and_overridable():
    assert tokenizer_for("您好，请问有什么可以帮您？") == "zh"
    assert tokenizer_for("Hello, how can I help?") == "13a"
    assert tokenizer_for("您好", "13a") == "13a"
    assert bleu_tokenize("您好，ATM", "zh") == "您 好 ， ATM"
    # forcing 13a on Chinese keeps 您好 as one token: the unigram "您好" does not match "您的"
    assert corpus_bleu(["您好"], ["您的"], max_order=1, tokenize="13a") == 0.0
    # BLEU-1 by characters: 您 matches -> p1 1/2
    assert corpus_bleu(["您好"], ["您的"], max_order=1) == pytest.approx(50.0)


def test_mixed_corpus_uses_each_pairs_tokenizer():
    # pair 1 (zh): 你好 / 你好 -> 2 unigrams, 1 bigram, all matching; pair 2 (en): "hi there" / "hi there" same
    assert corpus_bleu(["你好", "hi there"], ["你好", "hi there"], max_order=2) == pytest.approx(100.0)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty corpus"):
        corpus_bleu([], [])
    with pytest.raises(ValueError, match="unknown sacrebleu tokenizer"):
        corpus_bleu(["a"], ["a"], tokenize="no-such-tokenizer")
