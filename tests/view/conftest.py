"""Fixtures of the page tests: real evaluation runs of scripted programs, and one headless Chromium per module."""

from __future__ import annotations

from pathlib import Path

import dspy
import pytest

from cscprog.agents.responder import ResponseGenerator
from cscprog.evaluation.evaluate import evaluate
from cscprog.samples import load_sample
from cscprog.testing import scripted_lm
from tests.view.chromium import Browser, chromium_available

NOT_STARTED = "(the conversation has not started)"
SAMPLE = "sample:annotated_en"


REPLIES = {
    "Greeting": "Good morning, thank you for calling [Company Name]. How can I help you today?",
    "Information Delivery": "Transfers made after 5 pm are processed on the next working day, so it should arrive "
                            "tomorrow morning.",
    "Providing Suggestions": "I'd suggest turning on payment alerts in the app, so you see every charge as it happens.",
}


def scripted_program(tag: str, second: str):
    """Greeting on an empty history, else ``second``; every reply starts with ``[tag]``."""

    def answer(field: str, request) -> str:
        if field == "strategy":
            return "Greeting" if NOT_STARTED in request.inputs["history"] else second
        return f"[{tag}] {REPLIES.get(str(request.inputs.get('strategy')), REPLIES[second])}"

    return answer


def generated_run(root: Path, limit: int = 2) -> Path:
    """A real ``evaluate`` output in generated context: the program's own earlier turns form the history."""
    previous = dspy.cache
    dspy.cache = dspy.clients.Cache(enable_disk_cache=False, enable_memory_cache=True, disk_cache_dir=None)
    try:
        with pytest.MonkeyPatch.context() as patch, \
                dspy.context(lm=scripted_lm(scripted_program("g", "Information Delivery"), model="scripted/g")):
            patch.setenv("CSCPROG_CACHE_DIR", str(root / "cache"))
            evaluate(ResponseGenerator(), load_sample("annotated_en"), out_dir=root / "run_g", limit=limit,
                     context="generated", semantic=False, plots=False, data_source=SAMPLE)
    finally:
        dspy.cache = previous
    return root / "run_g"


def make_runs(root: Path, limit: int = 6) -> tuple[Path, Path]:
    """Two real ``evaluate`` output directories on ``limit`` English sample dialogues: scripted programs A and B."""
    previous = dspy.cache
    dspy.cache = dspy.clients.Cache(enable_disk_cache=False, enable_memory_cache=True, disk_cache_dir=None)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CSCPROG_CACHE_DIR", str(root / "cache"))
            for tag, second in (("a", "Information Delivery"), ("b", "Providing Suggestions")):
                with dspy.context(lm=scripted_lm(scripted_program(tag, second), model=f"scripted/{tag}")):
                    evaluate(ResponseGenerator(), load_sample("annotated_en"), out_dir=root / f"run_{tag}",
                             limit=limit, semantic=False, plots=False, data_source=SAMPLE)
    finally:
        dspy.cache = previous
    return root / "run_a", root / "run_b"


@pytest.fixture(scope="module")
def eval_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two real evaluation runs (6 English sample dialogues), shared by a module's tests."""
    return make_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (skipped when /usr/bin/chromium is missing)."""
    if not chromium_available():
        pytest.skip("chromium not installed (apt-get install chromium); CI installs it")
    with Browser() as running:
        yield running
