"""Reading a taxonomy: the built-in ones shipped with cscprog, TOML/JSON files, and plain data.

Every key is checked, and a malformed file ends in a :class:`~cscprog.errors.TaxonomyError` that names the file
and the key.

Example:
    ```python
    from cscprog.framework import load_taxonomy, taxonomy_from_dict

    esconv = load_taxonomy("esconv")                          # ESConv's 3 stages and 8 strategies
    custom = load_taxonomy("my_taxonomy.toml", stages={"Greeting": "any"})
    again = taxonomy_from_dict(esconv.to_dict(), source="<copy>")
    ```
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from cscprog.errors import TaxonomyError
from cscprog.framework.taxonomy import FlowRules, Stage, Strategy, Taxonomy

__all__ = ["BUILTIN_TAXONOMIES", "load_taxonomy", "strategy_names", "taxonomy_from_dict"]

BUILTIN_TAXONOMIES: tuple[str, ...] = ("csc", "esconv")


def taxonomy_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> Taxonomy:
    """Build a taxonomy from plain data (the parsed TOML/JSON of a taxonomy file).

    Raises:
        TaxonomyError: a required key is missing or has the wrong type; the message names the key.
    """

    def need(table: Mapping[str, Any], key: str, where: str, kind: type = str) -> Any:
        if key not in table:
            raise TaxonomyError(f"{source}: {where}: missing key {key!r}")
        value = table[key]
        if not isinstance(value, kind):
            raise TaxonomyError(f"{source}: {where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
        return value

    def number(item: Mapping[str, Any], key: str, where: str, default: int) -> int:
        value = item.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TaxonomyError(f"{source}: {where}.{key}: expected an integer, got {value!r}")
        return value

    name = need(data, "name", "(top level)")
    stages_data = need(data, "stages", "(top level)", list)
    strategies_data = need(data, "strategies", "(top level)", list)
    stages = []
    for i, item in enumerate(stages_data):
        where = f"stages[{i}]"
        if not isinstance(item, Mapping):
            raise TaxonomyError(f"{source}: {where}: expected a table")
        stages.append(
            Stage(
                name=need(item, "name", where),
                order=number(item, "order", where, i + 1),
                description=str(item.get("description", "")),
                zh=item.get("zh"),
            )
        )
    strategies = []
    for i, item in enumerate(strategies_data):
        where = f"strategies[{i}]"
        if not isinstance(item, Mapping):
            raise TaxonomyError(f"{source}: {where}: expected a table")
        aliases = item.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise TaxonomyError(f"{source}: {where}.aliases: expected a list of strings")
        strategy_name = need(item, "name", where)
        strategies.append(
            Strategy(
                number=number(item, "number", where, i + 1),
                name=strategy_name,
                abbr=str(item.get("abbr") or "".join(w[0] for w in strategy_name.split()).upper()),
                stage=need(item, "stage", where),
                definition=need(item, "definition", where),
                note=str(item.get("note", "")),
                zh=item.get("zh"),
                aliases=tuple(aliases),
            )
        )
    flow_data = data.get("flow", {})
    if not isinstance(flow_data, Mapping):
        raise TaxonomyError(f"{source}: flow: expected a table")
    unknown = set(flow_data) - set(FlowRules.__dataclass_fields__)
    if unknown:
        raise TaxonomyError(f"{source}: flow: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        return _build(data, name, stages, strategies, flow_data)
    except TaxonomyError as error:  # duplicate names, unknown stages...: say which file
        message = str(error)
        raise TaxonomyError(message if message.startswith(source) else f"{source}: {message}") from None


def _build(data: Mapping[str, Any], name: str, stages: list[Stage], strategies: list[Strategy],
           flow_data: Mapping[str, Any]) -> Taxonomy:
    return Taxonomy(
        name=name,
        stages=tuple(stages),
        strategies=tuple(strategies),
        flow=FlowRules(**flow_data),
        fallback=data.get("fallback"),
        description=str(data.get("description", "")),
        label_prefix_zh=str(data.get("label_prefix_zh", "策略")),
    )


def load_taxonomy(name_or_path: str | Path = "csc", *, stages: Mapping[str, str] | None = None) -> Taxonomy:
    """Load a built-in taxonomy (``"csc"``, ``"esconv"``) or a TOML/JSON taxonomy file.

    Args:
        name_or_path: A built-in name or a file path.
        stages: Stage overrides applied after loading (see :meth:`Taxonomy.with_stages`).

    Raises:
        TaxonomyError: the name is not built in and no such file exists, or the file is malformed.
    """
    key = str(name_or_path)
    if key in BUILTIN_TAXONOMIES:
        text = resources.files("cscprog.framework").joinpath("builtin", f"{key}.toml").read_text(encoding="utf-8")
        source, suffix = f"<builtin {key}>", ".toml"
    else:
        path = Path(key).expanduser()
        if not path.is_file():
            raise TaxonomyError(
                f"{key}: no such taxonomy; use one of {', '.join(BUILTIN_TAXONOMIES)} or a TOML/JSON file path"
            )
        try:
            text, source, suffix = path.read_text(encoding="utf-8-sig"), str(path), path.suffix.lower()
        except (OSError, UnicodeDecodeError) as error:
            raise TaxonomyError(f"{key}: cannot read the taxonomy file as UTF-8 text: {error}") from None
    try:
        data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, RecursionError) as error:
        raise TaxonomyError(f"{source}: cannot parse taxonomy: {error}") from None
    taxonomy = taxonomy_from_dict(data, source=source)
    return taxonomy.with_stages(stages or {})


def strategy_names(taxonomy: Taxonomy | None = None) -> tuple[str, ...]:
    """Canonical strategy names of ``taxonomy`` (default: the CSC taxonomy)."""
    return (taxonomy or load_taxonomy("csc")).names
