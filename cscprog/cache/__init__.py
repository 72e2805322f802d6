"""The reproducible LLM response cache: DSPy's cache boundary, keyed per endpoint, checksummed, replayable.

DSPy looks every managed LM call up in ``dspy.cache`` (``get``) before it makes the request and stores the raw
record there (``put``) afterwards. :class:`ResponseCache` implements that interface on :mod:`diskcache` and fixes
what DSPy's own cache leaves out:

* the key includes the endpoint (``api_base``/``base_url``, trailing ``/`` stripped) and a version tag, and never
  a credential (``api_key``, authorization or token headers);
* every entry carries its usage, cost, model, endpoint, provider, role and creation time, plus a checksum: a
  corrupted or half-written entry is logged, deleted and recomputed, never returned (in ``replay`` mode it is
  left in place and counts as a miss); a damaged SQLite shard is moved aside and rebuilt;
* entries are JSON, never pickle, so a run can be exported as a portable bundle and verified elsewhere with
  ``mode="replay"``, where a miss is an error (:class:`CacheMissError`) instead of a paid call;
* a :class:`CallObserver` (rate limiter, budget, usage ledger) hears about every real call and every hit, with
  the tokens a hit saved.

:func:`install_router` puts a :class:`CacheRouter` in ``dspy.cache`` once; it forwards to the cache made active
with :func:`activate` (a ``dspy.context`` key, so ``dspy.Parallel`` workers and ``acall`` see it) and to DSPy's own
cache otherwise.

The package, one concept per module: :mod:`~cscprog.cache.keys` (key derivation, endpoints, credentials left
out), :mod:`~cscprog.cache.calls` (what observers learn about a call), :mod:`~cscprog.cache.entries` (entry
encoding, checksums, usage and cost), :mod:`~cscprog.cache.store` (:class:`ResponseCache`),
:mod:`~cscprog.cache.shards` (the SQLite shards: a damaged one is quarantined and rebuilt),
:mod:`~cscprog.cache.memory` (the in-memory store), :mod:`~cscprog.cache.stats` (counters, ``last_run.json``),
:mod:`~cscprog.cache.bundle` (export and import), :mod:`~cscprog.cache.router` (``dspy.cache`` routing and the
settings keys) and :mod:`~cscprog.cache.errors`. Import the public names from ``cscprog.cache`` itself.

Example:
    ```python
    import dspy
    from cscprog.cache import ResponseCache, activate

    with ResponseCache("~/.cache/cscprog") as cache, activate(cache):
        dspy.Predict("question -> answer")(question="Where is my parcel?")
    print(cache.run_stats()["hits"])
    ```
"""

from __future__ import annotations

from cscprog.cache.bundle import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION
from cscprog.cache.calls import CallInfo, CallObserver
from cscprog.cache.errors import CacheBundleError, CacheError, CacheMissError
from cscprog.cache.keys import normalize_endpoint
from cscprog.cache.router import CacheRouter, activate, install_router
from cscprog.cache.stats import LAST_RUN_FILE, json_stats, read_last_run, write_last_run
from cscprog.cache.store import MODES, CacheMode, ResponseCache

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "LAST_RUN_FILE",
    "MODES",
    "CacheBundleError",
    "CacheError",
    "CacheMissError",
    "CacheMode",
    "CacheRouter",
    "CallInfo",
    "CallObserver",
    "ResponseCache",
    "activate",
    "install_router",
    "json_stats",
    "normalize_endpoint",
    "read_last_run",
    "write_last_run",
]
