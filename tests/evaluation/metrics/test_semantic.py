"""Semantic similarity: the greedy-matching arithmetic on a hand-made table, and the packaged model offline."""

from __future__ import annotations

import importlib.util
import logging
import sys

import numpy as np
import pytest

from cscprog.evaluation.metrics.semantic import SemanticScorer, load_semantic_scorer

# A 3-word vocabulary: "yes" and "ok" are 60 degrees apart (cos 0.5), "no" is orthogonal to both... almost:
# yes = (1, 0), ok = (0.5, sqrt(3)/2), no = (0, 1) -> cos(yes, ok) = 0.5, cos(ok, no) = sqrt(3)/2, cos(yes, no) = 0
TABLE = np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2], [0.0, 2.0]])  # "no" unnormalized on purpose
WORDS = {"yes": 0, "ok": 1, "no": 2}


def scorer() -> SemanticScorer:
    return SemanticScorer(TABLE, lambda text: [WORDS[w] for w in text.split()], model="toy")


def test_greedy_matching_f1_by_hand():
    s = scorer()
    assert s.similarity("yes no", "yes no") == pytest.approx(1.0)
    # hyp "yes", ref "yes no": P = max(1, 0) = 1; R = mean(1, 0) = 0.5 -> F = 2*0.5/1.5 = 2/3
    assert s.similarity("yes", "yes no") == pytest.approx(2 / 3)
    # hyp "ok", ref "yes": P = R = 0.5 -> F = 0.5
    assert s.similarity("ok", "yes") == pytest.approx(0.5)
    # hyp "ok", ref "no": cos = sqrt(3)/2 (the table row of "no" is normalized first)
    assert s.similarity("ok", "no") == pytest.approx(np.sqrt(3) / 2, rel=1e-6)
    # failed / empty
    assert s.similarity(None, "yes") == 0.0
    assert s.similarity("", "") == 1.0


def test_corpus_mean_keeps_failures():
    # (1 + 0.5 + 0) / 3 * 100
    assert scorer().corpus(["yes", "ok", None], ["yes", "yes", "no"]) == pytest.approx(50.0)
    with pytest.raises(ValueError):
        scorer().corpus([], [])


@pytest.mark.skipif(importlib.util.find_spec("wordllama") is None, reason="wordllama (cscprog[embed]) not installed")
def test_packaged_model_loads_offline_and_ranks_paraphrases_higher():
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    loaded, reason = load_semantic_scorer()
    assert reason is None and loaded is not None
    assert (list(root.handlers), root.level) == before  # the package's basicConfig side effect is undone
    assert loaded.similarity("Your card is blocked.", "Your card is blocked.") == pytest.approx(1.0, abs=1e-5)
    close = loaded.similarity("Hello, how can I help you?", "Hi, what can I do for you today?")
    far = loaded.similarity("Hello, how can I help you?", "Your account has been frozen.")
    assert close > far + 0.2
    zh_close = loaded.similarity("请提供您的身份证号码以便核实身份。", "为了安全，请告诉我您的证件号。")
    zh_far = loaded.similarity("请提供您的身份证号码以便核实身份。", "感谢您的来电，祝您生活愉快！")
    assert zh_close > zh_far


def test_missing_package_gives_a_reason_not_a_number(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "wordllama", None)  # what Python does for a package that is not installed
    loaded, reason = load_semantic_scorer()
    assert loaded is None and "wordllama is not installed" in reason and "cscprog[embed]" in reason
