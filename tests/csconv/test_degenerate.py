"""Degenerate-text rule checks: each rule at work on a crafted dialogue, none firing on real calls."""

from __future__ import annotations

import pytest

from cscprog.csconv.degenerate import (
    DEGENERATE_RULES,
    DegenerateRules,
    check_degenerate,
    normalize,
    repeated_share,
    tokens,
)
from cscprog.data import Dialogue, Turn, read_dialogues
from cscprog.samples import load_sample

SCENARIO = "Your debit card was declined at a grocery store this morning even though your balance is fine."


def dialogue(*texts: str, first: str = "supporter") -> Dialogue:
    other = {"supporter": "customer", "customer": "supporter"}
    speakers = [first if i % 2 == 0 else other[first] for i in range(len(texts))]
    return Dialogue(id="d", turns=[Turn(speaker=s, text=t) for s, t in zip(speakers, texts, strict=True)])


GOOD = (
    "Hello, this is [Company Name] support. How can I help you today?",
    "Hi, my debit card got declined at the store this morning.",
    "I'm sorry to hear that. Could you confirm your name and the last four digits of the card?",
    "It's [Name], ending in [Card Number].",
    "Thank you. I see a temporary fraud hold; I have removed it, so the card works again.",
    "Great, thanks a lot.",
    "You're welcome. Have a good day!",
)


def test_a_natural_dialogue_passes():
    decision = check_degenerate(dialogue(*GOOD), context=[SCENARIO])
    assert decision.kept and decision.rule is None


def test_helpers():
    assert normalize("Hello,  World!") == "helloworld" and normalize("你好，世界。") == "你好世界"
    assert tokens("Your card 1234 好的") == ["your", "card", "1234", "好", "的"]
    assert repeated_share("a b a b a b".split(), 2) == pytest.approx(0.6)
    assert repeated_share([], 3) == 0.0


@pytest.mark.parametrize("text", ["", "   ", "...", "？！"])
def test_empty_turn(text):
    decision = check_degenerate(dialogue(GOOD[0], text, *GOOD[2:]))
    assert decision.rule == "empty_turn" and decision.details["turn"] == 1


def test_long_turn_boundary():
    assert check_degenerate(dialogue(GOOD[0], "x" * 500, *GOOD[2:])).rule is None
    decision = check_degenerate(dialogue(GOOD[0], "x" * 501, *GOOD[2:]))
    assert decision.rule == "long_turn" and decision.details["chars"] == 501


def test_repeated_turn_echo_loop_and_distant_repeat():
    echo = dialogue(GOOD[0], GOOD[1], GOOD[1].upper() + "!!", *GOOD[3:])
    decision = check_degenerate(echo)
    assert decision.rule == "repeated_turn" and (decision.details["turn"], decision.details["earlier"]) == (2, 1)
    # the same speaker's previous turn, case and punctuation ignored
    loop = dialogue(*GOOD[:4], GOOD[2].lower(), *GOOD[5:])
    assert check_degenerate(loop).rule == "repeated_turn"
    # one distant repeat is what real calls do; a third occurrence is a loop
    long = "Your transfer went through and the money arrives within the hour."
    distant = dialogue(long, "ok, and my other account?", "Let me check the other one for you now.", "thanks a lot",
                       "Checking the savings account right now, one moment.", "sure, I'll wait", long)
    assert check_degenerate(distant).kept
    thrice = dialogue(*[t.text for t in distant.turns], "good to know", long)
    assert check_degenerate(thrice).rule == "repeated_turn" and "3 times" in check_degenerate(thrice).reason
    # short formulaic turns may recur; a short turn said a third time by one speaker is a loop (a real rewrite
    # by the 0.5B model answered "To Diego" to seven different customer lines)
    assert check_degenerate(dialogue(GOOD[0], "Yes, that's correct.", GOOD[2], "Yes, that's correct.")).kept
    looped = dialogue(GOOD[0], "I want to send money.", "To Diego", "Send $1,210.", "To Diego.", "How long?",
                      "to diego", "Thanks.")
    decision = check_degenerate(looped)
    assert decision.rule == "repeated_turn" and decision.details["turn"] == 6
    assert "3 times by the supporter" in decision.reason
    assert check_degenerate(dialogue(*[t.text for t in looped.turns][:6])).kept  # twice is not yet a loop
    # a customer confirming three times is what real callers do
    confirming = dialogue(GOOD[0], "Yes, that's correct.", GOOD[2], "Yes, that's correct.", GOOD[4],
                          "Yes, that's correct.")
    assert check_degenerate(confirming).kept


