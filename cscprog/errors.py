"""The errors cscprog raises on bad input, each with a message a user can act on."""

from __future__ import annotations


class CscprogError(Exception):
    """Base class of every error cscprog raises deliberately."""


class ConfigError(CscprogError):
    """A config file or value is invalid; the message names the file and the key."""


class TaxonomyError(CscprogError):
    """A taxonomy file is malformed, or a name refers to no stage or strategy."""


class UnknownStrategyError(TaxonomyError):
    """A strategy label matches no strategy of the taxonomy.

    Attributes:
        label: The label as it was found.
        where: Where it was found (file, record, turn), when known.
    """

    def __init__(self, label: str, where: str | None = None, *, taxonomy: str = "csc") -> None:
        self.label = label
        self.where = where
        self.taxonomy = taxonomy
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}unknown strategy label {label!r} (taxonomy {taxonomy!r})")


class DataError(CscprogError):
    """A data file is malformed. The message names the file, record, line, turn and field.

    Attributes:
        path: The file.
        record: 0-based index of the record (dialogue) in the file, if known.
        line: 1-based line number (JSONL files, or the JSON parser's line), if known.
        turn: 0-based index of the turn in the dialogue, if known.
        field: The offending field, if known.
        reason: What is wrong.
    """

    def __init__(
        self,
        path: str,
        reason: str,
        *,
        record: int | None = None,
        line: int | None = None,
        turn: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = path
        self.reason = reason
        self.record = record
        self.line = line
        self.turn = turn
        self.field = field
        super().__init__(self.location() + ": " + reason)

    def location(self) -> str:
        """``file, record 3 (line 4), turn 2, field 'text'``: only the parts that are known."""
        parts = [str(self.path)]
        if self.record is not None:
            parts.append(f"record {self.record}" + (f" (line {self.line})" if self.line is not None else ""))
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.turn is not None:
            parts.append(f"turn {self.turn}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        return ", ".join(parts)
