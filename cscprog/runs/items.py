"""Items of a run and what their work function may return, checked and encoded as JSONL bytes.

An item is ``(item_id, payload)``: the id is a non-empty string, unique in the run, that every output record of
the item carries in the run's id field (``id`` for dialogues, ``dialogue_id`` for per-turn records). That is how
``resume`` knows which items are finished. The work function returns one record (a dict), a list of records, or
:class:`Routed` records sent to a named side output (e.g. the rejected dialogues of a filtered synthesis).

Example:
    ```python
    items = check_items([("d-1", dialogue_1), ("d-2", dialogue_2)])
    sink, data = encode_result({"id": "d-1", "turns": []}, "d-1", id_field="id", sinks={"output"})
    assert sink == "output" and data.endswith(b"\\n")
    ```
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cscprog.errors import CscprogError

__all__ = ["MAIN_SINK", "ItemError", "RecordError", "RunInputError", "Routed", "check_items", "encode_result"]

MAIN_SINK = "output"
"""The name of a run's main output among its sinks."""


class RunInputError(CscprogError):
    """The run cannot start: duplicate or empty item ids, an output that would be overwritten, a corrupt output."""


class ItemError(CscprogError):
    """One item failed: raise it from a work function to record a failure with its details.

    Attributes:
        reason: What went wrong.
        role: The LM role involved, if any.
        raw_text: The raw LM text behind the failure, if any (kept in the failures file, secrets redacted).

    Example:
        ```python
        raise ItemError("turn 3 could not be classified", role="classifier", raw_text=failure.raw_text)
        ```
    """

    def __init__(self, reason: str, *, role: str | None = None, raw_text: str | None = None) -> None:
        self.reason = reason
        self.role = role
        self.raw_text = raw_text
        super().__init__(reason)


class RecordError(ItemError):
    """A work function returned records the runner cannot store (wrong id, not JSON, nothing at all)."""


@dataclass(frozen=True)
class Routed:
    """The records of one item, sent to a named side output instead of the main one.

    Each item goes to exactly one output, so a crash can never leave an item half in one file and half in
    another; an item is finished when its id is in any of the run's outputs.

    Attributes:
        sink: The name of a side output given to the runner (``side_outputs={"rejected": path}``), or
            :data:`MAIN_SINK`.
        records: One record or a list of records.

    Example:
        ```python
        def work(payload):
            dialogue = simulate(payload)
            return dialogue.to_json() if passes(dialogue) else Routed("rejected", dialogue.to_json())
        ```
    """

    sink: str
    records: dict[str, Any] | list[dict[str, Any]] = field(default_factory=list)


def check_items(items: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The items as a list, after checking every id is a non-empty string and unique.

    Raises:
        RunInputError: an item is not a pair, an id is not a non-empty string, or an id repeats (both
            positions are named).

    Example:
        ```python
        check_items([("a", 1), ("b", 2)])
        ```
    """
    checked: list[tuple[str, Any]] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(items):
        if not isinstance(item, tuple) or len(item) != 2:
            raise RunInputError(f"item {position}: expected an (item_id, payload) pair, got {type(item).__name__}")
        item_id, payload = item
        if not isinstance(item_id, str) or not item_id:
            raise RunInputError(f"item {position}: the item id must be a non-empty string, got {item_id!r}")
        if "\n" in item_id:
            raise RunInputError(f"item {position}: the item id {item_id!r} contains a line break")
        if item_id in seen:
            raise RunInputError(
                f"item {position}: duplicate item id {item_id!r} (also item {seen[item_id]}); ids must be unique "
                "so that --resume can tell finished items apart"
            )
        seen[item_id] = position
        checked.append((item_id, payload))
    return checked


def _records(value: Any, item_id: str) -> list[dict[str, Any]]:
    if isinstance(value, Mapping):
        return [dict(value)]
    if isinstance(value, list | tuple):
        for index, record in enumerate(value):
            if not isinstance(record, Mapping):
                raise RecordError(f"item {item_id!r}: record {index} is a {type(record).__name__}, not a JSON object")
        return [dict(record) for record in value]
    raise RecordError(f"item {item_id!r}: the work function returned {type(value).__name__}, not a dict or a list")


def encode_result(
    result: Any,
    item_id: str,
    *,
    id_field: str,
    sinks: set[str] | frozenset[str],
    many_records: bool = False,
) -> tuple[str, bytes]:
    """The output name and the JSONL bytes (one line a record) of one item's work result.

    Args:
        result: What the work function returned: a dict, a list of dicts, or a :class:`Routed`.
        item_id: The item's id; every record must carry it in ``id_field``.
        id_field: The record field holding the item id.
        sinks: The names of the run's outputs.
        many_records: Whether an item may produce more than one record.

    The id field is written first in every record (resume reads it without parsing the rest of the line).

    Raises:
        RecordError: no record, too many records, a record without the item id in ``id_field``, an unknown
            sink, or a value JSON cannot encode (NaN included).

    Example:
        ```python
        encode_result([{"dialogue_id": "d", "turn": 1}], "d", id_field="dialogue_id", sinks={"output"},
                      many_records=True)
        ```
    """
    sink = MAIN_SINK
    if isinstance(result, Routed):
        sink, result = result.sink, result.records
        if sink not in sinks:
            raise RecordError(f"item {item_id!r}: routed to unknown output {sink!r} (outputs: {sorted(sinks)})")
    records = _records(result, item_id)
    if not records:
        raise RecordError(f"item {item_id!r}: the work function returned no record, so the item cannot be marked done")
    if len(records) > 1 and not many_records:
        raise RecordError(
            f"item {item_id!r}: the work function returned {len(records)} records; this run expects one per item"
        )
    lines = []
    for index, record in enumerate(records):
        found = record.get(id_field)
        if found != item_id:
            raise RecordError(
                f"item {item_id!r}: record {index} has {id_field}={found!r}; every record must carry the item id "
                f"in {id_field!r}"
            )
        try:  # the id goes first, so resume finds it without parsing the whole line
            lines.append(json.dumps({id_field: found, **record}, ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError) as error:
            raise RecordError(f"item {item_id!r}: record {index} is not JSON-serializable: {error}") from None
    return sink, ("\n".join(lines) + "\n").encode("utf-8")
