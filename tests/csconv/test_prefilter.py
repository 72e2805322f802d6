"""The rule pre-filter: each threshold at its boundary, counted as the method's authors count (raw lines for the
customer-share and substantive rules, floor(merged utterances / 2) for pairs), the packaged raw samples, real data."""

from __future__ import annotations

import pytest

from cscprog.csconv.prefilter import (
    FilterDecision,
    PrefilterRules,
    check_customer_share,
    count_chars,
    count_pairs,
    prefilter,
)
from cscprog.data import Dialogue, Turn, read_dialogues
from cscprog.samples import load_sample

SPEAKERS = {"s": "supporter", "c": "customer"}
OK_C = "I have a question about my card."  # a substantive customer line
OK_S = "Sure, let me check that for you."


def make(*lines: tuple[str, str], language: str = "en") -> Dialogue:
    """A dialogue from ``("s"|"c", text)`` lines."""
    turns = [Turn(speaker=SPEAKERS[who], text=text) for who, text in lines]
    return Dialogue(id="t", turns=turns, language=language)


def alternating(utterances: int, first: str = "s") -> Dialogue:
    order = ["s", "c"] if first == "s" else ["c", "s"]
    return make(*[(order[i % 2], OK_S if order[i % 2] == "s" else OK_C) for i in range(utterances)])


# -- pairs --------------------------------------------------------------------------------------------------------


def test_pairs_are_the_floor_of_half_the_utterances():
    assert count_pairs(alternating(5)) == 2 and count_pairs(alternating(6)) == 3 and count_pairs(alternating(0)) == 0
    assert count_pairs(alternating(61)) == 30 and count_pairs(alternating(62)) == 31


@pytest.mark.parametrize(("utterances", "kept", "rule"), [(4, False, "min_pairs"), (5, False, "min_pairs"),
                                                          (6, True, None)])
def test_min_pairs_boundary(utterances, kept, rule):
    decision = prefilter(alternating(utterances))
    assert (decision.kept, decision.rule) == (kept, rule)
    assert decision.details["pairs"] == count_pairs(alternating(utterances))


@pytest.mark.parametrize(("utterances", "kept"), [(60, True), (61, True), (62, False)])
def test_max_pairs_boundary(utterances, kept):
    decision = prefilter(alternating(utterances, first="c"))
    assert decision.kept is kept
    if not kept:
        assert decision.rule == "max_pairs" and "31 exchanges" in decision.reason


def test_pair_thresholds_are_configurable():
    rules = PrefilterRules(min_pairs=2, max_pairs=4)
    assert prefilter(alternating(4, first="c"), rules).kept  # 2 pairs
    assert prefilter(alternating(9), rules).kept  # 4 pairs
    assert prefilter(alternating(10, first="c"), rules).rule == "max_pairs"
    assert prefilter(alternating(3), rules).rule == "min_pairs"


def test_lines_are_merged_before_the_rules():
    # six raw lines but only four utterances once the customer's three lines are merged: two pairs
    raw = make(("s", OK_S), ("c", OK_C), ("s", OK_S), ("c", "ok"), ("c", "hmm"), ("c", "so what now?"))
    decision = prefilter(raw)
    assert decision.rule == "min_pairs"
    assert decision.details["utterances"] == 6 and decision.details["merged_utterances"] == 4
    # short raw lines stay short even when merging would join them into one substantive utterance
    chatty = make(("s", OK_S), ("c", "ok"), ("c", "yes"), ("s", OK_S), ("c", OK_C), ("s", OK_S), ("c", OK_C))
    decision = prefilter(chatty)
    assert decision.rule == "substantive" and decision.details["substantive_share"] == 0.5
    assert "2 of 4 raw customer line(s)" in decision.reason


# -- customer share -------------------------------------------------------------------------------------------------


