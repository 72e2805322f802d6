"""What a run did: counts, flags, exit status, resume hint; and where its manifest goes.

Example:
    ```python
    result = Runner(work, output="out.jsonl").run(items)
    print(result.summary(), result.resume_hint() or "")
    raise SystemExit(result.exit_status)
    ```
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "RunResult", "finished_rounds",
           "manifest_path"]

EXIT_OK = 0
"""Every item is finished."""
EXIT_FAILED = 1
"""Some items failed, or a budget stopped the run before every item ran."""
EXIT_BAD_INPUT = 2
"""The run could not start (bad input, an output that would be overwritten)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C or SIGTERM stopped the run; resume it."""


def manifest_path(output: str | Path) -> Path:
    """``<output>.manifest.json``: where a run's manifest goes.

    Example:
        ```python
        manifest_path("out.jsonl")  # Path("out.jsonl.manifest.json")
        ```
    """
    target = Path(output)
    return target.with_name(target.name + ".manifest.json")


def finished_rounds(manifest: str | Path) -> dict[str, int]:
    """``{item_id: round}`` of the items an earlier run of this output finished in a retry round (its manifest).

    A run records, in its manifest's ``run.rounds``, each finished item that needed ``--resume`` with the retry
    round it finished in; a resumed run carries them over. An unreadable or missing manifest gives ``{}``.

    Example:
        ```python
        finished_rounds("out.jsonl.manifest.json")  # {"d-7": 1}
        ```
    """
    try:
        data = json.loads(Path(manifest).read_text(encoding="utf-8"))
        rounds = data["run"]["rounds"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not isinstance(rounds, dict):
        return {}
    return {str(key): value for key, value in rounds.items() if isinstance(value, int) and value > 0}


@dataclass
class RunResult:
    """What a run did. Counts are items (not records).

    Attributes:
        output: The main output.
        side_outputs: Named side outputs (e.g. ``rejected``).
        failures: The failures file (it exists only while some item is failed).
        manifest: The manifest written, or None.
        total: Items of the run.
        skipped: Items already finished before this run (resume).
        done: Items finished by this run.
        failed: Items that failed in this run (in the failures file, retried by resume).
        unfinished: Items not started or abandoned (stop, budget).
        extra: Ids in the outputs that are not items of this run (kept untouched).
        by_output: Finished items per output name, over the whole run (skipped ones included).
        interrupted: Ctrl-C or SIGTERM stopped the run.
        stop_reason: Why the run stopped early, or None.
        resume_command: The command that resumes this run, when known.
        dropped_bytes: Bytes of a torn tail dropped from the outputs on resume.
        duration_s: Wall time.
    """

    output: Path
    side_outputs: dict[str, Path]
    failures: Path
    manifest: Path | None
    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    unfinished: int = 0
    extra: int = 0
    by_output: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    stop_reason: str | None = None
    resume_command: str | None = None
    dropped_bytes: int = 0
    duration_s: float = 0.0

    @property
    def complete(self) -> bool:
        """True when every item is finished (none failed or left)."""
        return self.failed == 0 and self.unfinished == 0

    @property
    def exit_status(self) -> int:
        """0 all finished, 1 some failed or not run (budget), 130 interrupted."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.complete else EXIT_FAILED

    def summary(self) -> str:
        """One line: ``200 items: 160 done (40 from before), 3 failed, 37 not run.``"""
        text = f"{self.total} item(s): {self.skipped + self.done} done"
        if self.skipped:
            text += f" ({self.skipped} from before)"
        text += f", {self.failed} failed"
        if self.unfinished:
            text += f", {self.unfinished} not finished"
        if self.stop_reason:
            text += f"; stopped: {self.stop_reason}"
        return text + "."

    def resume_hint(self) -> str | None:
        """How to pick the run up again, or None when nothing is left to do."""
        if self.complete:
            return None
        how = self.resume_command or "run it again with resume=True"
        return f"To resume, run: {how}" if self.resume_command else f"To resume, {how}."

    def as_dict(self) -> dict[str, Any]:
        """The counts and flags as JSON-able data (the manifest's ``run`` section)."""
        return {
            "total": self.total,
            "done": self.skipped + self.done,
            "done_this_run": self.done,
            "skipped_already_done": self.skipped,
            "failed": self.failed,
            "unfinished": self.unfinished,
            "extra_in_output": self.extra,
            "by_output": dict(self.by_output),
            "interrupted": self.interrupted,
            "stop_reason": self.stop_reason,
            "exit_status": self.exit_status,
            "resume_command": self.resume_command if not self.complete else None,
            "torn_tail_dropped_bytes": self.dropped_bytes,
        }


