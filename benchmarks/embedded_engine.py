"""The embedded model against llama.cpp's own speed, and batched decoding at concurrency 1, 2 and 4.

Part 1, **ceiling**: DSPy calls (``dspy.Predict`` with the JSONAdapter, a schema-constrained answer, as a user call
goes) through cscprog's engine, each followed by llama.cpp alone on the same model file, threads and prompt tokens
(a bare llama.cpp context from llama-cpp-python's low-level API: the prompt decoded in batches of 512, then as
many single-token greedy steps as cscprog decoded, timed by ``llama_perf_context``). The prefix cache is off so
both evaluate every prompt token. Printed: prompt tokens/s and generation tokens/s of both (cscprog's from its
decoder's counters: prompt decode time; generation = batched-step decode + sampling with grammar and penalties),
the whole DSPy call against llama.cpp's prompt + generation time, and the ratios (goal >= 0.9).

Part 2, **batched decoding**: ``--calls`` DSPy calls (distinct inputs, ``--max-tokens`` each, prefix cache on, DSPy
cache off) from ``concurrency`` threads, with the engine decoding up to 4 calls side by side (``local_parallel =
4``) and one at a time (``local_parallel = 1``, the engine before batching), interleaved in one run. Printed:
calls/s of each and the speed-up of batching at each concurrency, and whether every call's text was the same in
both modes (greedy decoding: it should be).

The machine may be shared: the load average is printed at the start and the end; numbers are single runs
(no interval), so compare ratios measured in the same run.

Usage:
    python benchmarks/embedded_engine.py                      # 2 threads, 3 ceiling calls, 8 calls at 1, 2, 4
    python benchmarks/embedded_engine.py --threads 2 --calls 4 --concurrency 1,4
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dspy  # noqa: E402

from cscprog.concurrency import map_in_threads  # noqa: E402
from cscprog.config import LMSettings  # noqa: E402
from cscprog.lm.local.engine import AsyncLlamaEngine, LlamaEngine, recommended_adapter  # noqa: E402
from cscprog.lm.local.llama import cpu_has_amx, import_llama  # noqa: E402
from cscprog.lm.local.model import unload_models  # noqa: E402
from cscprog.lm.local.weights import resolve_model_file  # noqa: E402

QUESTIONS = [
    "My card was charged twice for one purchase.",
    "I cannot log in to the app since the update.",
    "How do I raise the limit of my credit card?",
    "A payment I made yesterday is still pending.",
    "I want to close my savings account.",
    "Someone used my card abroad without my consent.",
    "Why was my loan application declined?",
    "The ATM kept my card this morning.",
    "Can I change the due date of my monthly payment?",
    "I was charged a fee I do not understand.",
    "My new card has not arrived after two weeks.",
    "How can I dispute a transaction from last month?",
]


class SupportReply(dspy.Signature):
    """Answer the customer's message as a bank's support agent, in one or two sentences."""

    message: str = dspy.InputField()
    topic: str = dspy.OutputField(desc="one or two words")
    reply: str = dspy.OutputField()


def _lm(path: Path, name: str, threads: int, parallel: int, prefix_bytes: int, max_tokens: int) -> dspy.LM:
    engine = LlamaEngine(path, n_ctx=2048, n_threads=threads, parallel=parallel, prefix_cache_bytes=prefix_bytes,
                         default_max_tokens=max_tokens)
    return dspy.LM(f"local/{name}", engine=engine, async_engine=AsyncLlamaEngine(engine), cache=False,
                   temperature=0.0, max_tokens=max_tokens)


class BareLlama:
    """llama.cpp alone: one context over the model file, the prompt decoded in batches, greedy single steps."""

    def __init__(self, path: Path, threads: int, n_ctx: int) -> None:
        llama_cpp = self.llama_cpp = import_llama()
        params = llama_cpp.llama_model_default_params()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = not cpu_has_amx(llama_cpp)  # as cscprog loads it
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        context = llama_cpp.llama_context_default_params()
        context.n_ctx, context.n_batch, context.n_ubatch = n_ctx, 512, 512
        context.n_threads = context.n_threads_batch = threads
        if hasattr(context, "no_perf"):
            context.no_perf = False  # llama.cpp keeps no timings unless asked
        self.ctx = llama_cpp.llama_init_from_model(self.model, context)
        self.batch = llama_cpp.llama_batch_init(512, 0, 1)
        self.sampler = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        llama_cpp.llama_sampler_chain_add(self.sampler, llama_cpp.llama_sampler_init_greedy())

    def _decode(self, tokens: list[int], start: int) -> None:
        batch = self.batch
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, start + i, 1
            batch.seq_id[i][0], batch.logits[i] = 0, i == len(tokens) - 1
        if self.llama_cpp.llama_decode(self.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def run(self, prompt: list[int], steps: int) -> dict[str, float]:
        """Decode ``prompt`` then ``steps`` greedy tokens; llama.cpp's own timings in seconds."""
        llama_cpp = self.llama_cpp
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
        llama_cpp.llama_perf_context_reset(self.ctx)
        for first in range(0, len(prompt), 512):
            self._decode(prompt[first : first + 512], first)
        for step in range(steps):
            token = llama_cpp.llama_sampler_sample(self.sampler, self.ctx, -1)
            self._decode([token], len(prompt) + step)
        perf = llama_cpp.llama_perf_context(self.ctx)
        return {"prompt_tokens": perf.n_p_eval, "prompt_seconds": perf.t_p_eval_ms / 1000,
                "steps": perf.n_eval, "step_seconds": perf.t_eval_ms / 1000}

    def close(self) -> None:
        llama_cpp = self.llama_cpp
        llama_cpp.llama_sampler_free(self.sampler)
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)
        llama_cpp.llama_model_free(self.model)


