"""Strategy classification: label every supporter turn of a dialogue with one strategy of the taxonomy.

:class:`StrategyClassifier` works on raw dialogues (no labels, turns as they came, the customer may speak
first or twice in a row) and on rewritten ones. Each supporter turn is classified on its own, from the
``context_turns`` turns before it, so the turns of a dialogue run concurrently and the result does not depend
on the order in which they finish. A turn whose label cannot be obtained (output that never parses or never
names a strategy of the taxonomy, after the retries of :func:`cscprog.lm.invoke.invoke`) keeps
``strategy=None`` and is listed in ``failures``; nothing is filled in by default.

Role: ``classifier`` (configure its backend under ``[roles.classifier]``).

Three methods (``method``): ``generate`` asks the model to write the label (any provider); ``score`` has the
embedded model score every label of the taxonomy and takes the likeliest, calibrated against content-free
turns (:class:`cscprog.agents.label_scoring.LabelScorer`); ``trained`` uses a classifier trained on annotated
dialogues (:class:`cscprog.agents.strategy_model.StrategyModel`, ``cscprog train-classifier``; no LM call).
``auto`` (the default) uses the trained model when one is given, else scores when the ``classifier`` role runs
on the embedded model, else generates. Scored and trained labels carry every label's score and the margin
between the best two in ``turn.metadata["strategy_scores"]``.

Example:
    ```python
    import dspy
    from cscprog.agents.classifier import StrategyClassifier
    from cscprog.samples import load_sample

    classifier = StrategyClassifier(concurrency=8)
    with dspy.context(lm=dspy.LM("openai/gpt-4o-mini")):
        result = classifier(load_sample("raw")[0])
    result.dialogue.supporter_strategies()   # ['Greeting', 'Problem Refinement', ...]
    result.failures                          # [] or [TurnFailure(turn_index=5, reason=..., raw_text=...)]
    ```
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import dspy

from cscprog.agents.label_scoring import LabelScorer
from cscprog.agents.strategy_model import StrategyModel, context_text
from cscprog.concurrency import DEFAULT_CONCURRENCY, check_call_limits, map_in_threads, run_concurrency
from cscprog.context import current_runtime
from cscprog.data import Dialogue, render_transcript
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.lm.invoke import GenerationFailure, invoke
from cscprog.lm.local.scoring import local_engine_of
from cscprog.roles import Role
from cscprog.signatures import ClassifyStrategy, ClassifyStrategyWithRationale, for_taxonomy

__all__ = ["DEFAULT_CONCURRENCY", "StrategyClassifier", "TurnFailure"]

logger = logging.getLogger(__name__)

ROLE = Role.CLASSIFIER
"""The LM role of the classifier's calls."""

RATIONALE_KEY = "strategy_rationale"
"""Turn metadata key holding the classifier's rationale (when asked for one)."""

SCORES_KEY = "strategy_scores"
"""Turn metadata key holding the label scores of the ``score`` method."""

METHODS = ("auto", "generate", "score", "trained")
"""How labels are obtained (see the module docstring)."""

FAILURE_KEY = "classification_failure"
"""Turn metadata key holding why a turn could not be classified."""

_NO_CONTEXT = "(no earlier turns shown)"

def _scored(best: str, scores: dict[str, float]) -> dspy.Prediction:
    """The prediction of a label chosen by scores: every score and the margin between the best two."""
    ranked = sorted(scores.values(), reverse=True)
    margin = round(ranked[0] - ranked[1], 4) if len(ranked) > 1 else None
    return dspy.Prediction(strategy=best, rationale=None, scores={k: round(v, 4) for k, v in scores.items()},
                           margin=margin)


def _trained(model: StrategyModel, turns: list[tuple[str, str]]) -> list[dspy.Prediction]:
    """Labels of ``(context, utterance)`` pairs from a trained model, in one batch."""
    predictions = model.predict([utterance for _, utterance in turns], [context for context, _ in turns])
    return [_scored(best, scores) for best, scores in predictions]


