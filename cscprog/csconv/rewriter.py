"""The CSConv rewriting pipeline as one DSPy module: filter a raw call, rewrite it with strategies, filter again.

:class:`Rewriter` runs, for one raw dialogue:

1. the rule pre-filter (:func:`cscprog.csconv.prefilter.prefilter`, thresholds from :class:`PrefilterRules`);
2. the LLM pre-filter ``screen`` (:class:`cscprog.signatures.ScreenCall`, role ``rewriter``): drops calls with
   abusive language or a poor agent attitude;
3. the rewrite (role ``rewriter``), in one of four output structures: ``turns``
   (:class:`cscprog.signatures.RewriteDialogue`, predictor ``rewrite``), a free list of labelled turns whose
   labels are validated against the taxonomy; ``exchanges``
   (:class:`cscprog.signatures.exchanges.RewriteAsExchanges`, predictor ``rewrite_exchanges``), one answer in a
   shape in which speakers alternate and the opening, verification and closing strategies sit where the flow
   rules put them (under its JSON-schema grammar on the embedded model); ``stepwise`` (one call per turn in
   that shape); or ``anchored`` (:class:`cscprog.csconv.anchored.AnchoredRewrite`): every turn of the real call
   kept in order, each supporter line rewritten from its own text and checked to stay close to it.
   ``structure="auto"`` uses ``anchored`` when the ``rewriter`` role runs on the embedded model (on 6 real
   banking calls with the 0.5B model ``exchanges`` and ``stepwise`` kept none), else ``turns``. Budgets are
   sized from the call (:func:`rewrite_budget`); a truncated output is retried with twice the budget, never
   parsed. A rewrite still unusable after the retries is a failure of this stage (rule ``unfaithful_turn`` when
   an anchored line kept failing its closeness check);
4. the rule post-filters (:func:`cscprog.csconv.postfilter.postfilter`): system notes stripped, multi-label turns,
   the taxonomy's required strategies, alternation; then the degenerate-text checks
   (:func:`cscprog.csconv.degenerate.check_degenerate`: empty, runaway, repeated or looping turns, a customer
   speaking as the supporter), each a named rule of this stage;
5. the LLM judge ``judge_rewrite`` (:class:`cscprog.signatures.JudgeRewrite`, role ``judge``): only "high"
   quality is kept, and only when the verdict's own criteria (ended completely, strategies followed, no noise)
   all hold (rule ``criteria`` otherwise).

The method lists the judge before the rule post-filters; every filter must pass, so running the free rule
checks first only changes which reason is recorded, and saves the judge call on dialogues they drop.

Every dialogue gets a :class:`RewriteDecision`; a :class:`cscprog.lm.invoke.GenerationFailure` is a recorded failure.

Example:
    ```python
    import dspy
    from cscprog.csconv.rewriter import Rewriter, decision_counts
    from cscprog.samples import load_sample

    rewriter = Rewriter(use_judge=False)
    with dspy.context(lm=dspy.LM("openai/gpt-4o-mini")):
        results = [rewriter(dialogue=d) for d in load_sample("raw")]
    kept = [r.dialogue for r in results if r.decision.kept]
    print(decision_counts(r.decision for r in results))
    ```
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import dspy

from cscprog.context import current_runtime
from cscprog.csconv.anchored import AnchoredRewrite
from cscprog.csconv.degenerate import check_degenerate
from cscprog.csconv.postfilter import postfilter
from cscprog.csconv.prefilter import FilterDecision, PrefilterRules, prefilter
from cscprog.csconv.stepwise import StepwiseRewrite
from cscprog.data import LANGUAGES, Dialogue, Turn
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.lm.invoke import GenerationFailure, invoke
from cscprog.roles import Role
from cscprog.signatures.adapt import for_taxonomy
from cscprog.signatures.exchanges import (
    RewriteAsExchanges,
    draft_of,
    exchange_turns,
    rewrite_model,
    supports_exchanges,
)
from cscprog.signatures.rewriting import ScreenCall, judge_signature, rewrite_signature

__all__ = ["STAGES", "STRUCTURES", "RewriteDecision", "RewriteStage", "Rewriter", "decision_counts", "rewrite_budget"]

logger = logging.getLogger(__name__)

RewriteStage = Literal["prefilter", "screen", "rewrite", "postfilter", "judge"]
"""A step of the CSConv pipeline (not a :class:`cscprog.framework.Stage` of the taxonomy)."""
STAGES: tuple[RewriteStage, ...] = get_args(RewriteStage)
"""The pipeline steps, in the order they run."""

Structure = Literal["auto", "anchored", "stepwise", "exchanges", "turns"]
STRUCTURES: tuple[Structure, ...] = get_args(Structure)
"""The rewrite's output structures (see the module docstring)."""

