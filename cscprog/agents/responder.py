"""Response generation: the next supporter turn, as a strategy and then a reply conditioned on it.

:class:`ResponseGenerator` is the program of the paper's task (CSC.md section 1). Its inputs are those of
:func:`cscprog.data.next_turn_examples` (``history``, ``language``, ``domain``), so it can be evaluated and
optimized on those examples as it is; its two predictors, ``predict_strategy`` and ``write_reply``, can be
tuned and scored on their own.

Running it over whole dialogues (:func:`respond_dialogue`, :func:`respond_dialogues`) gives one
:class:`TurnPrediction` per supporter turn in either setting of the paper:

* ``"reference"`` context: the history is the gold dialogue (exactly ``dialogue.transcript(k)``, the same
  string :func:`next_turn_examples` gives);
* ``"generated"`` context: every earlier supporter turn is the program's own (its predicted strategy tag and
  its reply) while customer turns stay gold. When the program failed on an earlier supporter turn, that turn
  stays gold in the later histories and ``TurnPrediction.gold_fallbacks`` counts such turns, so no gold text
  enters a generated context unnoticed.

Role: ``responder``.

Example:
    ```python
    import dspy
    from cscprog.agents.responder import ResponseGenerator, respond_dialogue
    from cscprog.samples import load_sample

    generator = ResponseGenerator()
    dialogue = load_sample("annotated_en")[0]
    with dspy.context(lm=dspy.LM("openai/gpt-4o-mini")):
        pred = generator(history=dialogue.transcript(2), language="en", domain=dialogue.domain or "")
        rows = respond_dialogue(generator, dialogue, context="generated")
    pred.strategy, pred.reply
    sum(row.pred_strategy == row.gold_strategy for row in rows) / len(rows)
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import dspy

from cscprog.concurrency import check_call_limits, map_in_threads, run_concurrency
from cscprog.data import Dialogue, Turn, render_transcript
from cscprog.errors import TaxonomyError
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.lm.invoke import GenerationFailure, invoke
from cscprog.roles import Role
from cscprog.signatures import GuidedPredict, PredictStrategy, WriteReply, for_taxonomy, strategy_guide

__all__ = ["CONTEXTS", "ResponseGenerator", "TurnPrediction", "respond_dialogue", "respond_dialogues"]

logger = logging.getLogger(__name__)

ROLE = Role.RESPONDER
"""The LM role of the generator's calls."""

ContextMode = Literal["reference", "generated"]
CONTEXTS: tuple[str, ...] = ("reference", "generated")
"""The two evaluation settings of the paper."""


@dataclass(frozen=True)
class TurnPrediction:
    """The program's output at one supporter turn of a dialogue, next to the gold turn.

    Attributes:
        dialogue_id: The dialogue's id.
        turn_index: 0-based index of the supporter turn in the dialogue.
        context: ``"reference"`` or ``"generated"``.
        history: The transcript the program saw.
        language: The dialogue's language.
        domain: The dialogue's domain ("" when unknown).
        gold_strategy: The turn's annotated strategy (None on unannotated dialogues).
        pred_strategy: The strategy the program used (the gold one under ``use_gold_strategy``); None on failure.
        gold_reply: The turn's text.
        pred_reply: The program's reply; None on failure.
        failure: Why the program produced nothing here, or None.
        gold_fallbacks: Earlier supporter turns in ``history`` that are gold because the program failed on them
            (generated context only; always 0 in reference context).
    """

    dialogue_id: str
    turn_index: int
    context: str
    history: str
    language: str
    domain: str
    gold_strategy: str | None
    pred_strategy: str | None
    gold_reply: str
    pred_reply: str | None
    failure: str | None = None
    gold_fallbacks: int = 0

    @property
    def ok(self) -> bool:
        """True when the program produced a strategy and a reply."""
        return self.failure is None

    def to_json(self) -> dict[str, Any]:
        """Plain data (one JSONL record of ``cscprog respond``)."""
        return asdict(self)


