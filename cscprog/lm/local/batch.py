"""Batched decoding: the completions of concurrent requests decoded side by side in one llama.cpp context.

Each request gets a sequence id (a slot) in the shared model's context. Its prompt is evaluated alone (the cached
prefix restored into its slot, the rest decoded), then it joins the running batch: every step is one
``llama_decode`` over the next token of every running sequence, and each sequence picks its next token from
its own logits with its own :class:`~cscprog.lm.local.sampling.SequenceSampler` (grammar, penalties, seed, stop
strings, budget). On a CPU one step over four sequences costs little more than a step over one (the weights are
read once per step), so four requests at once finish much sooner than four one after the other.

What batching changes: nothing in what a sequence can see. Every sequence has its own KV cache stream
(:func:`~cscprog.lm.local.llama.default_context_params`), its prompt is evaluated exactly as it would be alone,
and the per-token arithmetic of the weight products does not depend on how many tokens share a step on
llama.cpp's CPU kernels; ``tests/lm/local/test_batch.py`` checks that a request decoded beside others gives the
text it gives alone.

:class:`BatchDecoder` runs the batch in one worker thread per model (llama.cpp contexts are not thread safe).
Callers block in :meth:`BatchDecoder.generate`; a request cancelled (:meth:`DecodeRequest.cancel`, or its caller
interrupted while waiting) ends at the worker's next step and frees its slot. :class:`ModelLock` gives other
users of the model (option scoring) exclusive use: the worker admits no new sequence while one waits, and hands
the model over as soon as its running sequences finish.

Example:
    ```python
    decoder = BatchDecoder(model, sequences=4)
    text, used, finish = decoder.generate(tokens, prefix, SequenceSampler(llama, None, SamplingOptions()))
    decoder.close()
    ```
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from cscprog.lm.local.sampling import SequenceSampler

__all__ = ["BatchDecoder", "DecodeRequest", "DecodedModel", "DecoderClosed", "DecoderStats", "ModelLock"]


class DecoderClosed(RuntimeError):
    """The model was unloaded while the request waited for a slot."""


class ModelLock:
    """Exclusive use of a loaded model, with priority over the batch decoder.

    ``with model.lock:`` waits until the decoder has no running sequence, and keeps it from starting new ones
    until released; the decoder itself takes the lock with :meth:`acquire_for_decoder`.

    Example:
        ```python
        with model.lock:
            llama = model.ensure_loaded()   # no sequence is being decoded now
        ```
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = False
        self.waiting = 0
        """Exclusive users waiting for the lock (the decoder admits nothing new while this is above 0)."""

    def __enter__(self) -> ModelLock:
        with self._cond:
            self.waiting += 1
            try:
                while self._held:
                    self._cond.wait()
            finally:
                self.waiting -= 1
            self._held = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire_for_decoder(self) -> None:
        """Take the lock once no exclusive user holds it or waits for it."""
        with self._cond:
            while self._held or self.waiting:
                self._cond.wait()
            self._held = True

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()


@dataclass(eq=False)
class DecodeRequest:
    """One completion submitted to a :class:`BatchDecoder`: wait for it, or cancel it.

    Example:
        ```python
        request = decoder.submit(tokens, prefix, sampler)
        request.cancel()            # the worker frees its slot at its next step
        request.wait()              # (text, generated tokens, "cancelled")
        ```
    """

    tokens: list[int]
    prefix: int
    sampler: SequenceSampler
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    cancelled: bool = False
    dropped: bool = False
    seq: int = -1
    position: int = 0
    next_token: int = -1

    def cancel(self) -> None:
        """Stop this request: it ends at the worker's next step (or before it starts) with ``cancelled``."""
        self.cancelled = True

    def wait(self, timeout: float | None = None) -> tuple[str, int, str]:
        """``(text, generated tokens, finish reason)`` once done (``cancelled`` when cancelled first).

        Raises:
            TimeoutError: not done within ``timeout`` seconds.
            ValueError, RuntimeError, DecoderClosed: what ended the request.
        """
        if not self.done.wait(timeout):
            raise TimeoutError(f"the completion was not done within {timeout} s")
        if self.error is not None:
            raise self.error
        finish = "cancelled" if self.dropped else self.sampler.finish or "length"
        return self.sampler.text(), len(self.sampler.generated), finish


