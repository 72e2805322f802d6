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
from typing import Any, Literal

from pydantic import ValidationError

from cscprog.data.dialogue import CUSTOMER, SUPPORTER, Dialogue, Speaker, Turn
from cscprog.data.profile import Profile, Scenario
from cscprog.errors import DataError, UnknownStrategyError
from cscprog.framework import Taxonomy, load_taxonomy

Format = Literal["cscprog", "released", "esconv"]
UnknownPolicy = Literal["error", "fallback"]

SPEAKERS: dict[str, Speaker] = {
    "客服": SUPPORTER,
    "客户": CUSTOMER,
    "supporter": SUPPORTER,
    "customer": CUSTOMER,
    "agent": SUPPORTER,
    "user": CUSTOMER,
    "assistant": SUPPORTER,
    "system": SUPPORTER,
    "sys": SUPPORTER,
    "usr": CUSTOMER,
    "seeker": CUSTOMER,
    "listener": SUPPORTER,
    "坐席": SUPPORTER,
    "用户": CUSTOMER,
}
RELEASED_SPEAKERS = {SUPPORTER: "客服", CUSTOMER: "客户"}
# ESConv files name the help seeker "speaker" (and the supporter "listener").
ESCONV_SPEAKERS = {**SPEAKERS, "speaker": CUSTOMER}


@dataclass
class DialogueFile:
    """What :func:`read_dialogues` returns.

    Attributes:
        path: The file read.
        dialogues: The dialogues that loaded, in file order.
        skipped: One :class:`DataError` per record skipped (only with ``skip_invalid=True``).
        formats: The record formats met (``released``, ``cscprog``, ``esconv``).
    """

    path: str
    dialogues: list[Dialogue] = field(default_factory=list)
    skipped: list[DataError] = field(default_factory=list)
    formats: set[str] = field(default_factory=set)

    def __iter__(self) -> Iterator[Dialogue]:
        return iter(self.dialogues)

    def __len__(self) -> int:
        return len(self.dialogues)