class ResponseGenerator(dspy.Module):
    """Predicts the next supporter strategy, then writes the reply that carries it out.

    Args:
        taxonomy: The strategy taxonomy (default CSC); both signatures follow it.
        use_gold_strategy: Oracle-strategy ablation: never predict the strategy; every call must pass
            ``strategy=`` (in :func:`respond_dialogue`, the gold one).
        attempts: Attempts per predictor call at a parseable, valid output.

    Attributes:
        predict_strategy: ``history, language, domain -> strategy``.
        write_reply: ``history, strategy, language -> reply``. Both are
            :class:`~cscprog.signatures.GuidedPredict`: the taxonomy's definitions stay at the end of their
            instructions when a compile rewrites them.

    Example:
        ```python
        generator = ResponseGenerator()
        pred = generator(history="Customer: Hello, I lost my card.", language="en", domain="risk_security")
        oracle = generator(history="Customer: Hello, I lost my card.", language="en", strategy="Greeting")
        ```
    """

    def __init__(
        self, taxonomy: Taxonomy | None = None, *, use_gold_strategy: bool = False, attempts: int = 3
    ) -> None:
        super().__init__()
        check_call_limits(attempts=attempts)
        self.taxonomy = taxonomy if taxonomy is not None else load_taxonomy("csc")
        self.use_gold_strategy = use_gold_strategy
        self.attempts = attempts
        # the strategy definitions stay in both prompts when an optimizer rewrites the instructions
        guide = strategy_guide(self.taxonomy)
        self.predict_strategy = GuidedPredict(for_taxonomy(PredictStrategy, self.taxonomy), guide)
        self.write_reply = GuidedPredict(for_taxonomy(WriteReply, self.taxonomy), guide)

    def check_strategy(self, prediction: dspy.Prediction) -> str | None:
        """None when ``prediction.strategy`` is one strategy of the taxonomy, else the reason it is not."""
        return self.taxonomy.label_problem(getattr(prediction, "strategy", None))

    @staticmethod
    def check_reply(prediction: dspy.Prediction) -> str | None:
        """None when ``prediction.reply`` holds text, else the reason it does not."""
        reply = getattr(prediction, "reply", None)
        if not isinstance(reply, str) or not reply.strip():
            return "the reply is empty"
        return None

    def forward(
        self, history: str, language: str = "en", domain: str = "", strategy: str | None = None
    ) -> dspy.Prediction:
        """The next supporter turn after ``history``.

        Args:
            history: The conversation so far as a transcript (``Dialogue.transcript(k)``).
            language: ``en`` or ``zh``; the reply is written in it.
            domain: Business domain, a hint for the strategy ("" when unknown).
            strategy: Use this strategy (any label form of the taxonomy) instead of predicting one.

        Returns:
            ``Prediction(strategy=<canonical name>, reply=<text>)``.

        Raises:
            ValueError: ``use_gold_strategy`` is on and no ``strategy`` was given.
            UnknownStrategyError: ``strategy`` is not a strategy of the taxonomy.
            GenerationFailure: a predictor gave no usable output after every attempt.

        Example:
            ```python
            generator(history=example.history, language=example.language, domain=example.domain)
            ```
        """
        if strategy is None:
            if self.use_gold_strategy:
                raise ValueError("use_gold_strategy=True: pass the gold strategy as strategy=...")
            planned = invoke(
                self.predict_strategy,
                role=ROLE,
                attempts=self.attempts,
                validate=self.check_strategy,
                history=history,
                language=language,
                domain=domain,
            )
            chosen = self.taxonomy.parse(planned.strategy).name
        else:
            chosen = self.taxonomy.parse(strategy, where="ResponseGenerator strategy argument").name
        written = invoke(
            self.write_reply,
            role=ROLE,
            attempts=self.attempts,
            validate=self.check_reply,
            history=history,
            strategy=chosen,
            language=language,
        )
        return dspy.Prediction(strategy=chosen, reply=written.reply.strip())


