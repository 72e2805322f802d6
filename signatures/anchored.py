"""Signatures of the turn-anchored rewrite: each supporter line of a real call rewritten from its own text.

Small models write poorly from scratch but can restate a line they are given. The turn-anchored rewrite
(:class:`cscprog.csconv.anchored.AnchoredRewrite`) therefore keeps every turn of the real call in order and asks
the model, one line at a time, for:

* :class:`RewriteSupporterLine`: one supporter line of the call rewritten (its facts kept) and labelled with the
  strategy it carries out; for the lines whose strategy the flow rules fix (the opening, the closing) the program
  removes the ``strategy`` output and states the task instead;
* :class:`WriteMissingTurn`: a turn the framework needs and the call lacks (a greeting when the customer spoke
  first, the identity check and its answer, a goodbye when the customer spoke last).

:data:`LINE_DEMOS` and :data:`MISSING_DEMOS` are worked examples (written for this project, not from any data
set) that the module gives the model as few-shot demonstrations.

Example:
    ```python
    import dspy
    from cscprog.signatures.anchored import LINE_DEMOS, RewriteSupporterLine

    rewrite = dspy.Predict(RewriteSupporterLine)
    rewrite.demos = list(LINE_DEMOS)
    out = rewrite(original="checking or savings?", task="Keep to what the original line does.", language="en")
    out.text, out.strategy
    ```
"""

from __future__ import annotations

import dspy

from .adapt import CscStrategy

__all__ = [
    "FIXED_DEMOS", "LINE_DEMOS", "MISSING_DEMOS", "SITUATIONS", "TASKS", "RewriteSupporterLine", "WriteMissingTurn",
]


class RewriteSupporterLine(dspy.Signature):
    """Rewrite one line that a bank's support agent said in a real call, the way a polite, professional agent
    would say it.

    Keep the line's meaning and every fact it states (amounts, accounts, names, dates, outcomes), in one or two
    full sentences, in the agent's voice. Add no new facts, amounts or questions. Do what the task says. Then
    name the one strategy from the list below that the rewritten line carries out.
    """

    original: str = dspy.InputField(desc="The agent's line in the real call.")
    task: str = dspy.InputField(desc="What the rewritten line must do.")
    language: str = dspy.InputField(desc="Language of the line: 'en' (English) or 'zh' (Chinese).")
    text: str = dspy.OutputField(desc="The rewritten agent line.")
    strategy: CscStrategy = dspy.OutputField(desc="The strategy the rewritten line carries out.")


class WriteMissingTurn(dspy.Signature):
    """Write one short line of a bank's customer-service call that the real call left out, as the given speaker.

    Do exactly what the task says, in one or two sentences, so that it follows what has just happened. Use
    placeholders for personal data: [Name], [Phone Number], [Card Number], [Company Name] (Chinese: [姓名],
    [手机号码], [卡号], [公司名称]). Write only what the speaker says.
    """

    said_before: str = dspy.InputField(desc="What has just happened in the call.")
    speaker: str = dspy.InputField(desc="Who speaks: 'supporter' or 'customer'.")
    task: str = dspy.InputField(desc="What this line must do.")
    language: str = dspy.InputField(desc="Language of the line: 'en' (English) or 'zh' (Chinese).")
    text: str = dspy.OutputField(desc="The line.")


TASKS: dict[str, str] = {
    "keep": "Keep to what the original line does.",
    "opening": "Open the call: greet the customer and offer help.",
    "closing": "Close the call: thank the customer and say goodbye.",
    "identity": "Ask for the customer's identifying details, keeping what the original asks for.",
    "greeting": "Greet the customer and offer help.",
    "verification": "Offer to help, then ask for details that prove who the caller is.",
    "verification_reply": "Answer the question with your name and card number, written only as placeholders.",
    "goodbye": "Thank the customer and say goodbye.",
}
"""The task of each slot of the anchored rewrite (the ``task`` input), by slot."""
SITUATIONS: dict[str, str] = {
    "greeting": "(the call has just started)",
    "verification": "(the customer has just said why they are calling)",
    "verification_reply": "(the agent has just asked who you are)",
    "goodbye": "(the customer has nothing more to ask)",
}
"""What was said before a missing turn, as :class:`WriteMissingTurn` is told it (``said_before``): a
description rather than the call's line, because the 0.5B model copied a line it was shown."""
_KEEP = TASKS["keep"]

LINE_DEMOS: tuple[dspy.Example, ...] = (
    dspy.Example(original="which card", task=_KEEP,
                 language="en", text="Of course. Which card would you like to pay the bill with?",
                 strategy="Problem Refinement"),
    dspy.Example(original="ok done, paid it", task=_KEEP,
                 language="en", text="All set: I have paid the bill with that card.",
                 strategy="Resolution Implementation"),
    dspy.Example(original="no fee between own accounts", task=_KEEP,
                 language="en", text="There is no fee for moving money between your own accounts.",
                 strategy="Information Delivery"),
    dspy.Example(original="sorry. try reinstalling", task=_KEEP,
                 language="en",
                 text="I am sorry the app keeps logging you out; reinstalling it usually fixes this, so please try "
                      "that first.",
                 strategy="Providing Suggestions"),
    dspy.Example(original="so savings to [Name], right?",
                 task=_KEEP, language="en",
                 text="Just to confirm: you would like to send it from your savings account to [Name]?",
                 strategy="Restatement or Paraphrasing"),
)
"""Worked examples for :class:`RewriteSupporterLine` (with a chosen strategy)."""

FIXED_DEMOS: tuple[dspy.Example, ...] = (
    dspy.Example(original="card services how can i help", task=TASKS["opening"], language="en",
                 text="Good morning, you have reached [Company Name] card services. How can I help you today?"),
    dspy.Example(original="no problem, bye now", task=TASKS["closing"], language="en",
                 text="No problem at all. Thank you for calling, and have a good day. Goodbye!"),
)
"""Worked examples for the opening and closing lines (:class:`RewriteSupporterLine` without ``strategy``)."""

MISSING_DEMOS: tuple[dspy.Example, ...] = (
    dspy.Example(said_before=SITUATIONS["greeting"], speaker="supporter",
                 task=TASKS["greeting"], language="en",
                 text="Good afternoon, thank you for calling [Company Name]. How can I help you today?"),
    dspy.Example(said_before=SITUATIONS["verification"], speaker="supporter",
                 task=TASKS["verification"], language="en",
                 text="I can help with that. First, may I have your full name and your card number, please?"),
    dspy.Example(said_before=SITUATIONS["verification_reply"], speaker="customer",
                 task=TASKS["verification_reply"], language="en",
                 text="Sure, I am [Name] and my card number is [Card Number]."),
    dspy.Example(said_before=SITUATIONS["goodbye"], speaker="supporter",
                 task=TASKS["goodbye"], language="en",
                 text="Thank you for calling [Company Name]. Have a good day, goodbye!"),
)
"""Worked examples for :class:`WriteMissingTurn`."""
