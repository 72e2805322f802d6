"""The learning tasks as ``dspy.Example`` views of dialogues.

* :func:`next_turn_examples`: one example per supporter turn: the history before it -> its strategy and reply
  (the paper's evaluation task; every supporter turn counts, an opening turn with an empty history included).
* :func:`turn_examples`: one example per supporter turn for strategy classification (context + utterance).
* :func:`dialogue_examples`: one example per dialogue (for dialogue-level judges and rewriting).

Example:
    ```python
    from cscprog.data import next_turn_examples
    from cscprog.samples import load_sample

    examples = next_turn_examples(load_sample("annotated_en"))
    examples[0].inputs().keys()   # history, language, domain
    ```
"""

from __future__ import annotations

from collections.abc import Iterable

import dspy

from cscprog.data.dialogue import Dialogue


def next_turn_examples(dialogues: Iterable[Dialogue], *, require_strategy: bool = True) -> list[dspy.Example]:
    """One example per supporter turn: ``history`` (rendered transcript) -> ``strategy``, ``reply``.

    Each example also carries ``dialogue_id``, ``turn_index``, ``history_turns`` (the Turn objects, for
    generated-context evaluation), ``domain`` and ``language``. Inputs: ``history``, ``language``, ``domain``.

    Args:
        dialogues: Annotated dialogues.
        require_strategy: Skip supporter turns without a strategy (True) or keep them with ``strategy=None``.
    """
    examples = []
    for dialogue in dialogues:
        for index, turn in enumerate(dialogue.turns):
            if not turn.is_supporter or (require_strategy and turn.strategy is None):
                continue
            examples.append(dspy.Example(
                dialogue_id=dialogue.id,
                turn_index=index,
                history=dialogue.transcript(index),
                history_turns=list(dialogue.turns[:index]),
                language=dialogue.language or "en",
                domain=dialogue.domain or "",
                strategy=turn.strategy,
                reply=turn.text,
            ).with_inputs("history", "language", "domain"))
    return examples


def turn_examples(dialogues: Iterable[Dialogue], *, context_turns: int = 6) -> list[dspy.Example]:
    """One example per annotated supporter turn: ``context`` + ``utterance`` -> ``strategy``.

    Args:
        dialogues: Annotated dialogues.
        context_turns: How many preceding turns form the context.
    """
    examples = []
    for dialogue in dialogues:
        for index, turn in enumerate(dialogue.turns):
            if not turn.is_supporter or turn.strategy is None:
                continue
            start = max(0, index - context_turns)
            examples.append(dspy.Example(
                dialogue_id=dialogue.id,
                turn_index=index,
                context=Dialogue(id=dialogue.id, turns=dialogue.turns[start:index],
                                 language=dialogue.language).transcript(),
                utterance=turn.text,
                language=dialogue.language or "en",
                strategy=turn.strategy,
            ).with_inputs("context", "utterance", "language"))
    return examples


def dialogue_examples(dialogues: Iterable[Dialogue]) -> list[dspy.Example]:
    """One example per dialogue: ``dialogue`` (the object) and ``transcript`` (text), both as inputs."""
    return [
        dspy.Example(dialogue_id=d.id, dialogue=d, transcript=d.transcript(), language=d.language or "en",
                     domain=d.domain or "").with_inputs("dialogue", "transcript")
        for d in dialogues
    ]
