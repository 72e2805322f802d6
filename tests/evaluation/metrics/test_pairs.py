"""The shared pair check of the pairwise metrics."""

from __future__ import annotations

import pytest

from cscprog.evaluation.metrics.bleu import corpus_bleu
from cscprog.evaluation.metrics.pairs import check_pairs
from cscprog.evaluation.metrics.rouge import corpus_rouge_l


def test_pairs_of_equal_length_pass_and_a_failed_generation_counts():
    check_pairs(["a", None], ["a", "b"])
    check_pairs([], [])  # an empty batch is fine for per-pair scorers


def test_different_lengths_are_refused_with_both_counts():
    with pytest.raises(ValueError, match="1 hypotheses but 2 references"):
        check_pairs(["a"], ["a", "b"])


@pytest.mark.parametrize(("metric", "name"), [(corpus_bleu, "BLEU"), (corpus_rouge_l, "ROUGE-L")])
def test_corpus_metrics_refuse_an_empty_corpus_and_uneven_lists(metric, name):
    with pytest.raises(ValueError, match=f"{name} of an empty corpus is undefined"):
        metric([], [])
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        metric(["a", "b"], ["a"])