MIN_BUDGET = 512
"""Fewest completion tokens a rewrite is given."""
ANCHORED_ATTEMPTS = 5  # fewest attempts per line of the anchored rewrite: one failing line drops the call
GENERATION_FAILURE = "generation_failure"
"""The ``rule`` of a decision recording an LLM stage that produced no usable output."""


@dataclass(frozen=True)
class RewriteDecision:
    """What the pipeline decided about one raw dialogue.

    Attributes:
        kept: True when the rewritten dialogue passed every filter.
        stage: The stage that dropped it, or for a kept dialogue the last stage that ran.
        rule: The rule that dropped it (``min_pairs``, ``abusive_language``, ``generation_failure``,
            ``multi_label``, ``quality``...); None when kept.
        reason: A sentence saying why.
        details: Figures behind the decision (pre-filter counts, stripped notes...).

    Example:
        ```python
        RewriteDecision(False, "judge", "quality", "judged 'medium': the call is cut off")
        ```
    """

    kept: bool
    stage: RewriteStage
    rule: str | None = None
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        """Plain data (stored in the rewritten dialogue's metadata)."""
        return {"kept": self.kept, "stage": self.stage, "rule": self.rule, "reason": self.reason,
                "details": dict(self.details)}


def decision_counts(decisions: Iterable[RewriteDecision]) -> dict[str, int]:
    """How many dialogues were kept, and dropped by each ``stage:rule``, sorted by key.

    Example:
        ```python
        decision_counts(r.decision for r in results)   # {'kept': 9, 'prefilter:min_pairs': 1, ...}
        ```
    """
    counts = Counter("kept" if d.kept else f"{d.stage}:{d.rule}" for d in decisions)
    return dict(sorted(counts.items()))


