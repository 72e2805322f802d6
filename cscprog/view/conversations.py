"""Arena conversation files (``cscprog arena``'s ``conversations.jsonl``) as dialogues the viewer can show.

Each record holds ``candidate``, ``customer_id``, ``topic``, ``trial``, ``scores`` (resolved with the judge's
reason, flow rules, stage coverage, satisfaction...) and ``dialogue`` (a cscprog dialogue record). The viewer reads
the dialogue and keeps the rest under ``metadata["arena"]``, where :func:`cscprog.view.dialogues.verdict_of` finds
the resolution verdict.

Example:
    ```python
    from cscprog.view.conversations import is_conversations_file, read_conversations

    if is_conversations_file(path):
        dialogues = read_conversations(path)
    ```
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cscprog.data import Dialogue
from cscprog.errors import DataError
from cscprog.evaluation.predictions import read_predictions

__all__ = ["ARENA_KEY", "is_conversations_file", "read_conversations"]

ARENA_KEY = "arena"
"""The dialogue metadata key the arena record's fields go under."""

_FIELDS = ("candidate", "customer_id", "topic", "trial", "scores")


def _is_conversation(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("dialogue"), dict) and "candidate" in record


def is_conversations_file(path: str | os.PathLike[str]) -> bool:
    """True when the first record of a JSONL file is an arena conversation record.

    Example:
        ```python
        is_conversations_file("runs/arena/conversations.jsonl")   # True
        ```
    """
    try:
        with Path(path).open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    return _is_conversation(json.loads(line))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False


def read_conversations(path: str | os.PathLike[str]) -> list[Dialogue]:
    """The dialogues of an arena conversations file, each with the record's other fields in its metadata.

    Raises:
        DataError: a line is not a conversation record, or its dialogue is malformed (naming the line).

    Example:
        ```python
        [d.metadata["arena"]["scores"]["resolved"] for d in read_conversations("conversations.jsonl")]
        ```
    """
    dialogues = []
    for line, record in read_predictions(path):
        if not _is_conversation(record):
            raise DataError(str(path), "not an arena conversation record (needs candidate and dialogue)", line=line)
        try:
            dialogue = Dialogue.model_validate(record["dialogue"])
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise DataError(str(path), f"{problem['msg']}", line=line, field=f"dialogue.{where}") from None
        arena = {name: record.get(name) for name in _FIELDS}
        dialogues.append(dialogue.model_copy(update={"metadata": {**dialogue.metadata, ARENA_KEY: arena}}))
    return dialogues
