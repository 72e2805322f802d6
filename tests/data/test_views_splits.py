from __future__ import annotations

from cscprog.data import Dialogue, Turn, next_turn_examples, split_dialogues, split_of, turn_examples


def make(n: int) -> list[Dialogue]:
    dialogues = []
    for i in range(n):
        dialogues.append(Dialogue(id=f"d{i}", domain="other", turns=[
            Turn(speaker="supporter", strategy="Greeting", text=f"Hello {i}"),
            Turn(speaker="customer", text="Hi, my card is blocked."),
            Turn(speaker="supporter", strategy="Identity Verification", text="May I have your [Phone Number]?"),
            Turn(speaker="customer", text="Sure."),
            Turn(speaker="supporter", strategy="Appreciation and Closure", text="Thanks, goodbye."),
        ]))
    return dialogues


def test_next_turn_examples_cover_every_supporter_turn_including_the_opening():
    examples = next_turn_examples(make(2))
    assert len(examples) == 6
    first, second = examples[0], examples[1]
    assert first.turn_index == 0 and first.history == "(the conversation has not started)"
    assert first.strategy == "Greeting" and first.reply == "Hello 0"
    assert second.history.splitlines() == ["Supporter [Greeting]: Hello 0", "Customer: Hi, my card is blocked."]
    assert set(first.inputs().keys()) == {"history", "language", "domain"}
    assert len(second.history_turns) == 2


def test_turn_examples():
    examples = turn_examples(make(1), context_turns=1)
    assert [e.strategy for e in examples] == ["Greeting", "Identity Verification", "Appreciation and Closure"]
    assert examples[1].context == "Customer: Hi, my card is blocked."
    assert set(examples[1].inputs().keys()) == {"context", "utterance", "language"}


def test_splits_are_deterministic_and_independent_of_order():
    dialogues = make(200)
    ratios = {"train": 0.8, "dev": 0.1, "test": 0.1}
    parts = split_dialogues(dialogues, ratios)
    again = split_dialogues(list(reversed(dialogues)), ratios)
    assert {k: sorted(d.id for d in v) for k, v in parts.items()} == {k: sorted(d.id for d in v)
                                                                       for k, v in again.items()}
    assert sum(len(v) for v in parts.values()) == 200
    assert 140 <= len(parts["train"]) <= 180
    # adding data never moves an existing dialogue
    bigger = split_dialogues(make(300), ratios)
    assert all(split_of(d.id, ratios) == name for name, part in bigger.items() for d in part)
    assert {d.id for d in parts["dev"]} <= {d.id for d in bigger["dev"]}
    assert split_dialogues(dialogues, ratios, salt="other")["dev"] != parts["dev"]


def test_bad_ratios():
    import pytest

    with pytest.raises(ValueError, match="sum to 1"):
        split_of("x", {"train": 0.5, "dev": 0.2})