class Rewriter(dspy.Module):
    """Rewrite and annotate raw support calls (CSConv): rule and LLM pre-filters, rewrite, post-filters, judge.

    One dialogue per call, synchronously; run many with ``dspy.Parallel`` (it carries the runtime into threads).

    Args:
        taxonomy: The strategy taxonomy (CSC by default): labels, strategy guide, flow rules and the
            strategies the post-filter requires.
        rules: Thresholds of the rule pre-filter.
        use_screen: Run the LLM pre-filter.
        use_judge: Run the LLM judge.
        language: ``"en"`` or ``"zh"``: the language of the rewritten dialogues; None keeps each input's.
        attempts: Attempts at a usable output per LLM call (parse failures, invalid labels, truncation).
        structure: ``anchored``, ``stepwise``, ``exchanges``, ``turns``, or ``auto`` (anchored on the embedded
            model, else turns).

    Attributes:
        screen: The LLM pre-filter predictor (role ``rewriter``).
        rewrite: The rewriting predictor of the ``turns`` structure (role ``rewriter``).
        rewrite_exchanges: The rewriting predictor of the ``exchanges`` structure (role ``rewriter``).
        rewrite_steps: The step-by-step rewrite (:class:`cscprog.csconv.stepwise.StepwiseRewrite`).
        rewrite_anchored: The turn-anchored rewrite (:class:`cscprog.csconv.anchored.AnchoredRewrite`).
        judge_rewrite: The LLM post-filter predictor (role ``judge``).

    Example:
        ```python
        rewriter = Rewriter(rules=PrefilterRules(max_pairs=20), language="zh")
        with runtime.activate():
            result = rewriter(dialogue=raw)
        result.decision.kept, result.dialogue
        ```
    """

    def __init__(
        self,
        taxonomy: Taxonomy | None = None,
        *,
        rules: PrefilterRules | None = None,
        use_screen: bool = True,
        use_judge: bool = True,
        language: str | None = None,
        attempts: int = 3,
        structure: Structure = "auto",
    ) -> None:
        super().__init__()
        if structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {', '.join(STRUCTURES)}, got {structure!r}")
        if language is not None and language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)} or None, got {language!r}")
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.taxonomy = taxonomy if taxonomy is not None else load_taxonomy("csc")
        self.rules = rules if rules is not None else PrefilterRules()
        self.use_screen = use_screen
        self.use_judge = use_judge
        self.language = language
        self.attempts = attempts
        self.structure = structure
        self.screen = dspy.Predict(ScreenCall)
        self.rewrite = dspy.Predict(rewrite_signature(self.taxonomy))
        self.rewrite_exchanges = dspy.Predict(for_taxonomy(RewriteAsExchanges, self.taxonomy, fields=()))
        self.rewrite_steps = StepwiseRewrite(self.taxonomy, attempts=attempts)
        self.rewrite_anchored = AnchoredRewrite(self.taxonomy, attempts=max(attempts, ANCHORED_ATTEMPTS))
        self.judge_rewrite = dspy.Predict(judge_signature(self.taxonomy))

    # -- checks -------------------------------------------------------------------------------------------------

    def check_rewrite(self, prediction: dspy.Prediction) -> str | None:
        """Why a rewrite is unusable (None when usable): every supporter turn labelled with the taxonomy's
        strategies, no label on customer turns, no empty text. Used as ``invoke``'s ``validate``."""
        turns = prediction.rewritten
        if not turns:
            return "the rewrite has no turns"
        names = set(self.taxonomy.names)
        for index, turn in enumerate(turns):
            if not turn.text.strip():
                return f"turn {index} has no text"
            labels = ([turn.strategy] if turn.strategy else []) + list(turn.extra_strategies)
            unknown = [label for label in labels if label not in names]
            if unknown:
                return f"turn {index}: {unknown[0]!r} is not a strategy of taxonomy {self.taxonomy.name!r}"
            if turn.speaker == "supporter" and not labels:
                return f"supporter turn {index} has no strategy"
            if turn.speaker == "customer" and labels:
                return f"customer turn {index} carries a strategy ({', '.join(labels)}); only supporter turns do"
        return None

    def check_exchanges(self, prediction: dspy.Prediction) -> str | None:
        """Why a structured rewrite is unusable (None when usable): a turn without text."""
        for index, turn in enumerate(exchange_turns(prediction.rewritten, self.taxonomy)):
            if not turn.text.strip():
                return f"turn {index} has no text"
        return None

    def resolved_structure(self) -> Literal["anchored", "stepwise", "exchanges", "turns"]:
        """The structure this call uses: ``auto`` is ``anchored`` when the ``rewriter`` role is the embedded
        model, else ``turns``; a taxonomy without opening and closing strategies always uses ``turns``."""
        if self.structure == "turns" or not supports_exchanges(self.taxonomy):
            return "turns"
        if self.structure != "auto":
            return self.structure
        runtime = current_runtime()
        local = runtime is not None and runtime.settings(Role.REWRITER).is_local
        return "anchored" if local else "turns"

    def _rewrite(self, merged: Dialogue, transcript: str, language: str, domain: str) -> tuple[list[Turn], str]:
        """Run the rewrite in the resolved structure: ``(turns, structure)``; raises GenerationFailure."""
        structure = self.resolved_structure()
        budget = rewrite_budget(merged)
        if structure in ("stepwise", "anchored"):
            steps = self.rewrite_steps if structure == "stepwise" else self.rewrite_anchored
            return list(steps(merged=merged, language=language).turns), structure
        if structure == "exchanges":
            draft = draft_of(merged)
            signature = self.rewrite_exchanges.signature.with_updated_fields(
                "rewritten", type_=rewrite_model(self.taxonomy, len(draft.exchanges))
            )
            written = invoke(self.rewrite_exchanges, role=Role.REWRITER, attempts=self.attempts,
                             validate=self.check_exchanges, max_tokens=budget, signature=signature,
                             draft=draft.render(), language=language, domain=domain)
            produced = exchange_turns(written.rewritten, self.taxonomy)
        else:
            written = invoke(self.rewrite, role=Role.REWRITER, attempts=self.attempts, validate=self.check_rewrite,
                             max_tokens=budget, transcript=transcript, language=language, domain=domain)
            produced = written.rewritten
        turns = [Turn(speaker=t.speaker, text=t.text.strip(), strategy=t.strategy,
                      extra_strategies=list(t.extra_strategies)) for t in produced]
        return turns, structure

    # -- the pipeline -------------------------------------------------------------------------------------------

    def forward(self, dialogue: Dialogue) -> dspy.Prediction:
        """Run the pipeline on one raw dialogue.

        Args:
            dialogue: The raw call (strategies, if any, are ignored).

        Returns:
            ``Prediction(dialogue, decision, candidate, screen, judge)``: ``dialogue`` is the rewritten
            :class:`Dialogue` when kept, else None; ``decision`` the :class:`RewriteDecision`; ``candidate``
            the rewrite (after note stripping) whenever one was produced, kept or not; ``screen`` and
            ``judge`` the LLM verdicts as dicts (None when that stage did not run).

        Raises:
            BudgetExceeded: the run budget is spent.
            dspy.utils.exceptions.LMError: the LM failed for a reason other than unusable output.
        """
        language = self.language or dialogue.language or "en"
        outcome = _Outcome()
        checked = prefilter(dialogue, self.rules)
        if not checked.kept:
            return outcome.drop("prefilter", checked.rule, checked.reason, checked.details)
        merged = dialogue.merged()
        raw_transcript = merged.transcript(strategies=False)

        if self.use_screen:
            try:
                screened = invoke(self.screen, role=Role.REWRITER, attempts=self.attempts, transcript=raw_transcript)
            except GenerationFailure as error:
                return outcome.drop("screen", GENERATION_FAILURE, str(error))
            outcome.screen = {
                "abusive_language": bool(screened.abusive_language),
                "poor_agent_attitude": bool(screened.poor_agent_attitude),
                "reason": screened.reason,
            }
            if screened.abusive_language:
                return outcome.drop("screen", "abusive_language", f"abusive language: {screened.reason}")
            if screened.poor_agent_attitude:
                return outcome.drop("screen", "poor_agent_attitude", f"poor agent attitude: {screened.reason}")

        try:
            turns, structure = self._rewrite(merged, raw_transcript, language, dialogue.domain or "unknown")
        except GenerationFailure as error:
            return outcome.drop("rewrite", getattr(error, "rule", GENERATION_FAILURE), str(error),
                                {"raw_text": error.raw_text, "attempts": error.attempts})
        rewritten = Dialogue(id=dialogue.id, turns=turns, domain=dialogue.domain, language=language,
                             metadata=dict(dialogue.metadata))
        cleaned, checked = postfilter(rewritten, self.taxonomy)
        checked = FilterDecision(checked.kept, checked.rule, checked.reason,
                                 {**checked.details, "structure": structure})
        outcome.candidate = cleaned
        if not checked.kept:
            return outcome.drop("postfilter", checked.rule, checked.reason, checked.details)
        degenerate = check_degenerate(cleaned)
        if not degenerate.kept:
            return outcome.drop("postfilter", degenerate.rule, degenerate.reason,
                                {**checked.details, **degenerate.details})

        last: RewriteStage = "postfilter"
        if self.use_judge:
            last = "judge"
            try:
                judged = invoke(
                    self.judge_rewrite, role=Role.JUDGE, attempts=self.attempts, transcript=cleaned.transcript()
                )
            except GenerationFailure as error:
                return outcome.drop("judge", GENERATION_FAILURE, str(error))
            outcome.judge = {
                "quality": judged.quality,
                "ended_completely": bool(judged.ended_completely),
                "strategies_followed": bool(judged.strategies_followed),
                "no_noise": bool(judged.no_noise),
                "reason": judged.reason,
            }
            if judged.quality != "high":
                return outcome.drop("judge", "quality", f"judged {judged.quality!r}: {judged.reason}")
            failed = [name for name in ("ended_completely", "strategies_followed", "no_noise")
                      if not outcome.judge[name]]
            if failed:  # a "high" verdict that fails its own criteria is not a high-quality dialogue
                return outcome.drop("judge", "criteria", f"judged 'high' but not {', '.join(failed)}: {judged.reason}")
        return outcome.keep(last, cleaned, dialogue.id, checked.details)


