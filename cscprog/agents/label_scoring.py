"""Strategy labels chosen by scoring, not by generation: what the embedded model does for the classifier.

A small model asked to *write* a label tends to write the same one for every turn (measured: the 0.5B model
labelled all 51 supporter turns of 3 ESConv dialogues "Reflection of feelings"). :class:`LabelScorer` instead
asks the model how likely each label of the taxonomy is as the answer (:func:`cscprog.lm.local.scoring.
score_options`, the multiple-choice scoring of evaluation harnesses) and takes the likeliest. Every scoring call
goes through the LM layer (:func:`cscprog.lm.choices.score_choices`): it is cached under its own key, counted in
the run's usage under the ``classifier`` role, and replayed in ``--cache-mode replay`` without loading the model.

Raw likelihoods carry the model's prior for each label, whatever the turn (short or familiar labels score high
everywhere). With ``calibrate=True`` (the default) each label's score is taken relative to its score for
content-free turns (``"N/A"``, ``"..."``, an empty turn): the label the turn makes *more* likely than usual wins
(contextual calibration, Zhao et al. 2021). This uses no labelled data: nothing is fitted to any dataset.

The prompt is the project's own: the taxonomy's strategies with their definitions, the conversation so far, the
turn to label.

Example:
    ```python
    from cscprog.agents.label_scoring import LabelScorer

    scorer = LabelScorer(load_taxonomy("esconv"))
    label, scores = scorer.choose(lm, context="Seeker: I lost my job.", utterance="How long ago was that?")
    label   # 'Question'
    ```
"""

from __future__ import annotations

from typing import Any

from cscprog.framework import Taxonomy
from cscprog.lm.choices import score_choices
from cscprog.roles import Role

__all__ = ["CONTENT_FREE", "LabelScorer"]

CONTENT_FREE = ("N/A", "...", "")
"""Turns with no content, whose label scores give each label's prior under the model (for calibration)."""

_SYSTEM = {
    "en": (
        "You name what one supporter turn does in a support conversation. Choose exactly one label from this "
        "list:\n{labels}\nAnswer with the label's name only."
    ),
    "zh": (
        "你的任务是判断对话中客服（支持者）的一句话使用了哪种策略。只能从下列标签中选一个：\n{labels}\n只回答标签名称。"
    ),
}
_USER = {
    "en": "Conversation so far:\n{context}\n\nThe supporter's turn to label:\n{utterance}\n\nLabel:",
    "zh": "之前的对话：\n{context}\n\n需要标注的客服发言：\n{utterance}\n\n标签：",
}
_NO_CONTEXT = {"en": "(the conversation starts here)", "zh": "（对话从这里开始）"}


class LabelScorer:
    """Chooses one strategy of a taxonomy for a supporter turn by the model's likelihood of each label.

    Args:
        taxonomy: The labels and their definitions.
        calibrate: Score labels relative to their content-free prior (see the module docstring).
        role: The role its scoring calls are attributed to (cache entries, usage ledger).

    Example:
        ```python
        scorer = LabelScorer(load_taxonomy("csc"), calibrate=True)
        scorer.choose(lm, "Customer: My card was blocked.", "I can help you with that.")[0]
        ```
    """

    def __init__(self, taxonomy: Taxonomy, *, calibrate: bool = True, role: str = Role.CLASSIFIER) -> None:
        self.taxonomy = taxonomy
        self.calibrate = calibrate
        self.role = str(role)
        # no lock (the scorer travels to Ray workers inside a classifier): two threads may compute one prior
        # twice, with the same result
        self._priors: dict[tuple[int, str], dict[str, float]] = {}

    def messages(self, context: str, utterance: str, language: str = "en") -> list[dict[str, str]]:
        """The chat messages before the label (system: the labels; user: the conversation and the turn).

        Example:
            ```python
            scorer.messages("", "How are you feeling today?")[1]["content"]
            ```
        """
        lang = "zh" if language == "zh" else "en"
        labels = "\n".join(
            f"- {strategy.name}: {strategy.definition}" for strategy in self.taxonomy.strategies
        )
        return [
            {"role": "system", "content": _SYSTEM[lang].format(labels=labels)},
            {"role": "user", "content": _USER[lang].format(context=context.strip() or _NO_CONTEXT[lang],
                                                           utterance=utterance.strip())},
        ]

    def raw_scores(self, lm: Any, context: str, utterance: str, language: str = "en") -> dict[str, float]:
        """Each label's log-likelihood as the answer, uncalibrated."""
        names = list(self.taxonomy.names)
        scores = score_choices(lm, self.messages(context, utterance, language), names, role=self.role)
        return {score.option: score.logprob for score in scores}

    def prior(self, lm: Any, language: str = "en") -> dict[str, float]:
        """Each label's mean log-likelihood over the :data:`CONTENT_FREE` turns (computed once per LM, language)."""
        key = (id(lm), language)
        cached = self._priors.get(key)
        if cached is not None:
            return cached
        runs = [self.raw_scores(lm, "", text, language) for text in CONTENT_FREE]
        prior = {name: sum(run[name] for run in runs) / len(runs) for name in self.taxonomy.names}
        self._priors[key] = prior
        return prior

    def scores(self, lm: Any, context: str, utterance: str, language: str = "en") -> dict[str, float]:
        """The score of each label: calibrated when :attr:`calibrate` is on, else the raw log-likelihood."""
        raw = self.raw_scores(lm, context, utterance, language)
        if not self.calibrate:
            return raw
        prior = self.prior(lm, language)
        return {name: raw[name] - prior[name] for name in raw}

    def choose(self, lm: Any, context: str, utterance: str, language: str = "en") -> tuple[str, dict[str, float]]:
        """The best label and every label's score.

        Raises:
            cscprog.errors.ConfigError: a scoring call is not cached and ``lm`` is not the embedded model.
            cscprog.cache.CacheMissError: replay mode and a scoring call is not cached.
        """
        scores = self.scores(lm, context, utterance, language)
        best = max(self.taxonomy.names, key=lambda name: scores[name])
        return best, scores