def test_copied_context_the_scenario_in_every_turn():
    # what the embedded model did in the demo: every turn repeats the scenario sentence
    parrot = dialogue(*[f"{SCENARIO} {extra}" for extra in ("Hello.", "Hi.", "I see.", "Yes.")])
    decision = check_degenerate(parrot, context=[SCENARIO, "You are a careful retiree."])
    assert decision.rule == "copied_context" and decision.details["turn"] == 0
    # a turn that is a piece of the profile counts too
    profile = ("You are a 67-year-old retired teacher who distrusts online banking and prefers to call the bank "
               "whenever something looks odd.")
    piece = dialogue(GOOD[0], "I am a 67-year-old retired teacher who distrusts online banking and prefers to call "
                              "the bank whenever I can.", *GOOD[2:])
    assert check_degenerate(piece, context=[profile]).rule == "copied_context"
    # a shorter shared phrase is ordinary paraphrase
    short = dialogue(GOOD[0], "As a retired teacher I distrust online banking, so I prefer to call.", *GOOD[2:])
    assert check_degenerate(short, context=[profile]).kept
    # without context, nothing to copy
    assert check_degenerate(parrot).rule != "copied_context"


def test_copied_context_in_chinese():
    scenario = "你的借记卡今天早上在超市刷卡被拒，但账户余额充足。"
    turns = dialogue("您好，请问有什么可以帮您？", "我的借记卡今天早上在超市刷卡被拒，但账户余额充足。怎么回事？")
    assert check_degenerate(turns, context=[scenario]).rule == "copied_context"


def test_ngram_repetition_within_a_turn_and_over_the_dialogue():
    stutter = "I am so sorry I am so sorry I am so sorry I am so sorry about the card"
    decision = check_degenerate(dialogue(GOOD[0], GOOD[1], stutter, *GOOD[3:]))
    assert decision.rule == "ngram_repetition" and decision.details["turn"] == 2
    chinese = "非常抱歉给您带来不便" * 4
    assert check_degenerate(dialogue(GOOD[0], chinese)).rule == "ngram_repetition"
    # turns that each differ a little but share almost all their words
    base = "please note that your card will be checked by our team and we will call you back"
    samey = dialogue(*[f"{base} {word}" for word in ("soon", "today", "shortly", "later", "again", "tomorrow")])
    decision = check_degenerate(samey, rules=DegenerateRules(min_repeat_chars=10_000))
    assert decision.rule == "ngram_repetition" and "the dialogue repeats itself" in decision.reason


@pytest.mark.parametrize(
    "customer", ["Thank you for calling, how can I help you?", "您好，很高兴为您服务，请问有什么可以帮您？"]
)
def test_role_swap(customer):
    decision = check_degenerate(dialogue(GOOD[0], customer, *GOOD[2:]))
    assert decision.rule == "role_swap" and decision.details["turn"] == 1
    # the same words from the supporter are its job
    assert check_degenerate(dialogue(customer, *GOOD[1:])).kept


@pytest.mark.parametrize("text", [
    "Supporter: I can check that card for you.", "customer: my card was declined", "**Agent:** One moment please.",
    "客服：您好，请问有什么可以帮您？",
])
def test_speaker_label(text):
    decision = check_degenerate(dialogue(GOOD[0], GOOD[1], text, *GOOD[3:]))
    assert decision.rule == "speaker_label" and decision.details["turn"] == 2
    # a name inside the line, or a colon later on, is ordinary speech
    assert check_degenerate(dialogue(GOOD[0], GOOD[1], "The agent said: wait a day. Did it work?", *GOOD[3:])).kept


def test_label_as_text():
    label = Turn(speaker="supporter", text="Greeting", strategy="Greeting")
    turns = [label, *dialogue(*GOOD[1:], first="customer").turns]
    decision = check_degenerate(Dialogue(id="d", turns=turns))
    assert decision.rule == "label_as_text" and decision.details["turn"] == 0
    greeting = Turn(speaker="supporter", text="Good morning, how can I help?", strategy="Greeting")
    assert check_degenerate(Dialogue(id="d", turns=[greeting, *turns[1:]])).kept


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't assist with that request.", "I’m sorry, but I cannot assist with that.",
    "As an AI language model, I do not have a bank account.", "抱歉，我无法协助处理此请求。",
])
def test_refusal(text):
    decision = check_degenerate(dialogue(text, *GOOD[1:]))
    assert decision.rule == "refusal" and decision.details["turn"] == 0
    # an agent declining something the bank does not do is a real line
    assert check_degenerate(dialogue("I'm sorry, we can't raise that limit over the phone.", *GOOD[1:])).kept


