"""Signatures of role-play synthesis (RoleCS): one per role, plus the profile verbaliser.

The roles and what each sees:

* :class:`DescribeProfile` (profiler): structured profile facts -> a second-person description.
* :class:`PlanScenario` (planner): profile + topic -> the customer's goal and the situation.
* :class:`ChooseStrategy` (supporter assistant): scenario + transcript with earlier strategies -> next strategy.
* :class:`WriteSupporterTurn` (supporter): scenario + strategy + transcript -> a short reply.
* :class:`DirectCustomer` (customer assistant): scenario + goal + profile + transcript -> one next step.
* :class:`WriteCustomerTurn` (customer): profile + scenario + transcript + direction -> one sentence and a
  real ``bool`` saying whether the customer is done.

Strategy fields are typed with the CSC labels; use :func:`cscprog.signatures.for_taxonomy` (and, for the
supporter assistant, :func:`choose_strategy_for`) to follow another taxonomy.

Example:
    ```python
    import dspy
    from cscprog.signatures import ChooseStrategy

    choose = dspy.Predict(ChooseStrategy)
    pred = choose(scenario="A customer's card was declined abroad.",
                  history="(the conversation has not started)", language="en")
    pred.strategy   # 'Greeting'
    ```
"""

from __future__ import annotations

import dspy
from cscprog.signatures.adapt import CscStrategy, for_taxonomy

from cscprog.framework import Taxonomy, load_taxonomy

__all__ = [
    "ChooseStrategy",
    "DescribeProfile",
    "DirectCustomer",
    "PlanScenario",
    "WriteCustomerTurn",
    "WriteSupporterTurn",
    "choose_strategy_for",
    "flow_rules_text",
]

_LANGUAGE_DESC = "language to write in: 'en' (English) or 'zh' (Simplified Chinese)"
_HISTORY_DESC = "the conversation so far, one utterance a line"
_OFTEN_OVERUSED = ("Information Delivery", "Providing Suggestions")


def flow_rules_text(taxonomy: Taxonomy) -> str:
    """The taxonomy's conversation-flow rules as numbered instructions for the supporter assistant.

    Example:
        ```python
        print(flow_rules_text(load_taxonomy("csc")))
        ```
    """
    flow = taxonomy.flow
    rules = []
    if flow.first_stage:
        rules.append(f"The conversation starts in the {flow.first_stage} stage.")
    if flow.opening:
        rules.append(f"When nothing has been said yet, the choice is {flow.opening}.")
    if flow.verification:
        after = f" once {flow.opening} is done" if flow.opening else ""
        rules.append(
            f"Use {flow.verification} early{after}, within the first {flow.verification_within} supporter turns."
        )
    if flow.closing:
        end = f" in the {flow.last_stage} stage" if flow.last_stage else ""
        rules.append(
            f"Finish{end} with {flow.closing}, and choose it only once the customer's matter is settled and "
            "the customer has nothing more to ask."
        )
    if flow.max_repeat:
        rules.append(f"Never choose the same strategy for more than {flow.max_repeat} supporter turns in a row.")
    overused = " or ".join(name for name in _OFTEN_OVERUSED if name in taxonomy.names) or "any single strategy"
    rules.append(f"Do not lean on {overused} out of habit: pick whichever strategy this exact moment calls for.")
    if taxonomy.fallback:
        rules.append(f"Choose {taxonomy.fallback} only when none of the other strategies fits.")
    return "Flow rules:\n" + "\n".join(f"{number}. {rule}" for number, rule in enumerate(rules, 1))


_CHOOSE_CORE = (
    "You advise a bank's customer-support agent during a live conversation. Read the scenario and the "
    "conversation so far (each earlier agent line shows the strategy it followed in brackets) and decide which "
    "support strategy the agent's next turn should follow. The stages usually come in order but the "
    "conversation may step back when a new problem appears."
)


class DescribeProfile(dspy.Signature):
    """Write a short portrait of a bank customer, addressed to that customer in the second person.

    Turn the given facts into 3 to 5 natural sentences that begin with "You are" (in Chinese: "你是"). Cover
    who the person is, their situation with the bank, how they usually talk and what worries them. Use only
    the facts given: invent no names, numbers or events, and keep placeholders such as [Name] as they are.
    """

    facts: str = dspy.InputField(desc="the customer's profile as 'field: value' pairs separated by ';'")
    language: str = dspy.InputField(desc=_LANGUAGE_DESC)
    description: str = dspy.OutputField(desc="the second-person portrait, 3 to 5 sentences")