class _RecordParser:
    """Turns one JSON record into a Dialogue, raising DataError with the exact location."""

    def __init__(self, path: str, taxonomy: Taxonomy, unknown: UnknownPolicy) -> None:
        self.path = path
        self.taxonomy = taxonomy
        self.unknown = unknown
        self.seen_ids: dict[str, int] = {}

    def error(self, reason: str, record: int, line: int | None, turn: int | None = None,
              field_name: str | None = None) -> DataError:
        return DataError(self.path, reason, record=record, line=line, turn=turn, field=field_name)

    def parse(self, data: Any, record: int, line: int | None) -> tuple[Dialogue, str]:
        if not isinstance(data, dict):
            raise self.error(f"expected a JSON object, got {type(data).__name__}", record, line)
        if "turns" in data:
            return self._cscprog(data, record, line), "cscprog"
        if "dialogue" in data:
            return self._released(data, record, line), "released"
        if "dialog" in data:
            return self._esconv(data, record, line), "esconv"
        raise self.error("no 'dialogue', 'turns' or 'dialog' list in the record", record, line, field_name="dialogue")

    # -- shared pieces --------------------------------------------------------------------------------------------

    def _turn_list(self, value: Any, record: int, line: int | None, name: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(f"expected a list of turns, got {type(value).__name__}", record, line, field_name=name)
        if not value:
            raise self.error("empty dialogue (no turns)", record, line, field_name=name)
        return value

    def _speaker(self, raw: Any, table: dict[str, Speaker], record: int, line: int | None, turn: int) -> Speaker:
        if not isinstance(raw, str) or raw.strip().casefold() not in table:
            known = "客服/客户, supporter/customer, agent/user, assistant/user"
            raise self.error(f"unknown speaker {raw!r} (expected {known})", record, line, turn, "speaker")
        return table[raw.strip().casefold()]

    def _text(self, item: dict[str, Any], key: str, record: int, line: int | None, turn: int) -> str:
        if key not in item:
            raise self.error("missing", record, line, turn, key)
        text = item[key]
        if not isinstance(text, str):
            raise self.error(f"expected a string, got {type(text).__name__}", record, line, turn, key)
        return text

    def _strategies(self, raw: Any, speaker: Speaker, record: int, line: int | None, turn: int,
                    key: str = "strategy") -> list[str]:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return []
        if not isinstance(raw, str | int):
            raise self.error(f"expected a strategy label, got {type(raw).__name__}", record, line, turn, key)
        if speaker == CUSTOMER:
            raise self.error(f"strategy {raw!r} on a customer turn (strategies belong to supporter turns)",
                             record, line, turn, key)
        where = DataError(self.path, "", record=record, line=line, turn=turn, field=key).location()
        try:
            found = self.taxonomy.parse_all(raw, where=where, unknown=self.unknown)
        except UnknownStrategyError as error:
            raise self.error(f"unknown strategy label {raw!r} (taxonomy {self.taxonomy.name!r})",
                             record, line, turn, key) from error
        return [s.name for s in found]

    def _make_turn(self, speaker: Speaker, text: str, strategies: list[str], metadata: dict[str, Any]) -> Turn:
        return Turn(speaker=speaker, text=text, strategy=strategies[0] if strategies else None,
                    extra_strategies=strategies[1:], metadata=metadata)

    def _unique(self, dialogue_id: str) -> str:
        count = self.seen_ids.get(dialogue_id, 0) + 1
        self.seen_ids[dialogue_id] = count
        return dialogue_id if count == 1 else f"{dialogue_id}-{count}"

    # -- formats ----------------------------------------------------------------------------------------------------

    def _released(self, data: dict[str, Any], record: int, line: int | None) -> Dialogue:
        items = self._turn_list(data["dialogue"], record, line, "dialogue")
        turns = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.error(f"expected a JSON object, got {type(item).__name__}", record, line, index)
            speaker = self._speaker(item.get("speaker"), SPEAKERS, record, line, index)
            text = self._text(item, "text", record, line, index)
            strategies = self._strategies(item.get("strategy"), speaker, record, line, index)
            extra = {k: v for k, v in item.items() if k not in ("speaker", "strategy", "text")}
            turns.append(self._make_turn(speaker, text, strategies, {"released_extra": extra} if extra else {}))
        domain = data.get("source")
        extra = {k: v for k, v in data.items() if k not in ("dialogue", "source", "id")}
        metadata: dict[str, Any] = {"source_index": record}
        if extra:
            metadata["released_extra"] = extra
        dialogue = Dialogue(id="tmp", turns=turns, domain=domain if isinstance(domain, str) else None,
                            metadata=metadata)
        raw_id = data.get("id")
        dialogue_id = str(raw_id) if raw_id not in (None, "") else f"d-{dialogue.content_hash()}"
        dialogue.id = self._unique(dialogue_id)
        if raw_id not in (None, ""):
            dialogue.metadata["has_id"] = True
        return dialogue

    def _cscprog(self, data: dict[str, Any], record: int, line: int | None) -> Dialogue:
        items = self._turn_list(data["turns"], record, line, "turns")
        turns = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.error(f"expected a JSON object, got {type(item).__name__}", record, line, index)
            unknown_keys = set(item) - {"speaker", "strategy", "text", "extra_strategies", "metadata"}
            if unknown_keys:
                raise self.error(f"unknown key(s) {', '.join(sorted(unknown_keys))}", record, line, index,
                                 sorted(unknown_keys)[0])
            speaker = self._speaker(item.get("speaker"), SPEAKERS, record, line, index)
            text = self._text(item, "text", record, line, index)
            strategies = self._strategies(item.get("strategy"), speaker, record, line, index)
            for extra in item.get("extra_strategies") or []:
                strategies += [s for s in self._strategies(extra, speaker, record, line, index, "extra_strategies")
                               if s not in strategies]
            metadata = item.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise self.error("expected an object", record, line, index, "metadata")
            turns.append(self._make_turn(speaker, text, strategies, metadata))
        raw_id = data.get("id")
        if not isinstance(raw_id, str | int) or raw_id == "":
            raise self.error("missing dialogue id", record, line, field_name="id")
        known = {"id", "turns", "domain", "language", "profile", "scenario", "metadata"}
        unknown_keys = set(data) - known
        if unknown_keys:
            raise self.error(f"unknown key(s) {', '.join(sorted(unknown_keys))}", record, line,
                             field_name=sorted(unknown_keys)[0])
        try:
            profile = Profile(**data["profile"]) if data.get("profile") else None
        except (ValidationError, TypeError) as error:
            raise self.error(f"invalid profile: {_first_problem(error)}", record, line, field_name="profile") from None
        try:
            scenario = Scenario(**data["scenario"]) if data.get("scenario") else None
        except (ValidationError, TypeError) as error:
            raise self.error(f"invalid scenario: {_first_problem(error)}", record, line,
                             field_name="scenario") from None
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise self.error("expected an object", record, line, field_name="metadata")
        return Dialogue(id=self._unique(str(raw_id)), turns=turns, domain=data.get("domain"),
                        language=data.get("language"), profile=profile, scenario=scenario, metadata=metadata)

    def _esconv(self, data: dict[str, Any], record: int, line: int | None) -> Dialogue:
        items = self._turn_list(data["dialog"], record, line, "dialog")
        turns = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.error(f"expected a JSON object, got {type(item).__name__}", record, line, index)
            speaker = self._speaker(item.get("speaker"), ESCONV_SPEAKERS, record, line, index)
            text = self._text(item, "content", record, line, index).strip()
            annotation = item.get("annotation") or {}
            raw = annotation.get("strategy") if isinstance(annotation, dict) else None
            strategies = self._strategies(raw, speaker, record, line, index, "annotation.strategy")
            turns.append(self._make_turn(speaker, text, strategies, {}))
        meta_keys = ("experience_type", "emotion_type", "problem_type", "situation")
        metadata = {k: data[k] for k in meta_keys if k in data}
        metadata["source_index"] = record
        dialogue = Dialogue(id="tmp", turns=turns, domain=data.get("problem_type"), metadata=metadata)
        dialogue.id = self._unique(f"esconv-{dialogue.content_hash()}")
        return dialogue


def _first_problem(error: Exception) -> str:
    if isinstance(error, ValidationError):
        item = error.errors()[0]
        return f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}"
    return str(error)


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

    Raises:
        DataError: the file is missing or not valid JSON, or (without ``skip_invalid``) a record is bad.
    """
    path = Path(path)
    name = str(path)
    tax = _resolve_taxonomy(taxonomy)
    parser = _RecordParser(name, tax, unknown_strategy)
    result = DialogueFile(path=name)
    for record, line, data, problem in _records(path):
        try:
            if problem is not None:
                raise problem
            dialogue, kind = parser.parse(data, record, line)
        except DataError as error:
            if not skip_invalid:
                raise
            result.skipped.append(error)
            continue
        result.formats.add(kind)
        result.dialogues.append(dialogue)
    return result


def _records(path: Path) -> Iterator[tuple[int, int | None, Any, DataError | None]]:
    name = str(path)
    if not path.is_file():
        raise DataError(name, "no such file")
    if path.suffix.lower() == ".jsonl":
        with path.open("r", encoding="utf-8") as handle:
            record = 0
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    yield record, number, json.loads(text), None
                except json.JSONDecodeError as error:
                    yield record, number, None, DataError(name, f"invalid JSON: {error.msg} (column {error.colno})",
                                                          record=record, line=number)
                record += 1
        return
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(name, f"not UTF-8 text (byte {error.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        reason = "truncated JSON" if error.pos >= len(text.rstrip()) else "invalid JSON"
        raise DataError(name, f"{reason}: {error.msg} (column {error.colno})", line=error.lineno) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError(name, f"expected a JSON list of dialogues, got {type(data).__name__}")
    for record, item in enumerate(data):
        yield record, None, item, None


def released_record(dialogue: Dialogue, taxonomy: Taxonomy) -> dict[str, Any]:
    """The released-format record of a dialogue (labels rendered as ``策略N 名称``)."""
    turns = []
    for turn in dialogue.turns:
        label = "+".join(taxonomy.released_label(name) for name in turn.strategies)
        item: dict[str, Any] = {"speaker": RELEASED_SPEAKERS[turn.speaker], "strategy": label, "text": turn.text}
        item.update(turn.metadata.get("released_extra", {}))
        turns.append(item)
    record: dict[str, Any] = {}
    if dialogue.metadata.get("has_id"):
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
    """
    if format not in ("cscprog", "released"):
        raise ValueError(f"cannot write format {format!r}; use 'cscprog' or 'released'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = list(dialogue_lines(dialogues, format=format, taxonomy=taxonomy))
    if path.suffix.lower() == ".jsonl":
        body = "".join(line + "\n" for line in lines)
    else:
        body = "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, path)
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
    for record, line, data, problem in _records(path):
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
