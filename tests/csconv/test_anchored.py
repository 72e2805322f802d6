"""The turn-anchored rewrite with scripted LMs: every turn of the call kept in order, closeness checks, named drops."""

from __future__ import annotations

import dspy
import pytest

from cscprog.csconv.anchored import AnchoredRewrite, UnfaithfulTurn, origin_counts
from cscprog.csconv.faithful import check_rewritten_line, content_words, is_unchanged, numbers
from cscprog.csconv.rewriter import Rewriter
from cscprog.data import Dialogue, Turn
from cscprog.framework import load_taxonomy
from cscprog.testing import AnswerRequest, scripted_lm

CSC = load_taxonomy("csc")

CALL = Dialogue(id="call-1", language="en", domain="account_transactions", turns=[
    Turn(speaker="customer", text="What's my balance?"),
    Turn(speaker="supporter", text="In checking or savings?"),
    Turn(speaker="customer", text="In checking."),
    Turn(speaker="supporter", text="You have $3,814.44 in checking."),
    Turn(speaker="customer", text="Send $1,210 to Diego."),
    Turn(speaker="supporter", text="Transfer of $1,210 to Diego done."),
    Turn(speaker="customer", text="Thanks, bye."),
    Turn(speaker="supporter", text="You're welcome."),
])

MISSING = {
    "Greet": "Hello, thank you for calling [Company Name]. How can I help?",
    "Offer to": "I can help with that. May I have your full name and card number?",
    "Answer the": "Sure, I am [Name] and my card number is [Card Number].",
    "Thank the": "Thank you for calling [Company Name], goodbye!",
}


def faithful(field: str, request: AnswerRequest) -> str:
    """A well-behaved model: restates each line with a polite preface, writes the missing turns."""
    if field == "strategy":
        return "Information Delivery"
    if "original" in request.inputs:
        return f"Certainly, here it is: {request.inputs['original']}"
    return next(text for start, text in MISSING.items() if request.inputs["task"].startswith(start))


def run(answer, dialogue: Dialogue = CALL, **kwargs) -> tuple[dspy.Prediction, list[AnswerRequest]]:
    lm = scripted_lm(answer, seed=7)
    with dspy.context(lm=lm):
        result = AnchoredRewrite(CSC, **kwargs)(merged=dialogue.merged(), language="en")
    return result, lm.engine.requests


def test_every_turn_of_the_call_is_kept_in_order_and_the_flow_is_fixed():
    result, _ = run(faithful)
    turns = result.turns
    assert [t.speaker for t in turns] == ["supporter", "customer"] * 5 + ["supporter"]
    labels = [t.strategy for t in turns if t.speaker == "supporter"]
    assert labels[:2] == ["Greeting", "Identity Verification"] and labels[-1] == "Appreciation and Closure"
    assert set(labels) <= set(CSC.names)
    customers = [t for t in turns if t.speaker == "customer"]
    call_customers = [t.text for t in CALL.turns if t.speaker == "customer"]
    assert [t.text for t in customers if t.metadata["origin"] == "kept"] == call_customers
    rewritten = [t for t in turns if t.metadata["origin"] == "rewritten"]
    assert [t.metadata["original"] for t in rewritten] == [t.text for t in CALL.turns if t.speaker == "supporter"]
    assert [t.metadata["source_turn"] for t in rewritten] == [1, 3, 5, 7]
    assert origin_counts(turns) == {"supporter": {"inserted": 2, "rewritten": 4},
                                    "customer": {"kept": 4, "inserted": 1}}


def test_a_call_opened_by_the_supporter_and_closed_by_the_customer():
    call = Dialogue(id="call-2", language="en", turns=[
        Turn(speaker="supporter", text="Bank, hi."),
        Turn(speaker="customer", text="I lost my card."),
        Turn(speaker="supporter", text="I have blocked card 4471 now."),
        Turn(speaker="customer", text="Thanks, that's all."),
    ])
    turns = run(faithful, call)[0].turns
    assert turns[0].strategy == "Greeting" and turns[0].metadata == {
        "origin": "rewritten", "source_turn": 0, "original": "Bank, hi."}
    assert turns[-1].strategy == "Appreciation and Closure" and turns[-1].metadata["origin"] == "inserted"
    assert "4471" in turns[4].text and turns[4].strategy == "Information Delivery"


