"""A blind pairwise human evaluation of two evaluation runs: the page raters use, and the key that un-blinds it.

:func:`write_study` picks the supporter turns both runs scored (all of them, or ``limit`` chosen by a seeded
hash), and for every item decides by a seeded hash whether run A's reply is shown as reply "A" or as reply "B".
The page (``index.html``) holds the history and the two replies only; which system wrote which reply is in
``key.json`` beside it, which raters need not see. Raters choose, per criterion, "A better", "tie" or "B better"
and may add a comment; the page keeps the ratings in the browser's localStorage and exports them as JSON
(``cscprog-human-eval-ratings/1``), which :mod:`cscprog.view.human_scores` un-blinds and scores.

Example:
    ```python
    from cscprog.view.human_eval import write_study
    from cscprog.view.runs import load_run

    base = load_run("eval/base")
    study = write_study(base, load_run("eval/compiled", dialogues=base.dialogues), "study/", limit=50)
    ```
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cscprog.errors import ConfigError, DataError
from cscprog.signatures import PAIR_CRITERIA
from cscprog.view.dialogues import dialogue_record, taxonomy_payload
from cscprog.view.page import write_page
from cscprog.view.runs import EvaluationRun

__all__ = ["DEFAULT_CRITERIA", "KEY_FORMAT", "KEY_FILE", "PAGE_FILE", "Study", "parse_criteria", "write_study"]

DEFAULT_CRITERIA: dict[str, str] = dict(PAIR_CRITERIA)
"""The criteria asked by default (name -> the question shown to raters): those of the LLM pairwise judge
(``cscprog compare --judge``, :data:`cscprog.signatures.PAIR_CRITERIA`), asked in the same words, so its verdicts
are compared criterion by criterion."""

KEY_FORMAT = "cscprog-human-eval-key/1"
KEY_FILE = "key.json"
PAGE_FILE = "index.html"
INSTRUCTIONS = (
    "For every item, read the conversation so far and the two candidate next supporter turns. For each criterion "
    "choose the better reply, or tie when neither is better. The replies come from two systems in a random order "
    "per item. Your ratings are saved in this browser as you go; press 'Export ratings' when done and send the "
    "JSON file."
)


@dataclass
class Study:
    """What :func:`write_study` wrote.

    Attributes:
        page: The rating page.
        key: The key file that un-blinds the ratings.
        study: The study id (in the page, the key and every ratings file).
        items: How many items raters see.

    Example:
        ```python
        study = write_study(base, compiled, "study/")
        study.page, study.key, study.items
        ```
    """

    page: Path
    key: Path
    study: str
    items: int


def parse_criteria(specs: Sequence[str] | None) -> dict[str, str]:
    """``name=question`` pairs, or known criterion names alone; the default criteria when none are given.

    Raises:
        ConfigError: an unknown name without a question, or a repeated name.

    Example:
        ```python
        parse_criteria(["resolution", "empathy=Which reply shows more empathy?"])
        ```
    """
    if not specs:
        return dict(DEFAULT_CRITERIA)
    criteria: dict[str, str] = {}
    for spec in specs:
        name, sep, question = spec.partition("=")
        name = name.strip()
        if not name or (not sep and name not in DEFAULT_CRITERIA):
            raise ConfigError(f"--criterion: give name=question, or one of {', '.join(DEFAULT_CRITERIA)}; got {spec!r}")
        if name in criteria:
            raise ConfigError(f"--criterion: {name!r} is given twice")
        criteria[name] = question.strip() if sep else DEFAULT_CRITERIA[name]
    return criteria


def _hash(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()


def write_study(
    run_a: EvaluationRun,
    run_b: EvaluationRun,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 1234,
    limit: int | None = None,
    criteria: dict[str, str] | None = None,
) -> Study:
    """Write the blind rating page and its key for the turns both runs scored.

    Items where neither run produced a reply are left out. With ``limit``, the items are the first ``limit`` in
    the order of a seeded hash of (dialogue id, turn index); raters always see items in that order.

    Raises:
        DataError: a run in generated context (its replies answer its own earlier turns, not the gold history the
            page shows), the runs share no turn with a reply, or the output cannot be written.
        ConfigError: ``limit`` below 1.

    Example:
        ```python
        write_study(load_run("eval/a"), load_run("eval/b"), "study/", seed=7, limit=50)
        ```
    """
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    for run in (run_a, run_b):
        if run.context != "reference":
            raise DataError(str(run.path), f"a {run.context}-context run: its replies answer its own earlier turns, "
                                           "not the gold history raters are shown; rate runs made in reference "
                                           "context (cscprog evaluate --context reference)")
    criteria = criteria or dict(DEFAULT_CRITERIA)
    taxonomy = run_a.taxonomy
    index = {name: i for i, name in enumerate(taxonomy.names)}
    b_rows = {(r["dialogue_id"], r["turn_index"]): r for r in run_b.records}
    pairs = [(a, b_rows[(a["dialogue_id"], a["turn_index"])]) for a in run_a.records
             if (a["dialogue_id"], a["turn_index"]) in b_rows]
    pairs = [(a, b) for a, b in pairs if a["pred_reply"] is not None or b["pred_reply"] is not None]
    if not pairs:
        raise DataError(f"{run_a.path} + {run_b.path}", "the two runs share no scored turn with a reply")
    pairs.sort(key=lambda ab: _hash(seed, "order", ab[0]["dialogue_id"], ab[0]["turn_index"]))
    pairs = pairs[:limit] if limit else pairs
    names = [run_a.name, run_b.name] if run_a.name != run_b.name else [str(run_a.path), str(run_b.path)]
    study = _hash(seed, *names, *(f"{a['dialogue_id']}#{a['turn_index']}" for a, _ in pairs))[:12]
    dialogues = {d.id: d for d in run_a.dialogues}
    items, key_items = [], {}
    for number, (a, b) in enumerate(pairs, start=1):
        dialogue = dialogues[a["dialogue_id"]]
        item_id = f"{a['dialogue_id']}#{a['turn_index']}"
        a_first = int(_hash(seed, "side", item_id)[:8], 16) % 2 == 0
        shown = (a, b) if a_first else (b, a)
        record = dialogue_record(dialogue.model_copy(update={"turns": dialogue.turns[: a["turn_index"]]}),
                                 taxonomy, index)
        items.append({"id": item_id, "n": number, "domain": dialogue.domain or "", "language": dialogue.language or "",
                      "history": record["turns"], "expected": index.get(a["gold_strategy"]),
                      "A": {"k": index.get(shown[0]["pred_strategy"]), "t": shown[0]["pred_reply"]},
                      "B": {"k": index.get(shown[1]["pred_strategy"]), "t": shown[1]["pred_reply"]}})
        key_items[item_id] = {"A": names[0] if a_first else names[1], "B": names[1] if a_first else names[0]}
    target = Path(out_dir)
    payload = {"kind": "human_eval", "study": study, "taxonomy": taxonomy_payload(taxonomy),
               "instructions": INSTRUCTIONS,
               "criteria": [{"name": name, "question": question} for name, question in criteria.items()],
               "items": items}
    key = {"format": KEY_FORMAT, "study": study, "seed": seed, "systems": names,
           "runs": {names[0]: str(run_a.path), names[1]: str(run_b.path)}, "criteria": criteria, "items": key_items}
    page = write_page(target / PAGE_FILE, "human_eval", payload,
                      title=f"Blind pairwise evaluation ({len(items)} items)")
    key_path = target / KEY_FILE
    try:
        key_path.write_text(json.dumps(key, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as error:
        raise DataError(str(key_path), f"cannot write the key ({error})") from None
    return Study(page=page, key=key_path, study=study, items=len(items))
