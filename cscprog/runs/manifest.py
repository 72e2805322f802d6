"""Run manifests: what produced a run's outputs (config, versions, models, cache, usage, time), as JSON.

Every run writes a manifest beside its outputs. The outputs themselves stay deterministic for the same inputs,
config and cache: timestamps, durations and usage belong only here. API keys never appear: the configuration
only names environment variables, and as a second line of defence every string of the manifest is scanned for
the values of those variables (and of any ``*API_KEY*``/``*TOKEN*``/``*SECRET*``/``*PASSWORD*`` variable),
which are replaced by ``"***"``, and so is the userinfo of every URL (``http://user:secret@host``;
:mod:`cscprog.redaction`).

Example:
    ```python
    started = time.time()
    ...  # the run
    manifest = build_manifest(runtime, command="evaluate", inputs={"data": "dev.jsonl"},
                              outputs={"scores": "scores.jsonl"}, seed=1234, started=started)
    write_manifest(out_dir / "manifest.json", manifest)
    ```
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dspy

import cscprog
from cscprog.files import atomic_write
from cscprog.redaction import redact
from cscprog.redaction import secret_values as env_secret_values
from cscprog.roles import ROLES
from cscprog.stamps import package_version, utc_iso

if TYPE_CHECKING:
    from cscprog.lm.runtime import Runtime

__all__ = ["MANIFEST_FORMAT", "build_manifest", "redact", "secret_values", "write_manifest"]

MANIFEST_FORMAT = "cscprog-run-manifest/1"


def _versions() -> dict[str, Any]:
    return {
        "cscprog": getattr(cscprog, "__version__", None) or package_version("cscprog"),
        "dspy": getattr(dspy, "__version__", None) or package_version("dspy"),
        "litellm": package_version("litellm"),
        "python": platform.python_version(),
    }


def secret_values(runtime: Runtime | None = None, environ: dict[str, str] | None = None) -> set[str]:
    """The values that must never appear in a manifest (:func:`cscprog.redaction.secret_values`).

    The variables named by ``api_key_env`` in any role of the runtime's configuration, the userinfo of every
    role's ``api_base``, plus every environment variable whose name looks like a credential (``API_KEY``,
    ``SECRET``, ``TOKEN``, ``PASSWORD``).

    Example:
        ```python
        secrets = secret_values(runtime)
        ```
    """
    names: list[str] = []
    urls: list[str | None] = []
    if runtime is not None:
        for role in ROLES:
            settings = runtime.config.lm_for(role)
            names.append(settings.api_key_env or "")
            urls.append(settings.api_base)
    return env_secret_values(names, urls, environ)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def build_manifest(
    runtime: Runtime,
    *,
    command: str = "",
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    seed: int | None = None,
    started: float | None = None,
    extra: dict[str, Any] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """The manifest of a run on ``runtime``, with secrets redacted.

    Args:
        runtime: The run's :class:`cscprog.lm.runtime.Runtime`.
        command: What ran (e.g. ``"cscprog synth --n 10"``).
        inputs: The run's inputs (paths, parameters).
        outputs: The run's outputs (paths, counts).
        seed: The run's seed (default: the configuration's ``[run] seed``).
        started: When the run started (``time.time()``; default: when the runtime was created).
        extra: More JSON-able data, kept under ``"extra"``.
        **more: More JSON-able data, merged into ``extra``.

    Returns:
        A JSON-able dict: ``format``, ``command``, ``inputs``, ``outputs``, ``seed``, ``config`` (redacted),
        ``versions`` (cscprog, dspy, litellm, python), ``roles`` (model, endpoint and engine per role used),
        ``cache`` (dir, mode, version, hits, misses, stores, per model and endpoint), ``usage`` (per role and
        per model, live and saved), ``budget``, ``rate_limits``, ``started``/``finished`` (ISO 8601 UTC),
        ``duration_s``.

    Example:
        ```python
        manifest = build_manifest(runtime, command="judge", inputs={}, outputs={}, seed=1, started=t0)
        ```
    """
    finished = time.time()
    started = runtime.started if started is None else started
    seed = runtime.config.run.seed if seed is None else seed
    extra = {**(extra or {}), **more}
    run_stats = runtime.cache.run_stats()
    manifest = {
        "format": MANIFEST_FORMAT,
        "command": command,
        "inputs": inputs or {},
        "outputs": outputs or {},
        "seed": seed,
        "config": runtime.config.redacted(),
        "versions": _versions(),
        "roles": runtime.roles_used(),
        "cache": {
            "dir": runtime.cache.where,
            "mode": runtime.cache.mode,
            "version": runtime.cache.version,
            "hits": run_stats.get("hits", runtime.ledger.hits),
            "misses": run_stats.get("misses", runtime.gate.misses),
            "stores": run_stats.get("stores"),
            "errors": run_stats.get("errors"),
            "by_endpoint": run_stats.get("by_call", []),
        },
        "usage": runtime.usage(),
        "budget": runtime.budget.summary(),
        "rate_limits": {"waited_seconds": round(runtime.gate.waited_seconds, 3)},
        "started": utc_iso(started, precise=True),
        "finished": utc_iso(finished, precise=True),
        "duration_s": round(finished - started, 3),
    }
    if extra:
        manifest["extra"] = extra
    return redact(_jsonable(manifest), secret_values(runtime))


def write_manifest(path: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` as JSON (sorted keys, indented) atomically: a reader never sees half a file.

    Args:
        path: The manifest file; its directory is created if needed.
        manifest: The manifest (from :func:`build_manifest`).

    Returns:
        The path written.

    Example:
        ```python
        write_manifest("runs/2024-06-01/manifest.json", build_manifest(runtime, command="synth"))
        ```
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    atomic_write(target, text)
    return target
