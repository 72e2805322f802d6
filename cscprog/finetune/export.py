"""Training data for fine-tuning a model on the next supporter turn (the paper's "Enhancing" step).

One training example per supporter turn of every dialogue, an opening supporter turn with an empty history
included: the conversation before the turn -> the turn's strategy, then its reply. Four formats:

* ``openai``: OpenAI chat fine-tuning JSONL, ``{"messages": [system, user, assistant], "metadata": {...}}``;
* ``sharegpt``: ``{"conversations": [{"from": "system"|"human"|"gpt", "value": ...}], "metadata": {...}}``;
* ``alpaca``: ``{"instruction": <system prompt>, "input": <user message>, "output": <target>, "metadata": ...}``;
* ``hf``: a Hugging Face ``datasets`` dataset saved with ``save_to_disk``: a ``messages`` column (the same
  messages as ``openai``) plus the metadata as columns (needs ``pip install "cscprog[hf]"``).

Layout of an example:

* **System prompt** (the Alpaca ``instruction``): :func:`default_system_prompt` unless one is given; ``""``
  leaves the system message out (Alpaca needs one, so there it is an error).
* **User message**: ``Domain: <domain>`` (left out when unknown), ``Language: <en|zh>``, then
  ``Conversation so far:`` and the transcript exactly as :meth:`cscprog.data.Dialogue.transcript` renders it
  (``Customer: ...`` / ``Supporter [Greeting]: ...``, or the empty-history marker). The whole history sits in
  one user message rather than in alternating user/assistant messages because (1) it is the very string our
  signatures and :func:`cscprog.data.next_turn_examples` give the DSPy programs, so a fine-tuned model and the
  programs are prompted and evaluated (reference and generated context) on the same input; (2) earlier
  supporter turns keep their strategy tags, which alternating messages would have to drop or fake as
  assistant outputs; (3) dialogues that open with either speaker, or where a speaker talks twice in a row,
  need no merging or padding to fit a strict user/assistant alternation.
* **Assistant target**, two lines, in every language::

      Strategy: <canonical English strategy name>
      Reply: <the supporter's utterance>

  Chinese dialogues keep the English keys and the English strategy name: the history tags are English names
  in both languages, so the model learns one label vocabulary and the output is parsed the same way
  everywhere. The reply is the gold text (outer whitespace stripped).
* **Metadata**: ``dialogue_id``, ``turn_index`` (0-based index of the supporter turn in the dialogue),
  ``language``, ``domain`` and ``strategy`` (the gold name). In the JSONL formats they are under a top-level
  ``"metadata"`` key (``metadata=False`` / ``--no-metadata`` leaves it out for tools that reject unknown
  keys); in ``hf`` they are columns. ``dialogue_id`` and ``turn_index`` are what ``cscprog score`` joins
  predictions on.

:func:`parse_completion` reads a model's output in that layout back into ``(strategy, reply, problem)``;
``cscprog score`` uses it for prediction lines that carry a raw ``completion``.

Splits (:func:`write_export` with ``split={"train": 0.9, "dev": 0.1}``) go by dialogue id through
:func:`cscprog.data.split_dialogues`, so all turns of a dialogue land in the same split, the same way on every
run; JSONL files are written as ``<stem>.<split>.jsonl`` beside ``path``, an ``hf`` export as a
``DatasetDict`` with one dataset per split.

Every export also gets a Hugging Face dataset card (``README.md`` beside the JSONL files or in the ``hf``
directory; :mod:`cscprog.finetune.card`), unless ``card=False``.

Example:
    ```python
    from cscprog.finetune.export import export_examples, parse_completion, write_export
    from cscprog.framework import load_taxonomy
    from cscprog.samples import load_sample

    dialogues = load_sample("annotated")
    rows = export_examples(dialogues, format="openai")
    rows[0]["messages"][-1]["content"]        # 'Strategy: Greeting\\nReply: Good afternoon, ...'
    parse_completion(rows[0]["messages"][-1]["content"], load_taxonomy("csc"))   # ('Greeting', '...', None)
    write_export("ft/csc.jsonl", dialogues, "openai", split={"train": 0.9, "dev": 0.1})
    ```
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cscprog.data import Dialogue, split_dialogues
from cscprog.data.completion import default_system_prompt, format_target, parse_completion
from cscprog.errors import ConfigError, DataError
from cscprog.files import atomic_write
from cscprog.finetune.card import write_export_card
from cscprog.framework import Taxonomy, load_taxonomy

__all__ = [
    "FORMATS",
    "ExportResult",
    "default_system_prompt",
    "export_examples",
    "format_target",
    "parse_completion",
    "split_paths",
    "user_message",
    "write_export",
]

logger = logging.getLogger(__name__)

ExportFormat = Literal["openai", "sharegpt", "alpaca", "hf"]
FORMATS: tuple[str, ...] = ("openai", "sharegpt", "alpaca", "hf")
"""The export formats."""

HF_INSTALL = 'pip install "cscprog[hf]"'

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def user_message(history: str, language: str, domain: str) -> str:
    """The user message of an example: ``Domain:`` (when known), ``Language:``, then the conversation so far.

    Example:
        ```python
        user_message("Customer: Hello?", "en", "")   # 'Language: en\nConversation so far:\nCustomer: Hello?'
        ```
    """
    lines = [f"Domain: {domain}"] if domain else []
    lines += [f"Language: {language}", "Conversation so far:", history]
    return "\n".join(lines)


def _check_dialogues(dialogues: Sequence[Dialogue], taxonomy: Taxonomy, source: str) -> None:
    seen: set[str] = set()
    for number, dialogue in enumerate(dialogues):
        if dialogue.id in seen:
            raise DataError(source, f"duplicate dialogue id {dialogue.id!r} (turns could not be told apart)",
                            record=number, field="id")
        seen.add(dialogue.id)
        for index in dialogue.supporter_indices():
            turn = dialogue.turns[index]
            if turn.strategy is None:
                raise DataError(source, f"dialogue {dialogue.id!r}: supporter turn has no strategy (export needs "
                                        "annotated dialogues)", record=number, turn=index, field="strategy")
            if turn.strategy not in taxonomy.names:
                raise DataError(source, f"dialogue {dialogue.id!r}: strategy {turn.strategy!r} is not in the "
                                        f"{taxonomy.name} taxonomy", record=number, turn=index, field="strategy")
            if not turn.text.strip():
                raise DataError(source, f"dialogue {dialogue.id!r}: supporter turn has no text", record=number,
                                turn=index, field="text")


def _render(fmt: str, system: str, user: str, target: str, meta: dict[str, Any], metadata: bool) -> dict[str, Any]:
    if fmt in ("openai", "hf"):
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user}, {"role": "assistant", "content": target}]
        if fmt == "hf":
            return {"messages": messages, **meta}
        row: dict[str, Any] = {"messages": messages}
    elif fmt == "sharegpt":
        row = {"conversations": ([{"from": "system", "value": system}] if system else []) + [
            {"from": "human", "value": user}, {"from": "gpt", "value": target}]}
    else:
        row = {"instruction": system, "input": user, "output": target}
    if metadata:
        row["metadata"] = meta
    return row


def export_examples(
    dialogues: Sequence[Dialogue],
    *,
    format: ExportFormat = "openai",
    system_prompt: str | None = None,
    language: str | None = None,
    taxonomy: Taxonomy | None = None,
    metadata: bool = True,
    source: str = "<dialogues>",
) -> list[dict[str, Any]]:
    """One training example per supporter turn, in dialogue and turn order (layout: see the module docstring).

    Args:
        dialogues: Annotated dialogues (every supporter turn has a strategy of ``taxonomy``).
        format: ``openai``, ``sharegpt``, ``alpaca`` or ``hf`` (rows of the ``hf`` dataset).
        system_prompt: The system prompt; None uses :func:`default_system_prompt`, ``""`` leaves it out.
        language: Export only the dialogues in this language (``en``/``zh``); None exports all.
        taxonomy: The strategy taxonomy (default CSC); gold strategies must belong to it.
        metadata: Add the top-level ``metadata`` key in the JSONL formats (``hf`` always has the columns).
        source: Name of the data, for error messages.

    Returns:
        Plain JSON-serialisable dicts.

    Raises:
        ConfigError: an unknown format, or an empty system prompt for ``alpaca``.
        DataError: a duplicate dialogue id, or a supporter turn without a strategy of the taxonomy or without
            text (naming the record and turn).

    Example:
        ```python
        rows = export_examples(load_sample("annotated_zh"), format="sharegpt", system_prompt="")
        rows[0]["conversations"][1]["value"]   # 'Strategy: Greeting\\nReply: 您好...'
        ```
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    taxonomy = taxonomy or load_taxonomy("csc")
    system = default_system_prompt(taxonomy) if system_prompt is None else system_prompt.strip()
    if format == "alpaca" and not system:
        raise ConfigError("the alpaca format needs a non-empty system prompt (it is the instruction)")
    selected = [d for d in dialogues if language is None or (d.language or "en") == language]
    _check_dialogues(selected, taxonomy, source)
    rows = []
    for dialogue in selected:
        lang = dialogue.language or "en"
        domain = dialogue.domain or ""
        for index in dialogue.supporter_indices():
            turn = dialogue.turns[index]
            strategy = turn.strategy or ""
            meta = {"dialogue_id": dialogue.id, "turn_index": index, "language": lang, "domain": domain,
                    "strategy": strategy}
            user = user_message(dialogue.transcript(index), lang, domain)
            rows.append(_render(format, system, user, format_target(strategy, turn.text.strip()), meta,
                                metadata))
    return rows


