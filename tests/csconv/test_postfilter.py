"""The rule post-filters: system notes versus emoticons and remarks, multi-label turns, required strategies,
alternation, and their order."""

from __future__ import annotations

import pytest

from cscprog.csconv.postfilter import (
    check_alternation,
    check_required_strategies,
    check_single_label,
    is_emoticon,
    is_system_note,
    postfilter,
    split_trailing_notes,
    strip_system_notes,
)
from cscprog.data import Dialogue, Turn
from cscprog.framework import load_taxonomy
from cscprog.samples import load_sample

CSC = load_taxonomy("csc")
ESCONV = load_taxonomy("esconv")


def s(strategy: str | None, text: str, *extra: str) -> Turn:
    return Turn(speaker="supporter", strategy=strategy, text=text, extra_strategies=list(extra))


def c(text: str) -> Turn:
    return Turn(speaker="customer", text=text)


def good_turns() -> list[Turn]:
    return [
        s("Greeting", "Hello, this is [Company Name], how can I help?"),
        c("My card was declined."),
        s("Identity Verification", "May I have your name and card number?"),
        c("[Name], [Card Number]."),
        s("Resolution Implementation", "I have lifted the block; please try again."),
        c("It works, thanks."),
        s("Appreciation and Closure", "Thank you for calling, goodbye!"),
    ]


def dialogue(turns: list[Turn]) -> Dialogue:
    return Dialogue(id="d", turns=turns, language="en")


# -- system notes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "clean", "notes"),
    [
        ("ok thanks (system: call transferred)", "ok thanks", ["system: call transferred"]),
        ("不客气，再见（系统提示：通话已结束）", "不客气，再见", ["系统提示：通话已结束"]),
        ("再见(系统提示：通话结束）", "再见", ["系统提示：通话结束"]),  # mixed ASCII and full-width parentheses
        ("Goodbye! (customer hangs up).", "Goodbye!", ["customer hangs up"]),
        ("Bye (hold music) (Note: call ended)", "Bye", ["hold music", "Note: call ended"]),
        ("Done (system: ticket (urgent) closed)", "Done", ["system: ticket (urgent) closed"]),
        ("好的（笑）", "好的", ["笑"]),
        ("好的（客户挂了电话）", "好的", ["客户挂了电话"]),
        ("好的。（客户已离线）", "好的。", ["客户已离线"]),
        ("(system: call transferred)", "", ["system: call transferred"]),
    ],
)
def test_trailing_system_notes_are_split_off(text, clean, notes):
    assert split_trailing_notes(text) == (clean, notes)


@pytest.mark.parametrize(
    "text",
    [
        "Have a nice day (^_^)",
        "Thanks :)",
        "Sorry about that (T_T)",
        "Great (OvO)",
        "请您携带身份证原件（或护照）",
        "It was charged to your card (Visa)",
        "The transfer is free (Note: a 2% fee applies to cards)",
        "(system: call transferred) Hello again",  # not trailing
        "Hello (",
        "Thanks )",
        "",
    ],
)
def test_emoticons_remarks_and_inner_notes_are_kept(text):
    assert split_trailing_notes(text) == (text, [])


def test_an_emoticon_stops_the_stripping_but_a_note_after_it_goes():
    assert split_trailing_notes("Bye (^_^) (system: call ended)") == ("Bye (^_^)", ["system: call ended"])
    assert split_trailing_notes("Bye (system: call ended) (^_^)") == ("Bye (system: call ended) (^_^)", [])


def test_note_words_can_be_replaced():
    assert not is_system_note("system: x", words_en=["operator"], words_zh=[])
    assert is_system_note("operator joins", words_en=["operator"], words_zh=[])
    assert is_system_note("客服主管加入", words_en=[], words_zh=["主管"])


def test_strip_system_notes_on_a_packaged_raw_call():
    raw = {d.id: d for d in load_sample("raw")}["raw-009"]
    cleaned, decision = strip_system_notes(raw)
    assert decision.kept
    assert decision.details["notes"] == [{"turn": 12, "note": "系统提示：通话已结束", "rule": "note_keyword"}]
    assert cleaned.turns[-1].text == "不客气，再见" and raw.turns[-1].text.endswith("（系统提示：通话已结束）")
    assert len(cleaned.turns) == len(raw.turns)


def test_a_turn_holding_only_a_note_is_removed():
    turns = [*good_turns(), c("(system: call disconnected)")]
    cleaned, decision = strip_system_notes(dialogue(turns))
    assert [t.text for t in cleaned.turns] == [t.text for t in good_turns()]
    assert decision.details["removed_turns"] == [7] and "removed 1 turn" in decision.reason


def test_a_dialogue_without_notes_is_returned_as_is():
    original = dialogue(good_turns())
    cleaned, decision = strip_system_notes(original)
    assert cleaned is original and decision.reason == "no system notes"


def test_the_authors_rule_drops_a_last_utterance_holding_a_parenthesis():
    turns = [*good_turns(), c("Bye then (the line goes quiet)")]
    cleaned, decision = strip_system_notes(dialogue(turns))
    assert [t.text for t in cleaned.turns] == [t.text for t in good_turns()]
    assert decision.details["notes"] == [{"turn": 7, "note": "the line goes quiet", "rule": "last_parenthesis",
                                          "text": "Bye then (the line goes quiet)"}]
    assert decision.details["note_rules"] == {"last_parenthesis": 1, "note_keyword": 0}
    assert decision.details["removed_turns"] == [7] and "1 by last_parenthesis" in decision.reason


