"""Stages, strategies and the taxonomy that holds them: the CSC framework as data.

A :class:`Taxonomy` is read from a TOML or JSON file by :mod:`cscprog.framework.loading` (two ship with
cscprog: ``csc``, the paper's 5 stages and 12 strategies, and ``esconv``, ESConv's 3 stages and 8 strategies).
Everything else in cscprog asks the taxonomy for names, stages and labels instead of hard-coding them.

Example:
    ```python
    from cscprog.framework import load_taxonomy

    csc = load_taxonomy("csc")
    csc.parse("策略1 礼貌问候").name          # 'Greeting'
    csc.parse("IV").stage                     # 'Connecting'
    [s.abbr for s in csc.strategies][:3]      # ['GT', 'IV', 'RP']
    ```
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from cscprog.errors import TaxonomyError, UnknownStrategyError

ANY_STAGE = "any"
"""The stage of a strategy that may occur anywhere (the fallback, ``Others``)."""

_NUMBERED = re.compile(r"^(?:策略|strategy|strat\.?|s)?\s*#?\s*(\d{1,3})(?:\s*[.:、:：)]?\s*(.*))?$", re.IGNORECASE)
_MULTI_SPLIT = re.compile(r"\s*(?:\+|＋|,|，|、|;|；|/|&| and also )\s*")


def normalize_label(text: str) -> str:
    """Fold a label for lookup: NFKC, case-folded, inner whitespace collapsed, outer punctuation stripped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = re.sub(r"[\s_\-]+", " ", folded)
    return folded.strip(" .:：'\"`[]()（）")


@dataclass(frozen=True)
class Stage:
    """A phase of a support conversation (CSC: Connecting, Identifying, Exploring, Resolving, Maintaining).

    Attributes:
        name: English name.
        order: 1-based position in the typical order.
        description: What happens in this stage.
        zh: Chinese name, if any.
    """

    name: str
    order: int
    description: str = ""
    zh: str | None = None


@dataclass(frozen=True)
class Strategy:
    """One support strategy.

    Attributes:
        number: 1-based number (the ``N`` of released labels ``策略N 名称``).
        name: Canonical English name, the form cscprog stores and reports.
        abbr: Short code (``GT``, ``IV``...).
        stage: Name of the stage it belongs to, or ``"any"``.
        definition: What the strategy does, in one or two sentences.
        note: What tells it apart from its neighbours.
        zh: Chinese label, if any.
        aliases: Extra names accepted when parsing.
    """

    number: int
    name: str
    abbr: str
    stage: str
    definition: str
    note: str = ""
    zh: str | None = None
    aliases: tuple[str, ...] = ()

    def describe(self, language: str = "en") -> str:
        """One line for prompts: ``Greeting (GT, Connecting): definition Note.``"""
        label = f"{self.name} / {self.zh}" if language == "zh" and self.zh else self.name
        return f"{label} ({self.abbr}, stage {self.stage}): {self.definition} {self.note}".strip()


@dataclass(frozen=True)
class FlowRules:
    """The conversation-flow rules of a taxonomy; any rule left as None is not checked.

    Attributes:
        opening: Strategy the first supporter turn must use.
        verification: Strategy that must follow the opening soon.
        verification_within: The verification must occur within this many supporter turns.
        closing: Strategy the last supporter turn must use.
        max_repeat: No strategy on more than this many consecutive supporter turns (0: unchecked).
        first_stage: Stage the conversation starts in.
        last_stage: Stage the conversation ends in.
    """

    opening: str | None = None
    verification: str | None = None
    verification_within: int = 3
    closing: str | None = None
    max_repeat: int = 0
    first_stage: str | None = None
    last_stage: str | None = None


