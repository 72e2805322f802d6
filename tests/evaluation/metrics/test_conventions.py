"""Metric conventions against independent implementations: nltk, rouge-score, sacrebleu."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cscprog.evaluation.metrics.bleu_stats import corpus_bleu_from_sums, ngram_row, sentence_bleu
from cscprog.evaluation.metrics.columns import Scorers, metric_columns
from cscprog.evaluation.metrics.conventions import PROFILES, get_profile
from cscprog.evaluation.metrics.rouge import lcs_length, rouge_l_tokens
from cscprog.evaluation.metrics.tokens import rouge_score_tokens

nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

PAIRS = [
    ("您好，请问有什么可以帮您？", "您好，有什么能为您效劳的吗？"),
    ("您的银行卡已被冻结，请到网点办理解冻。", "您的卡现在处于冻结状态，需要去营业网点解冻。"),
    ("请提供一下您的身份证号码 ID 1234。", "麻烦告诉我您的身份证号，ID 1234 对吗？"),
    ("Hello, how can I help you today?", "Hi, what can I do for you?"),
    ("Your card has been blocked for security reasons.", "For your safety we have frozen your card."),
    ("", "Thank you for calling, have a nice day!"),
    ("OK", "Okay, I will transfer 500 dollars now."),
]


def _random_tokens(rng: random.Random, low: int, high: int) -> list[str]:
    return [rng.choice("abcde您好卡") for _ in range(rng.randint(low, high))]


@pytest.mark.parametrize("order", [2, 4])
def test_sentence_bleu_equals_nltk_method3(order):
    rng = random.Random(order)
    smoothing = nltk_bleu.SmoothingFunction().method3
    weights = (1 / order,) * order
    for _ in range(500):
        hyp, ref = _random_tokens(rng, 0, 12), _random_tokens(rng, 1, 12)
        ours = sentence_bleu(ngram_row(hyp, ref, order), order)
        theirs = nltk_bleu.sentence_bleu([ref], hyp, weights=weights, smoothing_function=smoothing)
        assert ours == pytest.approx(theirs, abs=1e-12), (hyp, ref)


def test_paper_profile_bleu_is_the_mean_of_nltk_character_bleu():
    columns = metric_columns([h for h, _ in PAIRS], [r for _, r in PAIRS], ["Greeting"] * len(PAIRS),
                             ["Greeting"] * len(PAIRS), ["Greeting"], get_profile("paper"), Scorers())
    smoothing = nltk_bleu.SmoothingFunction().method3
    for order in (2, 4):
        expected = np.mean([nltk_bleu.sentence_bleu([list(r)], list(h), weights=(1 / order,) * order,
                                                    smoothing_function=smoothing) for h, r in PAIRS])
        assert columns[f"bleu{order}"].statistic.point() == pytest.approx(100 * expected, abs=1e-9)


def test_corpus_bleu_sums_equal_sacrebleu():
    from sacrebleu.metrics import BLEU

    rng = random.Random(0)
    for _ in range(100):
        pairs = [(_random_tokens(rng, 0, 9), _random_tokens(rng, 1, 9)) for _ in range(rng.randint(1, 6))]
        for order in (2, 4):
            rows = np.array([ngram_row(h, r, order) for h, r in pairs], dtype=float)
            ours = corpus_bleu_from_sums(rows.sum(axis=0, keepdims=True), order)[0]
            theirs = BLEU(tokenize="none", max_ngram_order=order, smooth_method="exp").corpus_score(
                [" ".join(h) for h, _ in pairs], [[" ".join(r) for _, r in pairs]]).score
            assert ours == pytest.approx(theirs, abs=1e-9)


def test_standard_profile_bleu_equals_sacrebleu_per_language_tokenizers():
    from cscprog.evaluation.metrics.bleu import corpus_bleu

    hyps, refs = [h for h, _ in PAIRS], [r for _, r in PAIRS]
    columns = metric_columns(hyps, refs, ["Greeting"] * len(PAIRS), ["Greeting"] * len(PAIRS), ["Greeting"],
                             get_profile("standard"), Scorers())
    for order in (2, 4):
        assert columns[f"bleu{order}"].statistic.point() == pytest.approx(corpus_bleu(hyps, refs, max_order=order))


def test_rouge_score_profile_equals_the_rouge_score_package():
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    columns = metric_columns([h for h, _ in PAIRS], [r for _, r in PAIRS], ["Greeting"] * len(PAIRS),
                             ["Greeting"] * len(PAIRS), ["Greeting"], get_profile("paper"), Scorers())
    expected = np.mean([scorer.score(r, h)["rougeL"].fmeasure for h, r in PAIRS])
    assert columns["rouge_l"].statistic.point() == pytest.approx(100 * expected, abs=1e-9)
    assert scorer.score("您好，请问", "您好，请问")["rougeL"].fmeasure == 0.0  # why the paper's R-L sits so low
    assert rouge_score_tokens("Hello, 您好 ATM-2 it's") == ["hello", "atm", "2", "it", "s"]


def test_bit_parallel_lcs_equals_dynamic_programming():
    def slow(a, b):
        previous = [0] * (len(b) + 1)
        for x in a:
            current = [0]
            for j, y in enumerate(b, start=1):
                current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
            previous = current
        return previous[-1]

    rng = random.Random(5)
    for _ in range(2000):
        a, b = _random_tokens(rng, 0, 15), _random_tokens(rng, 0, 15)
        assert lcs_length(a, b) == slow(a, b)
    assert rouge_l_tokens(["a", "b", "c"], ["a", "c"]) == pytest.approx(0.8)


def test_signatures_name_the_conventions():
    assert PROFILES["paper"].bleu.signature(2).startswith("BLEU-2|sentence-mean|tok:char|smooth:method3")
    assert "sacrebleu:" in PROFILES["standard"].bleu.signature(4)
    assert "rouge-score-default" in PROFILES["paper"].rouge.signature()
    with pytest.raises(ValueError, match="known: standard, paper"):
        get_profile("papers")


def test_macro_f1_and_accuracy_columns_match_the_strategy_module():
    from cscprog.evaluation.metrics.strategy import accuracy, macro_f1

    gold = ["A", "A", "B", "C", "B", "A"]
    pred = ["A", "B", "B", None, "C", "A"]
    columns = metric_columns(["x"] * 6, ["x"] * 6, gold, pred, ["A", "B", "C", "D"], get_profile("standard"),
                             Scorers())
    assert columns["accuracy"].statistic.point() == pytest.approx(accuracy(gold, pred))
    assert columns["macro_f1"].statistic.point() == pytest.approx(macro_f1(gold, pred, ["A", "B", "C", "D"]))
    assert columns["bertscore"].statistic is None and columns["bertscore"].unavailable