class PlanScenario(dspy.Signature):
    """Plan a realistic call from this customer to their bank about the given topic.

    Decide what the customer wants to get out of the call (one concrete goal) and describe the situation
    that makes them call: what happened, what they already know or tried, and any detail that will shape the
    conversation. It must fit the profile (age, occupation, products, habits, worries). The goal may be
    unreasonable or impossible for a bank to grant when that suits the person; the agent will have to say so.
    """

    profile: str = dspy.InputField(desc="the customer, described in the second person")
    topic: str = dspy.InputField(desc="what the call is broadly about, e.g. 'complaints and disputes'")
    language: str = dspy.InputField(desc=_LANGUAGE_DESC)
    goal: str = dspy.OutputField(desc="what the customer wants to achieve, one sentence")
    scenario: str = dspy.OutputField(desc="the situation behind the call, 2 to 4 sentences")


class ChooseStrategy(dspy.Signature):
    __doc__ = f"{_CHOOSE_CORE}\n\n{flow_rules_text(load_taxonomy('csc'))}"

    scenario: str = dspy.InputField(desc="the situation of the call")
    history: str = dspy.InputField(desc=_HISTORY_DESC + ", agent lines tagged with their strategy")
    language: str = dspy.InputField(desc=_LANGUAGE_DESC)
    strategy: CscStrategy = dspy.OutputField(desc="the strategy of the agent's next turn")


class WriteSupporterTurn(dspy.Signature):
    """You are a bank's customer-support agent. Write your next turn in the conversation.

    Follow the given strategy and nothing else: one or two sentences, spoken style, polite and concrete.
    Answer what the customer actually said. If the customer asks for something unreasonable, against the
    rules or impossible, say so plainly and offer what can be done instead; never promise it. Vary your
    wording: do not reuse stock phrases or repeat sentences from earlier turns. Use placeholders such as
    [Name] or [Phone number] instead of inventing personal data.
    """

    scenario: str = dspy.InputField(desc="the situation of the call")
    strategy: CscStrategy = dspy.InputField(desc="the support strategy this turn must follow")
    history: str = dspy.InputField(desc=_HISTORY_DESC)
    language: str = dspy.InputField(desc=_LANGUAGE_DESC)
    reply: str = dspy.OutputField(desc="the agent's next turn, one or two sentences")


class DirectCustomer(dspy.Signature):
    """You coach a person who plays a bank customer in a phone call. Say what they should do next.

    Give exactly one next step in one sentence (for example: answer the question just asked, give a detail,
    push back on a vague answer, ask about a fee, show annoyance). It must serve the customer's goal, fit the
    profile and follow from the last agent turn. When the goal is reached, or clearly cannot be reached, and
    enough has been said, tell the customer to wrap up and say goodbye.
    """

    scenario: str = dspy.InputField(desc="the situation of the call")
    goal: str = dspy.InputField(desc="what the customer wants to achieve")
    profile: str = dspy.InputField(desc="the customer, described in the second person")
    history: str = dspy.InputField(desc=_HISTORY_DESC)
    language: str = dspy.InputField(desc=_LANGUAGE_DESC)
    direction: str = dspy.OutputField(desc="the customer's single next step, one sentence")


class WriteCustomerTurn(dspy.Signature):
    """You are the customer in the profile, talking to your bank's support agent. Say your next line.

    Speak as this person really would: one everyday, spoken sentence in your own voice, following the
    direction you were given and reacting to the agent's last turn. Stay in character: never mention
    profiles, directions, scripts or that this is a simulation. Set `finished` to true only when you are
    ending the conversation with this line (you have what you came for, or you give up and say goodbye).
    """

    profile: str = dspy.InputField(desc="who you are, in the second person")
    scenario: str = dspy.InputField(desc="the situation of the call")
    history: str = dspy.InputField(desc=_HISTORY_DESC)
    direction: str = dspy.InputField(desc="what to do in this line")
    language: str = dspy.InputField(desc=_LANGUAGE_DESC)
    utterance: str = dspy.OutputField(desc="your next line, one sentence")
    finished: bool = dspy.OutputField(desc="true when this line ends the conversation, else false")


def choose_strategy_for(taxonomy: Taxonomy) -> type[dspy.Signature]:
    """:class:`ChooseStrategy` for ``taxonomy``: its labels, its flow rules and its strategy guide.

    Example:
        ```python
        signature = choose_strategy_for(load_taxonomy("esconv"))
        ```
    """
    adapted = ChooseStrategy.with_instructions(f"{_CHOOSE_CORE}\n\n{flow_rules_text(taxonomy)}")
    return for_taxonomy(adapted, taxonomy)
