"""Signatures for labelling one supporter utterance with its support strategy.

:class:`ClassifyStrategy` answers with the label only; :class:`ClassifyStrategyWithRationale` first writes a
short justification, then the label. Both are written against the CSC taxonomy; adapt them to another one
with :func:`cscprog.signatures.for_taxonomy`.

Example:
    ```python
    import dspy
    from cscprog.framework import load_taxonomy
    from cscprog.signatures import ClassifyStrategy, for_taxonomy

    classify = dspy.Predict(for_taxonomy(ClassifyStrategy, load_taxonomy("csc")))
    pred = classify(context="Customer: My card was blocked.", utterance="I'm sorry, that is stressful.",
                    language="en")
    pred.strategy  # e.g. "Emotional Management"
    ```
"""

from __future__ import annotations

import dspy
from cscprog.signatures.adapt import CscStrategy

__all__ = ["ClassifyStrategy", "ClassifyStrategyWithRationale"]


class ClassifyStrategy(dspy.Signature):
    """You annotate customer-support conversations. Decide which single support strategy the agent (the
    supporter) is using in the given utterance.

    Judge what the utterance does, not which words it contains: a question about the problem refines it,
    a question about who the customer is verifies identity, a sentence that only repeats the customer's issue
    restates it. Use the preceding turns only to understand the situation; label nothing but the given
    utterance. When an utterance does several things, pick the strategy that best describes its main purpose.
    Choose the fallback strategy only when none of the others fits."""

    context: str = dspy.InputField(
        desc="The turns just before the utterance, oldest first, one 'Speaker: text' line each"
    )
    utterance: str = dspy.InputField(desc="The supporter utterance to label")
    language: str = dspy.InputField(desc="Language of the conversation: 'en' (English) or 'zh' (Chinese)")
    strategy: CscStrategy = dspy.OutputField(desc="The strategy the utterance uses, written exactly as listed")


ClassifyStrategyWithRationale: type[dspy.Signature] = ClassifyStrategy.with_instructions(
    "You annotate customer-support conversations. First explain briefly what the agent (the supporter) is\n"
    "doing in the given utterance, then name the single support strategy that matches it.\n\n"
    + ClassifyStrategy.instructions.split("\n\n", 1)[1]
).prepend("rationale", dspy.OutputField(desc="One or two sentences on what the utterance does, in the conversation's "
                                               "language"), str)
""":class:`ClassifyStrategy` with a short justification written before the label (the same guidance)."""
ClassifyStrategyWithRationale.__name__ = ClassifyStrategyWithRationale.__qualname__ = "ClassifyStrategyWithRationale"