def test_a_line_that_invents_a_number_is_asked_again_with_a_new_seed():
    def answer(field: str, request: AnswerRequest) -> str:
        if field == "text" and request.inputs.get("original") == "In checking or savings?" and request.seed == 7:
            return "Your balance is $100."
        return faithful(field, request)

    result, requests = run(answer)
    asked = [r for r in requests if r.inputs.get("original") == "In checking or savings?"]
    assert len(asked) == 2 and asked[0].seed != asked[1].seed
    assert all("$100" not in t.text for t in result.turns)


def test_a_line_failing_every_attempt_drops_the_dialogue_with_a_named_rule():
    def answer(field: str, request: AnswerRequest) -> str:
        if field == "text" and request.inputs.get("original") == "You have $3,814.44 in checking.":
            return "You have some money in checking."
        return faithful(field, request)

    with pytest.raises(UnfaithfulTurn, match=r"line 3 of the call: drops a number \(3814.44\)") as raised:
        run(answer)
    assert raised.value.rule == "unfaithful_turn" and raised.value.attempts == 3
    lm = scripted_lm(lambda field, request: answer(field, request) if field in ("text", "strategy")
                     else {"abusive_language": "False", "poor_agent_attitude": "False"}.get(field, "ok"))
    with dspy.context(lm=lm):
        result = Rewriter(structure="anchored", use_judge=False)(dialogue=CALL)
    assert not result.decision.kept
    assert (result.decision.stage, result.decision.rule) == ("rewrite", "unfaithful_turn")
    assert result.decision.details["raw_text"]


def test_a_word_for_word_copy_is_refused_until_the_last_attempt_and_then_recorded_as_unchanged():
    def answer(field: str, request: AnswerRequest) -> str:
        if field == "text" and "original" in request.inputs:
            return request.inputs["original"]
        return faithful(field, request)

    result, requests = run(answer, attempts=2)
    supporter = [t for t in result.turns if t.metadata.get("original")]
    assert supporter and all(t.metadata["origin"] == "unchanged" for t in supporter)
    assert len([r for r in requests if r.inputs.get("original") == "In checking or savings?"]) == 2


def test_the_rewriter_keeps_an_anchored_rewrite_and_records_the_structure():
    def answer(field: str, request: AnswerRequest) -> str:
        verdicts = {"abusive_language": "False", "poor_agent_attitude": "False", "quality": "high",
                    "ended_completely": "True", "strategies_followed": "True", "no_noise": "True", "reason": "fine"}
        return verdicts[field] if field in verdicts and "original" not in request.inputs else faithful(field, request)

    with dspy.context(lm=scripted_lm(answer)):
        result = Rewriter(structure="anchored")(dialogue=CALL)
    assert result.decision.kept, result.decision.reason
    assert result.decision.details["structure"] == "anchored"
    assert result.dialogue.turns[1].text == "What's my balance?"


@pytest.mark.parametrize(("original", "text", "before", "reason"), [
    ("You have $3,814.44 in checking.", "Your checking balance is $3,814.44.", "", None),
    ("You have $3,814.44 in checking.", "You have money in checking.", "", "drops a number"),
    ("In checking or savings?", "Your balance is $100 in checking or savings.", "", "adds a number"),
    ("Amount of transfer?", "How much is the transfer of $1,210?", "Send $1,210.", None),
    ("Amount?", "Send it to Diego in savings please. Amount?", "Send it to Diego in savings please.",
     "echoes the customer"),
    ("Which account, checking or savings?", "Could you tell me a little more?", "", "loses the content"),
    ("To whom?", "Who should receive the money?", "", None),
    ("Who shall I send the money to?", "I would like to send the money to my sister, ok?", "",
     "speaks as the customer"),
    ("In checking or savings?", "Is that in checking or savings, Mia?", "", "adds a name"),
    ("To whom?", "Just to check, should it go to Diego?", "Send it to Diego.", None),
    ("Can I help you with anything else?", "Sure, I can help you with anything else.", "",
     "turns the original's question"),
    ("", "", "", "empty"),
])
def test_closeness_rules(original, text, before, reason):
    found = check_rewritten_line(original, text, before=before)
    assert (found is None) if reason is None else found.startswith(reason), found


