"""Per-call overhead of cscprog's LM layer over bare DSPy, against the same loopback OpenAI-compatible server.

Two loops make the same real HTTP calls (cache off for both, so every call reaches the server):

* bare: ``dspy.LM("openai/test-model", api_base=..., cache=False)`` and ``dspy.Predict`` in ``dspy.context``;
* cscprog: ``Runtime`` (cache mode ``off``: keys computed, nothing stored) + ``CallGate`` (budget, ledger) +
  ``invoke`` (role context, retry bookkeeping), with ``runtime.activate()`` in each worker.

Both loops run with the price lookup the runtime memoizes (:mod:`cscprog.lm.pricing`, installed process-wide when
the runtime is built, before any measurement), so the ratio is the cost of the LM layer alone; ``throughput.py``
compares against DSPy as shipped. It prints calls/s for both at each concurrency and the ratio (goal: cscprog
within 10% of bare), then calls/s of DSPy's native engine against the litellm engine. The server runs in a child
process (its own GIL) and answers after ``--latency`` seconds. Rounds alternate between the loops and the median
round is reported.

Usage:
    python benchmarks/overhead.py [--calls 40] [--latency 0.1] [--rounds 3] [--concurrency 1 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dspy  # noqa: E402
from loopback import KEY_ENV, server_process  # noqa: E402

from cscprog.config import config_from_dict  # noqa: E402
from cscprog.lm.invoke import invoke  # noqa: E402
from cscprog.lm.runtime import Runtime  # noqa: E402

SIGNATURE = "question -> answer"


def _measure(call, calls: int, concurrency: int, tag: str) -> float:
    questions = [f"{tag} question {index} {time.perf_counter_ns()}" for index in range(calls)]
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(call, questions))
    return calls / (time.perf_counter() - began)


def bare_loop(url: str, engine: str = "auto"):
    lm = dspy.LM(
        "openai/test-model",
        api_base=url,
        api_key="sk-bench",
        cache=False,
        num_retries=0,
        engine=engine,
        temperature=0.0,
    )
    predict = dspy.Predict(SIGNATURE)

    def call(question: str) -> str:
        with dspy.context(lm=lm):
            return predict(question=question).answer

    return call


def cscprog_loop(url: str, cache_dir: str):
    config = config_from_dict(
        {
            "lm": {"model": "openai/test-model", "api_base": url, "api_key_env": KEY_ENV, "temperature": 0.0},
            "cache": {"dir": cache_dir, "mode": "off"},
        },
        environ={},
    )
    runtime = Runtime(config)
    predict = dspy.Predict(SIGNATURE)

    def call(question: str) -> str:
        with runtime.activate():
            return invoke(predict, role="supporter", question=question).answer

    return call, runtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40, help="calls per round at concurrency 1 (x concurrency)")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--litellm-calls", type=int, default=12)
    args = parser.parse_args(argv)
    os.environ[KEY_ENV] = "sk-bench"

    with server_process(args.latency, answer=None) as (url,):
        with tempfile.TemporaryDirectory() as cache_dir:
            bare, (ours, runtime) = bare_loop(url), cscprog_loop(url, cache_dir)
            for call in (bare, ours):  # warm up: connection pools, imports
                _measure(call, 4, 2, "warm")
            print(f"server latency {args.latency * 1000:.0f} ms, {args.rounds} rounds, median calls/s")
            print(f"{'concurrency':>11} {'bare dspy':>10} {'cscprog':>10} {'ratio':>7} {'ideal':>7}")
            for concurrency in args.concurrency:
                calls = args.calls * concurrency
                results: dict[str, list[float]] = {"bare": [], "ours": []}
                for round_ in range(args.rounds):
                    for name, call in (
                        (("bare", bare), ("ours", ours)) if round_ % 2 == 0 else (("ours", ours), ("bare", bare))
                    ):
                        results[name].append(_measure(call, calls, concurrency, f"{name}{round_}"))
                bare_rate, our_rate = statistics.median(results["bare"]), statistics.median(results["ours"])
                ideal = concurrency / args.latency
                print(
                    f"{concurrency:>11} {bare_rate:>10.1f} {our_rate:>10.1f} {our_rate / bare_rate:>7.3f} {ideal:>7.1f}"
                )

            print("\nengines (bare dspy.Predict, cache off)")
            print(f"{'concurrency':>11} {'native':>10} {'litellm':>10}")
            native, litellm = bare_loop(url, "auto"), bare_loop(url, "litellm")
            _measure(litellm, 2, 1, "warm")
            for concurrency in args.concurrency:
                native_rate = _measure(native, args.calls * concurrency, concurrency, "native")
                litellm_rate = _measure(litellm, args.litellm_calls * concurrency, concurrency, "litellm")
                print(f"{concurrency:>11} {native_rate:>10.1f} {litellm_rate:>10.1f}")
            runtime.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