@dataclass
class DecoderStats:
    """Counters of a decoder (cumulative): tokens and seconds of prompt evaluation and of batched steps."""

    prompt_tokens: int = 0
    prompt_seconds: float = 0.0
    steps: int = 0
    step_tokens: int = 0
    decode_seconds: float = 0.0
    sample_seconds: float = 0.0
    most_running: int = 0


class DecodedModel(Protocol):
    """What the decoder uses of the loaded-model handle (:class:`~cscprog.lm.local.model.SharedModel` is one):
    its lock, its ``llama_cpp.Llama`` and its prefix cache."""

    lock: ModelLock
    llama: Any

    def restore_prefix(self, seq: int, prefix: list[int]) -> bool: ...

    def save_prefix(self, seq: int, prefix: list[int]) -> None: ...


class BatchDecoder:
    """Decodes up to ``sequences`` requests at once in the shared model's context (see the module docstring).

    Args:
        model: The loaded-model handle (its context must hold ``sequences`` sequences).
        sequences: Slots: how many requests run side by side; more wait for a free slot.

    Example:
        ```python
        decoder = BatchDecoder(model, sequences=4)
        ```
    """

    def __init__(self, model: DecodedModel, sequences: int) -> None:
        if sequences < 1:
            raise ValueError(f"sequences must be >= 1, got {sequences}")
        self._model = model
        self.sequences = sequences
        self.stats = DecoderStats()
        self._cond = threading.Condition()
        self._pending: deque[DecodeRequest] = deque()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._batch: Any = None

    def submit(self, tokens: list[int], prefix: int, sampler: SequenceSampler) -> DecodeRequest:
        """Queue one completion of ``tokens`` (its first ``prefix`` tokens cacheable); the sampler is closed when
        the request ends, however it ends.

        Raises:
            DecoderClosed: the model was unloaded.
        """
        job = DecodeRequest(tokens, prefix, sampler)
        with self._cond:
            if self._closed:
                sampler.close()
                raise DecoderClosed("the local model was unloaded")
            self._pending.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cscprog-llama-batch", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return job

    def generate(self, tokens: list[int], prefix: int, sampler: SequenceSampler) -> tuple[str, int, str]:
        """:meth:`submit` and wait; a caller interrupted while waiting (KeyboardInterrupt) cancels its request.

        Returns:
            ``(text, generated tokens, finish reason)`` as :class:`SequenceSampler` reports them.

        Raises:
            ValueError: the grammar allowed no token.
            RuntimeError: llama.cpp failed to decode.
            DecoderClosed: the model was unloaded before the request started.
        """
        job = self.submit(tokens, prefix, sampler)
        try:
            return job.wait()
        except BaseException:
            job.cancel()  # the worker frees the slot at its next step (a no-op when it is done)
            raise

    def close(self) -> None:
        """Refuse new requests, fail those waiting for a slot, let running ones finish, stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # ------------------------------------------------------------------------------------------ worker thread

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    while self._pending:
                        self._end(self._pending.popleft(), DecoderClosed("the local model was unloaded"))
                    return
            self._model.lock.acquire_for_decoder()
            try:
                self._serve()
            finally:
                self._model.lock.release()

    def _serve(self) -> None:
        """Run steps until no sequence is left running (new ones join while no exclusive user waits)."""
        import llama_cpp

        llama = self._model.llama
        if self._batch is None:
            self._batch = llama_cpp.llama_batch_init(max(llama.n_batch, self.sequences), 0, 1)
        running: list[DecodeRequest] = []
        free = list(range(self.sequences - 1, -1, -1))
        try:
            while True:
                for job in [job for job in running if job.cancelled]:
                    running.remove(job)
                    job.dropped = True
                    self._release(job, free)
                if not self._model.lock.waiting:
                    self._admit(running, free)
                if not running:
                    return
                self._step(running, free)
        except BaseException as error:  # never leave a caller waiting
            for job in running:
                self._release(job, free, error)
            raise

    def _admit(self, running: list[DecodeRequest], free: list[int]) -> None:
        while free:
            with self._cond:
                if not self._pending or self._closed:
                    return
                job = self._pending.popleft()
            if job.cancelled:
                job.dropped = True
                self._end(job, None)
                continue
            job.seq = free.pop()
            try:
                token = self._prefill(job)
            except Exception as error:  # this request's failure only
                self._release(job, free, error)
                continue
            if token is None:
                self._release(job, free)
            else:
                job.next_token = token
                running.append(job)
                self.stats.most_running = max(self.stats.most_running, len(running))

    def _prefill(self, job: DecodeRequest) -> int | None:
        """Put the job's prompt in its slot (restoring a saved prefix) and choose its first token."""
        import llama_cpp

        model, ctx = self._model, self._model.llama.ctx
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(ctx), job.seq, -1, -1)
        start = 0
        if job.prefix:
            prefix = job.tokens[: job.prefix]
            if not model.restore_prefix(job.seq, prefix):
                self._decode_prompt(job.seq, prefix, 0)
                model.save_prefix(job.seq, prefix)
            start = job.prefix
        self._decode_prompt(job.seq, job.tokens[start:], start)
        job.position = len(job.tokens)
        began = time.perf_counter()
        token = job.sampler.step(llama_cpp.llama_get_logits_ith(ctx, -1))
        self.stats.sample_seconds += time.perf_counter() - began
        return token

    def _decode_prompt(self, seq: int, tokens: list[int], position: int) -> None:
        """Evaluate ``tokens`` of one sequence from ``position``, in chunks of ``n_batch``; logits of the last."""
        began = time.perf_counter()
        size = self._model.llama.n_batch
        for first in range(0, len(tokens), size):
            chunk = tokens[first : first + size]
            last = first + len(chunk) == len(tokens)
            self._decode([(token, position + first + i, seq, last and i == len(chunk) - 1)
                          for i, token in enumerate(chunk)])
        self.stats.prompt_tokens += len(tokens)
        self.stats.prompt_seconds += time.perf_counter() - began

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One ``llama_decode`` of ``(token, position, sequence, wants logits)`` entries."""
        import llama_cpp

        batch = self._batch
        batch.n_tokens = len(entries)
        for i, (token, position, seq, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
        code = llama_cpp.llama_decode(self._model.llama.ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode failed (code {code}) on a batch of {len(entries)} tokens")

    def _step(self, running: list[DecodeRequest], free: list[int]) -> None:
        """One token for every running sequence: one decode, then each sequence's own choice."""
        import llama_cpp

        began = time.perf_counter()
        self._decode([(job.next_token, job.position, job.seq, True) for job in running])
        decoded = time.perf_counter()
        self.stats.steps += 1
        self.stats.step_tokens += len(running)
        self.stats.decode_seconds += decoded - began
        ctx = self._model.llama.ctx
        for index, job in enumerate(list(running)):
            job.position += 1
            try:
                token = job.sampler.step(llama_cpp.llama_get_logits_ith(ctx, index))
            except Exception as error:  # this sequence's failure only
                running.remove(job)
                self._release(job, free, error)
                continue
            if token is None:
                running.remove(job)
                self._release(job, free)
            else:
                job.next_token = token
        self.stats.sample_seconds += time.perf_counter() - decoded

    def _release(self, job: DecodeRequest, free: list[int], error: BaseException | None = None) -> None:
        """Clear the job's slot, return it to ``free`` and wake its caller."""
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(self._model.llama.ctx), job.seq, -1, -1)
        free.append(job.seq)
        self._end(job, error)

    @staticmethod
    def _end(job: DecodeRequest, error: BaseException | None) -> None:
        job.sampler.close()
        job.error = error
        job.done.set()

    def free_batch(self) -> None:
        """Free the llama.cpp batch buffer (after :meth:`close`, before the context is freed)."""
        if self._batch is not None:
            import llama_cpp

            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