def rewrite_budget(merged: Dialogue) -> int:
    """Completion tokens for rewriting ``merged``: about the transcript's length in tokens, plus room for labels
    and the JSON around every turn, plus the turns the rewrite may add (greeting, identity check, goodbye).

    Tokens are estimated without a tokenizer: one a Chinese character, one per four other characters.

    Example:
        ```python
        rewrite_budget(dialogue.merged())   # e.g. 1100 for a 16-utterance English call
        ```
    """
    chars = sum(len(turn.text) for turn in merged.turns)
    cjk = sum(1 for turn in merged.turns for char in turn.text if "\u3400" <= char <= "\u9fff")
    text_tokens = cjk + (chars - cjk) / 4
    return max(MIN_BUDGET, int(1.3 * text_tokens + 24 * (len(merged.turns) + 6) + 64))


@dataclass
class _Outcome:
    """What one forward() call has produced so far; builds its Prediction."""

    screen: dict[str, Any] | None = None
    judge: dict[str, Any] | None = None
    candidate: Dialogue | None = None

    def _prediction(self, dialogue: Dialogue | None, decision: RewriteDecision) -> dspy.Prediction:
        return dspy.Prediction(
            dialogue=dialogue, decision=decision, candidate=self.candidate, screen=self.screen, judge=self.judge
        )

    def drop(
        self, stage: RewriteStage, rule: str | None, reason: str, details: dict[str, Any] | None = None
    ) -> dspy.Prediction:
        logger.debug("dropped at %s (%s): %s", stage, rule, reason)
        return self._prediction(None, RewriteDecision(False, stage, rule, reason, dict(details or {})))

    def keep(self, stage: RewriteStage, candidate: Dialogue, source_id: str,
             details: dict[str, Any]) -> dspy.Prediction:
        decision = RewriteDecision(True, stage, None, "passed every filter", dict(details))
        metadata = {
            **candidate.metadata,
            "source_id": source_id,
            "rewrite": decision.to_json(),
            "judge": self.judge,
            "screen": self.screen,
        }
        kept = candidate.model_copy(update={"metadata": metadata})
        return self._prediction(kept, decision)