@dataclass(frozen=True)
class Taxonomy:
    """Stages, strategies, aliases and flow rules, loaded from data.

    Use :func:`cscprog.framework.load_taxonomy` to get one; :meth:`parse` and :meth:`parse_all` turn any label
    form users meet into :class:`Strategy` objects.
    """

    name: str
    stages: tuple[Stage, ...]
    strategies: tuple[Strategy, ...]
    flow: FlowRules = field(default_factory=FlowRules)
    fallback: str | None = None
    description: str = ""
    label_prefix_zh: str = "策略"

    def __post_init__(self) -> None:
        names = [s.name for s in self.strategies]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise TaxonomyError(f"taxonomy {self.name!r}: duplicate strategy names: {', '.join(twice)}")
        numbers = [s.number for s in self.strategies]
        if len(set(numbers)) != len(numbers):
            twice = sorted({str(n) for n in numbers if numbers.count(n) > 1})
            raise TaxonomyError(f"taxonomy {self.name!r}: duplicate strategy numbers: {', '.join(twice)}")
        stage_names = {s.name for s in self.stages}
        for strategy in self.strategies:
            if strategy.stage != ANY_STAGE and strategy.stage not in stage_names:
                raise TaxonomyError(
                    f"taxonomy {self.name!r}: strategy {strategy.name!r} names unknown stage {strategy.stage!r}"
                )
        if self.fallback is not None and self.fallback not in names:
            raise TaxonomyError(f"taxonomy {self.name!r}: fallback {self.fallback!r} is not a strategy")
        for rule in ("opening", "verification", "closing"):
            value = getattr(self.flow, rule)
            if value is not None and value not in names:
                raise TaxonomyError(f"taxonomy {self.name!r}: flow.{rule} {value!r} is not a strategy")

    # -- lookup -----------------------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Canonical strategy names in number order."""
        return tuple(s.name for s in self.strategies)

    @property
    def stage_names(self) -> tuple[str, ...]:
        """Stage names in their typical order."""
        return tuple(s.name for s in self.stages)

    @cached_property
    def _index(self) -> dict[str, Strategy]:
        index: dict[str, Strategy] = {}
        owners: dict[str, str] = {}

        def add(key: str, strategy: Strategy, strong: bool) -> None:
            key = normalize_label(key)
            if not key:
                return
            if key in owners and owners[key] != strategy.name:
                if strong:
                    raise TaxonomyError(
                        f"taxonomy {self.name!r}: label {key!r} names both {owners[key]!r} and {strategy.name!r}"
                    )
                return  # an alias never shadows a stronger name
            owners.setdefault(key, strategy.name)
            index.setdefault(key, strategy)

        for strategy in self.strategies:  # names, codes and Chinese labels first: they win over aliases
            add(strategy.name, strategy, True)
            add(strategy.abbr, strategy, True)
            if strategy.zh:
                add(strategy.zh, strategy, True)
        for strategy in self.strategies:
            for alias in strategy.aliases:
                add(alias, strategy, False)
        return index

    def strategy(self, name: str) -> Strategy:
        """The strategy with this canonical name.

        Raises:
            UnknownStrategyError: no strategy has that name.
        """
        for strategy in self.strategies:
            if strategy.name == name:
                return strategy
        raise UnknownStrategyError(name, taxonomy=self.name)

    def by_number(self, number: int) -> Strategy:
        """The strategy numbered ``number`` (1-based)."""
        for strategy in self.strategies:
            if strategy.number == number:
                return strategy
        raise UnknownStrategyError(str(number), taxonomy=self.name)

    def stage(self, name: str) -> Stage:
        """The stage with this name (case-insensitive).

        Raises:
            TaxonomyError: no such stage.
        """
        for stage in self.stages:
            if stage.name.casefold() == name.casefold() or (stage.zh and stage.zh == name):
                return stage
        raise TaxonomyError(f"taxonomy {self.name!r} has no stage {name!r}; stages: {', '.join(self.stage_names)}")

    def stage_of(self, strategy: str) -> str:
        """The stage name of a strategy given by canonical name."""
        return self.strategy(strategy).stage

    def strategies_in(self, stage: str) -> tuple[Strategy, ...]:
        """The strategies that belong to ``stage``."""
        return tuple(s for s in self.strategies if s.stage == stage)

    # -- parsing ----------------------------------------------------------------------------------------------

    def parse(
        self,
        label: str | int,
        *,
        where: str | None = None,
        unknown: Literal["error", "fallback"] = "error",
    ) -> Strategy:
        """Parse one strategy label in any form: ``策略1 礼貌问候``, ``礼貌问候``, ``Greeting``, ``GT``, ``1``.

        Args:
            label: The label as found in data or model output.
            where: Where it was found, for the error message (``file, record 3, turn 2``).
            unknown: ``"error"`` raises on an unknown label; ``"fallback"`` maps it to the fallback
                strategy (``Others``).

        Raises:
            UnknownStrategyError: the label is unknown (and ``unknown="error"``), or holds several labels.
        """
        found = self.parse_all(label, where=where, unknown=unknown)
        if len(found) != 1:
            if unknown == "fallback" and self.fallback is not None:
                return self.strategy(self.fallback)
            raise UnknownStrategyError(f"{label} (holds {len(found)} labels)", where, taxonomy=self.name)
        return found[0]

    def parse_all(
        self,
        label: str | int,
        *,
        where: str | None = None,
        unknown: Literal["error", "fallback"] = "error",
    ) -> tuple[Strategy, ...]:
        """Parse a label that may hold several strategies (``策略5 情感管理+策略7 信息传达``).

        Returns:
            The strategies in the order they appear (one for an ordinary label).

        Raises:
            UnknownStrategyError: a part is unknown and ``unknown="error"``, or the label is empty.
        """
        text = str(label).strip()
        if not text:
            raise UnknownStrategyError("", where, taxonomy=self.name)
        single = self._lookup(text)
        if single is not None:
            return (single,)
        parts = [part for part in _MULTI_SPLIT.split(text) if part.strip()]
        found: list[Strategy] = []
        for part in parts:
            strategy = self._lookup(part)
            if strategy is None:
                if unknown == "fallback" and self.fallback is not None:
                    strategy = self.strategy(self.fallback)
                else:
                    raise UnknownStrategyError(text if len(parts) == 1 else f"{part} (in {text!r})", where,
                                               taxonomy=self.name)
            if strategy not in found:
                found.append(strategy)
        return tuple(found)

    def label_problem(self, label: object) -> str | None:
        """None when ``label`` names one strategy of this taxonomy, else why it does not (an LLM output check).

        Example:
            ```python
            csc.label_problem("Greeting")    # None
            csc.label_problem("Small talk")  # "'Small talk' is not one strategy of the csc taxonomy"
            ```
        """
        if not isinstance(label, str) or not label.strip():
            return "the output names no strategy"
        try:
            self.parse(label)
        except TaxonomyError:
            return f"{label!r} is not one strategy of the {self.name} taxonomy"
        return None

    def _lookup(self, text: str) -> Strategy | None:
        key = normalize_label(text)
        if key in self._index:
            return self._index[key]
        match = _NUMBERED.match(key)
        if match and not _MULTI_SPLIT.search(match.group(2) or ""):
            number = int(match.group(1))
            strategy = next((s for s in self.strategies if s.number == number), None)
            if strategy is not None:
                # "策略1 礼貌问候" names strategy 1: the number decides, as in the released data.
                return strategy
        return None

    # -- rendering ----------------------------------------------------------------------------------------------

    def released_label(self, name: str) -> str:
        """The released-data form of a strategy: ``策略1 礼貌问候`` (number and Chinese label)."""
        strategy = self.strategy(name)
        return f"{self.label_prefix_zh}{strategy.number} {strategy.zh or strategy.name}"

    def describe(self, language: str = "en") -> str:
        """The stages and strategies as prompt text, one strategy a line, grouped by stage."""
        lines = []
        for stage in self.stages:
            members = self.strategies_in(stage.name)
            if not members:
                continue
            title = f"{stage.name} / {stage.zh}" if language == "zh" and stage.zh else stage.name
            lines.append(f"Stage {stage.order} {title}: {stage.description}")
            lines.extend(f"  - {s.describe(language)}" for s in members)
        loose = [s for s in self.strategies if s.stage == ANY_STAGE]
        if loose:
            lines.append("Any stage:")
            lines.extend(f"  - {s.describe(language)}" for s in loose)
        return "\n".join(lines)

    # -- variants -----------------------------------------------------------------------------------------------

    def with_stages(self, overrides: Mapping[str, str]) -> Taxonomy:
        """A copy with the stage of some strategies changed (``{"Emotional Management": "Identifying"}``).

        Strategy keys may be any label form; stage names are checked.

        Raises:
            TaxonomyError: an unknown stage.
            UnknownStrategyError: an unknown strategy.
        """
        if not overrides:
            return self
        changed = {}
        for key, stage in overrides.items():
            strategy = self.parse(key, where="framework.stages")
            stage_name = ANY_STAGE if stage == ANY_STAGE else self.stage(stage).name
            changed[strategy.name] = replace(strategy, stage=stage_name)
        strategies = tuple(changed.get(s.name, s) for s in self.strategies)
        return replace(self, strategies=strategies)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the same shape as a taxonomy file)."""
        return {
            "name": self.name,
            "description": self.description,
            "fallback": self.fallback,
            "stages": [
                {"name": s.name, "order": s.order, "description": s.description, "zh": s.zh} for s in self.stages
            ],
            "strategies": [
                {
                    "number": s.number,
                    "name": s.name,
                    "abbr": s.abbr,
                    "zh": s.zh,
                    "stage": s.stage,
                    "definition": s.definition,
                    "note": s.note,
                    "aliases": list(s.aliases),
                }
                for s in self.strategies
            ],
            "flow": {k: v for k, v in vars(self.flow).items()},
        }


def count_by(names: Iterable[str | None], taxonomy: Taxonomy) -> dict[str, int]:
    """Count strategy names in taxonomy order, every strategy present (zero when unused)."""
    counts = dict.fromkeys(taxonomy.names, 0)
    for name in names:
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return counts