def _supporter_heavy(customer: int, supporter: int) -> Dialogue:
    """``customer`` customer lines, each answered by a run of supporter lines (``supporter`` in all)."""
    runs = [supporter // customer + (1 if i < supporter % customer else 0) for i in range(customer)]
    lines: list[tuple[str, str]] = []
    for run in runs:
        lines += [("c", OK_C)] + [("s", OK_S)] * run
    return make(*lines)


@pytest.mark.parametrize(("customer", "supporter", "kept"), [(5, 15, False), (7, 14, False), (8, 15, True)])
def test_customer_share_counts_raw_lines(customer, supporter, kept):
    dialogue = _supporter_heavy(customer, supporter)
    merged = dialogue.merged()
    assert len(merged.turns) == 2 * customer  # merged, both sides speak equally often
    decision = prefilter(dialogue)
    assert decision.kept is kept
    assert (decision.details["customer_lines"], decision.details["supporter_lines"]) == (customer, supporter)
    if not kept:
        assert decision.rule == "customer_share"
        assert f"{customer} line(s) against the supporter's {supporter}" in decision.reason


def test_customer_share_boundary_with_the_default_ratio():
    rules = PrefilterRules(min_pairs=1)
    # 2 x 1 customer line <= 2 supporter lines: dropped; 2 x 2 > 2: kept
    scs = make(("s", OK_S), ("c", OK_C), ("s", OK_S))
    assert prefilter(scs, rules).rule == "customer_share"
    assert prefilter(make(("s", OK_S), ("c", OK_C), ("s", OK_S), ("c", OK_C)), rules).kept
    # with the default min_pairs the rule is shadowed: the same dialogue is too short first
    assert prefilter(scs).rule == "min_pairs"


def test_customer_share_boundary_with_a_stricter_ratio():
    rules = PrefilterRules(min_customer_ratio=1.0)  # the customer must speak more lines than the supporter
    equal = alternating(6)  # 3 and 3
    assert check_customer_share(equal.merged(), rules).rule == "customer_share"
    more = alternating(7, first="c")  # 4 customer, 3 supporter
    assert prefilter(more, rules).kept
    assert prefilter(equal, rules).details == {
        "utterances": 6, "merged_utterances": 6, "pairs": 3, "supporter_lines": 3, "customer_lines": 3
    }


# -- substantive customer lines -------------------------------------------------------------------------------------


def test_characters_are_code_points_of_the_stripped_text():
    assert count_chars("  好的谢谢 ") == 4 and count_chars("okay") == 4 and count_chars("Ok.") == 3


def _with_customer_lines(texts: list[str], language: str = "en") -> Dialogue:
    lines: list[tuple[str, str]] = []
    for text in texts:
        lines += [("s", OK_S if language == "en" else "好的，我帮您查一下。"), ("c", text)]
    return make(*lines, language=language)


@pytest.mark.parametrize(("substantive", "kept"), [(7, True), (6, False)])
def test_substantive_share_boundary(substantive, kept):
    texts = [OK_C] * substantive + ["ok"] * (10 - substantive)
    decision = prefilter(_with_customer_lines(texts))
    assert decision.kept is kept
    assert decision.details["substantive_share"] == substantive / 10
    if not kept:
        assert decision.rule == "substantive" and "6 of 10" in decision.reason


@pytest.mark.parametrize(
    ("text", "substantive"), [("abc", False), ("abcd", True), ("好的好", False), ("好的谢谢", True)]
)
def test_substantive_boundary_on_raw_lines_that_merging_would_hide(text, substantive):
    # each short line is followed by another customer line: merged, every customer utterance would be long
    lines: list[tuple[str, str]] = []
    for _ in range(3):
        lines += [("s", OK_S), ("c", text), ("c", OK_C)]
    decision = prefilter(make(*lines))
    assert decision.details["customer_lines"] == 6
    assert decision.details["substantive_lines"] == (6 if substantive else 3)
    assert decision.kept is substantive
    assert decision.rule == (None if substantive else "substantive")


@pytest.mark.parametrize(
    ("text", "substantive"),
    [("abc", False), ("abcd", True), ("好的好", False), ("好的谢谢", True), ("  yes  ", False), ("[Name]", True)],
)
def test_substantive_means_more_than_three_characters(text, substantive):
    decision = prefilter(_with_customer_lines([text] * 3, language="zh" if "好" in text else "en"))
    assert decision.kept is substantive
    assert decision.details["substantive_lines"] == (3 if substantive else 0)


def test_substantive_thresholds_are_configurable():
    texts = ["ok", "no", "yes", "fine!"]
    assert prefilter(_with_customer_lines(texts), PrefilterRules(substantive_chars=1)).kept
    assert prefilter(_with_customer_lines(texts), PrefilterRules(min_substantive_share=0.25)).kept
    assert prefilter(_with_customer_lines(texts), PrefilterRules(min_substantive_share=0.26)).rule == "substantive"


# -- utterance length -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "kept"), [(500, True), (501, False)])
@pytest.mark.parametrize("char", ["a", "账"])
def test_utterance_length_boundary_in_both_languages(length, kept, char):
    long = char * length
    language = "zh" if char == "账" else "en"
    dialogue = make(("s", OK_S), ("c", OK_C), ("s", long), ("c", OK_C), ("s", OK_S), ("c", OK_C), language=language)
    decision = prefilter(dialogue)
    assert decision.kept is kept
    if not kept:
        assert decision.rule == "utterance_length"
        assert (decision.details["turn"], decision.details["longest"]) == (2, 501)


def test_merged_lines_count_together_for_the_length_rule():
    part = "x" * 300
    dialogue = make(("s", OK_S), ("c", OK_C), ("s", part), ("s", part), ("c", OK_C), ("s", OK_S), ("c", OK_C))
    decision = prefilter(dialogue)
    assert decision.rule == "utterance_length" and decision.details["longest"] == 601  # joined by a space
    assert prefilter(dialogue, PrefilterRules(max_utterance_chars=601)).kept


def test_the_first_failing_rule_is_reported():
    texts = ["ok"] * 4
    dialogue = _with_customer_lines(texts)
    dialogue.turns[0].text = "y" * 600
    decision = prefilter(dialogue)
    assert decision.rule == "substantive"  # substantive runs before utterance_length
    assert "longest" not in decision.details


def test_rules_are_validated():
    with pytest.raises(ValueError, match="min_pairs"):
        PrefilterRules(min_pairs=5, max_pairs=4)
    with pytest.raises(ValueError, match="min_substantive_share"):
        PrefilterRules(min_substantive_share=1.5)
    with pytest.raises(ValueError, match="min_customer_ratio"):
        PrefilterRules(min_customer_ratio=-1)


def test_decisions_are_plain_data():
    decision = FilterDecision.drop("min_pairs", "too short", pairs=2)
    assert decision.to_json() == {"kept": False, "rule": "min_pairs", "reason": "too short", "details": {"pairs": 2}}
    assert FilterDecision.keep("fine").kept


# -- packaged and real data -----------------------------------------------------------------------------------------


def test_packaged_raw_samples():
    decisions = {dialogue.id: prefilter(dialogue) for dialogue in load_sample("raw")}
    assert len(decisions) == 12
    assert decisions["raw-004"].rule == "min_pairs"  # a misdialled call: two exchanges
    # the customer only says 嗯, 哦, 不用 in 4 raw lines against the supporter's 8
    assert decisions["raw-011"].rule == "customer_share"
    assert (decisions["raw-011"].details["customer_lines"], decisions["raw-011"].details["supporter_lines"]) == (4, 8)
    passed = sorted(name for name, decision in decisions.items() if decision.kept)
    assert passed == [f"raw-{n:03d}" for n in (1, 2, 3, 5, 6, 7, 8, 9, 10, 12)]


def test_sgd_banking_prefilter_statistics(shared_data):
    dialogues = read_dialogues(shared_data / "sgd_banking" / "dialogues.jsonl").dialogues
    decisions = [prefilter(d) for d in dialogues]
    # SGD dialogues are clean, already alternating, task-oriented calls: all 200 pass the method's thresholds
    assert sum(d.kept for d in decisions) == 200
    assert all(d.details["merged_utterances"] == d.details["utterances"] for d in decisions)
    pairs = [d.details["pairs"] for d in decisions]
    assert min(pairs) == 5 and max(pairs) == 15 and 7 <= sum(pairs) / len(pairs) <= 10
    shares = [d.details["substantive_share"] for d in decisions]
    assert min(shares) >= 0.7 and sum(s == 1.0 for s in shares) > 100
    assert max(d.details["longest"] for d in decisions) < 300
    # stricter thresholds drop exactly the dialogues the figures say they should
    strict = PrefilterRules(min_pairs=8, min_substantive_share=0.9)
    expected = sum(1 for d in decisions if d.details["pairs"] >= 8 and d.details["substantive_share"] >= 0.9)
    strict_decisions = [prefilter(d, strict) for d in dialogues]
    assert sum(d.kept for d in strict_decisions) == expected
    assert 0 < expected < 200
    assert {d.rule for d in strict_decisions if not d.kept} == {"min_pairs", "substantive"}
