"""Role-play synthesis (RoleCS): five LLM roles talk a customer profile and a topic into a support dialogue.

:class:`RolePlaySimulator` runs the loop of the method: the planner turns profile + topic into the customer's
goal and the situation; then the supporter always speaks first, and each round is

1. the supporter assistant picks the strategy of the next supporter turn (flow rules in its instructions;
   a label outside the taxonomy, after retries, becomes the fallback ``Others`` and is counted),
2. the supporter writes a one- or two-sentence reply following it,
3. the customer assistant gives the customer one next step (the *direction*),
4. the customer says one sentence and whether it is finished (a real ``bool``: "false" never ends a dialogue).

Each supporter and customer turn is checked against the degenerate-text rules before it joins the dialogue
(:func:`cscprog.rolecs.checks.fresh_turn`: no repeat of an earlier turn, no copy of the scenario, goal or
profile, no loop); a failing turn is asked for again with a new seed, so one bad sample does not spoil a
dialogue (the judge's rule check still runs on the whole dialogue).

The dialogue stops when the closing strategy is chosen (its reply is still written), right after the
supporter's next turn once the customer is finished, or at the utterance cap: as in the method's own loop, a
capped dialogue ends on a supporter turn, so it has at most ``max_utterances`` utterances (49 under the cap of
50: the supporter speaks first, so an even cap would otherwise end on the customer). With
``hard_flow_guard=True`` the two flow rules that can be decided before a turn is written are also enforced
in code (:func:`cscprog.framework.allowed_next`): a non-opening first strategy is replaced by the opening one,
and a third repeat is re-asked with the repeated strategy removed from the allowed labels.

Failures: a role call that still fails after its retries (unparseable or empty output, transient LM errors
beyond ``num_retries``, a context-window overflow) raises :class:`RolePlayFailure`, which carries the
dialogue id, the role and the partial dialogue; nothing unfinished is returned as if it were a dialogue. A
run records it and re-runs the dialogue on resume. Budget, configuration and replay-cache errors propagate
unchanged: they stop the run, not one dialogue.

Determinism: the simulator draws no random numbers. Every prompt is a function of the profile, the topic,
the language and the turns so far, so a fixed configuration (temperature, seed) and cache give identical
dialogues; the dialogue id is not part of any prompt.

Example:
    ```python
    from cscprog.rolecs.plan import TOPICS, synthesis_plan
    from cscprog.rolecs.roleplay import RolePlaySimulator
    from cscprog.lm.runtime import Runtime
    from cscprog.samples import load_profiles

    simulator = RolePlaySimulator(hard_flow_guard=True)
    runtime = Runtime.from_config()
    with runtime.activate():
        for dialogue_id, profile, topic in synthesis_plan(load_profiles(), TOPICS, n=3):
            dialogue = simulator(profile=profile, topic=topic, dialogue_id=dialogue_id).dialogue
            print(dialogue.id, dialogue.metadata["finish_reason"], len(dialogue.turns))
    ```
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import dspy
from dspy.utils.exceptions import ContextWindowExceededError, is_retryable_lm_error

from cscprog.config import RunSettings
from cscprog.context import current_runtime
from cscprog.data import CUSTOMER, LANGUAGES, SUPPORTER, Dialogue, Profile, Scenario, Turn
from cscprog.errors import CscprogError, UnknownStrategyError
from cscprog.framework import Taxonomy, allowed_next, check_flow, load_taxonomy
from cscprog.lm.invoke import GenerationFailure, invoke
from cscprog.rolecs.checks import check_customer_turn, fresh_turn, label_in_raw, require_fields
from cscprog.rolecs.plan import dialogue_id_for
from cscprog.rolecs.state import DialogueState
from cscprog.roles import Role
from cscprog.signatures import (
    DirectCustomer,
    PlanScenario,
    WriteCustomerTurn,
    WriteSupporterTurn,
    choose_strategy_for,
    for_taxonomy,
)

__all__ = ["FINISH_REASONS", "TURN_ATTEMPTS", "RolePlayFailure", "RolePlaySimulator"]

logger = logging.getLogger(__name__)

FINISH_REASONS = ("closing", "customer_finished", "cap")
"""Why a simulated dialogue ended: the closing strategy was chosen, the supporter answered a customer who had
finished, or the utterance cap was reached."""


_FAILING_ERRORS = (GenerationFailure, ContextWindowExceededError)
TURN_ATTEMPTS = 4
"""Fewest attempts at a supporter or customer turn: a turn the degenerate-text rules refuse is sampled again (on
the demo's 0.5B model two attempts left the customer echoing the supporter's greeting in both dialogues)."""


class RolePlayFailure(CscprogError):
    """A role call failed after its retries; the dialogue is unfinished and should be re-run.

    Attributes:
        dialogue_id: The dialogue being simulated.
        role: The role whose call failed (``planner``, ``supporter_assistant``...).
        reason: What went wrong.
        partial: The dialogue as far as it got (scenario and turns), with ``finish_reason`` absent.
    """

    def __init__(self, dialogue_id: str, role: str, reason: str, partial: Dialogue) -> None:
        self.dialogue_id = dialogue_id
        self.role = role
        self.reason = reason
        self.partial = partial
        super().__init__(f"dialogue {dialogue_id}: {role} failed after {len(partial.turns)} turn(s): {reason}")


class RolePlaySimulator(dspy.Module):
    """The five role-play roles and the conversation loop of RoleCS.

    Args:
        taxonomy: The strategy taxonomy (CSC by default); strategy labels and flow rules follow it.
        max_utterances: Stop after this many utterances. None: the active runtime's
            ``run.max_utterances``, else the configuration default (50).
        hard_flow_guard: Also enforce in code the opening strategy and the no-third-repeat rule.
        attempts: Attempts per role call for unparseable or rejected output (see :func:`invoke`).

    Attributes:
        planner: profile + topic -> goal + scenario (role ``planner``).
        supporter_assistant: scenario + history -> strategy (role ``supporter_assistant``).
        supporter: scenario + strategy + history -> reply (role ``supporter``).
        customer_assistant: scenario + goal + profile + history -> direction (role ``customer_assistant``).
        customer: profile + scenario + history + direction -> utterance + finished (role ``customer``).

    Example:
        ```python
        simulator = RolePlaySimulator(max_utterances=20)
        with dspy.context(lm=lm):
            dialogue = simulator(profile=profile, topic="complaints and disputes").dialogue
        ```
    """

    def __init__(
        self,
        taxonomy: Taxonomy | None = None,
        *,
        max_utterances: int | None = None,
        hard_flow_guard: bool = False,
        attempts: int = 3,
    ) -> None:
        super().__init__()
        if max_utterances is not None and max_utterances < 2:
            raise ValueError(f"max_utterances must be >= 2, got {max_utterances}")
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.taxonomy = taxonomy if taxonomy is not None else load_taxonomy("csc")
        self.max_utterances = max_utterances
        self.hard_flow_guard = hard_flow_guard
        self.attempts = attempts
        self.planner = dspy.Predict(PlanScenario)
        self.supporter_assistant = dspy.Predict(choose_strategy_for(self.taxonomy))
        self.supporter = dspy.Predict(for_taxonomy(WriteSupporterTurn, self.taxonomy))
        self.customer_assistant = dspy.Predict(DirectCustomer)
        self.customer = dspy.Predict(WriteCustomerTurn)

    # -- settings ---------------------------------------------------------------------------------------------

    def _cap(self) -> int:
        if self.max_utterances is not None:
            return self.max_utterances
        runtime = current_runtime()
        return runtime.config.run.max_utterances if runtime is not None else RunSettings().max_utterances

    @staticmethod
    def _language(profile: Profile, language: str | None) -> str:
        if language is None:
            runtime = current_runtime()
            language = profile.language or (runtime.config.run.language if runtime is not None else "en")
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
        return language

    # -- role calls -------------------------------------------------------------------------------------------

    def _call(self, state: DialogueState, role: str, predictor: dspy.Predict, validate: Any, **inputs: Any) -> Any:
        attempts = max(self.attempts, TURN_ATTEMPTS) if role in (Role.SUPPORTER, Role.CUSTOMER) else self.attempts
        try:
            return invoke(predictor, role=role, attempts=attempts, validate=validate, **inputs)
        except Exception as error:
            raise self._failure(state, role, error) from error

    @staticmethod
    def _failure(state: DialogueState, role: str, error: Exception) -> Exception:
        """The :class:`RolePlayFailure` for a failed role call, or ``error`` itself when it is run-level."""
        if not isinstance(error, _FAILING_ERRORS) and not is_retryable_lm_error(error):
            return error
        reason = str(error) if isinstance(error, GenerationFailure) else f"{type(error).__name__}: {error}"
        partial = state.dialogue({"unknown_strategies": state.unknown, "guard_corrections": state.corrections})
        logger.warning("dialogue %s: %s failed: %s", state.dialogue_id, role, reason)
        return RolePlayFailure(state.dialogue_id, role, reason, partial)

    def _ask_strategy(self, state: DialogueState, allowed: tuple[str, ...] | None) -> tuple[str, str | None]:
        """(strategy, the unknown label it replaced or None); ``allowed`` restricts the labels offered."""
        inputs: dict[str, Any] = {
            "scenario": state.scenario.text if state.scenario else "",
            "history": state.transcript(strategies=True),
            "language": state.language,
        }
        validate = None
        if allowed is not None:
            inputs["signature"] = self.supporter_assistant.signature.with_updated_fields(
                "strategy", type_=Literal[allowed]  # type: ignore[valid-type]
            )

            def validate(prediction: dspy.Prediction) -> str | None:
                return None if prediction.strategy in allowed else f"{prediction.strategy!r} is not allowed now"

        role = Role.SUPPORTER_ASSISTANT
        try:
            prediction = invoke(
                self.supporter_assistant, role=role, attempts=self.attempts, validate=validate, **inputs
            )
        except GenerationFailure as error:
            label = label_in_raw(error.raw_text)
            if label is None:
                raise self._failure(state, role, error) from error
            strategy, unknown = self._resolve_label(label)
            if strategy is None or (allowed is not None and strategy not in allowed):
                raise self._failure(state, role, error) from error
            return strategy, unknown
        except Exception as error:
            raise self._failure(state, role, error) from error
        return prediction.strategy, None

    def _resolve_label(self, label: str) -> tuple[str | None, str | None]:
        """A label the adapter rejected: (its strategy, None) for an alias, else (the fallback, the label)."""
        try:
            return self.taxonomy.parse(label).name, None
        except UnknownStrategyError:
            return self.taxonomy.fallback, label

    def _choose(self, state: DialogueState) -> tuple[str, dict[str, Any]]:
        """The next supporter strategy and the turn's metadata (unknown label replaced, guard correction)."""
        metadata: dict[str, Any] = {}
        strategy, unknown = self._ask_strategy(state, None)
        if unknown is not None:
            state.unknown += 1
            metadata["unknown_strategy"] = unknown
        if not self.hard_flow_guard:
            return strategy, metadata
        history = state.supporter_strategies()
        allowed = allowed_next(history, self.taxonomy)
        if strategy in allowed:
            return strategy, metadata
        rule = "opening" if not history else "repeat"
        if len(allowed) == 1:
            corrected = allowed[0]
        else:
            corrected, unknown = self._ask_strategy(state, allowed)
            if unknown is not None:
                state.unknown += 1
                metadata["unknown_strategy"] = unknown
        state.corrections += 1
        metadata["guard"] = {"rule": rule, "proposed": strategy}
        logger.info("dialogue %s: flow guard (%s) replaced %s by %s", state.dialogue_id, rule, strategy, corrected)
        return corrected, metadata

    # -- the loop ---------------------------------------------------------------------------------------------

    def forward(
        self,
        profile: Profile,
        topic: str,
        *,
        dialogue_id: str | None = None,
        language: str | None = None,
    ) -> dspy.Prediction:
        """Simulate one dialogue of ``profile`` on ``topic``.

        Args:
            profile: The customer; its description is used when present (see
                :func:`cscprog.rolecs.profiles.verbalize`), else its structured facts.
            topic: What the call is about (one of :data:`TOPICS` or any other).
            dialogue_id: The id of the result (default :func:`dialogue_id_for`); not part of any prompt.
            language: ``en`` or ``zh``; default the profile's language, else the active runtime's
                ``run.language``, else ``en``.

        Returns:
            ``Prediction(dialogue=Dialogue)``: turns alternating from the supporter, ``profile``,
            ``scenario`` (topic, goal, text), ``metadata["direction"]`` (and ``["finished"]``) on customer
            turns, and dialogue ``metadata`` with ``finish_reason``, ``unknown_strategies``,
            ``guard_corrections``, ``max_utterances``, ``hard_flow_guard`` and ``flow_violations``.

        Raises:
            RolePlayFailure: a role call failed after its retries.
            ValueError: an empty topic, a profile with neither description nor facts, or an unknown language.
        """
        topic = topic.strip()
        if not topic:
            raise ValueError("topic must not be empty")
        profile_text = profile.as_prompt()
        if not profile_text:
            raise ValueError(f"profile {profile.id!r} has neither a description nor any structured fact")
        language = self._language(profile, language)
        cap = self._cap()
        state = DialogueState(dialogue_id or dialogue_id_for(profile, topic), profile, topic, language)

        plan = self._call(
            state, Role.PLANNER, self.planner, require_fields("goal", "scenario"),
            profile=profile_text, topic=topic, language=language,
        )
        state.scenario = Scenario(topic=topic, goal=plan.goal.strip(), text=plan.scenario.strip())
        closing = self.taxonomy.flow.closing
        customer_finished = False
        while True:
            strategy, turn_metadata = self._choose(state)
            context = [state.scenario.text, state.scenario.goal, profile_text]
            fresh = fresh_turn(state.turns, SUPPORTER, "reply", context, strategy=strategy, language=state.language)
            reply = self._call(
                state, Role.SUPPORTER, self.supporter, fresh,
                scenario=state.scenario.text, strategy=strategy, history=state.transcript(strategies=True),
                language=language,
            ).reply.strip()
            state.turns.append(Turn(speaker=SUPPORTER, text=reply, strategy=strategy, metadata=turn_metadata))
            if customer_finished:
                reason = "customer_finished"
                break
            if closing is not None and strategy == closing:
                reason = "closing"
                break
            if len(state.turns) >= cap - 1:  # no room left for a customer turn and the supporter's answer
                reason = "cap"
                break
            history = state.transcript(strategies=False)
            direction = self._call(
                state, Role.CUSTOMER_ASSISTANT, self.customer_assistant, require_fields("direction"),
                scenario=state.scenario.text, goal=state.scenario.goal, profile=profile_text, history=history,
                language=language,
            ).direction.strip()
            said = self._call(
                state, Role.CUSTOMER, self.customer,
                fresh_turn(state.turns, CUSTOMER, "utterance", context, check_customer_turn, language=state.language),
                profile=profile_text, scenario=state.scenario.text, history=history, direction=direction,
                language=language,
            )
            customer_finished = said.finished
            state.turns.append(Turn(
                speaker=CUSTOMER, text=said.utterance.strip(),
                metadata={"direction": direction, "finished": customer_finished},
            ))

        violations = check_flow(state.supporter_strategies(), self.taxonomy, complete=reason != "cap")
        dialogue = state.dialogue({
            "source": "roleplay",
            "finish_reason": reason,
            "unknown_strategies": state.unknown,
            "guard_corrections": state.corrections,
            "hard_flow_guard": self.hard_flow_guard,
            "max_utterances": cap,
            "flow_violations": [{"rule": v.rule, "position": v.position} for v in violations],
        })
        return dspy.Prediction(dialogue=dialogue)
