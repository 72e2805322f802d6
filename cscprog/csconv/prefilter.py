"""The rule pre-filter of the rewriting pipeline: cheap checks that drop unusable raw calls before any LLM call.

Four rules run in order and the first that fails drops the dialogue. Each counts what the method's authors
count: the pair rule and the length rule read the merged dialogue (consecutive lines of one speaker joined into
one utterance); the customer-share and substantive rules read the raw lines, before merging.

1. ``min_pairs`` / ``max_pairs``: the number of exchanges of the merged dialogue (see :func:`count_pairs`,
   ``floor(utterances / 2)``) is within ``[min_pairs, max_pairs]``.
2. ``customer_share``: the customer must not speak too little; the dialogue is dropped when
   ``customer_lines <= min_customer_ratio * supporter_lines`` on the raw lines (with the default 0.5: when
   ``2 * customer_lines <= supporter_lines``).
3. ``substantive``: at least ``min_substantive_share`` of the customer's raw lines are substantive, i.e. longer
   than ``substantive_chars`` characters.
4. ``utterance_length``: no merged utterance is longer than ``max_utterance_chars`` characters.

Characters are Python string characters (Unicode code points) of the stripped text, for every language: a
Chinese utterance of four ideographs has 4 characters, and so has the English ``"okay"``. The method states
its thresholds in characters and we keep that unit for English too, so short English acknowledgements
("ok", "yes", "Ok.") are not substantive while "yeah" and "sure" are.

Counting raw lines matters: on a merged (hence alternating) dialogue the two speakers' counts differ by at most
one, so a customer-share rule on merged utterances would never fire, and a customer who answers in many short
lines ("ok", "yes") would hide them inside one long merged utterance.

Example:
    ```python
    from cscprog.csconv.prefilter import PrefilterRules, prefilter
    from cscprog.samples import load_sample

    raw = {d.id: d for d in load_sample("raw")}
    decision = prefilter(raw["raw-011"])
    decision.kept, decision.rule     # (False, 'customer_share'): 4 customer lines against 8
    prefilter(raw["raw-004"], PrefilterRules(min_pairs=2)).kept   # True
    ```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cscprog.data import CUSTOMER, SUPPORTER, Dialogue

__all__ = [
    "RULES",
    "FilterDecision",
    "PrefilterRules",
    "check_customer_share",
    "check_pairs",
    "check_substantive",
    "check_utterance_length",
    "count_chars",
    "count_pairs",
    "prefilter",
]

RULES = ("min_pairs", "max_pairs", "customer_share", "substantive", "utterance_length")
"""The names a pre-filter decision can report as the rule that dropped a dialogue, in the order they run."""


@dataclass(frozen=True)
class FilterDecision:
    """The outcome of one filter (or a chain of filters) on one dialogue.

    Attributes:
        kept: True when the dialogue passes.
        rule: The rule that dropped it (None when kept).
        reason: A sentence saying why it was dropped, or what was checked when kept.
        details: Figures behind the decision (counts, shares, what was stripped...).

    Example:
        ```python
        FilterDecision.drop("alternation", "turns 3 and 4 are both by the customer")
        ```
    """

    kept: bool
    rule: str | None = None
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def keep(cls, reason: str = "", **details: Any) -> FilterDecision:
        """A passing decision."""
        return cls(True, None, reason, dict(details))

    @classmethod
    def drop(cls, rule: str, reason: str, **details: Any) -> FilterDecision:
        """A dropping decision naming its rule."""
        return cls(False, rule, reason, dict(details))

    def to_json(self) -> dict[str, Any]:
        """Plain data for metadata and reports."""
        return {"kept": self.kept, "rule": self.rule, "reason": self.reason, "details": dict(self.details)}


@dataclass(frozen=True)
class PrefilterRules:
    """The thresholds of the rule pre-filter (the method's values by default).

    Attributes:
        min_pairs: Fewest exchanges a dialogue may have (fewer is dropped).
        max_pairs: Most exchanges a dialogue may have (more is dropped).
        min_customer_ratio: Dropped when ``customer_lines <= min_customer_ratio * supporter_lines``.
        substantive_chars: A customer utterance is substantive when it has MORE than this many characters.
        min_substantive_share: Dropped when fewer than this share of customer utterances are substantive.
        max_utterance_chars: Dropped when any utterance has more than this many characters.

    Example:
        ```python
        strict = PrefilterRules(min_pairs=5, max_utterance_chars=300)
        ```
    """

    min_pairs: int = 3
    max_pairs: int = 30
    min_customer_ratio: float = 0.5
    substantive_chars: int = 3
    min_substantive_share: float = 0.7
    max_utterance_chars: int = 500

    def __post_init__(self) -> None:
        if self.min_pairs < 0 or self.max_pairs < self.min_pairs:
            raise ValueError(f"need 0 <= min_pairs <= max_pairs, got {self.min_pairs} and {self.max_pairs}")
        if self.min_customer_ratio < 0:
            raise ValueError(f"min_customer_ratio must be >= 0, got {self.min_customer_ratio}")
        if self.substantive_chars < 0 or self.max_utterance_chars < 1:
            raise ValueError("substantive_chars must be >= 0 and max_utterance_chars >= 1")
        if not 0.0 <= self.min_substantive_share <= 1.0:
            raise ValueError(f"min_substantive_share must be in [0, 1], got {self.min_substantive_share}")


def count_chars(text: str) -> int:
    """Characters of an utterance: code points of the stripped text, the same unit for Chinese and English.

    Example:
        ```python
        count_chars("  好的谢谢 "), count_chars("okay")   # (4, 4)
        ```
    """
    return len(text.strip())


def count_pairs(merged: Dialogue) -> int:
    """Exchanges of a merged dialogue: ``floor(utterances / 2)``; a last unanswered utterance does not count.

    Example:
        ```python
        count_pairs(dialogue.merged())   # S C S C S -> 2
        ```
    """
    return len(merged.turns) // 2


def _lines(dialogue: Dialogue) -> tuple[int, int]:
    supporter = sum(1 for turn in dialogue.turns if turn.speaker == SUPPORTER)
    return supporter, len(dialogue.turns) - supporter


def check_pairs(merged: Dialogue, rules: PrefilterRules) -> FilterDecision:
    """Rule 1: between ``min_pairs`` and ``max_pairs`` exchanges (inclusive)."""
    pairs = count_pairs(merged)
    if pairs < rules.min_pairs:
        return FilterDecision.drop(
            "min_pairs", f"{pairs} exchange(s) after merging, fewer than {rules.min_pairs}", pairs=pairs
        )
    if pairs > rules.max_pairs:
        return FilterDecision.drop(
            "max_pairs", f"{pairs} exchanges after merging, more than {rules.max_pairs}", pairs=pairs
        )
    return FilterDecision.keep(f"{pairs} exchanges", pairs=pairs)


def check_customer_share(raw: Dialogue, rules: PrefilterRules) -> FilterDecision:
    """Rule 2: the customer speaks enough raw lines (dropped when ``customer <= ratio * supporter`` lines).

    Example:
        ```python
        check_customer_share(dialogue, PrefilterRules()).details   # {'supporter_lines': 15, 'customer_lines': 5}
        ```
    """
    supporter, customer = _lines(raw)
    if customer <= rules.min_customer_ratio * supporter:
        return FilterDecision.drop(
            "customer_share",
            f"the customer speaks {customer} line(s) against the supporter's {supporter} "
            f"(needs more than {rules.min_customer_ratio:g} x {supporter})",
            supporter_lines=supporter,
            customer_lines=customer,
        )
    return FilterDecision.keep(
        f"{customer} customer and {supporter} supporter lines", supporter_lines=supporter, customer_lines=customer
    )


def check_substantive(raw: Dialogue, rules: PrefilterRules) -> FilterDecision:
    """Rule 3: at least ``min_substantive_share`` of the customer's raw lines have more than ``substantive_chars``.

    Example:
        ```python
        check_substantive(dialogue, PrefilterRules()).details["substantive_share"]   # 0.8
        ```
    """
    texts = [turn.text for turn in raw.turns if turn.speaker == CUSTOMER]
    substantive = sum(1 for text in texts if count_chars(text) > rules.substantive_chars)
    share = substantive / len(texts) if texts else 0.0
    details = {"customer_lines": len(texts), "substantive_lines": substantive, "substantive_share": round(share, 4)}
    if share < rules.min_substantive_share:
        return FilterDecision.drop(
            "substantive",
            f"{substantive} of {len(texts)} raw customer line(s) have more than {rules.substantive_chars} "
            f"characters ({share:.0%}, needs {rules.min_substantive_share:.0%})",
            **details,
        )
    return FilterDecision.keep(f"{share:.0%} of raw customer lines are substantive", **details)


def check_utterance_length(merged: Dialogue, rules: PrefilterRules) -> FilterDecision:
    """Rule 4: no utterance longer than ``max_utterance_chars`` characters."""
    lengths = [count_chars(turn.text) for turn in merged.turns]
    longest = max(lengths, default=0)
    if longest > rules.max_utterance_chars:
        index = lengths.index(longest)
        return FilterDecision.drop(
            "utterance_length",
            f"utterance {index} (merged) has {longest} characters, more than {rules.max_utterance_chars}",
            longest=longest,
            turn=index,
        )
    return FilterDecision.keep(f"longest utterance {longest} characters", longest=longest)


_CHECKS = (  # (check, reads the merged dialogue)
    (check_pairs, True),
    (check_customer_share, False),
    (check_substantive, False),
    (check_utterance_length, True),
)


def prefilter(dialogue: Dialogue, rules: PrefilterRules | None = None) -> FilterDecision:
    """Apply the four rules in order (pairs and length on the merged dialogue, the others on raw lines).

    Args:
        dialogue: A raw dialogue (strategies, if any, are ignored).
        rules: The thresholds (the method's defaults when None).

    Returns:
        The decision; ``details`` holds ``utterances`` (raw lines) and ``merged_utterances`` plus the figures
        of every rule that ran.

    Example:
        ```python
        decision = prefilter(dialogue, PrefilterRules(max_pairs=20))
        if not decision.kept:
            print(decision.rule, decision.reason)
        ```
    """
    rules = rules or PrefilterRules()
    merged = dialogue.merged()
    details: dict[str, Any] = {"utterances": len(dialogue.turns), "merged_utterances": len(merged.turns)}
    for check, on_merged in _CHECKS:
        outcome = check(merged if on_merged else dialogue, rules)
        details.update(outcome.details)
        if not outcome.kept:
            return FilterDecision(False, outcome.rule, outcome.reason, details)
    return FilterDecision(True, None, "passed the rule pre-filter", details)
