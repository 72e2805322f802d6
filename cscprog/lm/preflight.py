"""Setup checks before the first LM call: keys, the local extra, reachable endpoints.

A command that makes LM calls knows which roles it will use; :func:`check_setup` looks at the configuration of
each of them and refuses to start when the run could only fail: the environment variable holding a role's API
key is unset, ``model = "local"`` without the ``local`` extra (or its weights), or an ``api_base`` where nothing
answers. Each problem names the configuration key to fix (``lm.api_key_env``, ``roles.judge.api_base``), so the
CLI exits with status 2 and one line instead of recording every item as a failure.

Replay (``[cache] mode = "replay"``) is checked for nothing: it must run with no key and no network.

Example:
    ```python
    from cscprog.config import load_config
    from cscprog.lm.preflight import check_setup

    check_setup(load_config(), ("judge",))   # raises SetupError naming the key to fix
    ```
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cscprog.config import ENV_OVERRIDES, Config, LMSettings
from cscprog.errors import ConfigError
from cscprog.lm.local.llama import LLAMA_MISSING, llama_available
from cscprog.lm.local.weights import KNOWN_MODELS, check_gguf, find_chunks

__all__ = ["PROBE_TIMEOUT_S", "SetupError", "SetupProblem", "check_setup", "provider_key_names", "setup_problems"]

PROBE_TIMEOUT_S = 2.0
"""Seconds to wait for an ``api_base`` to accept a TCP connection."""


@dataclass(frozen=True)
class SetupProblem:
    """One thing that stops every call of some roles.

    Attributes:
        key: The configuration key to fix (``lm.api_key_env``, ``roles.judge.api_base``).
        message: What is wrong and how to fix it.
        roles: The roles it stops.
    """

    key: str
    message: str
    roles: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.key}: {self.message} (role{'s' if len(self.roles) > 1 else ''} {', '.join(self.roles)})"


class SetupError(ConfigError):
    """The configuration cannot serve the roles a command needs; nothing was called.

    Attributes:
        problems: What is wrong, one entry per configuration key.
    """

    def __init__(self, problems: list[SetupProblem], source: str | None = None) -> None:
        self.problems = problems
        where = f"{source}: " if source and not source.startswith("<") else ""
        super().__init__(where + "; ".join(str(problem) for problem in problems))


def provider_key_names(model: str) -> tuple[str, ...]:
    """The environment variables a hosted provider reads its key from, or ``()`` when unknown or keyless.

    Taken from DSPy's provider registry (the native client's own table); providers it does not list, and those
    that authenticate otherwise (cloud credentials, local servers), give ``()`` and are not checked.

    Example:
        ```python
        provider_key_names("openai/gpt-4o-mini")   # ("OPENAI_API_KEY",)
        ```
    """
    provider, sep, _ = model.partition("/")
    if not sep:
        return ()
    try:
        from dspy._vendor.lm15.registry import lookup
    except ImportError:  # DSPy moved its registry: check nothing rather than guess
        return ()
    try:
        definition = lookup(provider)
    except Exception:  # an unusual provider spelling: not ours to judge here
        return ()
    if definition is None or getattr(definition, "placeholder_key", None) is not None:
        return ()
    return tuple(getattr(definition, "env_keys", ()) or ())


def _key(config: Config, role: str, field: str) -> str:
    """The configuration key that sets ``field`` for ``role``, with the variable when the environment set it."""
    if field in config.roles.get(role, {}):
        return f"roles.{role}.{field}"
    variable = next((name for name, target in ENV_OVERRIDES.items() if target == ("lm", field)), None)
    if variable and os.environ.get(variable):
        return f"lm.{field} (from {variable})"
    return f"lm.{field}"


def _endpoint(url: str) -> tuple[str, str, int] | None:
    """``(shown, host, port)`` of an ``api_base``; ``shown`` never carries credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    shown_host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown_host}:{port}{parts.path}", host, port


def _probe(host: str, port: int, timeout: float) -> str | None:
    """None when ``host:port`` accepts a TCP connection within ``timeout``; else why not."""
    began = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as error:
        reason = error.strerror or type(error).__name__
        return f"{reason.lower()} after {time.monotonic() - began:.1f} s"


