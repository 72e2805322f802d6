"""DSPy optimizer metrics: 3-argument scores and GEPA 5-argument feedback."""

from __future__ import annotations

import inspect
import math

import dspy
import pytest

from cscprog.evaluation.metrics.dspy_metrics import (
    combined_feedback,
    combined_metric,
    reply_bleu2,
    reply_feedback,
    reply_similarity,
    strategy_accuracy,
    strategy_feedback,
)

GOLD = dspy.Example(strategy="Problem Refinement", reply="could you tell me the last four digits of the card")


def test_three_argument_metrics():
    right = dspy.Prediction(strategy="Problem Refinement", reply="tell me the card digits")
    assert strategy_accuracy(GOLD, right) == 1.0
    assert strategy_accuracy(GOLD, dspy.Prediction(strategy="Greeting")) == 0.0
    assert strategy_accuracy(GOLD, dspy.Prediction(strategy=None)) == 0.0
    # hyp 5 tokens, ref 11 tokens, LCS "tell me the card" = 4 -> P 4/5, R 4/11, F = 2*(4/5)(4/11)/(4/5+4/11) = 0.5
    assert reply_similarity(GOLD, right) == pytest.approx(0.5)
    assert reply_similarity(GOLD, dspy.Prediction(reply="")) == 0.0
    # BLEU-2 of "the card is blocked" vs "your card is blocked" = sqrt(1/2)
    assert reply_bleu2(dspy.Example(reply="your card is blocked"),
                       dspy.Prediction(reply="the card is blocked")) == pytest.approx(math.sqrt(0.5))


def test_combined_metric_normalizes_weights():
    metric = combined_metric({"strategy": 3, "reply": 1})
    pred = dspy.Prediction(strategy="Problem Refinement", reply="tell me the card digits")
    assert metric(GOLD, pred) == pytest.approx(0.75 * 1.0 + 0.25 * 0.5)
    assert combined_metric({"strategy": 1, "reply": 0})(GOLD, pred, None) == 1.0
    with pytest.raises(ValueError, match="unknown metric weight"):
        combined_metric({"style": 1})
    with pytest.raises(ValueError, match="non-negative"):
        combined_metric({"strategy": -1, "reply": 2})
    with pytest.raises(ValueError, match="unknown reply metric"):
        combined_metric(reply="bleurt")


def test_feedback_metrics_bind_five_arguments_like_gepa_checks():
    for metric in (strategy_feedback, reply_feedback, combined_feedback()):
        inspect.signature(metric).bind(None, None, None, None, None)


def test_feedback_names_the_expected_strategy_and_what_the_reply_missed():
    wrong = dspy.Prediction(strategy="Providing Suggestions", reply="please visit a branch with the card")
    result = combined_feedback()(GOLD, wrong, None, "predict_strategy", None)
    assert result.score == pytest.approx(0.5 * 0 + 0.5 * reply_similarity(GOLD, wrong))
    assert "chose Providing Suggestions" in result.feedback
    assert "expected strategy was Problem Refinement (PR, stage" in result.feedback
    assert "could you tell me the last four digits" in result.feedback  # the reference reply
    assert "missed" in result.feedback and "digits" in result.feedback and "four" in result.feedback
    # asked about the reply predictor, the reply part comes first
    about_reply = combined_feedback()(GOLD, wrong, None, "write_reply", None)
    assert about_reply.feedback.startswith("The reply scored")
    assert result.feedback.startswith("The strategy was wrong")


def test_feedback_on_chinese_lists_missed_character_pairs_and_failures():
    gold = dspy.Example(strategy="Greeting", reply="您好，请问有什么可以帮您？")
    result = reply_feedback(gold, dspy.Prediction(reply="您好，有什么事？"))
    assert "可以" in result.feedback and "请问" in result.feedback
    none = strategy_feedback(gold, dspy.Prediction(strategy=None))
    assert none.score == 0.0 and "No strategy was produced" in none.feedback
    correct = strategy_feedback(gold, dspy.Prediction(strategy="Greeting"))
    assert correct.score == 1.0 and correct.feedback == "The strategy Greeting was correct."