def _delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in ("prompt_tokens", "prompt_seconds", "steps", "step_tokens",
                                                      "decode_seconds", "sample_seconds")}


def ceiling(path: Path, name: str, threads: int, calls: int, max_tokens: int) -> None:
    lm = _lm(path, name, threads, parallel=1, prefix_bytes=0, max_tokens=max_tokens)  # the default engine
    engine: LlamaEngine = lm.engine
    predict = dspy.Predict(SupportReply)
    with dspy.context(lm=lm, adapter=recommended_adapter()):
        predict(message="warm-up")  # loads the model
    ours: dict[str, float] = dict.fromkeys(("prompt_tokens", "prompt_seconds", "step_tokens", "gen_seconds",
                                            "call_seconds"), 0.0)
    theirs: dict[str, float] = dict.fromkeys(("prompt_tokens", "prompt_seconds", "steps", "step_seconds"), 0.0)
    work: list[tuple[list[int], int]] = []
    for question in QUESTIONS[:calls]:
        before = engine.stats()
        began = time.perf_counter()
        with dspy.context(lm=lm, adapter=recommended_adapter()):
            predict(message=question)
        ours["call_seconds"] += time.perf_counter() - began
        used = _delta(engine.stats(), before)
        ours["prompt_tokens"] += used["prompt_tokens"]
        ours["prompt_seconds"] += used["prompt_seconds"]
        ours["step_tokens"] += used["step_tokens"]
        ours["gen_seconds"] += used["decode_seconds"] + used["sample_seconds"]
        tokens, _, _ = engine.shared_model().render(lm.history[-1]["messages"])
        work.append((tokens, int(used["step_tokens"])))
    # each side runs alone in the process: a second context's OpenMP workers beside it slowed llama.cpp's prompt
    # decoding about 4x in an interleaved run
    unload_models()
    bare = BareLlama(path, threads, 2048)
    bare.run(work[0][0], 1)  # warm-up, as cscprog's
    for tokens, steps in work:
        for key, value in bare.run(tokens, steps).items():
            theirs[key] += value
    bare.close()
    ours_prompt = ours["prompt_tokens"] / ours["prompt_seconds"]
    theirs_prompt = theirs["prompt_tokens"] / theirs["prompt_seconds"]
    ours_gen = ours["step_tokens"] / ours["gen_seconds"]
    theirs_gen = theirs["steps"] / theirs["step_seconds"]
    theirs_total = theirs["prompt_seconds"] + theirs["step_seconds"]
    print(f"\nCeiling: {calls} DSPy calls (JSONAdapter, schema grammar), {threads} threads, prefix cache off")
    print(f"  {'':28}{'cscprog':>12}{'llama.cpp':>12}{'ratio':>8}")
    print(f"  {'prompt tokens/s':28}{ours_prompt:12.1f}{theirs_prompt:12.1f}{ours_prompt / theirs_prompt:8.2f}"
          f"   ({int(ours['prompt_tokens'])} vs {int(theirs['prompt_tokens'])} tokens)")
    print(f"  {'generation tokens/s':28}{ours_gen:12.1f}{theirs_gen:12.1f}{ours_gen / theirs_gen:8.2f}"
          f"   ({int(ours['step_tokens'])} vs {int(theirs['steps'])} steps)")
    print(f"  {'whole call, seconds':28}{ours['call_seconds']:12.2f}{theirs_total:12.2f}"
          f"{theirs_total / ours['call_seconds']:8.2f}   (cscprog: the DSPy call; llama.cpp: prompt + steps)")


def batched(path: Path, name: str, threads: int, calls: int, max_tokens: int, levels: list[int]) -> None:
    rows = []
    texts: dict[int, list[str]] = {}
    for concurrency in levels:
        seconds = {}
        for parallel in (4, 1) if concurrency % 2 else (1, 4):  # alternate which mode runs first
            lm = _lm(path, name, threads, parallel=parallel, prefix_bytes=256 << 20, max_tokens=max_tokens)
            predict = dspy.Predict(SupportReply)
            with dspy.context(lm=lm, adapter=recommended_adapter()):
                predict(message="warm-up")  # loads the model, caches the signature's prefix

                def call(question: str, predict=predict) -> str:
                    return predict(message=question).reply

                began = time.perf_counter()
                replies = map_in_threads(call, QUESTIONS[:calls], concurrency)
                seconds[parallel] = time.perf_counter() - began
            texts[parallel * 100 + concurrency] = replies
            most = lm.engine.stats()["most_running"]
            unload_models()
        same = texts[100 + concurrency] == texts[400 + concurrency]
        rows.append((concurrency, calls / seconds[1], calls / seconds[4], seconds[1] / seconds[4], most, same))
    print(f"\nBatched decoding: {calls} DSPy calls of <= {max_tokens} tokens, {threads} threads, prefix cache on")
    print(f"  {'concurrency':>11}{'one at a time':>15}{'batched (4)':>13}{'speed-up':>10}{'most running':>14}"
          f"{'same texts':>12}")
    for concurrency, one, four, gain, most, same in rows:
        print(f"  {concurrency:>11}{one:>11.3f}/s {four:>9.3f}/s {gain:>9.2f}{most:>14}{str(same):>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ceiling-calls", type=int, default=3)
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--skip-batched", action="store_true")
    args = parser.parse_args()
    path, name = resolve_model_file(None, "0.5b", LMSettings().models_path)
    print(f"model {name}, load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if not args.skip_ceiling:
        ceiling(path, name, args.threads, args.ceiling_calls, 256)
    if not args.skip_batched:
        levels = [int(level) for level in args.concurrency.split(",")]
        batched(path, name, args.threads, args.calls, args.max_tokens, levels)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
