"""The :class:`Runtime`: one run's LMs per role, response cache, rate limiters, budget and usage ledger.

A run builds one ``Runtime`` from its configuration and enters :meth:`Runtime.activate` once; cscprog modules
then call their predictors through :func:`cscprog.lm.invoke.invoke`, which enters :meth:`Runtime.role` so
each call uses its role's LM and is attributed to the role in the cache and the ledger. Nothing here is a
global: the runtime travels in ``dspy.settings`` (``cscprog_runtime``), so ``dspy.Parallel`` workers and
``acall`` tasks see it, and :func:`cscprog.context.current_runtime` finds it.

Example:
    ```python
    from cscprog.lm.runtime import Runtime

    runtime = Runtime.from_config("cscprog.toml")
    with runtime.activate():
        with runtime.role("judge"):
            verdict = judge(dialogue=text)
    print(runtime.usage()["by_role"]["judge"])
    runtime.close()
    ```
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dspy

from cscprog.cache import ResponseCache, install_router, normalize_endpoint
from cscprog.config import Config, LMSettings, load_config
from cscprog.context import CACHE_KEY, ROLE_KEY, RUNTIME_KEY
from cscprog.lm import pricing
from cscprog.lm.backends import build_lm, engine_in_use
from cscprog.lm.backends.local import recommended_adapter
from cscprog.lm.budget import Budget
from cscprog.lm.gate import CallGate
from cscprog.lm.limiter import RateLimiter
from cscprog.lm.routing import LimiterPlan, LimiterRouter
from cscprog.lm.usage import UsageLedger
from cscprog.roles import ROLES, Role

__all__ = ["Runtime"]

DEFAULT_ROLE = Role.RESPONDER
"""The role whose LM is the default ``dspy.settings.lm`` inside :meth:`Runtime.activate`."""

LMFactory = Callable[[str, LMSettings], dspy.LM]


class Runtime:
    """One run's LM layer: LMs per role (built lazily), cache, limiters, budget, usage.

    Args:
        config: The configuration; the built-in defaults when None (use :meth:`from_config` to read
            ``cscprog.toml`` and the environment).
        lm_factory: ``factory(role, settings) -> dspy.LM`` replacing :func:`cscprog.lm.backends.build_lm`
            (tests plug scripted engines per role this way); called once per role.
        limiters: A rate limiter per name of :class:`~cscprog.lm.routing.LimiterPlan` ``specs`` (default: local
            :class:`~cscprog.lm.limiter.RateLimiter` objects); Ray workers pass proxies to shared buckets.
        budget: The run budget (default: a :class:`~cscprog.lm.budget.Budget` from ``config.budget``); Ray
            workers pass one shared by every worker.

    Attributes:
        config: The configuration.
        cache: The :class:`cscprog.cache.ResponseCache` (``config.cache``: dir, mode, version, size).
        gate: The :class:`cscprog.lm.gate.CallGate` the cache reports every call to (the limiters and budget).
        limiters: The :class:`cscprog.lm.routing.LimiterRouter` routing calls to their rate limiters.
        ledger: The :class:`cscprog.lm.usage.UsageLedger`.
        budget: The :class:`cscprog.lm.budget.Budget` (``config.budget``).
        started: When the runtime was created (epoch seconds).

    Example:
        ```python
        runtime = Runtime(config_from_dict({"lm": {"model": "openai/gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"}}))
        ```
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        lm_factory: LMFactory | None = None,
        limiters: Mapping[str, Any] | None = None,
        budget: Any = None,
    ) -> None:
        self.config = config if config is not None else Config()
        self._factory = lm_factory
        self._lock = threading.RLock()
        self._settings = {role: self.config.lm_for(role) for role in ROLES}
        self._lms: dict[str, dspy.LM] = {}
        self._shared: dict[str, dspy.LM] = {}
        self._local_adapter: Any = None
        plan = LimiterPlan.from_config(self.config)
        self.limiters = LimiterRouter(plan, plan.local_limiters() if limiters is None else limiters)
        if budget is None:
            limits = self.config.budget
            budget = Budget(limits.max_calls, limits.max_tokens, limits.max_usd)
        self.budget = budget
        self.ledger = UsageLedger()
        self.gate = CallGate(ledger=self.ledger, budget=self.budget, limiter_for=self.limiters)
        self.cache = ResponseCache.from_settings(self.config.cache, observer=self.gate)
        self.started = time.time()
        pricing.install()  # DSPy rescans its price table per call for unknown models; see cscprog.lm.pricing

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, *, lm_factory: LMFactory | None = None) -> Runtime:
        """A runtime on :func:`cscprog.config.load_config` (``path``, ``$CSCPROG_CONFIG``, ``./cscprog.toml``).

        Raises:
            ConfigError: the configuration is missing or invalid.

        Example:
            ```python
            runtime = Runtime.from_config()  # ./cscprog.toml, or the defaults (the embedded model)
            ```
        """
        return cls(load_config(path), lm_factory=lm_factory)

    # --- rate limiters: one per endpoint + model (see cscprog.lm.routing) ------------------------------------------
    def limiter(self, role: str) -> RateLimiter | None:
        """The rate limiter shared by ``role``'s endpoint and model, or None when it has no limit."""
        self.settings(role)
        return self.limiters.for_role(role)

    # --- LMs -----------------------------------------------------------------------------------------------------
    def settings(self, role: str) -> LMSettings:
        """The settings of ``role`` (``config.lm_for(role)``).

        Raises:
            ConfigError: ``role`` is not one of :data:`cscprog.roles.ROLES`.
        """
        found = self._settings.get(role)
        return found if found is not None else self.config.lm_for(role)

    def lm(self, role: str) -> dspy.LM:
        """The ``dspy.LM`` of ``role``, built on first use; roles with equal settings share one.

        In the cache's ``replay`` mode no request is ever sent, so an unset API key variable is no error there.

        Raises:
            ConfigError: unknown role, unset API key variable (outside replay mode), or an unusable backend.

        Example:
            ```python
            judge_lm = runtime.lm("judge")
            ```
        """
        role = str(role)  # a Role member is held and recorded by its plain name
        found = self._lms.get(role)
        if found is not None:
            return found
        settings = self.settings(role)
        with self._lock:
            found = self._lms.get(role)
            if found is None:
                if self._factory is not None:
                    found = self._factory(role, settings)
                else:
                    identity = settings.model_dump_json()
                    found = self._shared.get(identity)
                    if found is None:
                        found = build_lm(settings, cache_dir=self.config.cache.path,
                                         require_key=self.config.cache.mode != "replay")
                        self._shared[identity] = found
                self._lms[role] = found
        return found

    def roles_used(self) -> dict[str, dict[str, Any]]:
        """Model, endpoint and engine of every role whose LM was built, by role."""
        with self._lock:
            built = dict(self._lms)
        described = {}
        for role, lm in sorted(built.items()):
            settings = self.settings(role)
            kwargs = getattr(lm, "kwargs", None) or {}
            endpoint = kwargs.get("api_base") or kwargs.get("base_url")
            if endpoint is None and self._factory is None:
                endpoint = settings.api_base
            described[role] = {
                "model": getattr(lm, "model", settings.model),
                "endpoint": normalize_endpoint(endpoint),
                "engine": engine_in_use(lm),
                "engine_setting": settings.engine,
                "temperature": settings.temperature,
                "max_tokens": settings.max_tokens,
                "seed": settings.seed,
            }
        return described

    # --- contexts ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def activate(self) -> Iterator[Runtime]:
        """Make this runtime current: its cache serves every DSPy LM call, the responder's LM is the default.

        Example:
            ```python
            with runtime.activate():
                dspy.Predict("question -> answer")(question="Hello?")
            ```
        """
        install_router()
        overrides: dict[str, Any] = {CACHE_KEY: self.cache, RUNTIME_KEY: self, "lm": self.lm(DEFAULT_ROLE)}
        overrides.update(self._adapter_for(DEFAULT_ROLE))
        with dspy.context(**overrides):
            yield self

    def _adapter_for(self, role: str) -> dict[str, Any]:
        """``{"adapter": ...}`` for a role on the embedded model when no adapter was chosen, else ``{}``.

        The embedded model is most reliable with the adapter its engine constrains by grammar
        (:func:`cscprog.lm.local.engine.recommended_adapter`); an adapter the user set stays in force.
        """
        if not self.settings(role).is_local or self._factory is not None:
            return {}
        current = dspy.settings.adapter
        if current is not None and not getattr(current, "_cscprog_local_default", False):
            return {}
        if self._local_adapter is None:
            adapter = recommended_adapter()
            adapter._cscprog_local_default = True
            self._local_adapter = adapter
        return {"adapter": self._local_adapter}

    @contextlib.contextmanager
    def role(self, name: str) -> Iterator[dspy.LM]:
        """Calls inside use ``name``'s LM and are attributed to ``name`` (cache entries, ledger, limits).

        Raises:
            ConfigError: ``name`` is not a known role.

        Example:
            ```python
            with runtime.role("customer") as lm:
                reply = customer(history=history)
            ```
        """
        name = str(name)  # a Role member is recorded by its plain name
        lm = self.lm(name)
        with dspy.context(**{"lm": lm, ROLE_KEY: name, **self._adapter_for(name)}):
            yield lm

    # --- reporting -----------------------------------------------------------------------------------------------
    def usage(self) -> dict[str, Any]:
        """Usage and cost per role and per model, live and saved (see :meth:`UsageLedger.summary`)."""
        return self.ledger.summary()

    def close(self) -> None:
        """Close the cache (writes its ``last_run.json``) and the LMs' HTTP pools; idempotent."""
        self.cache.close()
        with self._lock:
            lms = list({id(lm): lm for lm in self._lms.values()}.values())
        for lm in lms:
            close = getattr(lm, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()

    def __repr__(self) -> str:
        return f"Runtime(config={self.config.source!r}, cache={self.cache!r})"
