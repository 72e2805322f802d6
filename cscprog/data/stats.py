"""Corpus statistics: sizes, strategy and stage distributions, flow-rule violations, domains.

Example:
    ```python
    from cscprog.data import dataset_stats
    from cscprog.samples import load_sample

    stats = dataset_stats(load_sample("annotated_en"))
    stats["strategy_counts"]["Greeting"]
    ```
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from cscprog.data.dialogue import Dialogue
from cscprog.framework import ANY_STAGE, Taxonomy, check_flow, count_by, load_taxonomy


def dataset_stats(dialogues: Iterable[Dialogue], taxonomy: Taxonomy | None = None) -> dict[str, Any]:
    """Statistics of a set of dialogues.

    Returns:
        ``dialogues``, ``utterances``, ``supporter_turns``, ``annotated_turns``, ``multi_label_turns``,
        ``mean_utterances``, ``mean_supporter_turns``, ``strategy_counts`` and ``strategy_shares`` (keyed by
        English strategy name, every strategy present), ``stage_counts``, ``flow_violations`` (count per
        rule) with ``dialogues_with_violations``, ``domains`` (count per domain) and ``languages``.
    """
    taxonomy = taxonomy or load_taxonomy("csc")
    dialogues = list(dialogues)
    utterances = sum(len(d.turns) for d in dialogues)
    supporter = [t for d in dialogues for t in d.turns if t.is_supporter]
    strategies = [name for t in supporter for name in t.strategies]
    counts = count_by(strategies, taxonomy)
    total = sum(counts.values())
    stage_counts = dict.fromkeys(taxonomy.stage_names, 0)
    for name, count in counts.items():
        stage = taxonomy.stage_of(name) if name in taxonomy.names else ANY_STAGE
        stage_counts[stage] = stage_counts.get(stage, 0) + count
    violations: Counter[str] = Counter()
    flawed = 0
    for dialogue in dialogues:
        if not dialogue.is_annotated:
            continue
        found = check_flow(dialogue.supporter_strategies(), taxonomy)
        violations.update(v.rule for v in found)
        flawed += bool(found)
    n = len(dialogues)
    return {
        "dialogues": n,
        "utterances": utterances,
        "supporter_turns": len(supporter),
        "annotated_turns": sum(1 for t in supporter if t.strategy),
        "multi_label_turns": sum(1 for t in supporter if t.is_multi_label),
        "mean_utterances": round(utterances / n, 2) if n else 0.0,
        "mean_supporter_turns": round(len(supporter) / n, 2) if n else 0.0,
        "strategy_counts": counts,
        "strategy_shares": {k: round(v / total, 4) if total else 0.0 for k, v in counts.items()},
        "stage_counts": stage_counts,
        "flow_violations": dict(sorted(violations.items())),
        "dialogues_with_violations": flawed,
        "domains": dict(Counter(d.domain or "(none)" for d in dialogues).most_common()),
        "languages": dict(Counter(d.language or "(unknown)" for d in dialogues).most_common()),
    }
