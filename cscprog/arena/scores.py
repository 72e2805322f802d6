"""Scores of one arena conversation, and the strategy labels they rest on.

Strategies: when the candidate names a strategy for a turn, that is the turn's strategy; turns without one are
labelled by :class:`~cscprog.agents.classifier.StrategyClassifier` (``metadata["strategy_source"]`` says which).
With ``check_adherence`` the classifier also labels the turns the candidate tagged, and adherence is the share of
tagged turns whose reply the classifier reads as the strategy the candidate named.

Per conversation (:func:`score_conversation`):

* ``resolved`` and its reason (:class:`~cscprog.arena.judges.ResolutionJudge`);
* ``strategy_adherence``: as above; None when the candidate names no strategies (nothing to adhere to) or the
  check is off;
* ``flow_ok`` and ``flow_violations``: :func:`cscprog.framework.check_flow` over the strategies, the closing
  rule checked unless the conversation was cut by the turn cap; a turn the classifier could not label is
  None and breaks no rule by itself;
* ``stage_coverage``: the share of the taxonomy's stages that the strategies visit (the fallback strategy
  belongs to no stage);
* ``supporter_turns`` and ``turns_to_resolution`` (the agent's turns in a resolved conversation, else None);
* ``repetition``: the share of the agent's turns that repeat an earlier agent turn of the same conversation
  (word/character bigram Jaccard similarity of at least :data:`REPEAT_SIMILARITY`); None with one turn;
* ``satisfaction`` (1..5) and its reason, from the customer (None when the agent never spoke: there was no
  call to rate).

Example:
    ```python
    labelled, source, adherence, failures = label_strategies(dialogue, StrategyClassifier())
    scores = score_conversation(labelled, taxonomy, verdict, rating, strategy_source=source,
                                adherence=adherence, label_failures=failures)
    scores.to_json()
    ```
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cscprog.agents.classifier import StrategyClassifier
from cscprog.arena.judges import ResolutionVerdict, SatisfactionRating
from cscprog.arena.simulate import STRATEGY_SOURCE_KEY
from cscprog.data import SUPPORTER, Dialogue
from cscprog.evaluation.metrics.tokens import ngrams, word_tokens
from cscprog.framework import Taxonomy, check_flow

__all__ = ["REPEAT_SIMILARITY", "ConversationScores", "label_strategies", "repetition", "score_conversation"]

REPEAT_SIMILARITY = 0.6
"""Bigram Jaccard similarity at or above which an agent turn counts as repeating an earlier one."""


@dataclass(frozen=True)
class ConversationScores:
    """The scores of one conversation (see the module docstring)."""

    resolved: bool
    resolution_reason: str
    strategy_source: str
    strategy_adherence: float | None
    flow_ok: bool
    flow_violations: list[dict[str, Any]]
    stage_coverage: float
    stages_visited: list[str]
    supporter_turns: int
    turns_to_resolution: int | None
    repetition: float | None
    satisfaction: int | None
    satisfaction_reason: str
    finish_reason: str
    unlabelled_turns: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain data (the ``scores`` of a conversation record)."""
        return asdict(self)


