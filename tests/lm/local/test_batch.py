"""Batched decoding of concurrent requests on the embedded model (:mod:`cscprog.lm.local.batch`).

The lock tests run without a model. The ``embedded`` ones load the real 0.5B model with short prompts and
budgets: concurrent requests decoded side by side give the text each gives alone (greedy and seeded sampling,
grammar-constrained JSON that parses), a request whose grammar fails or that stops early leaves the others
intact, and a cancelled or failed request frees its slot.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from dspy.lm15 import Config, ContextLengthError, Message, Request

from cscprog.config import LMSettings
from cscprog.errors import ConfigError
from cscprog.lm.local.batch import ModelLock
from cscprog.lm.local.engine import build_local_lm
from cscprog.lm.local.sampling import SamplingOptions, SequenceSampler


def test_exclusive_users_go_before_the_decoder():
    lock, order = ModelLock(), []
    lock.acquire_for_decoder()
    waiter = threading.Thread(target=lambda: (lock.__enter__(), order.append("exclusive"), lock.release()))
    waiter.start()
    while not lock.waiting:
        time.sleep(0.001)
    decoder = threading.Thread(target=lambda: (lock.acquire_for_decoder(), order.append("decoder"), lock.release()))
    decoder.start()
    time.sleep(0.05)
    assert order == []  # both wait while the first holder runs
    lock.release()
    waiter.join(5)
    decoder.join(5)
    assert order == ["exclusive", "decoder"]


@pytest.fixture(scope="module")
def engine(models_dir: Path):
    pytest.importorskip("llama_cpp", reason='needs llama-cpp-python (pip install "cscprog[local]")')
    from cscprog.lm.local.weights import find_chunks

    try:
        find_chunks("0.5b")
    except ConfigError as error:
        pytest.skip(f"0.5B weights not installed: {error}")
    settings = LMSettings(local_model_size="0.5b", local_context=1024, local_parallel=3, max_tokens=16,
                          models_dir=str(models_dir))
    return build_local_lm(settings, cache=False).engine


MODEL = "local/qwen2.5-coder-0.5b-instruct-q4_k_m"
TICKET = {
    "type": "json_schema",
    "schema": {
        "type": "object",
        "properties": {"topic": {"enum": ["card", "loan"]}, "urgent": {"type": "boolean"}},
        "required": ["topic", "urgent"],
    },
}


def _ask(user: str, **config) -> Request:
    return Request(model=MODEL, system="You answer briefly.", messages=(Message.user(user),), config=Config(**config))


def _text(response) -> str:
    return "".join(part.text for part in response.message.parts)


def _together(engine, requests: list[Request]) -> list:
    """Run the requests from one thread each; each result is a response or the exception it raised."""
    results: list = [None] * len(requests)

    def call(index: int) -> None:
        try:
            results[index] = engine.complete(requests[index])
        except Exception as error:  # kept to check per request
            results[index] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return results


@pytest.mark.embedded
def test_concurrent_requests_give_their_own_text_and_valid_json(engine):
    requests = [
        _ask("Name a fruit.", max_tokens=8),
        _ask("My card was stolen, block it!", max_tokens=24, response_format=TICKET),
        _ask("Name a colour.", max_tokens=8, temperature=1.0, seed=7),
        _ask("Say hi.", max_tokens=1),  # stops after one token while the others run on
    ]
    alone = [_text(engine.complete(request)) for request in requests]
    steps_before = engine.stats()["steps"]
    together = _together(engine, requests)
    assert [_text(response) for response in together] == alone
    assert json.loads(alone[1])["topic"] in ("card", "loan")
    assert together[3].usage.output_tokens == 1 and together[3].finish_reason == "length"
    stats = engine.stats()
    assert stats["most_running"] >= 2 and stats["step_tokens"] > stats["steps"] > steps_before


class FailsAtThirdToken(SequenceSampler):
    """A real sampler that raises at its third step, as a grammar that allows no token would."""

    def step(self, logits_pointer):
        if len(self.generated) == 2:
            raise ValueError("the grammar allows no token here")
        return super().step(logits_pointer)


def _prompt(engine, text: str) -> tuple[list[int], int]:
    model = engine.shared_model()
    tokens, prefix, _ = model.render([{"role": "system", "content": "You answer briefly."},
                                      {"role": "user", "content": text}])
    return tokens, prefix


@pytest.mark.embedded
def test_a_failing_or_cancelled_sequence_frees_its_slot_and_leaves_the_others(engine):
    model = engine.shared_model()
    llama = model.ensure_loaded()
    decoder = model.decoder
    tokens, prefix = _prompt(engine, "Count from one to twenty.")
    options = SamplingOptions(max_tokens=12)
    alone = decoder.generate(tokens, prefix, SequenceSampler(llama, None, options))
    good = decoder.submit(tokens, prefix, SequenceSampler(llama, None, options))
    failing = decoder.submit(tokens, prefix, FailsAtThirdToken(llama, None, options))
    cancelled_sampler = SequenceSampler(llama, None, SamplingOptions(max_tokens=400))
    cancelled = decoder.submit(tokens, prefix, cancelled_sampler)
    with pytest.raises(ValueError, match="allows no token"):
        failing.wait(600)
    cancelled.cancel()
    text, used, finish = cancelled.wait(600)
    assert finish == "cancelled" and used < 400
    assert good.wait(600) == alone  # decoded beside a failure and a cancellation: the text it gives alone
    assert not decoder._pending
    # every slot is free again: three more at once all run
    again = [decoder.submit(tokens, prefix, SequenceSampler(llama, None, options)) for _ in range(3)]
    assert [request.wait(600) for request in again] == [alone] * 3


@pytest.mark.embedded
def test_context_overflow_is_reported_before_decoding(engine):
    with pytest.raises(ContextLengthError, match="context window"):
        engine.complete(_ask("word " * 1100, max_tokens=4))
