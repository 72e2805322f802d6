"""The dataset card of an export: a Hugging Face ``README.md`` (YAML header, then Markdown) saying what the data is.

The card lists the taxonomy, the counts per split, the strategy and stage distributions, domains and languages,
how the source data was generated (model, temperature and seed per LLM role, the run seed and cache, read from the
source's run manifest ``<source>.manifest.json`` when there is one), SHA-256 fingerprints of the source file and
of every file written, the license and the command that made it.

Example:
    ```python
    from cscprog.finetune.card import dataset_card

    text = dataset_card(dialogues, taxonomy, export_format="openai", files={"all": Path("ft/csc.jsonl")},
                        counts={"all": (24, 300)}, source="sample:annotated_en", command="cscprog export ...")
    ```
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cscprog.data import Dialogue, dataset_stats
from cscprog.errors import DataError
from cscprog.framework import Taxonomy
from cscprog.samples import SAMPLES, sample_path

__all__ = [
    "CARD_MARKER",
    "card_path",
    "content_fingerprint",
    "dataset_card",
    "file_fingerprint",
    "source_manifest",
    "write_export_card",
]

logger = logging.getLogger(__name__)

CARD_MARKER = "<!-- written by cscprog export -->"
"""The line that marks a README.md as a card cscprog may overwrite."""

_SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def file_fingerprint(path: str | os.PathLike[str]) -> str | None:
    """``sha256:<hex>`` of a file, or of every file under a directory (names and bytes, README.md left out).

    None when the path does not exist.

    Example:
        ```python
        file_fingerprint("ft/csc.jsonl")   # 'sha256:9f2c...'
        ```
    """
    target = Path(path)
    digest = hashlib.sha256()
    if target.is_file():
        files = [target]
    elif target.is_dir():
        files = sorted(p for p in target.rglob("*") if p.is_file() and p.name != "README.md")
    else:
        return None
    for file in files:
        if target.is_dir():
            digest.update(file.relative_to(target).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def _source_file(source: str) -> Path:
    if source.startswith("sample:"):
        name = source.removeprefix("sample:")
        if name in SAMPLES:
            return sample_path(name)
    return Path(source)


def content_fingerprint(dialogues: Sequence[Dialogue]) -> str:
    """``sha256:<hex>`` of the dialogues' cscprog JSON records, in order (independent of the file format).

    Example:
        ```python
        content_fingerprint(load_sample("annotated_en"))   # 'sha256:...'
        ```
    """
    digest = hashlib.sha256()
    for dialogue in dialogues:
        digest.update(json.dumps(dialogue.to_json(), sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n")
    return "sha256:" + digest.hexdigest()


def source_manifest(source: str) -> tuple[dict[str, Any] | None, Path | None]:
    """The run manifest written beside a source data file (``<source>.manifest.json``), if any.

    Example:
        ```python
        manifest, path = source_manifest("synth.jsonl")   # reads synth.jsonl.manifest.json
        ```
    """
    path = Path(source + ".manifest.json")
    if not path.is_file():
        return None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        logger.warning("%s: unreadable run manifest, left out of the card (%s)", path, error)
        return None, None
    return (data, path) if isinstance(data, dict) else (None, None)


def _size_category(n: int) -> str:
    return next((label for bound, label in _SIZE_CATEGORIES if n < bound), "n>1M")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows), ""]


def _generation(manifest: dict[str, Any] | None, manifest_path: Path | None) -> list[str]:
    lines = ["## Generation", ""]
    if manifest is None:
        return [*lines, "No run manifest was found beside the source data (`<source>.manifest.json`), so the models, "
                        "temperatures and seeds that produced it are not recorded here.", ""]
    roles = manifest.get("roles") or {}
    lines += [f"From the run manifest `{manifest_path}` (command `{manifest.get('command', '')}`, run seed "
              f"{manifest.get('seed')}, cscprog {((manifest.get('versions') or {}).get('cscprog'))}).", ""]
    if roles:
        lines += _table(("role", "model", "temperature", "seed", "max tokens"), [
            (role, info.get("model"), info.get("temperature", "default"), info.get("seed", "none"),
             info.get("max_tokens", "default")) for role, info in sorted(roles.items())])
    cache = manifest.get("cache") or {}
    if cache:
        lines += [f"Cache: mode `{cache.get('mode')}`, key version `{cache.get('version')}`, {cache.get('hits')} hits, "
                  f"{cache.get('misses')} misses in the run that wrote the data.", ""]
    return lines


def dataset_card(
    dialogues: Sequence[Dialogue],
    taxonomy: Taxonomy,
    *,
    export_format: str,
    files: Mapping[str, Path],
    counts: Mapping[str, tuple[int, int]],
    source: str,
    command: str | None = None,
    license: str = "unknown",
    manifest: dict[str, Any] | None = None,
    manifest_path: Path | None = None,
) -> str:
    """The card's text.

    Args:
        dialogues: The dialogues exported (all splits).
        taxonomy: Their taxonomy.
        export_format: ``openai``, ``sharegpt``, ``alpaca`` or ``hf``.
        files: Split name -> the file (or ``hf`` directory) written.
        counts: Split name -> (dialogues, examples).
        source: The source data as given.
        command: The command that made the export.
        license: A Hugging Face license identifier (``mit``, ``cc-by-4.0``...) or ``unknown``.
        manifest: The source's run manifest, if any; manifest_path: where it was read.

    Example:
        ```python
        text = dataset_card(dialogues, csc, export_format="openai", files={"all": Path("a.jsonl")},
                            counts={"all": (24, 183)}, source="sample:annotated_en")
        ```
    """
    stats = dataset_stats(dialogues, taxonomy)
    examples = sum(n for _, n in counts.values())
    languages = sorted(lang for lang in stats["languages"] if lang != "(unknown)")
    header = ["---", f"license: {license}", "language:", *(f"- {lang}" for lang in languages),
              "task_categories:", "- text-generation", "tags:", "- customer-support", "- dialogue", "- cscprog",
              f"size_categories:\n- {_size_category(examples)}",
              "pretty_name: " + json.dumps(f"cscprog export of {Path(source).name}", ensure_ascii=False)]
    if export_format != "hf":
        header += ["configs:", "- config_name: default", "  data_files:",
                   *(f"  - split: {'train' if name == 'all' else name}\n    path: {path.name}"
                     for name, path in files.items())]
    header += ["---", CARD_MARKER, ""]
    total = stats["supporter_turns"] or 1
    body = [f"# cscprog export of `{source}`", "",
            f"Fine-tuning data for the next supporter turn of customer-support conversations (strategy, then reply), "
            f"in the `{export_format}` format: one example per supporter turn, the conversation so far as input.", "",
            "## Counts", "", *_table(("split", "dialogues", "examples", "file"), [
                (name, counts[name][0], counts[name][1], f"`{files[name].name}`") for name in files]),
            f"{stats['dialogues']} dialogues, {stats['utterances']} utterances, {stats['supporter_turns']} supporter "
            f"turns ({stats['mean_utterances']} utterances and {stats['mean_supporter_turns']} supporter turns a "
            "dialogue).", "",
            f"## Taxonomy: {taxonomy.name}", "", *_table(("stage", "strategy", "abbr.", "Chinese label"), [
                (s.stage, s.name, s.abbr, s.zh or "") for s in taxonomy.strategies]),
            "## Strategy distribution (supporter turns)", "",
            *_table(("strategy", "turns", "share"), [(name, n, f"{100 * n / total:.1f}%")
                                                    for name, n in stats["strategy_counts"].items()]),
            "## Stage distribution", "", *_table(("stage", "turns", "share"), [
                (name, n, f"{100 * n / total:.1f}%") for name, n in stats["stage_counts"].items()]),
            "## Domains and languages", "", *_table(("domain", "dialogues"), list(stats["domains"].items())),
            *_table(("language", "dialogues"), list(stats["languages"].items())),
            *_generation(manifest, manifest_path),
            "## Fingerprints (SHA-256)", "", *_table(("what", "fingerprint"), [
                (f"source file `{source}`", file_fingerprint(_source_file(source)) or "(not a file)"),
                ("exported dialogues (cscprog JSON records, in order)", content_fingerprint(dialogues)),
                *((f"`{path.name}`", file_fingerprint(path)) for path in dict.fromkeys(files.values()))]),
            "## License", "", f"`{license}`" + (" (not stated: give `--license`)" if license == "unknown" else "")
            + ". The source data's own license applies to its content.", "",
            "## How it was made", "", "```", command or "cscprog export", "```", ""]
    return "\n".join(header + body)


def card_path(files: Mapping[str, Path], export_format: str) -> Path:
    """Where the card goes: README.md in the hf directory, else beside the JSONL files (or ``<stem>.README.md``
    when a README.md not written by cscprog is already there).

    Example:
        ```python
        card_path({"all": Path("ft/csc.jsonl")}, "openai")   # Path("ft/README.md")
        ```
    """
    first = next(iter(files.values()))
    if export_format == "hf":
        return first / "README.md"
    readme = first.parent / "README.md"
    if readme.is_file() and CARD_MARKER not in readme.read_text(encoding="utf-8", errors="replace"):
        logger.warning("%s exists and is not a cscprog card; writing the card beside it", readme)
        stem = first.name.split(".")[0]
        return first.with_name(f"{stem}.README.md")
    return readme


def write_export_card(
    dialogues: Sequence[Dialogue],
    taxonomy: Taxonomy,
    export_format: str,
    files: Mapping[str, Path],
    counts: Mapping[str, tuple[int, int]],
    *,
    source: str,
    command: str | None = None,
    license: str = "unknown",
) -> Path:
    """Write the card of an export (see :func:`card_path` for where), with the source's run manifest if any.

    Raises:
        DataError: the card cannot be written.

    Example:
        ```python
        write_export_card(dialogues, csc, "openai", {"all": Path("ft/csc.jsonl")}, {"all": (24, 300)}, source="x")
        ```
    """
    manifest, manifest_path = source_manifest(source)
    text = dataset_card(dialogues, taxonomy, export_format=export_format, files=files, counts=counts, source=source,
                        command=command, license=license, manifest=manifest, manifest_path=manifest_path)
    target = card_path(files, export_format)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        raise DataError(str(target), f"cannot write the dataset card ({error})") from None
    return target
