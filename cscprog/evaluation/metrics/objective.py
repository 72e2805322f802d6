"""The metric a compile optimizes, written as a report would name it: one metric of a profile or a weighted mix.

``cscprog compile --metric`` takes a spec such as ``bleu2``, ``rouge_l`` or ``0.5*accuracy+0.5*rouge_l``: terms
``[weight*]name`` joined by ``+``, the names being the per-turn columns of a profile
(:data:`~cscprog.evaluation.metrics.columns.COLUMN_KEYS` except the corpus-only macro-F1; ``acc``, ``bleu-2``,
``rouge-l``, ``bs``, ``br`` are accepted for ``accuracy``, ``bleu2``, ``rouge_l``, ``bertscore``, ``bleurt``).
The weights are normalized to sum to 1, so every score is in [0, 1]. Each example is scored exactly as the
evaluation scores one turn under that profile (:func:`~cscprog.evaluation.metrics.columns.metric_columns` on the
single pair), so the compile optimizes the figure the report prints: under ``paper``, ``rouge_l`` is rouge-score's
tokenization and ``bleu2`` sentence BLEU over characters with smoothing method3.

Example:
    ```python
    from cscprog.evaluation.metrics.objective import parse_objective

    metric = parse_objective("0.5*accuracy+0.5*rouge_l", labels=taxonomy.names, profile="paper")
    metric(dspy.Example(strategy="Greeting", reply="hello"), dspy.Prediction(strategy="Greeting", reply="hello"))
    metric.__name__   # '0.5*accuracy+0.5*rouge_l[paper]'
    ```
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cscprog.errors import ConfigError
from cscprog.evaluation.metrics.columns import COLUMN_KEYS, Scorers, metric_columns
from cscprog.evaluation.metrics.conventions import get_profile

__all__ = ["ALIASES", "OBJECTIVE_KEYS", "Objective", "parse_objective", "parse_terms"]

OBJECTIVE_KEYS = tuple(key for key in COLUMN_KEYS if key != "macro_f1")
"""The metrics a compile can optimize (macro-F1 has no per-example value)."""

ALIASES = {"acc": "accuracy", "strategy": "accuracy", "bleu-2": "bleu2", "b-2": "bleu2", "bleu-4": "bleu4",
           "b-4": "bleu4", "rouge-l": "rouge_l", "rougel": "rouge_l", "r-l": "rouge_l", "bs": "bertscore",
           "br": "bleurt", "wl-f1": "semantic"}
"""Other spellings of the metric names."""

_TERM = re.compile(r"^\s*(?:(\d+(?:\.\d*)?|\.\d+)\s*\*\s*)?([A-Za-z][\w-]*)\s*$")
_NEURAL = ("bertscore", "bleurt", "semantic")


def _get(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def parse_terms(spec: str) -> dict[str, float]:
    """``{metric: weight}`` of a spec, the weights normalized to sum to 1.

    Raises:
        ConfigError: an empty spec, a term that is not ``[weight*]name``, an unknown or repeated metric, macro-F1,
            or weights summing to 0.

    Example:
        ```python
        parse_terms("3*acc + 1*rouge-l")   # {'accuracy': 0.75, 'rouge_l': 0.25}
        ```
    """
    terms: dict[str, float] = {}
    for part in spec.split("+"):
        match = _TERM.match(part)
        if match is None:
            raise ConfigError(f"--metric: {part.strip()!r} is not a term like 0.5*rouge_l or bleu2 (in {spec!r})")
        weight, name = float(match.group(1) or 1.0), match.group(2).lower()
        key = ALIASES.get(name, name)
        if key == "macro_f1":
            raise ConfigError("--metric: macro-F1 is a corpus figure with no per-example value; use accuracy")
        if key not in OBJECTIVE_KEYS:
            raise ConfigError(f"--metric: unknown metric {name!r}; choose from {', '.join(OBJECTIVE_KEYS)}")
        if key in terms:
            raise ConfigError(f"--metric: {key} appears twice in {spec!r}")
        terms[key] = weight
    total = sum(terms.values())
    if total <= 0:
        raise ConfigError(f"--metric: the weights of {spec!r} sum to 0")
    return {key: weight / total for key, weight in terms.items()}


class Objective:
    """A per-example metric ``metric(example, pred, trace=None) -> float`` in [0, 1] (see the module docstring).

    Args:
        terms: ``{metric: weight}`` (normalized, from :func:`parse_terms`).
        labels: The taxonomy's strategy names.
        profile: The metric profile (``standard`` or ``paper``).
        scorers: Model-based scorers, needed when a term is BERTScore, BLEURT or WL-F1.

    Raises:
        ConfigError: a term needs a scorer that is not available (the message says why), or an unknown profile.

    Example:
        ```python
        Objective({"bleu2": 1.0}, labels=taxonomy.names)(example, prediction)
        ```
    """

    def __init__(self, terms: Mapping[str, float], *, labels: Sequence[str], profile: str = "standard",
                 scorers: Scorers | None = None) -> None:
        try:
            self.profile = get_profile(profile)
        except ValueError as error:
            raise ConfigError(f"--metric: {error}") from None
        self.terms = dict(terms)
        self.labels = list(labels)
        self.scorers = scorers or Scorers()
        for key in self.terms:
            if key in _NEURAL and getattr(self.scorers, key) is None:
                why = self.scorers.reasons.get(key) or "not configured"
                raise ConfigError(f"--metric: {key} is not available: {why}")
        self.__name__ = "+".join(f"{weight:g}*{key}" for key, weight in self.terms.items()) + f"[{profile}]"

    def scores(self, example: Any, pred: Any) -> dict[str, float]:
        """Each term's score of one example, in [0, 1] (a missing reply or strategy scores as empty/wrong)."""
        columns = metric_columns([_get(pred, "reply")], [_get(example, "reply") or ""], [_get(example, "strategy")],
                                 [_get(pred, "strategy")], self.labels, self.profile, self.scorers,
                                 keys=set(self.terms))
        scores = {}
        for key in self.terms:
            statistic = columns[key].statistic
            if statistic is None:  # a scorer that failed on this pair: an error, never a low score
                raise RuntimeError(f"{key} could not score this example: {columns[key].unavailable}")
            scores[key] = float(statistic.point()) / 100.0
        return scores

    def __call__(self, example: Any, pred: Any, trace: Any = None) -> float:
        """The weighted score of one example."""
        scores = self.scores(example, pred)
        return sum(weight * scores[key] for key, weight in self.terms.items())


def parse_objective(spec: str, *, labels: Sequence[str], profile: str = "standard",
                    scorers: Scorers | None = None) -> Callable[..., float]:
    """The :class:`Objective` a ``--metric`` spec names.

    Raises:
        ConfigError: as for :func:`parse_terms` and :class:`Objective`.

    Example:
        ```python
        parse_objective("bleu2", labels=taxonomy.names, profile="paper")
        ```
    """
    return Objective(parse_terms(spec), labels=labels, profile=profile, scorers=scorers)