@dataclass
class ExportResult:
    """What :func:`write_export` wrote.

    Attributes:
        format: The export format.
        paths: Split name (``"all"`` without a split) -> the file, or the ``hf`` dataset directory.
        examples: Split name -> number of examples.
        dialogues: Split name -> number of dialogues.
    """

    format: str
    paths: dict[str, Path] = field(default_factory=dict)
    examples: dict[str, int] = field(default_factory=dict)
    dialogues: dict[str, int] = field(default_factory=dict)
    card: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data (the ``--json`` output of ``cscprog export``)."""
        return {"format": self.format, "paths": {k: str(v) for k, v in self.paths.items()},
                "examples": dict(self.examples), "dialogues": dict(self.dialogues),
                "total_examples": sum(self.examples.values()), "card": str(self.card) if self.card else None}


def split_paths(path: str | os.PathLike[str], names: Sequence[str]) -> dict[str, Path]:
    """The JSONL file of each split: ``<stem>.<split>.jsonl`` beside ``path``.

    Example:
        ```python
        split_paths("ft/csc.jsonl", ["train", "dev"])   # {'train': ft/csc.train.jsonl, 'dev': ft/csc.dev.jsonl}
        ```
    """
    target = Path(path)
    return {name: target.with_name(f"{target.stem}.{name}.jsonl") for name in names}


def _check_split(split: Mapping[str, float]) -> dict[str, float]:
    ratios = dict(split)
    bad = [name for name in ratios if not _SPLIT_NAME.match(name)]
    if bad:
        raise ConfigError(f"split names may hold only letters, digits, '_' and '-', got {bad}")
    if not ratios or any(r < 0 for r in ratios.values()) or abs(sum(ratios.values()) - 1.0) > 1e-6:
        raise ConfigError(f"split ratios must be non-negative and sum to 1, got {ratios}")
    return ratios


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _hf_dataset(rows: Sequence[dict[str, Any]]) -> Any:
    from datasets import Dataset, Features, Value

    features = Features({
        "messages": [{"role": Value("string"), "content": Value("string")}],
        "dialogue_id": Value("string"), "turn_index": Value("int32"), "language": Value("string"),
        "domain": Value("string"), "strategy": Value("string"),
    })
    # column-wise, so that an empty split still gets its typed columns
    return Dataset.from_dict({name: [row[name] for row in rows] for name in features}, features=features)


def _save_quietly(data: Any, target: Path) -> None:
    import datasets

    quiet_before = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # our command reports what it wrote; no bars on stderr
    try:
        # an empty split gets one shard: datasets saves it with none by default and then cannot load it back
        if isinstance(data, datasets.DatasetDict):
            data.save_to_disk(str(target), num_shards={name: 1 if len(part) == 0 else None
                                                       for name, part in data.items()})
        else:
            data.save_to_disk(str(target), num_shards=1 if len(data) == 0 else None)
    finally:
        if not quiet_before:
            datasets.enable_progress_bars()


def _require_datasets() -> None:
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise ConfigError(f"the hf format needs the Hugging Face datasets library: {HF_INSTALL}") from None


def write_export(
    path: str | os.PathLike[str],
    dialogues: Sequence[Dialogue],
    format: ExportFormat = "openai",
    *,
    split: Mapping[str, float] | None = None,
    system_prompt: str | None = None,
    language: str | None = None,
    taxonomy: Taxonomy | None = None,
    metadata: bool = True,
    salt: str = "cscprog",
    source: str = "<dialogues>",
    card: bool = True,
    command: str | None = None,
    license: str = "unknown",
) -> ExportResult:
    """Write the examples of :func:`export_examples` to ``path``, optionally split by dialogue id.

    Args:
        path: The JSONL file (``openai``, ``sharegpt``, ``alpaca``), or the directory of an ``hf`` dataset.
        dialogues: Annotated dialogues.
        format: The export format.
        split: Split name -> share of the dialogues (sum 1), e.g. ``{"train": 0.9, "dev": 0.1}``. JSONL
            formats write ``<stem>.<name>.jsonl`` beside ``path``; ``hf`` saves a ``DatasetDict`` at ``path``.
            A dialogue's split depends only on its id and ``salt`` (:func:`cscprog.data.split_dialogues`).
        system_prompt, language, taxonomy, metadata, source: As in :func:`export_examples`.
        salt: Salt of the split hash.
        card: Also write the dataset card (:mod:`cscprog.finetune.card`): ``README.md`` in the ``hf`` directory or
            beside the JSONL files.
        command: The command that made the export, for the card.
        license: The license identifier the card declares (``unknown`` when not given).

    Returns:
        The files written and the counts per split.

    Raises:
        ConfigError: bad split ratios or names, an unknown format, or ``hf`` without ``datasets`` installed.
        DataError: as :func:`export_examples`, or no dialogue to export.

    Example:
        ```python
        result = write_export("ft/csc.jsonl", load_sample("annotated"), "openai", split={"train": .9, "dev": .1})
        result.paths["train"], result.examples
        ```
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if format == "hf":
        _require_datasets()
    ratios = _check_split(split) if split is not None else None
    selected = [d for d in dialogues if language is None or (d.language or "en") == language]
    if not any(d.supporter_indices() for d in selected):
        raise DataError(source, "no supporter turn to export" + (f" in language {language!r}" if language else ""))
    taxonomy = taxonomy or load_taxonomy("csc")
    _check_dialogues(selected, taxonomy, source)  # across all splits: a duplicate id in two splits would leak
    parts = split_dialogues(selected, ratios, salt=salt) if ratios else {"all": selected}
    rows = {name: export_examples(part, format=format, system_prompt=system_prompt, taxonomy=taxonomy,
                                  metadata=metadata, source=source)
            for name, part in parts.items()}
    result = ExportResult(format=format)
    target = Path(path)
    for name, part in parts.items():
        result.examples[name] = len(rows[name])
        result.dialogues[name] = len(part)
        if not part:
            logger.warning("split %r of %s is empty", name, target)
    if format == "hf":
        from datasets import DatasetDict

        data = _hf_dataset(rows["all"]) if ratios is None else DatasetDict(
            {name: _hf_dataset(part_rows) for name, part_rows in rows.items()})
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _save_quietly(data, target)
        except OSError as error:
            raise DataError(str(target), f"cannot save the dataset here ({error})") from None
        result.paths = {name: target for name in rows}
        return _with_card(result, selected, taxonomy, source, command, license) if card else result
    files = {"all": target} if ratios is None else split_paths(target, list(ratios))
    for name, file in files.items():
        try:
            _write_jsonl(file, rows[name])
        except OSError as error:
            raise DataError(str(file), f"cannot write the export ({error})") from None
        result.paths[name] = file
    return _with_card(result, selected, taxonomy, source, command, license) if card else result



def _with_card(result: ExportResult, dialogues: Sequence[Dialogue], taxonomy: Taxonomy, source: str,
               command: str | None, license: str) -> ExportResult:
    counts = {name: (result.dialogues[name], result.examples[name]) for name in result.paths}
    result.card = write_export_card(dialogues, taxonomy, result.format, result.paths, counts, source=source,
                                    command=command, license=license)
    return result
