"""The result layer's seam in DSPy: ``dspy.Predict`` serves a cached call's parsed outputs without its adapter.

:func:`install_result_layer` (called by :func:`cscprog.cache.install_router`, so by ``activate`` and every
runtime) wraps ``dspy.Predict.forward`` and ``aforward`` once. The wrapper changes nothing unless the active
cache is a :class:`~cscprog.cache.ResponseCache` in ``readwrite``, ``replay`` or ``refresh`` mode and the call
is one whose every effect the layer can reproduce: DSPy history disabled (as runs set it), no usage tracking,
no streaming, no global or adapter callbacks, LM callbacks only of the replay-aware kind (``replays_lm_outputs``,
like :func:`cscprog.lm.invoke.invoke`'s text capture), a plain ``dspy.Adapter``. Then:

* the call's key (:func:`cscprog.cache.result_keys.result_key`) is looked up in the result store; a result is
  served only while every LM entry behind it is still in the cache (so a lost or evicted entry is re-fetched, or
  is a miss in ``replay`` mode, exactly as without the layer); on a hit the stored outputs go straight to
  ``Predict``'s own post-processing (prediction, trace), and each LM call behind them is reported as the cache hit
  it would have been (counters, observer: ledger, budget) and its raw outputs are handed to the replay-aware
  callbacks;
* on a miss the adapter runs as usual (formatting, the LM-level cache, parsing; a miss in ``replay`` mode still
  raises :class:`~cscprog.cache.CacheMissError`), and the result is stored when the cache may write and every
  output survives a JSON round trip.

Example:
    ```python
    install_result_layer()
    with ResponseCache("runs/cache", mode="replay") as cache, activate(cache), dspy.context(disable_history=True):
        program(question="...")  # a result hit: no formatting, no parsing
    ```
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from typing import Any

import dspy
from dspy.adapters.base import Adapter
from dspy.adapters.chat_adapter import ChatAdapter
from dspy.adapters.decision import resolve_adapter

from cscprog.cache.result_keys import result_key
from cscprog.cache.results import CallRecord, json_plain, recording
from cscprog.context import active_cache

__all__ = ["install_result_layer"]

logger = logging.getLogger(__name__)

_MODES = ("readwrite", "replay", "refresh")
_install_lock = threading.Lock()


def _layer_cache() -> Any:
    """The active cache when the result layer may serve this call (settings-level checks), else None."""
    cache = active_cache()
    if cache is None or getattr(cache, "mode", None) not in _MODES or getattr(cache, "results", None) is None:
        return None
    settings = dspy.settings
    if not settings.disable_history or settings.track_usage or settings.send_stream is not None or settings.callbacks:
        return None
    return cache


def _replayable(lm: Any, adapter: Any, config: dict[str, Any]) -> bool:
    """Call-level checks: an LM the cache serves, a plain adapter, callbacks the layer can satisfy."""
    if not isinstance(adapter, Adapter) or adapter.callbacks or not isinstance(getattr(lm, "model", None), str):
        return False
    if not config.get("cache", getattr(lm, "cache", False)):
        return False
    return all(getattr(callback, "replays_lm_outputs", False) for callback in getattr(lm, "callbacks", None) or ())


def _key(cache: Any, predictor: Any, lm: Any, config: dict, signature: Any, demos: list, inputs: dict,
         adapter: Any) -> str | None:
    if not _replayable(lm, adapter, config):
        return None
    try:
        return result_key(lm, config=config, signature=signature, demos=demos, inputs=inputs, adapter=adapter,
                          fields=predictor.fields, version=cache.version)
    except (TypeError, ValueError) as error:
        logger.debug("no result key (%s): the call takes the full path", error)
        return None


def _serve(cache: Any, lm: Any, calls: list[CallRecord]) -> None:
    """Report the LM calls behind a result hit as the hits they stand for, and hand their outputs to callbacks."""
    for call in calls:
        cache.report_replayed(call)
        for callback in getattr(lm, "callbacks", None) or ():
            callback.on_lm_end(call_id=uuid.uuid4().hex, outputs=call.outputs, exception=None)


def _keep(cache: Any, key: str, completions: Any, calls: list[CallRecord]) -> None:
    """Store a full-path result when every part of it can be replayed exactly."""
    if not calls or any(not call.key or call.outputs is None for call in calls) or not json_plain(completions):
        return
    cache.results.put(key, completions, calls)


def _begin(predictor: Any, cache: Any, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Prepare the call as ``Predict.forward`` does; look its result up (and report a hit).

    Returns:
        (lm, config, signature, demos, inputs, adapter, key or None, stored outputs or None)
    """
    lm, config, signature, demos, inputs = predictor._forward_preprocess(**kwargs)
    adapter = resolve_adapter(lm, dspy.settings.adapter or ChatAdapter(), signature, predictor.fields,
                              predictor.signature)
    key = _key(cache, predictor, lm, config, signature, demos, inputs, adapter)
    found = cache.results.get(key, holds=cache.__contains__) if key is not None and cache.mode != "refresh" else None
    if found is not None:
        _serve(cache, lm, found[1])
        return lm, config, signature, demos, inputs, adapter, key, found[0]
    return lm, config, signature, demos, inputs, adapter, key, None


def install_result_layer() -> None:
    """Wrap ``dspy.Predict.forward``/``aforward`` with the result layer (idempotent, thread-safe).

    Example:
        ```python
        install_result_layer()
        ```
    """
    predict = dspy.Predict
    if getattr(predict.forward, "_cscprog_results", False):
        return
    with _install_lock:
        if getattr(predict.forward, "_cscprog_results", False):
            return
        plain_forward, plain_aforward = predict.forward, predict.aforward

        def forward(self: Any, **kwargs: Any) -> Any:
            cache = _layer_cache()
            if cache is None:
                return plain_forward(self, **kwargs)
            lm, config, signature, demos, inputs, adapter, key, outputs = _begin(self, cache, kwargs)
            if outputs is None:
                with recording() if key is not None else contextlib.nullcontext([]) as calls:  # send_stream is None
                    outputs = adapter(lm, lm_kwargs=config, signature=signature, demos=demos, inputs=inputs)
                if key is not None:
                    _keep(cache, key, outputs, calls)
            return self._forward_postprocess(outputs, signature, **inputs)

        async def aforward(self: Any, **kwargs: Any) -> Any:
            cache = _layer_cache()
            if cache is None:
                return await plain_aforward(self, **kwargs)
            lm, config, signature, demos, inputs, adapter, key, outputs = _begin(self, cache, kwargs)
            if outputs is None:
                with recording() if key is not None else contextlib.nullcontext([]) as calls:
                    outputs = await adapter.acall(lm, lm_kwargs=config, signature=signature, demos=demos,
                                                  inputs=inputs)
                if key is not None:
                    _keep(cache, key, outputs, calls)
            return self._forward_postprocess(outputs, signature, **inputs)

        forward._cscprog_results = True  # type: ignore[attr-defined]
        forward.__doc__ = plain_forward.__doc__
        aforward.__doc__ = plain_aforward.__doc__
        predict.forward, predict.aforward = forward, aforward