def _local_problem(settings: LMSettings, config: Config, role: str) -> tuple[str, str] | None:
    if not llama_available():
        return _key(config, role, "model"), '"local" (the embedded model) ' + LLAMA_MISSING.removeprefix(
            'model = "local" ')
    try:
        if settings.local_model_path:
            check_gguf(Path(settings.local_model_path))
            return None
        spec = KNOWN_MODELS.get(settings.local_model_size)
        if spec is not None and (settings.models_path / spec.filename).is_file():
            return None  # assembled earlier; the size and checksum stamp are checked when it loads
        find_chunks(settings.local_model_size)
    except ConfigError as error:
        field = "local_model_path" if settings.local_model_path else "local_model_size"
        return _key(config, role, field), str(error).split(": ", 1)[-1] if settings.local_model_path else str(error)
    return None


def _key_problem(settings: LMSettings, config: Config, role: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    if settings.api_key_env is not None:
        if environ.get(settings.api_key_env):
            return None
        return (_key(config, role, "api_key_env"),
                f"the environment variable {settings.api_key_env} is not set: export it with your key")
    if settings.api_base:
        return None  # an OpenAI-compatible server: cscprog sends a placeholder key
    names = provider_key_names(settings.model)
    if not names or any(environ.get(name) for name in names):
        return None
    return (_key(config, role, "api_key_env"),
            f"model {settings.model!r} needs an API key and {' / '.join(names)} is not set: export "
            f"{names[0]}=..., or set api_key_env to the name of the variable that holds the key")


def setup_problems(config: Config, roles: Iterable[str], *, probe_timeout: float = PROBE_TIMEOUT_S,
                   environ: Mapping[str, str] | None = None) -> list[SetupProblem]:
    """What stops the given roles before any call: unset key variables, a missing local extra, dead endpoints.

    Nothing is checked in replay mode (it needs no key and no network). Problems shared by several roles are
    reported once, with every role they stop.

    Args:
        config: The configuration the command will run with.
        roles: The roles the command will call.
        probe_timeout: Seconds to wait for each distinct ``api_base`` to accept a connection.
        environ: Where the keys are looked up (default: ``os.environ``).

    Returns:
        The problems, in the order of the roles (empty when the setup looks usable).

    Example:
        ```python
        for problem in setup_problems(config, ("planner", "customer")):
            print(problem.key, problem.message)
        ```
    """
    if config.cache.mode == "replay":
        return []
    env = os.environ if environ is None else environ
    found: dict[tuple[str, str], list[str]] = {}
    probes: dict[tuple[str, int], str | None] = {}
    for role in dict.fromkeys(roles):
        settings = config.lm_for(role)
        if settings.is_local:
            problem = _local_problem(settings, config, role)
        else:
            problem = _key_problem(settings, config, role, env)
            if problem is None and settings.api_base:
                endpoint = _endpoint(settings.api_base)
                if endpoint is None:
                    problem = (_key(config, role, "api_base"),
                               "not an http(s) URL with a host (e.g. http://127.0.0.1:8000/v1)")
                else:
                    shown, host, port = endpoint
                    if (host, port) not in probes:
                        probes[(host, port)] = _probe(host, port, probe_timeout)
                    if probes[(host, port)] is not None:
                        problem = (_key(config, role, "api_base"),
                                   f"nothing answers at {shown} ({probes[(host, port)]}); start the server or fix "
                                   "the address")
        if problem is not None:
            found.setdefault(problem, []).append(role)
    return [SetupProblem(key, message, tuple(names)) for (key, message), names in found.items()]


def check_setup(config: Config, roles: Iterable[str], *, probe_timeout: float = PROBE_TIMEOUT_S,
                environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`SetupError` when :func:`setup_problems` finds anything (the CLI's exit status 2).

    Example:
        ```python
        check_setup(config, ("responder",))
        ```
    """
    problems = setup_problems(config, roles, probe_timeout=probe_timeout, environ=environ)
    if problems:
        raise SetupError(problems, config.source)