@dataclass(frozen=True)
class TurnFailure:
    """A turn the model could not handle after every retry.

    Attributes:
        turn_index: 0-based index of the turn in the dialogue.
        reason: Why the last attempt was rejected.
        raw_text: The raw LM text of the last attempt, when there was one.
    """

    turn_index: int
    reason: str
    raw_text: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for reports and manifests."""
        return asdict(self)


class StrategyClassifier(dspy.Module):
    """Annotates every supporter turn of a dialogue with one strategy of the taxonomy.

    Args:
        taxonomy: The strategy taxonomy (default: CSC's 12 strategies); the signature's label type and
            strategy guide follow it.
        context_turns: How many turns before the utterance the model sees (0: none).
        rationale: Ask for a short rationale before the label (kept in ``turn.metadata["strategy_rationale"]``).
        tagged_context: Show the strategy tags already present on the context turns. Off by default, so a
            dialogue is labelled the same whether or not it was annotated before.
        concurrency: Turns classified at once; None: the active runtime's ``[run] concurrency``, else 4.
        attempts: Attempts per turn at a parseable, valid label.
        method: ``auto``, ``generate`` or ``score`` (see the module docstring).
        calibrate: With ``score``, score labels relative to their content-free prior.
        model: A trained :class:`~cscprog.agents.strategy_model.StrategyModel` for ``trained`` (and ``auto``).

    Attributes:
        classify: The ``dspy.Predict`` that labels one turn (what optimizers tune).

    Example:
        ```python
        classifier = StrategyClassifier(load_taxonomy("esconv"), context_turns=4, rationale=True)
        pred = classifier.classify_turn("Seeker: I failed my exam.", "That sounds really hard.", "en")
        pred.strategy, pred.rationale
        ```
    """

    def __init__(
        self,
        taxonomy: Taxonomy | None = None,
        *,
        context_turns: int = 6,
        rationale: bool = False,
        tagged_context: bool = False,
        concurrency: int | None = None,
        attempts: int = 3,
        method: str = "auto",
        calibrate: bool = True,
        model: StrategyModel | None = None,
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if method == "trained" and model is None:
            raise ValueError("method='trained' needs a model (StrategyModel.load(directory, taxonomy))")
        if model is not None and taxonomy is not None and model.taxonomy.names != taxonomy.names:
            raise ValueError(f"the model was trained for taxonomy {model.taxonomy.name!r}, not {taxonomy.name!r}")
        if context_turns < 0:
            raise ValueError(f"context_turns must be >= 0, got {context_turns}")
        check_call_limits(attempts=attempts, concurrency=concurrency)
        if taxonomy is None:
            taxonomy = model.taxonomy if model is not None else load_taxonomy("csc")
        self.taxonomy = taxonomy
        self.context_turns = context_turns
        self.rationale = rationale
        self.tagged_context = tagged_context
        self.concurrency = concurrency
        self.attempts = attempts
        self.model = model
        self.method = "trained" if method == "auto" and model is not None else method
        self.scorer = LabelScorer(self.taxonomy, calibrate=calibrate)
        signature = ClassifyStrategyWithRationale if rationale else ClassifyStrategy
        self.classify = dspy.Predict(for_taxonomy(signature, self.taxonomy))

    # -- one turn ---------------------------------------------------------------------------------------------------

    def check_label(self, prediction: dspy.Prediction) -> str | None:
        """None when ``prediction.strategy`` is one strategy of the taxonomy, else the reason it is not."""
        return self.taxonomy.label_problem(getattr(prediction, "strategy", None))

    def scoring_lm(self) -> Any | None:
        """The embedded LM the ``score`` method uses, or None when this classifier generates its labels.

        Raises:
            ValueError: ``method="score"`` and the classifier's LM is not the embedded model.
        """
        if self.method in ("generate", "trained"):
            return None
        runtime = current_runtime()
        lm = runtime.lm(ROLE) if runtime is not None else dspy.settings.lm
        if local_engine_of(lm) is not None:
            return lm
        if self.method == "score":
            raise ValueError("method='score' needs the embedded model for the classifier role (lm.model = 'local')")
        return None

    def classify_turn(self, context: str, utterance: str, language: str = "en") -> dspy.Prediction:
        """Label one supporter utterance.

        Args:
            context: The preceding turns as a transcript (``render_transcript``), or "" for none.
            utterance: The supporter's text.
            language: ``en`` or ``zh``.

        Returns:
            ``Prediction(strategy=<canonical name>, rationale=<text or None>)``.

        Raises:
            GenerationFailure: no attempt gave a parseable strategy of the taxonomy.

        Example:
            ```python
            classifier.classify_turn("Customer: Hi, my card is blocked.", "I can help with that.", "en").strategy
            ```
        """
        if self.model is not None and self.method == "trained":
            return _trained(self.model, [(context, utterance)])[0]
        lm = self.scoring_lm()
        if lm is not None:
            return _scored(*self.scorer.choose(lm, context, utterance, language))
        prediction = invoke(
            self.classify,
            role=ROLE,
            attempts=self.attempts,
            validate=self.check_label,
            context=context or _NO_CONTEXT,
            utterance=utterance,
            language=language,
        )
        strategy = self.taxonomy.parse(prediction.strategy).name
        rationale = str(prediction.rationale).strip() if self.rationale else None
        return dspy.Prediction(strategy=strategy, rationale=rationale, scores=None, margin=None)

    def context_of(self, dialogue: Dialogue, index: int) -> str:
        """The context transcript the model sees for turn ``index``."""
        if index == 0:
            return render_transcript([], language=dialogue.language or "en")
        if self.context_turns == 0:
            return _NO_CONTEXT
        start = max(0, index - self.context_turns)
        return render_transcript(
            dialogue.turns[start:index], strategies=self.tagged_context, language=dialogue.language or "en"
        )

    # -- a dialogue -------------------------------------------------------------------------------------------------

    def forward(self, dialogue: Dialogue, *, only_missing: bool = False) -> dspy.Prediction:
        """Classify the supporter turns of ``dialogue``.

        Args:
            dialogue: Raw or rewritten; turns are kept as they are (no merging).
            only_missing: Classify only supporter turns without a strategy; keep the others' labels.

        Returns:
            ``Prediction(dialogue=<annotated copy>, failures=[TurnFailure, ...])``. A classified turn gets
            exactly one strategy (``extra_strategies`` cleared); a failed turn gets ``strategy=None`` and its
            reason in ``turn.metadata["classification_failure"]``. The input dialogue is not modified.

        Example:
            ```python
            result = classifier(dialogue, only_missing=True)
            ```
        """
        language = dialogue.language or "en"
        targets = [
            index
            for index in dialogue.supporter_indices()
            if not (only_missing and dialogue.turns[index].strategy is not None)
        ]

        def run(index: int) -> dspy.Prediction | TurnFailure:
            try:
                return self.classify_turn(self.context_of(dialogue, index), dialogue.turns[index].text, language)
            except GenerationFailure as failure:
                logger.warning("dialogue %s, turn %d: not classified: %s", dialogue.id, index, failure.reason)
                return TurnFailure(index, failure.reason, failure.raw_text)

        if self.model is not None and self.method == "trained":
            # one batch: the encoder embeds every turn at once, no LM call
            outcomes: list[dspy.Prediction | TurnFailure] = list(_trained(self.model, [
                (context_text(dialogue, index, self.model.context_turns), dialogue.turns[index].text)
                for index in targets]))
        else:
            outcomes = map_in_threads(run, targets, run_concurrency(self.concurrency))
        annotated = dialogue.model_copy(deep=True)
        failures: list[TurnFailure] = []
        for index, outcome in zip(targets, outcomes, strict=True):
            turn = annotated.turns[index]
            turn.extra_strategies = []
            turn.metadata.pop(RATIONALE_KEY, None)
            turn.metadata.pop(SCORES_KEY, None)
            turn.metadata.pop(FAILURE_KEY, None)
            if isinstance(outcome, TurnFailure):
                failures.append(outcome)
                turn.strategy = None
                turn.metadata[FAILURE_KEY] = outcome.reason
            else:
                turn.strategy = outcome.strategy
                if outcome.rationale is not None:
                    turn.metadata[RATIONALE_KEY] = outcome.rationale
                if outcome.scores is not None:
                    turn.metadata[SCORES_KEY] = {"margin": outcome.margin, "scores": outcome.scores}
        return dspy.Prediction(dialogue=annotated, failures=failures)