def test_a_turn_that_says_an_earlier_one_again_and_adds_to_it_is_a_repeat():
    # the demo's 0.5B supporter re-sent its whole greeting with a question tacked on
    again = GOOD[0] + " Could you tell me your account number?"
    decision = check_degenerate(dialogue(GOOD[0], GOOD[1], again, *GOOD[3:]))
    assert decision.rule == "repeated_turn" and (decision.details["turn"], decision.details["earlier"]) == (2, 0)
    assert "adds to it" in decision.reason
    # the other speaker's line quoted back is the echo rule's business, not this one's
    assert check_degenerate(dialogue(GOOD[0], GOOD[1], GOOD[2], GOOD[3], GOOD[4], GOOD[4] + " Thanks!")).rule != (
        "repeated_turn"
    )
    # a short earlier turn inside a later one is ordinary ("Thank you." then "Thank you. I see ...")
    assert check_degenerate(dialogue(GOOD[0], GOOD[1], "Thank you.", GOOD[3], GOOD[4], *GOOD[5:])).kept
    # the threshold is a rule setting
    assert check_degenerate(dialogue(GOOD[0], GOOD[1], again, *GOOD[3:]),
                            rules=DegenerateRules(min_contained_chars=500)).kept


def test_echoed_turn_hands_back_the_other_speakers_line():
    customer = "Hello, I'm excited to be part of your campaign and help you grow your business with our materials."
    echo = "Hi, I'm excited to be part of your campaign and help you grow your business with our materials."
    decision = check_degenerate(dialogue(GOOD[0], customer, echo, *GOOD[3:]))
    assert decision.rule == "echoed_turn" and decision.details["turn"] == 2 and decision.details["earlier"] == 1
    assert decision.details["echo_share"] > 0.9
    # a confirmation that restates the details is what agents do
    confirm = "To confirm: a transfer of $500 from checking to Diego's account, arriving today. Is that right?"
    request = "I want to move $500 from my checking to Diego's account today, please."
    assert check_degenerate(dialogue(GOOD[0], request, confirm, *GOOD[3:])).kept


def test_rules_order_and_validation():
    assert DEGENERATE_RULES[0] == "empty_turn" and DEGENERATE_RULES[-1] == "role_swap"
    with pytest.raises(ValueError):
        DegenerateRules(max_repeated_share=1.5)
    with pytest.raises(ValueError):
        DegenerateRules(ngram=0)
    with pytest.raises(ValueError):
        DegenerateRules(max_echo_share=-0.1)


def test_no_rule_fires_on_the_packaged_samples():
    for name in ("raw", "annotated_en", "annotated_zh"):  # the new rules included
        assert all(check_degenerate(d).kept for d in load_sample(name)), name


def test_no_rule_fires_on_real_banking_calls(shared_data):
    dialogues = read_dialogues(shared_data / "sgd_banking" / "dialogues.jsonl").dialogues
    flagged = [(d.id, check_degenerate(d).reason) for d in dialogues if not check_degenerate(d).kept]
    assert flagged == []


def test_the_turn_rules_fire_on_no_real_esconv_turn(shared_data):
    """Real emotional-support chats (196) trip none of the per-turn rules: speaker labels, labels as text,
    refusals, echoes (their few long or repeated turns are the older rules' business)."""
    import json

    records = json.loads((shared_data / "esconv" / "FailedESConv.json").read_text(encoding="utf-8"))
    fired = []
    for number, record in enumerate(records):
        turns = [Turn(speaker="supporter" if t["speaker"] == "listener" else "customer", text=t["content"])
                 for t in record["dialog"] if t["content"].strip()]
        decision = check_degenerate(Dialogue(id=f"esconv-{number}", turns=turns))
        if decision.rule in ("speaker_label", "label_as_text", "refusal", "echoed_turn"):
            fired.append((number, decision.reason))
    assert fired == []
