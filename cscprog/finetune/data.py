"""Training examples for ``cscprog finetune``: the export's examples, checked, measured and fingerprinted.

Every supporter turn is one example, made by the same code as ``cscprog export``
(:func:`cscprog.finetune.export.export_examples`): the prompt is the system prompt plus the user message (the
conversation so far), the completion is the target ``Strategy: <name>`` / ``Reply: <text>``. Examples are given
to TRL as *prompt-completion* conversations, so the loss falls on the completion only.

Bad data is never dropped silently: a supporter turn without a strategy of the taxonomy, or without text, stops
with a :class:`~cscprog.errors.DataError` naming the record, turn and field (from the export's checks); data
with no supporter turn at all is an error; an example whose tokens exceed ``max_length`` is skipped and counted
in :attr:`TrainingSet.skipped` (all of them skipped is an error); dialogues without a supporter turn are
counted in :attr:`TrainingSet.dialogues_without_turns`.

Judged RoleCS output and CSConv dialogues mix in one training set: a dialogue carrying the quality judge's verdict
is trained on only when the judge passed it; the rejected ones are named in :attr:`TrainingSet.judge_rejected`
(:mod:`cscprog.finetune.judged`). Both languages train together; the manifest counts examples per language.

Example:
    ```python
    from cscprog.finetune.data import build_training_set
    from cscprog.samples import load_sample

    data = build_training_set(load_sample("annotated"), tokenizer, max_length=1024)
    data.rows[0]["completion"][0]["content"]   # 'Strategy: Greeting\\nReply: ...'
    data.summary()   # {'examples': 60, 'skipped_too_long': 0, ...}
    ```
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cscprog.data import Dialogue
from cscprog.data.completion import default_system_prompt, format_target
from cscprog.errors import DataError, TaxonomyError
from cscprog.finetune.export import export_examples, user_message
from cscprog.finetune.judged import judged_selection
from cscprog.framework import Taxonomy, load_taxonomy

__all__ = ["TrainingSet", "build_training_set", "conversation", "example_tokens", "rows_from_examples"]


def conversation(system: str, user: str, target: str | None = None) -> dict[str, list[dict[str, str]]]:
    """One prompt-completion example (TRL's conversational layout); no ``completion`` when ``target`` is None.

    Example:
        ```python
        conversation("You are a supporter.", "Language: en\\n...", "Strategy: Greeting\\nReply: Hello!")
        ```
    """
    prompt = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    row: dict[str, list[dict[str, str]]] = {"prompt": prompt}
    if target is not None:
        row["completion"] = [{"role": "assistant", "content": target}]
    return row


def example_tokens(tokenizer: Any, row: dict[str, Any]) -> int:
    """Tokens of a prompt-completion example under the tokenizer's chat template (what training sees).

    Example:
        ```python
        example_tokens(tokenizer, data.rows[0])   # 412
        ```
    """
    ids = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return len(ids)


@dataclass
class TrainingSet:
    """The examples one fine-tuning run trains on, and what was left out.

    Attributes:
        rows: Prompt-completion examples, each with ``dialogue_id`` and ``turn_index``.
        skipped: Examples left out for length: ``{"dialogue_id", "turn_index", "tokens"}``.
        dialogues: Dialogues read.
        dialogues_without_turns: Dialogues that have no supporter turn (no example).
        max_length: The token limit applied.
        fingerprint: SHA-256 of the kept examples (prompt and completion), in order.
        judge_rejected: Ids of the dialogues left out because the quality judge did not pass them.
        judged_dialogues: Dialogues trained on that carry a passing verdict (synthesized and judged).
    """

    rows: list[dict[str, Any]]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    dialogues: int = 0
    dialogues_without_turns: int = 0
    max_length: int = 0
    fingerprint: str = ""
    judge_rejected: list[str] = field(default_factory=list)
    judged_dialogues: int = 0

    def summary(self) -> dict[str, Any]:
        """Counts and the fingerprint, for the manifest and the CLI.

        Example:
            ```python
            data.summary()["examples"]
            ```
        """
        return {
            "examples": len(self.rows),
            "dialogues": self.dialogues,
            "dialogues_without_supporter_turns": self.dialogues_without_turns,
            "skipped_too_long": len(self.skipped),
            "skipped": self.skipped[:20],
            "judge_rejected": len(self.judge_rejected),
            "judge_rejected_ids": self.judge_rejected[:20],
            "judged_dialogues": self.judged_dialogues,
            "languages": dict(sorted(Counter(row.get("language", "en") for row in self.rows).items())),
            "max_length": self.max_length,
            "fingerprint": self.fingerprint,
        }


def _fingerprint(rows: Sequence[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row["prompt"], row["completion"]], ensure_ascii=False, sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _keep_fitting(candidates: list[dict[str, Any]], tokenizer: Any, max_length: int, source: str) -> TrainingSet:
    kept: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for row in candidates:
        tokens = example_tokens(tokenizer, row)
        if tokens > max_length:
            skipped.append({"dialogue_id": row["dialogue_id"], "turn_index": row["turn_index"], "tokens": tokens})
        else:
            kept.append(row)
    if not kept:
        longest = max(item["tokens"] for item in skipped)
        raise DataError(source, f"every one of the {len(skipped)} examples is longer than finetune.max_length = "
                                f"{max_length} tokens (the longest has {longest}); raise max_length")
    return TrainingSet(rows=kept, skipped=skipped, max_length=max_length, fingerprint=_fingerprint(kept))


def build_training_set(
    dialogues: Sequence[Dialogue],
    tokenizer: Any,
    *,
    max_length: int,
    taxonomy: Taxonomy | None = None,
    system_prompt: str | None = None,
    source: str = "<dialogues>",
) -> TrainingSet:
    """The examples of ``dialogues`` (one per supporter turn) that fit in ``max_length`` tokens.

    Dialogues the quality judge did not pass (``metadata["judge"]``) are left out and named in the result.

    Args:
        dialogues: Annotated dialogues, in either language; judged RoleCS output and CSConv samples may mix.
        tokenizer: The base model's tokenizer (its chat template decides the length).
        max_length: Longest example in tokens; longer ones are skipped and counted.
        taxonomy: The strategy taxonomy (default CSC).
        system_prompt: As in :func:`export_examples` (None: the default prompt).
        source: Name of the data, for error messages.

    Raises:
        DataError: no supporter turn in the data, every dialogue rejected by the judge, a supporter turn without
            a strategy of the taxonomy or without text (naming the record, turn and field), or no example within
            ``max_length``.

    Example:
        ```python
        data = build_training_set(dialogues, tokenizer, max_length=512, source="train.jsonl")
        ```
    """
    selection = judged_selection(dialogues)
    if dialogues and not selection.kept:
        raise DataError(source, f"the quality judge rejected every one of the {len(dialogues)} dialogues "
                                "(metadata.judge.passed is not true): nothing to train on")
    read = len(dialogues)
    dialogues = selection.kept
    if not any(d.supporter_indices() for d in dialogues):
        raise DataError(source, "no supporter turn to train on (fine-tuning needs annotated supporter turns)")
    taxonomy = taxonomy or load_taxonomy("csc")
    exported = export_examples(dialogues, format="openai", system_prompt=system_prompt, taxonomy=taxonomy,
                               source=source)
    candidates = []
    for item in exported:
        messages = item["messages"]
        row = {"prompt": messages[:-1], "completion": messages[-1:]}
        meta = item["metadata"]
        row.update(dialogue_id=meta["dialogue_id"], turn_index=meta["turn_index"], language=meta["language"])
        candidates.append(row)
    result = _keep_fitting(candidates, tokenizer, max_length, source)
    result.judge_rejected = selection.rejected
    result.judged_dialogues = selection.judged_kept
    result.dialogues = read
    result.dialogues_without_turns = sum(1 for d in dialogues if not d.supporter_indices())
    return result


def rows_from_examples(
    examples: Sequence[Any],
    tokenizer: Any,
    *,
    max_length: int,
    taxonomy: Taxonomy | None = None,
    system_prompt: str | None = None,
    source: str = "<examples>",
) -> TrainingSet:
    """:func:`build_training_set` for next-turn examples (``history, language, domain, strategy, reply``).

    This is what a compile recipe has: :func:`cscprog.optimizers.training_examples` rows. The prompt is built
    by the same :func:`user_message` as the export, so both routes give identical examples.

    Raises:
        DataError: no example, an example without a strategy of the taxonomy, or none within ``max_length``.

    Example:
        ```python
        data = rows_from_examples(training_examples(dialogues), tokenizer, max_length=1024)
        ```
    """
    taxonomy = taxonomy or load_taxonomy("csc")
    if not examples:
        raise DataError(source, "no supporter turn to train on")
    system = default_system_prompt(taxonomy) if system_prompt is None else system_prompt.strip()
    candidates = []
    for number, example in enumerate(examples):
        label = getattr(example, "strategy", None)
        try:
            name = taxonomy.parse(str(label or "")).name
        except TaxonomyError:
            raise DataError(source, f"example {number}: strategy {label!r} is not in the {taxonomy.name} taxonomy",
                            record=number, field="strategy") from None
        user = user_message(example.history, example.language or "en", example.domain or "")
        row = conversation(system, user, format_target(name, str(example.reply).strip()))
        row.update(dialogue_id=str(getattr(example, "dialogue_id", number)),
                   turn_index=int(getattr(example, "turn_index", 0)), language=example.language or "en")
        candidates.append(row)
    return _keep_fitting(candidates, tokenizer, max_length, source)
