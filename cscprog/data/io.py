"""Read and write dialogue files in every format cscprog meets.

Formats, recognised per record:

* **released** (CSConv/RoleCS): ``{"dialogue": [{"speaker": "客服"|"客户", "strategy": "策略N 名称"|"", "text": ...}],
  "source": domain}``, as a JSON list or one record a line (JSONL). Raw dialogues without ``strategy`` keys
  (e.g. the SGD banking export) are read the same way.
* **cscprog**: one :class:`~cscprog.data.Dialogue` a line (``{"id", "domain", "language", "turns", ...}``).
* **esconv**: ESConv's ``{"dialog": [{"speaker": "seeker"|"supporter"|"speaker"|"listener", "content",
  "annotation": {"strategy"}}]}`` records.

Speakers ``客服/客户``, ``supporter/customer``, ``agent/user``, ``assistant/user`` are all understood.
Every problem raises :class:`~cscprog.errors.DataError` naming the file, record, line, turn and field; with
``skip_invalid=True`` the bad records are skipped and reported in :attr:`DialogueFile.skipped`.

Example:
    ```python
    from cscprog.data import read_dialogues, write_dialogues

    loaded = read_dialogues("csconv.json")
    write_dialogues("out.jsonl", loaded.dialogues)                    # cscprog JSONL
    write_dialogues("back.json", loaded.dialogues, format="released")  # 策略N 名称 labels again
    ```
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cscprog.data.dialogue import Dialogue
from cscprog.data.jsonfiles import iter_records
from cscprog.data.profile import Profile
from cscprog.data.records import RELEASED_SPEAKERS, Format, RecordParser, UnknownPolicy
from cscprog.errors import DataError
from cscprog.files import atomic_write
from cscprog.framework import Taxonomy, load_taxonomy


@dataclass
class DialogueFile:
    """What :func:`read_dialogues` returns.

    Attributes:
        path: The file read.
        dialogues: The dialogues that loaded, in file order.
        skipped: One :class:`DataError` per record skipped (only with ``skip_invalid=True``).
        formats: The record formats met (``released``, ``cscprog``, ``esconv``).
        renamed: One line per dialogue whose id repeated an earlier one and was renamed (``record 3 (line 4):
            duplicate id 'd-1' renamed to 'd-1-2'``).
    """

    path: str
    dialogues: list[Dialogue] = field(default_factory=list)
    skipped: list[DataError] = field(default_factory=list)
    formats: set[str] = field(default_factory=set)
    renamed: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Dialogue]:
        return iter(self.dialogues)

    def __len__(self) -> int:
        return len(self.dialogues)


def _resolve_taxonomy(taxonomy: Taxonomy | str | None) -> Taxonomy:
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    return load_taxonomy(taxonomy or "csc")


def read_dialogues(
    path: str | os.PathLike[str],
    *,
    taxonomy: Taxonomy | str | None = None,
    skip_invalid: bool = False,
    unknown_strategy: UnknownPolicy = "error",
) -> DialogueFile:
    """Read a dialogue file (JSON list or JSONL; released, cscprog or ESConv records).

    Args:
        path: The file. ``.jsonl`` files are read a line at a time; anything else as one JSON document
            (a list of records, or a single record).
        taxonomy: The taxonomy labels are parsed with (default: CSC).
        skip_invalid: Skip bad records and report them in ``skipped`` instead of raising.
        unknown_strategy: ``"fallback"`` maps unknown labels to the taxonomy's fallback (``Others``).

    A repeated dialogue id is renamed (``d-1``, ``d-1-2``, ``d-1-3``, never to an id the file uses elsewhere) and
    listed in :attr:`DialogueFile.renamed`.

    Raises:
        DataError: the file cannot be read as JSON text (missing, a directory, binary, UTF-16, empty, not
            valid JSON; :func:`cscprog.data.jsonfiles.iter_records`), or (without ``skip_invalid``) a record is bad.
    """
    path = Path(path)
    name = str(path)
    tax = _resolve_taxonomy(taxonomy)
    parser = RecordParser(name, tax, unknown_strategy)
    result = DialogueFile(path=name)
    for record, line, data, problem in iter_records(path):
        try:
            if problem is not None:
                raise problem
            dialogue, kind = parser.parse(data, record, line)
            if "\n" in dialogue.id or "\r" in dialogue.id:
                raise DataError(name, f"the dialogue id {dialogue.id!r} contains a line break", record=record,
                                line=line, field="id")
        except DataError as error:
            if not skip_invalid:
                raise
            result.skipped.append(error)
            continue
        if len(parser.renamed) > len(result.renamed):
            where = DataError(name, "", record=record, line=line).location()
            original, renamed = parser.renamed[-1]
            result.renamed.append(f"{where}: duplicate id {original!r} renamed to {renamed!r}")
        result.formats.add(kind)
        result.dialogues.append(dialogue)
    return result


def released_record(dialogue: Dialogue, taxonomy: Taxonomy, *, with_id: bool | None = None) -> dict[str, Any]:
    """The released-format record of a dialogue (labels rendered as ``策略N 名称``).

    Args:
        dialogue: The dialogue.
        taxonomy: Renders the labels.
        with_id: Write the dialogue's ``id``: True always (an output a run resumes by id), False never, None
            (default) when the record it was read from had one (``metadata["has_id"]``, set by the reader).

    Example:
        ```python
        released_record(dialogue, load_taxonomy("csc"), with_id=True)  # {"id": ..., "dialogue": [...], ...}
        ```
    """
    turns = []
    for turn in dialogue.turns:
        label = "+".join(taxonomy.released_label(name) for name in turn.strategies)
        item: dict[str, Any] = {"speaker": RELEASED_SPEAKERS[turn.speaker], "strategy": label, "text": turn.text}
        item.update(turn.metadata.get("released_extra", {}))
        turns.append(item)
    record: dict[str, Any] = {}
    if with_id or (with_id is None and dialogue.metadata.get("has_id")):
        record["id"] = dialogue.id
    record["dialogue"] = turns
    record["source"] = dialogue.domain
    record.update(dialogue.metadata.get("released_extra", {}))
    return record


def dialogue_lines(dialogues: Iterable[Dialogue], *, format: Format = "cscprog",
                   taxonomy: Taxonomy | str | None = None) -> Iterator[str]:
    """JSON text of each dialogue (no newline), in the given format."""
    tax = _resolve_taxonomy(taxonomy) if format == "released" else None
    for dialogue in dialogues:
        data = released_record(dialogue, tax) if tax is not None else dialogue.to_json()
        yield json.dumps(data, ensure_ascii=False)


def write_dialogues(
    path: str | os.PathLike[str],
    dialogues: Iterable[Dialogue],
    *,
    format: Format = "cscprog",
    taxonomy: Taxonomy | str | None = None,
) -> int:
    """Write dialogues; ``.jsonl`` gives one record a line, anything else a JSON list. Atomic (temp + rename).

    Args:
        path: Output file.
        dialogues: What to write.
        format: ``cscprog`` (our records) or ``released`` (CSConv/RoleCS records with ``策略N 名称`` labels).
        taxonomy: Used to render released labels (default: CSC).

    Returns:
        The number of dialogues written.

    Raises:
        DataError: ``path`` is a directory or cannot be written.
    """
    if format not in ("cscprog", "released"):
        raise ValueError(f"cannot write format {format!r}; use 'cscprog' or 'released'")
    path = Path(path)
    if path.is_dir():
        raise DataError(str(path), "is a directory; give the output as a file path")
    lines = list(dialogue_lines(dialogues, format=format, taxonomy=taxonomy))
    if path.suffix.lower() == ".jsonl":
        body = "".join(line + "\n" for line in lines)
    else:
        body = "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, body)
    except OSError as error:
        raise DataError(str(path), f"cannot write: {error.strerror or error}") from None
    return len(lines)


def read_profiles(path: str | os.PathLike[str]) -> list[Profile]:
    """Read customer profiles from JSONL (one object a line) or a JSON list.

    A record may be a structured profile (``age``, ``occupation``...), or just ``{"description": ...}``, or a
    plain string (taken as the description). Missing ids become ``p-<line>``.

    Raises:
        DataError: the file is missing, a line is not JSON, or a field has the wrong type.
    """
    path = Path(path)
    profiles = []
    known = set(Profile.model_fields)
    for record, line, data, problem in iter_records(path):
        if problem is not None:
            raise problem
        if isinstance(data, str):
            data = {"description": data}
        if not isinstance(data, dict):
            raise DataError(str(path), f"expected a JSON object, got {type(data).__name__}", record=record, line=line)
        data = dict(data)
        data.setdefault("id", f"p-{record + 1:04d}")
        extra = {k: data.pop(k) for k in list(data) if k not in known}
        data["extra"] = {**data.get("extra", {}), **extra}
        try:
            profiles.append(Profile(**data))
        except ValidationError as error:
            item = error.errors()[0]
            raise DataError(str(path), item["msg"], record=record, line=line,
                            field=".".join(str(p) for p in item["loc"])) from None
    return profiles