def test_closeness_helpers():
    assert check_rewritten_line("Okay.", "Okay, sure.", earlier=["Okay, sure!"]).startswith("repeats turn 0")
    assert check_rewritten_line("Bye.", "x" * 300).startswith("too long")
    assert check_rewritten_line("Bye.", "Thank you, goodbye!", keep_content=False) is None
    assert numbers("Send $1,210.00 to [Name] in 3 days") == {"1210.00", "3"}
    assert content_words("Which account, checking or savings?") == {"account", "check", "saving"}
    assert check_rewritten_line("Whom are you paying?", "Who would you like to pay?") is None
    assert is_unchanged("Transfer successful.", "transfer  successful") and not is_unchanged("a b", "a c")


def test_the_calls_own_identity_check_is_rewritten_in_place_instead_of_a_new_one():
    call = Dialogue(id="call-3", language="en", turns=[
        Turn(speaker="supporter", text="card services how can i help"),
        Turn(speaker="customer", text="my card got declined"),
        Turn(speaker="supporter", text="ok can I get your name please"),
        Turn(speaker="customer", text="it's [Name]"),
        Turn(speaker="supporter", text="ok I took the block off the card"),
        Turn(speaker="customer", text="cheers"),
        Turn(speaker="supporter", text="bye now"),
    ])

    def answer(field: str, request: AnswerRequest) -> str:
        if field == "text" and request.inputs.get("original") == "ok can I get your name please":
            return "May I have your full name, please?"
        return faithful(field, request)

    turns = run(answer, call)[0].turns
    assert [t.metadata["origin"] for t in turns] == ["rewritten", "kept"] * 3 + ["rewritten"]
    assert [t.strategy for t in turns if t.speaker == "supporter"] == [
        "Greeting", "Identity Verification", "Information Delivery", "Appreciation and Closure"]
    assert turns[2].text == "May I have your full name, please?"


def test_missing_turns_that_copy_their_task_or_skip_the_identity_details_are_asked_again():
    def answer(field: str, request: AnswerRequest) -> str:
        task = request.inputs.get("task", "")
        if request.seed == 7 and task.startswith("Offer to"):
            return "Offer to help, then ask for details that prove who the caller is."
        if request.seed == 8 and task.startswith("Offer to"):
            return "What's your balance?"
        if request.seed == 7 and task.startswith("Answer the"):
            return "Your balance is [Amount]."
        return faithful(field, request)

    turns, requests = run(answer)
    asked = [r.inputs["task"][:8] for r in requests if r.inputs.get("task", "").startswith(("Offer", "Answer"))]
    assert asked == ["Offer to"] * 3 + ["Answer t"] * 2
    assert turns.turns[2].text == MISSING["Offer to"] and turns.turns[3].text == MISSING["Answer the"]


def test_a_rewrite_that_copies_a_worked_example_is_asked_again():
    def answer(field: str, request: AnswerRequest) -> str:
        if field == "text" and request.inputs.get("original") == "In checking or savings?" and request.seed == 7:
            return "Just to confirm: you would like to send it from your savings account to [Name]?"
        return faithful(field, request)

    result, requests = run(answer)
    assert len([r for r in requests if r.inputs.get("original") == "In checking or savings?"]) == 2
    assert "[Name]?" not in " ".join(t.text for t in result.turns)
