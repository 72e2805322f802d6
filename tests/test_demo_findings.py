"""The demo report's warnings: degenerate outputs and losses to the baseline are said in words."""

from __future__ import annotations

from types import SimpleNamespace

from cscprog.data import Dialogue, Turn
from cscprog.data.profile import Scenario
from cscprog.demo.findings import copied_turns, demo_findings, repeated_turns, same_reasons

SCENARIO = Scenario(topic="account management", goal="Unblock the card before the weekend trip.",
                    text="The customer's debit card was blocked after three wrong PIN entries at an ATM abroad.")


def _dialogue(texts: list[str], dialogue_id: str = "syn-1") -> Dialogue:
    turns = [Turn(speaker="supporter" if i % 2 == 0 else "customer", text=text,
                  strategy="Greeting" if i % 2 == 0 else None) for i, text in enumerate(texts)]
    return Dialogue(id=dialogue_id, turns=turns, scenario=SCENARIO)


def test_a_dialogue_that_pastes_its_scenario_is_found() -> None:
    pasted = _dialogue([f"Hello. {SCENARIO.text}", SCENARIO.text, f"I see: {SCENARIO.text} Anything else?"])
    assert copied_turns(pasted) == [0, 1, 2]
    natural = _dialogue(["Good morning, how can I help you today?", "My card stopped working at an ATM in Spain.",
                         "I am sorry to hear that; may I have your name to check the card?"])
    assert copied_turns(natural) == [] and repeated_turns(natural) == 0


def test_repeats_and_identical_judge_reasons_are_found() -> None:
    looping = _dialogue(["How can I help?", "My card is blocked.", "How can I help?", "It is blocked!",
                         "how can  I help?"])
    assert repeated_turns(looping) == 2
    assert same_reasons({"a": "The dialogue is fine.", "b": "the dialogue is fine", "c": "The dialogue is fine."})
    assert not same_reasons({"a": "Follows the strategies.", "b": "Natural replies."})


def test_findings_name_kept_degenerate_dialogues_judges_and_a_worse_compile() -> None:
    pasted = _dialogue([SCENARIO.text, SCENARIO.text, SCENARIO.text])
    reasons = {name: "Everything is correct." for name in ("a", "b", "c", "d", "e")}
    compiled = SimpleNamespace(before={"metric": 60.0}, after={"metric": 25.0}, improvement=-35.0)
    result = SimpleNamespace(
        csconv=None,
        rolecs=SimpleNamespace(dialogues=[pasted], passed=[pasted],
                               verdicts={"syn-1": {"passed": True, "reasons": reasons}}),
        compiled=SimpleNamespace(result=compiled),
        evaluation=SimpleNamespace(results={("base", "reference"): {"accuracy": 40.0, "rouge_l": 10.0},
                                            ("compiled", "reference"): {"accuracy": 20.0, "rouge_l": 12.0}}),
    )
    lines = demo_findings(result)  # type: ignore[arg-type]
    text = "\n".join(lines)
    assert "`syn-1` copies its scenario into 3 of its 3 turns" in text
    assert "repeats earlier turns word for word 1 time(s)" in text  # supporter turns 0 and 2
    assert "same reason for all 5 criteria" in text
    assert "lowered the dev metric from 60.00 to 25.00 (-35.00 points)" in text
    assert "below the base in reference context" in text and "ACC 40.00 -> 20.00" in text and "R-L" not in text


def test_the_report_says_why_the_shown_synthesized_dialogue_was_rejected_by_the_rules() -> None:
    from cscprog.demo.report import _rolecs

    pasted = _dialogue([SCENARIO.text, SCENARIO.text, SCENARIO.text])
    check = {"kept": False, "rule": "copied_context", "reason": "turn 0 copies the scenario", "details": {}}
    result = SimpleNamespace(
        plan=SimpleNamespace(max_utterances=3),
        rolecs=SimpleNamespace(dialogues=[pasted], passed=[], runs=[],
                               verdicts={"syn-1": {"passed": False, "scores": {}, "reasons": {},
                                                   "rule_check": check}}),
    )
    text = "\n".join(_rolecs(result))  # type: ignore[arg-type]
    assert "rejected by the rule check `copied_context` (judge not asked)" in text
    assert "Not a usable dialogue: the rule check `copied_context` rejected it before the judge" in text
    assert "turn 0 copies the scenario" in text
