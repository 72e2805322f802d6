"""The rewrite as exchanges: an output structure in which the framework's shape cannot be broken.

:class:`cscprog.signatures.RewriteDialogue` asks for a free list of turns and leaves alternation, labels and the
opening and closing strategies to the model; small models break each of them. Here the program lays the raw
call out as a draft whose shape is the rewrite's (:func:`draft_of`), and the model fills the same shape
(:func:`rewrite_model`), so that under a JSON-schema grammar (the embedded model's constrained decoding) every
parseable output is well formed:

* ``opening``: the supporter's first turn, written as the taxonomy's opening strategy (Greeting);
* ``request``: the customer's first turn;
* ``verification`` then ``verification_reply``: the supporter's identity check and the customer's answer (the
  taxonomy's verification strategy, which the flow rules want early);
* ``exchanges``: exactly one ``{strategy, supporter, customer}`` per remaining supporter line of the call: the
  strategy of the supporter's turn (chosen from the taxonomy before the turn is written), the turn, and the
  customer's reply;
* ``closing``: the supporter's last turn, written as the closing strategy (Appreciation and Closure).

Slots the call has no line for (most calls have no identity check, many no greeting) are marked in the draft as
new. Speakers alternate by construction, every supporter turn carries exactly one strategy of the taxonomy and
no customer turn carries one. The structure needs a taxonomy with opening and closing strategies (CSC); for
others use the free-turn :class:`cscprog.signatures.RewriteDialogue`. :func:`exchange_turns` turns the output
back into the :class:`RewrittenTurn` list the rest of the pipeline reads.

The same draft also drives a step-by-step rewrite for small models, one short call per turn:
:class:`RewriteSupporterTurn` (a strategy, then the turn) for each supporter line of the call, and
:class:`WriteTurn` for the slots the structure fixes (greeting, identity check and reply, closing); customer
lines of the call are kept as the customer said them.

Example:
    ```python
    import dspy
    from cscprog.framework import load_taxonomy
    from cscprog.signatures.exchanges import RewriteAsExchanges, draft_of, exchange_turns, rewrite_model

    taxonomy = load_taxonomy("csc")
    draft = draft_of(raw_dialogue.merged())
    rewrite = dspy.Predict(RewriteAsExchanges.with_updated_fields(
        "rewritten", type_=rewrite_model(taxonomy, len(draft.exchanges))))
    out = rewrite(draft=draft.render(), language="en", domain="account_transactions").rewritten
    [(t.speaker, t.strategy) for t in exchange_turns(out, taxonomy)]
    ```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import dspy
from pydantic import BaseModel, ConfigDict, Field, create_model

from cscprog.data import SUPPORTER, Dialogue
from cscprog.framework import Taxonomy

from .rewriting import RewrittenTurn, turn_model

__all__ = [
    "Draft",
    "RewriteAsExchanges",
    "RewriteSupporterTurn",
    "WriteTurn",
    "draft_of",
    "exchange_turns",
    "rewrite_model",
    "supports_exchanges",
]

_NEW = "(not in the call: write it)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class Draft:
    """A raw call laid out in the shape of the structured rewrite; None marks a slot the call has no line for.

    Attributes:
        opening: The supporter's first line, when the call starts with the supporter.
        request: The customer's first line.
        exchanges: ``(supporter line, customer reply)`` pairs, in order.
        closing: The supporter's last line, when the call ends with the supporter.
    """

    opening: str | None
    request: str | None
    exchanges: list[tuple[str, str]] = field(default_factory=list)
    closing: str | None = None

    def render(self) -> str:
        """The draft as the model reads it: one ``slot (speaker): text`` line each, in speaking order."""
        lines = [f"opening (supporter): {self.opening or _NEW}", f"request (customer): {self.request or _NEW}",
                 f"verification (supporter): {_NEW}", f"verification_reply (customer): {_NEW}"]
        for number, (supporter, customer) in enumerate(self.exchanges, 1):
            lines += [f"exchange {number} supporter: {supporter}", f"exchange {number} customer: {customer}"]
        lines.append(f"closing (supporter): {self.closing or _NEW}")
        return "\n".join(lines)


def draft_of(merged: Dialogue) -> Draft:
    """Lay a merged (alternating) raw call out as a :class:`Draft`.

    Example:
        ```python
        draft_of(raw.merged()).exchanges[0]   # ('In checking or savings?', 'In checking.')
        ```
    """
    lines = [(turn.speaker, turn.text.strip()) for turn in merged.turns if turn.text.strip()]
    opening = lines.pop(0)[1] if lines and lines[0][0] == SUPPORTER else None
    request = lines.pop(0)[1] if lines else None
    closing = lines.pop()[1] if lines and lines[-1][0] == SUPPORTER else None
    exchanges = []
    while lines:
        supporter = lines.pop(0)[1]
        customer = lines.pop(0)[1] if lines else "(no reply)"
        exchanges.append((supporter, customer))
    return Draft(opening, request, exchanges, closing)


def supports_exchanges(taxonomy: Taxonomy) -> bool:
    """True when ``taxonomy`` has the opening and closing strategies the structure needs."""
    return bool(taxonomy.flow.opening and taxonomy.flow.closing)


class RewriteAsExchanges(dspy.Signature):
    """Rewrite a raw customer-service call into a clean support dialogue. The call is given as a draft already laid
    out slot by slot in the order of the answer; fill every slot of the answer from the draft slot of the same name.

    - Keep what each draft line says (facts, amounts, names as placeholders) and clean up its wording.
    - A slot marked "not in the call" is new: write it so it fits the call.
    - For each supporter turn in the exchanges, first choose the one strategy from the list below that the turn
      carries out, then write the turn so that it does exactly that.
    - The opening greets the customer; the verification asks for identifying details and the reply gives them
      as placeholders; the closing thanks the customer and says goodbye.
    - Replace personal data with placeholders. English: [Name], [Phone Number], [Card Number], [Company Name].
      Chinese: [姓名], [手机号码], [卡号], [公司名称].
    - Only the two speakers talk: no system notes, no stage directions, nothing in parentheses.
    Write every line in the requested language.
    """

    draft: str = dspy.InputField(desc="The raw call laid out slot by slot, one 'slot (speaker): text' line each.")
    language: str = dspy.InputField(desc="Language of the rewritten dialogue: 'en' (English) or 'zh' (Chinese).")
    domain: str = dspy.InputField(desc="The business domain of the call (for context).")
    rewritten: dict[str, Any] = dspy.OutputField(desc="The rewritten dialogue, slot by slot.")


def rewrite_model(taxonomy: Taxonomy, exchanges: int) -> type[BaseModel]:
    """The pydantic type of the structured rewrite for ``taxonomy`` with exactly ``exchanges`` exchanges.

    Raises:
        ValueError: the taxonomy has no opening or no closing strategy, or ``exchanges`` is negative.

    Example:
        ```python
        list(rewrite_model(load_taxonomy("csc"), 6).model_fields)
        # ['opening', 'request', 'verification', 'verification_reply', 'exchanges', 'closing']
        ```
    """
    flow = taxonomy.flow
    if not supports_exchanges(taxonomy):
        raise ValueError(f"taxonomy {taxonomy.name!r} has no opening and closing strategies for the structure")
    if exchanges < 0:
        raise ValueError(f"exchanges must be >= 0, got {exchanges}")
    fixed = {flow.opening, flow.closing}
    middle = tuple(name for name in taxonomy.names if name not in fixed)
    exchange = create_model(
        f"Exchange_{taxonomy.name}",
        __base__=_Strict,
        strategy=(Literal[middle], Field(description="The strategy of the supporter's turn.")),  # type: ignore[valid-type]
        supporter=(str, Field(description="The supporter's turn, carrying out that strategy.")),
        customer=(str, Field(description="The customer's reply.")),
    )
    verification = flow.verification or "identity check"
    fields: dict[str, Any] = {
        "opening": (str, Field(description=f"The supporter's first turn ({flow.opening}).")),
        "request": (str, Field(description="The customer's first turn: why they are calling.")),
        "verification": (str, Field(description=f"The supporter asks for identifying details ({verification}).")),
        "verification_reply": (str, Field(description="The customer gives them, as placeholders.")),
        "exchanges": (
            list[exchange],  # type: ignore[valid-type]
            Field(min_length=exchanges, max_length=exchanges, description="One exchange per draft exchange."),
        ),
        "closing": (str, Field(description=f"The supporter's last turn ({flow.closing}).")),
    }
    return create_model(f"ExchangeRewrite_{taxonomy.name}_{exchanges}", __base__=_Strict, **fields)


def exchange_turns(rewritten: BaseModel, taxonomy: Taxonomy) -> list[RewrittenTurn]:
    """The turns of a structured rewrite, in speaking order, typed as ``turn_model(taxonomy)``.

    Example:
        ```python
        turns = exchange_turns(prediction.rewritten, taxonomy)
        turns[0].strategy   # 'Greeting'
        ```
    """
    flow = taxonomy.flow
    model = turn_model(taxonomy)
    data = rewritten.model_dump()
    verification = flow.verification if flow.verification in taxonomy.names else taxonomy.fallback
    turns = [
        model(speaker="supporter", strategy=flow.opening, text=data["opening"]),
        model(speaker="customer", text=data["request"]),
        model(speaker="supporter", strategy=verification, text=data["verification"]),
        model(speaker="customer", text=data["verification_reply"]),
    ]
    for exchange in data["exchanges"]:
        turns.append(model(speaker="supporter", strategy=exchange["strategy"], text=exchange["supporter"]))
        turns.append(model(speaker="customer", text=exchange["customer"]))
    turns.append(model(speaker="supporter", strategy=flow.closing, text=data["closing"]))
    return turns


class RewriteSupporterTurn(dspy.Signature):
    """Rewrite one supporter line of a raw customer-service call for a clean support dialogue.

    First choose the one strategy from the list below that this turn carries out at this point of the
    conversation, then write the turn so that it does exactly that. Keep what the raw line says (facts, amounts,
    options) and clean up its wording; one or two sentences, polite and concrete. Replace personal data with
    placeholders ([Name], [Phone Number], [Card Number], [Company Name]; Chinese: [姓名], [手机号码], [卡号],
    [公司名称]). Write only what the supporter says, in the requested language: no notes, no stage directions, nothing
    in parentheses.
    """

    conversation: str = dspy.InputField(desc="The rewritten dialogue so far, one 'Speaker: text' line each.")
    raw_line: str = dspy.InputField(desc="What the supporter said at this point of the raw call.")
    language: str = dspy.InputField(desc="Language of the dialogue: 'en' (English) or 'zh' (Chinese).")
    strategy: str = dspy.OutputField(desc="The strategy this turn carries out.")
    text: str = dspy.OutputField(desc="The supporter's turn.")


class WriteTurn(dspy.Signature):
    """Write one turn of a clean customer-service dialogue that rewrites a raw call.

    Do what the task says, in one or two sentences, as the given speaker, so that it follows naturally from the
    conversation so far. When a raw line is given, keep what it says and clean up its wording. Use placeholders
    for personal data ([Name], [Phone Number], [Card Number], [Company Name]; Chinese: [姓名], [手机号码], [卡号],
    [公司名称]). Write only what the speaker says, in the requested language: no notes, no stage directions, nothing
    in parentheses.
    """

    conversation: str = dspy.InputField(desc="The rewritten dialogue so far, one 'Speaker: text' line each.")
    speaker: str = dspy.InputField(desc="Who speaks: 'supporter' or 'customer'.")
    task: str = dspy.InputField(desc="What this turn must do.")
    raw_line: str = dspy.InputField(desc="What was said at this point of the raw call, or '(none)'.")
    language: str = dspy.InputField(desc="Language of the dialogue: 'en' (English) or 'zh' (Chinese).")
    text: str = dspy.OutputField(desc="The turn.")
