"""Signatures for the next supporter turn, in two steps: choose the strategy, then write the reply.

Keeping the steps apart lets each be optimized and scored on its own (strategy accuracy for
:class:`PredictStrategy`, reply quality for :class:`WriteReply`), and lets an oracle-strategy ablation feed
the gold strategy straight into :class:`WriteReply`.

Example:
    ```python
    import dspy
    from cscprog.signatures import PredictStrategy, WriteReply

    history = "Supporter [Greeting]: Hello, how can I help?\\nCustomer: My transfer has not arrived."
    plan = dspy.Predict(PredictStrategy)(history=history, language="en", domain="account_transactions")
    reply = dspy.Predict(WriteReply)(history=history, strategy=plan.strategy, language="en").reply
    ```
"""

from __future__ import annotations

import dspy
from cscprog.signatures.adapt import CscStrategy

__all__ = ["PredictStrategy", "WriteReply"]


class PredictStrategy(dspy.Signature):
    """You are planning the next turn of a customer-support agent (the supporter). Read the conversation so far
    and choose the one support strategy the supporter should use in its next utterance.

    Follow the usual course of a support conversation: open with a greeting when nothing has been said yet,
    confirm identity before account-specific help, respond to clear distress promptly, understand the problem
    before proposing a solution, and close politely only once the customer's need is settled. Avoid using the
    same strategy more than twice in a row, and do not default to giving information or suggestions."""

    history: str = dspy.InputField(
        desc="The conversation so far, oldest first; supporter turns are tagged with their strategy in brackets"
    )
    language: str = dspy.InputField(desc="Language of the conversation: 'en' (English) or 'zh' (Chinese)")
    domain: str = dspy.InputField(desc="Business area of the conversation (may be empty)")
    strategy: CscStrategy = dspy.OutputField(desc="The strategy of the supporter's next utterance")


class WriteReply(dspy.Signature):
    """You are the customer-support agent (the supporter) in this conversation. Write your next utterance,
    carrying out the given support strategy.

    Write one to three sentences in the conversation's language, as the agent speaking directly to the
    customer; no speaker label, no strategy name, no notes about yourself. Stay consistent with what has
    already been said, do not invent account data the conversation does not contain, and say so politely when
    the customer asks for something that is impossible or against policy. Vary your wording rather than
    repeating stock phrases."""

    history: str = dspy.InputField(
        desc="The conversation so far, oldest first; supporter turns are tagged with their strategy in brackets"
    )
    strategy: CscStrategy = dspy.InputField(desc="The support strategy your utterance must carry out")
    language: str = dspy.InputField(desc="Language to write in: 'en' (English) or 'zh' (Chinese)")
    reply: str = dspy.OutputField(desc="The supporter's next utterance, 1-3 sentences")