def label_strategies(
    dialogue: Dialogue, classifier: StrategyClassifier | None, *, check_adherence: bool = True
) -> tuple[Dialogue, str, float | None, int]:
    """Give every agent turn a strategy: the candidate's own, else the classifier's.

    Args:
        dialogue: A finished conversation (agent turns with or without strategies).
        classifier: The strategy classifier; None only when every agent turn names a strategy and
            ``check_adherence`` is off.
        check_adherence: Also classify the turns the candidate tagged, to measure adherence.

    Returns:
        ``(labelled copy, strategy source, adherence or None, turns the classifier could not label)``; the
        source is ``emitted``, ``classifier`` or ``mixed``.

    Raises:
        ValueError: a classifier is needed but none was given.
    """
    indices = dialogue.supporter_indices()
    emitted = [i for i in indices if dialogue.turns[i].strategy is not None]
    missing = [i for i in indices if dialogue.turns[i].strategy is None]
    source = "emitted" if not missing else ("classifier" if not emitted else "mixed")
    labelled = dialogue.model_copy(deep=True)
    need_all = check_adherence and bool(emitted)
    if not missing and not need_all:
        return labelled, source, None, 0
    if classifier is None:
        raise ValueError(f"conversation {dialogue.id!r}: agent turns without a strategy need a classifier")
    classified = classifier(dialogue, only_missing=not need_all).dialogue
    failures = 0
    matches: list[bool] = []
    for index in indices:
        label = classified.turns[index].strategy
        turn = labelled.turns[index]
        if index in missing:
            turn.strategy = label
            turn.metadata[STRATEGY_SOURCE_KEY] = "classifier"
            failures += label is None
        elif label is None:
            failures += 1
        else:
            matches.append(label == turn.strategy)
    adherence = sum(matches) / len(matches) if need_all and matches else None
    return labelled, source, adherence, failures


def _bigrams(text: str) -> set[tuple[str, ...]]:
    tokens = word_tokens(text)
    return set(ngrams(tokens, 2)) if len(tokens) > 1 else {tuple(tokens)}


def repetition(texts: list[str], threshold: float = REPEAT_SIMILARITY) -> float | None:
    """The share of ``texts`` (after the first) that repeat an earlier one; None for fewer than two.

    Example:
        ```python
        repetition(["How can I help?", "How can I help you?", "Your card is unblocked."])   # 0.5
        ```
    """
    if len(texts) < 2:
        return None
    grams = [_bigrams(text) for text in texts]
    repeated = 0
    for position in range(1, len(grams)):
        for earlier in grams[:position]:
            union = grams[position] | earlier
            if union and len(grams[position] & earlier) / len(union) >= threshold:
                repeated += 1
                break
    return repeated / (len(texts) - 1)


def score_conversation(
    dialogue: Dialogue,
    taxonomy: Taxonomy,
    verdict: ResolutionVerdict,
    rating: SatisfactionRating | None,
    *,
    strategy_source: str,
    adherence: float | None,
    label_failures: int = 0,
) -> ConversationScores:
    """Every per-conversation score of a labelled conversation (see the module docstring).

    Example:
        ```python
        score_conversation(labelled, csc, ResolutionVerdict(True, "done"), SatisfactionRating(4, "fine"),
                           strategy_source="emitted", adherence=1.0).flow_ok
        ```
    """
    finish_reason = str(dialogue.metadata.get("finish_reason", ""))
    strategies = [turn.strategy for turn in dialogue.turns if turn.speaker == SUPPORTER]
    violations = check_flow(strategies, taxonomy, complete=finish_reason != "cap")
    stages = []
    for name in strategies:
        if name is None or name not in taxonomy.names:
            continue
        stage = taxonomy.stage_of(name)
        if stage in taxonomy.stage_names and stage not in stages:
            stages.append(stage)
    texts = [turn.text for turn in dialogue.turns if turn.speaker == SUPPORTER]
    return ConversationScores(
        resolved=verdict.resolved,
        resolution_reason=verdict.reason,
        strategy_source=strategy_source,
        strategy_adherence=adherence,
        flow_ok=not violations,
        flow_violations=[{"rule": v.rule, "position": v.position, "message": v.message} for v in violations],
        stage_coverage=len(stages) / len(taxonomy.stage_names) if taxonomy.stage_names else 0.0,
        stages_visited=stages,
        supporter_turns=len(strategies),
        turns_to_resolution=len(strategies) if verdict.resolved else None,
        repetition=repetition(texts),
        satisfaction=rating.satisfaction if rating is not None else None,
        satisfaction_reason=rating.reason if rating is not None else "",
        finish_reason=finish_reason,
        unlabelled_turns=label_failures,
    )
