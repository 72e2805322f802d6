"""``cscprog view``: decide what a path holds and build the viewer page for it.

What can be viewed:

* an evaluation output directory (``predictions.jsonl`` + ``result.json``): the run view; two of them: the
  side-by-side comparison on the turns both scored;
* a dialogue file (released, cscprog or ESConv format, or ``sample:NAME``): the dialogue view, with the
  dropped, rejected and failed items a run wrote beside it (``<stem>.dropped.jsonl``, ``<stem>.rejected.jsonl``,
  ``<file>.failures.jsonl``) when they exist;
* an arena's ``conversations.jsonl`` (:mod:`cscprog.view.conversations`): every conversation with its
  resolution verdict and scores;
* a run's failures file (``*.failures.jsonl``): its failures, with the dialogues of the output it belongs to;
* a directory of such files: every dialogue and failures file in it.

Example:
    ```python
    from cscprog.view.build import build_view

    page = build_view(["sample:annotated_en"], "page.html")
    ```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cscprog.data import Dialogue, read_dialogues
from cscprog.errors import DataError
from cscprog.framework import Taxonomy, load_taxonomy
from cscprog.runs import failures_path
from cscprog.view.conversations import is_conversations_file, read_conversations
from cscprog.view.dialogues import dialogue_payload
from cscprog.view.page import write_page
from cscprog.view.runs import is_run_dir, load_dialogue_source, load_run, read_records, run_payload

__all__ = ["SIDE_OUTPUTS", "build_view", "view_payload"]

SIDE_OUTPUTS = ("dropped", "rejected")
"""The side outputs a run writes beside its output (``<stem>.<name>.jsonl``), shown with it."""

FAILURES_SUFFIX = ".failures.jsonl"
ARENA_CONVERSATIONS = "conversations.jsonl"


def _dialogue_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".jsonl", ".json"))
    return [p for p in files if not p.name.endswith(FAILURES_SUFFIX) and not p.name.endswith(".manifest.json")]


def _with_side_outputs(path: Path) -> tuple[list[Path], list[Path]]:
    """The file, its side outputs that exist, and its failures file if it exists."""
    files = [path] + [p for name in SIDE_OUTPUTS if (p := path.with_name(f"{path.stem}.{name}.jsonl")).is_file()]
    failures = [p for p in (failures_path(path),) if p.is_file()]
    return files, failures


def _read_all(files: Sequence[Path], taxonomy: Taxonomy) -> list[Dialogue]:
    dialogues: list[Dialogue] = []
    for file in files:
        if is_conversations_file(file):
            dialogues.extend(read_conversations(file))
        else:
            dialogues.extend(read_dialogues(file, taxonomy=taxonomy).dialogues)
    return dialogues


def _dialogue_view(target: str, taxonomy: Taxonomy, side_outputs: bool) -> dict[str, Any]:
    path = Path(target)
    if target.startswith("sample:"):
        return dialogue_payload(load_dialogue_source(target, taxonomy), taxonomy, source=target, files=[target])
    if path.is_dir():
        arena = path / ARENA_CONVERSATIONS
        if is_conversations_file(arena):  # an arena run directory: its conversations (the other files are not)
            files, failure_files = [arena], [p for p in (failures_path(arena),) if p.is_file()]
        else:
            files = _dialogue_files(path)
            failure_files = sorted(p for p in path.iterdir() if p.name.endswith(FAILURES_SUFFIX))
    elif path.name.endswith(FAILURES_SUFFIX):
        output = path.with_name(path.name.removesuffix(FAILURES_SUFFIX))
        files = _with_side_outputs(output)[0] if output.is_file() else []
        failure_files = [path]
    elif path.is_file():
        files, failure_files = _with_side_outputs(path) if side_outputs else ([path], [])
    else:
        raise DataError(target, "no such file or directory")
    if not files and not failure_files:
        raise DataError(target, "no dialogue or failures file here")
    failures = [{**record, "file": file.name} for file in failure_files for record in read_records(file)]
    return dialogue_payload(_read_all(files, taxonomy), taxonomy, source=target, failures=failures,
                            files=[str(p) for p in [*files, *failure_files]])


def view_payload(
    targets: Sequence[str],
    *,
    data: str | None = None,
    taxonomy: Taxonomy | None = None,
    side_outputs: bool = True,
) -> dict[str, Any]:
    """The page data for one path (dialogues, failures or a run) or two run directories (a comparison).

    Args:
        targets: One path or ``sample:NAME``; or two evaluation run directories.
        data: The reference dialogues of evaluation runs (default: the data their ``result.json`` names).
        taxonomy: The taxonomy (default: CSC).
        side_outputs: Show a dialogue file's dropped, rejected and failed items with it.

    Raises:
        DataError: a path is missing, unreadable or not what is expected.

    Example:
        ```python
        view_payload(["eval/base", "eval/compiled"])["kind"]   # 'run'
        ```
    """
    taxonomy = taxonomy or load_taxonomy("csc")
    if not targets or len(targets) > 2:
        raise DataError(", ".join(targets) or "<none>", "give one path, or two evaluation run directories")
    if len(targets) == 2 or is_run_dir(targets[0]):
        bad = [t for t in targets if not is_run_dir(t)]
        if bad:
            raise DataError(bad[0], "not an evaluation run directory (needs predictions.jsonl and result.json)")
        first = load_run(targets[0], data=data, taxonomy=taxonomy)
        runs = [first] + [load_run(t, dialogues=first.dialogues, taxonomy=taxonomy) for t in targets[1:]]
        if len(runs) == 2 and runs[0].name == runs[1].name:
            runs[0].name, runs[1].name = str(runs[0].path), str(runs[1].path)
        return run_payload(runs, taxonomy, source=" vs ".join(targets))
    return _dialogue_view(targets[0], taxonomy, side_outputs)


def build_view(
    targets: Sequence[str],
    output: str | os.PathLike[str],
    *,
    data: str | None = None,
    taxonomy: Taxonomy | None = None,
    side_outputs: bool = True,
    title: str | None = None,
) -> Path:
    """Write the self-contained viewer page of ``targets`` (see :func:`view_payload`) to ``output``.

    Example:
        ```python
        build_view(["eval/base", "eval/compiled"], "compare.html")
        ```
    """
    payload = view_payload(targets, data=data, taxonomy=taxonomy, side_outputs=side_outputs)
    names = [Path(target).name or target for target in targets]
    return write_page(output, "viewer", payload, title=title or f"cscprog view: {' vs '.join(names)}")
