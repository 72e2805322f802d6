"""Signatures of the rewriting pipeline (CSConv): screen a raw call, rewrite it with strategies, judge the result.

* :class:`ScreenCall`: the LLM pre-filter; flags abusive language and a poor agent attitude.
* :class:`RewriteDialogue`: turns a raw call into a clean, strictly alternating dialogue in which every supporter
  turn is written for, and labelled with, one strategy; the output is a typed list of :class:`RewrittenTurn`.
* :class:`JudgeRewrite`: the LLM post-filter; rates the rewrite and checks it ends, follows its labels and has no
  noise.

The classes are typed for the CSC taxonomy. :func:`rewrite_signature` and :func:`judge_signature` adapt them to
any taxonomy (strategy labels, strategy guide, flow rules); :func:`turn_model` gives the matching turn type.

Example:
    ```python
    import dspy
    from cscprog.framework import load_taxonomy
    from cscprog.signatures import rewrite_signature

    rewrite = dspy.Predict(rewrite_signature(load_taxonomy("csc")))
    turns = rewrite(transcript="Customer: hi my card is blocked\\nSupporter: name?", language="en",
                    domain="account_transactions").rewritten
    [(t.speaker, t.strategy) for t in turns]
    ```
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import dspy
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic.json_schema import SkipJsonSchema

from cscprog.errors import UnknownStrategyError
from cscprog.framework import Taxonomy

from .adapt import CSC, CscStrategy, for_taxonomy, strategy_type

__all__ = [
    "PLACEHOLDERS",
    "JudgeRewrite",
    "RewriteDialogue",
    "RewrittenTurn",
    "ScreenCall",
    "rewrite_flow_rules",
    "judge_signature",
    "rewrite_signature",
    "turn_model",
]

PLACEHOLDERS: dict[str, dict[str, str]] = {
    "en": {"name": "[Name]", "phone": "[Phone Number]", "card": "[Card Number]", "company": "[Company Name]"},
    "zh": {"name": "[姓名]", "phone": "[手机号码]", "card": "[卡号]", "company": "[公司名称]"},
}
"""The placeholders that replace personal data in a rewritten dialogue, by language."""

_SPEAKERS = {
    "supporter": ("supporter", "support", "agent", "staff", "service", "s", "客服", "坐席"),
    "customer": ("customer", "client", "caller", "user", "c", "客户", "用户"),
}
_SPEAKER_OF = {alias: speaker for speaker, aliases in _SPEAKERS.items() for alias in aliases}
_NO_LABEL = ("", "none", "null", "n/a", "na", "-", "无")
_TURN_DESCRIPTION = "One turn of the rewritten dialogue."
_STRATEGY_DESCRIPTION = "The one strategy this supporter turn is written for; null on customer turns."


def _schema_for_lm(schema: dict[str, Any]) -> None:
    # The JSON schema is shown to the LM: a one-line description instead of the class docstring.
    schema["description"] = _TURN_DESCRIPTION


class RewrittenTurn(BaseModel):
    """One utterance of a rewritten dialogue.

    The model reads common variants of the LM's output: speakers such as ``客服``/``客户`` or ``agent``, labels
    in any form the taxonomy parses (``GT``, ``策略1 礼貌问候``), and an empty label on customer turns. A label
    holding several strategies (``Emotional Management+Information Delivery``) keeps the first in ``strategy``
    and the others in ``extra_strategies`` (not shown to the LM), so the multi-label post-filter can drop it.

    Attributes:
        speaker: ``supporter`` or ``customer``.
        strategy: The strategy the supporter turn was written for; None on customer turns.
        text: What is said.
        extra_strategies: Further strategies of a multi-label turn (hidden from the LM's schema).

    Example:
        ```python
        RewrittenTurn.model_validate({"speaker": "客服", "strategy": "策略1 礼貌问候", "text": "您好"}).strategy
        # 'Greeting'
        ```
    """

    model_config = ConfigDict(json_schema_extra=_schema_for_lm)

    taxonomy: ClassVar[Taxonomy] = CSC

    speaker: Literal["supporter", "customer"] = Field(description="Who speaks.")
    strategy: CscStrategy | None = Field(default=None, description=_STRATEGY_DESCRIPTION)
    text: str = Field(description="The utterance.")
    extra_strategies: SkipJsonSchema[list[str]] = Field(default_factory=list, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        speaker = data.get("speaker")
        if isinstance(speaker, str):
            data["speaker"] = _SPEAKER_OF.get(speaker.strip().casefold(), speaker)
        label = data.get("strategy")
        labels = label if isinstance(label, list) else [label]
        names: list[str] = []
        for item in labels:
            if item is None or (isinstance(item, str) and item.strip().casefold() in _NO_LABEL):
                continue
            try:
                found = cls.taxonomy.parse_all(item)
            except UnknownStrategyError as error:
                raise ValueError(str(error)) from None
            names.extend(s.name for s in found if s.name not in names)
        names.extend(n for n in data.get("extra_strategies") or [] if n not in names)
        data["strategy"] = names[0] if names else None
        data["extra_strategies"] = names[1:]
        return data


def turn_model(taxonomy: Taxonomy) -> type[RewrittenTurn]:
    """The :class:`RewrittenTurn` type whose ``strategy`` is typed (and parsed) by ``taxonomy``.

    Example:
        ```python
        esconv_turn = turn_model(load_taxonomy("esconv"))
        esconv_turn.model_validate({"speaker": "supporter", "strategy": "Question", "text": "How are you?"})
        ```
    """
    if taxonomy == CSC:
        return RewrittenTurn
    model = create_model(
        f"RewrittenTurn_{taxonomy.name}",
        __base__=RewrittenTurn,
        strategy=(strategy_type(taxonomy) | None, Field(default=None, description=_STRATEGY_DESCRIPTION)),
    )
    model.taxonomy = taxonomy
    return model


class ScreenCall(dspy.Signature):
    """Screen a raw customer-service call before it is used as the basis of training or evaluation data.

    Read the whole transcript. Flag abusive language when either side insults, swears at, threatens or harasses
    the other. Flag a poor agent attitude when the supporter is impatient, cold, dismissive or disrespectful
    toward the customer (interrupting, brushing the customer off, blaming, a curt or mocking tone). Ordinary
    brevity, a busy but polite supporter, or a customer's understandable frustration are not reasons to flag.
    Give a short reason that quotes or points to the lines that decided your answer.
    """

    transcript: str = dspy.InputField(desc="The raw call, one utterance a line, prefixed by the speaker.")
    abusive_language: bool = dspy.OutputField(desc="True when either side uses abusive or insulting language.")
    poor_agent_attitude: bool = dspy.OutputField(
        desc="True when the supporter is impatient, cold or disrespectful toward the customer."
    )
    reason: str = dspy.OutputField(desc="One or two sentences justifying both answers.")


class RewriteDialogue(dspy.Signature):
    """Rewrite a raw customer-service call into a clean support dialogue annotated with support strategies.

    Keep the customer's problem, the facts and the outcome of the call, and turn the transcript into a
    dialogue that a well-trained supporter and this particular customer could have had:
    - Speakers strictly alternate (supporter, customer, supporter, ...): merge or split lines as needed and never
      give one speaker two turns in a row.
    - Every supporter turn is written according to exactly one strategy from the list below and carries that
      strategy's name as its label; customer turns carry no label (null).
    - Customer turns stay true to this customer: their wording, mood, patience and level of knowledge as the
      transcript shows them; clean up fillers and transcription noise but do not make the customer more
      polite or articulate than they were.
    - Replace every piece of personal or identifying data with a placeholder. English: [Name], [Phone Number],
      [Card Number], [Company Name]. Chinese: [姓名], [手机号码], [卡号], [公司名称]. Use the placeholders of the
      requested language.
    - You may reasonably expand the dialogue (for instance add the greeting, the identity check, a confirmation
      or the farewell that the call skipped) as long as it stays consistent with what happened.
    - The dialogue must end completely: the matter is settled or handed over, and both sides close the
      conversation.
    - Leave out everything that is not said by the two speakers: hold music, system prompts, notes about the
      call, other people in the room.
    - Follow the conversation-flow rules given below.
    Write every utterance in the requested language.
    """

    transcript: str = dspy.InputField(desc="The raw call, one utterance a line, prefixed by the speaker.")
    language: str = dspy.InputField(desc="Language of the rewritten dialogue: 'en' (English) or 'zh' (Chinese).")
    domain: str = dspy.InputField(desc="The business domain of the call (for context).")
    rewritten: list[RewrittenTurn] = dspy.OutputField(
        desc="The rewritten dialogue as a JSON list of turns, each {speaker, strategy, text}, in order."
    )


class JudgeRewrite(dspy.Signature):
    """Judge a rewritten, strategy-annotated customer-service dialogue before it enters a data set.

    Each supporter line shows its strategy label in brackets. Check three things: the dialogue ends completely
    (the customer's matter is settled or clearly handed over and the conversation is closed, not cut off); every
    supporter turn really does what its labelled strategy describes; and there is no noise (no third party, no
    system or operator messages, no notes about the call, no stage directions). Then rate the overall quality:
    "high" only when all three hold and the dialogue reads as a natural, coherent support conversation;
    "medium" when it is usable but flawed; "low" when it is broken or misleading.
    """

    transcript: str = dspy.InputField(desc="The rewritten dialogue, one turn a line, supporter turns labelled.")
    quality: Literal["high", "medium", "low"] = dspy.OutputField(desc="Overall quality of the rewrite.")
    ended_completely: bool = dspy.OutputField(desc="True when the dialogue reaches a complete ending.")
    strategies_followed: bool = dspy.OutputField(desc="True when every supporter turn follows its label.")
    no_noise: bool = dspy.OutputField(desc="True when nothing but the two speakers' utterances is present.")
    reason: str = dspy.OutputField(desc="A short justification naming the turns behind any problem.")


def rewrite_flow_rules(taxonomy: Taxonomy) -> str:
    """The taxonomy's conversation-flow rules as prompt text ("" when it has none).

    Example:
        ```python
        print(rewrite_flow_rules(load_taxonomy("csc")))
        ```
    """
    flow = taxonomy.flow
    rules = []
    if flow.opening:
        rules.append(f"The first supporter turn uses {flow.opening}.")
    if flow.verification:
        after = f" after {flow.opening}" if flow.opening else ""
        rules.append(f"{flow.verification} comes within the first {flow.verification_within} supporter turns{after}.")
    if flow.closing:
        rules.append(f"The last supporter turn uses {flow.closing}, and only once the end is agreed.")
    if flow.first_stage and flow.last_stage:
        rules.append(f"The conversation starts in the {flow.first_stage} stage and ends in {flow.last_stage}.")
    if flow.max_repeat:
        rules.append(f"No strategy is used on more than {flow.max_repeat} supporter turns in a row.")
    if not rules:
        return ""
    return "Conversation-flow rules:\n" + "\n".join(f"- {rule}" for rule in rules)


def rewrite_signature(taxonomy: Taxonomy) -> type[dspy.Signature]:
    """:class:`RewriteDialogue` for ``taxonomy``: its turn type, strategy guide and flow rules.

    Example:
        ```python
        signature = rewrite_signature(load_taxonomy("esconv"))
        ```
    """
    adapted = for_taxonomy(RewriteDialogue, taxonomy)
    adapted = adapted.with_updated_fields("rewritten", type_=list[turn_model(taxonomy)])
    flow = rewrite_flow_rules(taxonomy)
    if flow:
        adapted = adapted.with_instructions(f"{adapted.instructions.rstrip()}\n\n{flow}")
    return adapted


def judge_signature(taxonomy: Taxonomy) -> type[dspy.Signature]:
    """:class:`JudgeRewrite` with ``taxonomy``'s strategy guide, so the judge knows what each label means.

    Example:
        ```python
        judge = dspy.Predict(judge_signature(load_taxonomy("csc")))
        ```
    """
    return for_taxonomy(JudgeRewrite, taxonomy)
