"""One raw JSON record -> one :class:`~cscprog.data.Dialogue`, for every record format cscprog reads.

:class:`RecordParser` recognises the format of each record (released CSConv/RoleCS, cscprog, ESConv), maps the
speakers (:data:`SPEAKERS`) and labels, and raises :class:`~cscprog.errors.DataError` naming the file, record,
line, turn and field of the first problem. :mod:`cscprog.data.io` reads files with it.

Example:
    ```python
    parser = RecordParser("calls.json", load_taxonomy("csc"), "error")
    dialogue, kind = parser.parse({"dialogue": [{"speaker": "客户", "text": "你好"}]}, record=0, line=None)
    ```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

from cscprog.data.dialogue import CUSTOMER, SUPPORTER, Dialogue, Speaker, Turn
from cscprog.data.profile import Profile, Scenario
from cscprog.errors import DataError, UnknownStrategyError
from cscprog.framework import Taxonomy

__all__ = ["ESCONV_SPEAKERS", "RELEASED_SPEAKERS", "SPEAKERS", "Format", "RecordParser", "UnknownPolicy"]

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


class RecordParser:
    """Turns one JSON record (released, cscprog or ESConv) into a Dialogue, raising DataError with its location.

    Args:
        path: The file the records come from (for error messages).
        taxonomy: The taxonomy labels are parsed with.
        unknown: ``"fallback"`` maps unknown labels to the taxonomy's fallback; ``"error"`` raises.
    """

    def __init__(self, path: str, taxonomy: Taxonomy, unknown: UnknownPolicy) -> None:
        self.path = path
        self.taxonomy = taxonomy
        self.unknown = unknown
        self.seen_ids: dict[str, int] = {}
        self.assigned: set[str] = set()
        self.renamed: list[tuple[str, str]] = []

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
        """``dialogue_id``, or when an earlier record took it ``<id>-N`` with the smallest free N >= 2."""
        count = self.seen_ids.get(dialogue_id, 0) + 1
        self.seen_ids[dialogue_id] = count
        candidate, number = dialogue_id, max(count, 2)
        while candidate in self.assigned:
            candidate = f"{dialogue_id}-{number}"
            number += 1
        self.assigned.add(candidate)
        if candidate != dialogue_id:
            self.renamed.append((dialogue_id, candidate))
        return candidate

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