@pytest.mark.parametrize("last", ["Bye (^_^)", "Bye :)", "Thanks, goodbye!"])
def test_the_authors_rule_spares_emoticons_and_plain_text(last):
    turns = [*good_turns(), c(last)]
    cleaned, decision = strip_system_notes(dialogue(turns))
    assert cleaned.turns[-1].text == last and decision.details["notes"] == []


def test_the_authors_rule_reads_only_the_last_utterance_and_runs_after_the_keyword_rule():
    turns = good_turns()
    turns[1] = c("My card (the Visa one) was declined.")
    turns.append(c("好的（客户已离线）"))
    cleaned, decision = strip_system_notes(dialogue(turns))
    assert cleaned.turns[1].text == "My card (the Visa one) was declined."  # not last: kept
    assert cleaned.turns[-1].text == "好的"  # the keyword rule stripped the note, nothing left for the authors' rule
    assert [n["rule"] for n in decision.details["notes"]] == ["note_keyword"]


@pytest.mark.parametrize(("content", "emoticon"), [("^_^", True), ("T_T", True), ("*´▽`*", True), ("ok", False),
                                                   ("客户已离线", False), ("Visa", False), ("", False)])
def test_emoticons(content, emoticon):
    assert is_emoticon(content) is emoticon


# -- the checks -----------------------------------------------------------------------------------------------------


def test_multi_label_turns_drop_the_dialogue():
    turns = good_turns()
    turns[4] = s("Emotional Management", "I am sorry; the block is lifted.", "Resolution Implementation")
    decision = check_single_label(dialogue(turns))
    assert (decision.kept, decision.rule, decision.details["turns"]) == (False, "multi_label", [4])
    assert "Emotional Management + Resolution Implementation" in decision.reason
    assert check_single_label(dialogue(good_turns())).kept


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("Greeting", ["Greeting"]),
        ("Identity Verification", ["Identity Verification"]),
        ("Appreciation and Closure", ["Appreciation and Closure"]),
    ],
)
def test_each_required_strategy_is_checked(missing, expected):
    turns = [t if t.strategy != missing else s("Information Delivery", t.text) for t in good_turns()]
    decision = check_required_strategies(dialogue(turns), CSC)
    assert (decision.kept, decision.rule, decision.details["missing"]) == (False, "required_strategies", expected)
    assert missing in decision.reason


def test_required_strategies_are_present_anywhere_and_skipped_without_rules():
    decision = check_required_strategies(dialogue(good_turns()), CSC)
    assert decision.kept and decision.details["required"] == [
        "Greeting", "Identity Verification", "Appreciation and Closure"
    ]
    esconv = dialogue([s("Question", "How are you feeling?"), c("Not great.")])
    skipped = check_required_strategies(esconv, ESCONV)
    assert skipped.kept and skipped.details["required"] == [] and "requires no strategy" in skipped.reason


def test_a_strategy_on_a_customer_turn_does_not_count():
    turns = good_turns()[:-1] + [Turn(speaker="customer", strategy="Appreciation and Closure", text="Bye!")]
    assert check_required_strategies(dialogue(turns), CSC).details["missing"] == ["Appreciation and Closure"]


def test_alternation():
    assert check_alternation(dialogue(good_turns())).kept
    starts_with_customer = dialogue([c("Hi, my card is blocked."), *good_turns()])
    assert check_alternation(starts_with_customer).kept  # the released data has such dialogues
    doubled = good_turns()
    doubled.insert(2, s("Problem Refinement", "When did it happen?"))
    decision = check_alternation(dialogue(doubled))
    assert (decision.kept, decision.rule, decision.details["turn"]) == (False, "alternation", 3)
    assert decision.reason == "turns 2 and 3 are both by the supporter"
    lonely = check_alternation(dialogue([s("Greeting", "Hello?")]))
    assert not lonely.kept and "only 1 speaker" in lonely.reason


def test_postfilter_runs_the_checks_in_order():
    turns = good_turns()
    turns[4] = s("Emotional Management", "Sorry (system: hold)", "Information Delivery")
    turns.insert(5, s("Information Delivery", "One more thing."))
    turns.pop()  # no closing either
    cleaned, decision = postfilter(dialogue(turns), CSC)
    assert decision.rule == "multi_label"  # first of three failures
    assert decision.details["notes"] == [{"turn": 4, "note": "system: hold", "rule": "note_keyword"}]
    assert cleaned.turns[4].text == "Sorry"
    turns[4] = s("Emotional Management", "Sorry.")
    assert postfilter(dialogue(turns), CSC)[1].rule == "required_strategies"
    turns.append(s("Appreciation and Closure", "Goodbye."))
    assert postfilter(dialogue(turns), CSC)[1].rule == "alternation"


def test_postfilter_keeps_a_good_dialogue_and_reports_the_stripping():
    turns = good_turns()
    turns[-1] = s("Appreciation and Closure", "Goodbye! (^_^) (system: call ended)")
    cleaned, decision = postfilter(dialogue(turns), CSC)
    assert decision.kept and decision.rule is None and "stripped 1 by note_keyword" in decision.reason
    assert cleaned.turns[-1].text == "Goodbye! (^_^)"