def respond_dialogue(
    generator: ResponseGenerator,
    dialogue: Dialogue,
    context: ContextMode = "reference",
    *,
    concurrency: int | None = 1,
) -> list[TurnPrediction]:
    """Run ``generator`` at every supporter turn of ``dialogue``, in reference or generated context.

    Args:
        generator: The program (its ``use_gold_strategy`` decides whether gold strategies are passed in).
        dialogue: An annotated dialogue (unannotated ones work too: ``gold_strategy`` is then None, and the
            oracle setting records a failure at each such turn).
        context: ``"reference"`` (gold history) or ``"generated"`` (the program's own earlier supporter turns).
        concurrency: Turns run at once in reference context (None: the runtime's setting); generated context
            is sequential by nature.

    Returns:
        One :class:`TurnPrediction` per supporter turn, in turn order. A turn whose predictor failed after its
        retries has ``failure`` set and no prediction; other turns still run.

    Raises:
        ValueError: ``context`` is not one of :data:`CONTEXTS`.

    Example:
        ```python
        rows = respond_dialogue(ResponseGenerator(use_gold_strategy=True), dialogue, "generated")
        ```
    """
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    language = dialogue.language or "en"
    domain = dialogue.domain or ""
    indices = dialogue.supporter_indices()

    def predict(index: int, history: str, fallbacks: int) -> TurnPrediction:
        gold = dialogue.turns[index]
        pred_strategy = pred_reply = failure = None
        if generator.use_gold_strategy and gold.strategy is None:
            failure = "use_gold_strategy: the turn has no gold strategy"
        else:
            try:
                prediction = generator(
                    history=history,
                    language=language,
                    domain=domain,
                    strategy=gold.strategy if generator.use_gold_strategy else None,
                )
                pred_strategy, pred_reply = prediction.strategy, prediction.reply
            except (GenerationFailure, TaxonomyError) as error:
                failure = error.reason if isinstance(error, GenerationFailure) else str(error)
        if failure is not None:
            logger.warning("dialogue %s, turn %d (%s context): %s", dialogue.id, index, context, failure)
        return TurnPrediction(
            dialogue_id=dialogue.id,
            turn_index=index,
            context=context,
            history=history,
            language=language,
            domain=domain,
            gold_strategy=gold.strategy,
            pred_strategy=pred_strategy,
            gold_reply=gold.text,
            pred_reply=pred_reply,
            failure=failure,
            gold_fallbacks=fallbacks,
        )

    if context == "reference":
        workers = run_concurrency(concurrency)
        return map_in_threads(lambda index: predict(index, dialogue.transcript(index), 0), indices, workers)

    rows: list[TurnPrediction] = []
    turns: list[Turn] = list(dialogue.turns)
    fallbacks = 0
    for index in indices:
        history = render_transcript(turns[:index], strategies=True, language=language)
        row = predict(index, history, fallbacks)
        rows.append(row)
        if row.ok:
            turns[index] = Turn(speaker="supporter", text=row.pred_reply or "", strategy=row.pred_strategy)
        else:
            fallbacks += 1
    return rows


def respond_dialogues(
    generator: ResponseGenerator,
    dialogues: Iterable[Dialogue],
    context: ContextMode = "reference",
    *,
    concurrency: int | None = None,
) -> list[TurnPrediction]:
    """:func:`respond_dialogue` over many dialogues, ``concurrency`` dialogues at once, rows in input order.

    Example:
        ```python
        rows = respond_dialogues(generator, load_sample("annotated_en"), "reference", concurrency=8)
        failed = [row for row in rows if not row.ok]
        ```
    """
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    per_dialogue = map_in_threads(
        lambda dialogue: respond_dialogue(generator, dialogue, context, concurrency=1),
        list(dialogues),
        run_concurrency(concurrency),
    )
    return [row for rows in per_dialogue for row in rows]
