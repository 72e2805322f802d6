"""The simulated provider of the benchmarks: loopback OpenAI-compatible servers in a child process, and their inputs.

:func:`server_process` runs :class:`cscprog.testing.OpenAICompatibleServer` instances (one per latency) in a spawned
child process with its own GIL, so answering never competes with the measured client for the interpreter. By default
they answer with :func:`synthesis_answer`: role-play answers of realistic length that keep every dialogue going to
its utterance cap. :func:`bench_plan` gives distinct dialogues (no two share a cache entry) and :func:`load_text`
the machine's load for the scripts' first and last lines.

Example:
    ```python
    from loopback import bench_plan, load_text, server_process

    started = load_text()  # "load average 1.23 0.98 0.87"
    with server_process(0.1, 0.0) as (url, fast_url):  # answers after 100 ms, and at once
        plan = bench_plan(8)  # (dialogue_id, profile, topic) triples
    ```
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import random
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cscprog.data import Profile  # noqa: E402
from cscprog.rolecs.plan import TOPICS, synthesis_plan  # noqa: E402
from cscprog.samples import load_profiles  # noqa: E402
from cscprog.testing import AnswerFn, OpenAICompatibleServer  # noqa: E402
from cscprog.testing.engines import AnswerRequest  # noqa: E402

KEY_ENV = "CSCPROG_BENCH_API_KEY"
"""The environment variable the benchmarks' runtimes read their API key from (the servers ignore it)."""
MODEL = "openai/test-model"
CLOSING = "Appreciation and Closure"
_LITERAL = re.compile(r"Literal\[(.*)\]")
_WORDS = (
    "account transfer card payment balance branch statement limit fee refund pending monday friday morning "
    "week bank receiving confirm check follow today update number online app message reference amount deposit "
    "loan rate savings credit debit charge merchant dispute request form email phone address holder name date "
    "days hours quickly soon again still already just really maybe please thanks sure right now later first"
).split()
"""Words the scripted answers are drawn from: each answer is a different sequence of realistic length, so the
role-play's degenerate-text checks (repeats, copies of the scenario, echoes) see what distinct model turns give."""


def _sentence(digest: str, words: int = 26) -> str:
    chooser = random.Random(digest)
    return " ".join(chooser.choice(_WORDS) for _ in range(words)).capitalize() + "."


def synthesis_answer(field: str, request: AnswerRequest) -> str:
    """A deterministic role-play answer of realistic length; dialogues always run to the utterance cap.

    Strategies are drawn from the offered labels by the prompt's hash (never the closing one) and the customer never
    says it is finished, so every dialogue makes the same number of calls (``1 + 2 * cap``).
    """
    digest = hashlib.sha256(request.last.encode("utf-8")).hexdigest()
    literal = _LITERAL.search(request.output_types.get(field, "str"))
    if literal:
        options = [option.strip().strip("'\"") for option in literal.group(1).split(",")]
        options = [option for option in options if option != CLOSING] or options
        return options[int(digest[:8], 16) % len(options)]
    if field == "finished":
        return "False"
    return f"({field} {digest[:8]}) {_sentence(digest + field)}"


def _serve(latencies: Sequence[float], answer: AnswerFn | None, urls: Any, stop: Any) -> None:
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(OpenAICompatibleServer(answer=answer, latency=latency))
                   for latency in latencies]
        urls.put([server.url for server in servers])
        stop.wait()


@contextlib.contextmanager
def server_process(*latencies: float, answer: AnswerFn | None = synthesis_answer) -> Iterator[list[str]]:
    """Loopback servers (one per latency) in a child process with its own GIL; yields their base URLs.

    ``answer`` (a module-level function, as the child imports it) is every server's answer function; None gives the
    server's own default answers.
    """
    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(list(latencies), answer, urls, stop), daemon=True)
    process.start()
    try:
        yield urls.get(timeout=120)
    finally:
        stop.set()
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()


def bench_profiles(count: int) -> list[Profile]:
    """``count`` distinct customers (the packaged profiles, each repeated under a new id and customer number).

    Distinct profile texts give distinct prompts, so no two dialogues share a cache entry.
    """
    base = load_profiles()
    profiles = []
    for index in range(count):
        profile = base[index % len(base)]
        description = f"{profile.description or ''} Your customer number is {index:05d}.".strip()
        profiles.append(profile.model_copy(update={"id": f"bench-{index:05d}", "description": description}))
    return profiles


def bench_plan(dialogues: int, seed: int = 1234) -> list[tuple[str, Profile, str]]:
    """``dialogues`` distinct (dialogue_id, profile, topic) triples over the method's seven topics."""
    profiles = bench_profiles(-(-dialogues // len(TOPICS)))
    return synthesis_plan(profiles, TOPICS, n=dialogues, seed=seed)


def load_text() -> str:
    """``load average 1.23 0.98 0.87`` (1, 5 and 15 minutes)."""
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())
