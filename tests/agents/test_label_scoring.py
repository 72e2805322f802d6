"""Strategy labels by scoring: the prompt, the method switch, and (embedded) scores on the real 0.5B model."""

from __future__ import annotations

import math
from pathlib import Path

import dspy
import pytest

from cscprog.agents.classifier import SCORES_KEY, StrategyClassifier
from cscprog.agents.label_scoring import CONTENT_FREE, LabelScorer
from cscprog.config import LMSettings
from cscprog.data import Dialogue, Turn
from cscprog.errors import ConfigError
from cscprog.framework import load_taxonomy
from cscprog.lm.local.scoring import local_engine_of, score_options
from cscprog.testing import scripted_lm

ESCONV = load_taxonomy("esconv")


def test_the_prompt_lists_every_label_with_its_definition_and_the_turn():
    system, user = LabelScorer(ESCONV).messages("Seeker: I failed my exam.", "How did you prepare?")
    for strategy in ESCONV.strategies:
        assert f"- {strategy.name}: {strategy.definition}" in system["content"]
    assert "Seeker: I failed my exam." in user["content"] and "How did you prepare?" in user["content"]
    _, empty = LabelScorer(ESCONV).messages("", "Hi", language="zh")
    assert "对话从这里开始" in empty["content"]
    assert "" in CONTENT_FREE and len(CONTENT_FREE) == 3


def test_method_switch_and_errors():
    with pytest.raises(ValueError, match="method"):
        StrategyClassifier(ESCONV, method="guess")
    lm = scripted_lm(lambda field, request: "Question")
    assert local_engine_of(lm) is None
    with dspy.context(lm=lm):
        assert StrategyClassifier(ESCONV).scoring_lm() is None  # auto: a provider LM generates
        with pytest.raises(ValueError, match="embedded model"):
            StrategyClassifier(ESCONV, method="score").classify_turn("", "How are you?")
        assert StrategyClassifier(ESCONV).classify_turn("", "How are you?").strategy == "Question"
    with pytest.raises(ConfigError, match="embedded model"):
        score_options(lm, [{"role": "user", "content": "hi"}], ["a"])


# ---------------------------------------------------------------------------------------------- real model


@pytest.fixture(scope="module")
def local_lm(models_dir: Path) -> dspy.LM:
    pytest.importorskip("llama_cpp", reason='needs llama-cpp-python (pip install "cscprog[local]")')
    from cscprog.lm.local.engine import build_local_lm
    from cscprog.lm.local.weights import find_chunks

    try:
        find_chunks("0.5b")
    except ConfigError as error:
        pytest.skip(f"0.5B weights not installed: {error}")
    settings = LMSettings(local_model_size="0.5b", local_context=2048, models_dir=str(models_dir))
    return build_local_lm(settings, cache=False)


@pytest.mark.embedded
def test_scores_on_the_embedded_model_are_exact_log_likelihoods_and_label_turns(local_lm):
    messages = LabelScorer(ESCONV).messages("Seeker: I lost my job last week.", "How long did you work there?")
    first = score_options(local_lm, messages, list(ESCONV.names))
    again = score_options(local_lm, messages, list(reversed(ESCONV.names)))
    assert [s.option for s in first] == list(ESCONV.names)
    assert all(math.isfinite(s.logprob) and s.logprob < 0 and s.tokens >= 2 for s in first)
    # the same prompt gives the same numbers, whatever was scored before or in which order
    assert {s.option: round(s.logprob, 4) for s in first} == {s.option: round(s.logprob, 4) for s in again}
    dialogue = Dialogue(id="d", language="en", turns=[
        Turn(speaker="customer", text="I lost my job last week and I can't sleep."),
        Turn(speaker="supporter", text="How long did you work there?"),
        Turn(speaker="customer", text="Nine years."),
        Turn(speaker="supporter", text="Losing a job after nine years must feel really painful."),
    ])
    with dspy.context(lm=local_lm):
        result = StrategyClassifier(ESCONV, concurrency=1)(dialogue)
    labelled = [result.dialogue.turns[i] for i in dialogue.supporter_indices()]
    assert result.failures == [] and all(turn.strategy in ESCONV.names for turn in labelled)
    assert all(set(turn.metadata[SCORES_KEY]["scores"]) == set(ESCONV.names) for turn in labelled)
    assert labelled[0].metadata[SCORES_KEY]["scores"] != labelled[1].metadata[SCORES_KEY]["scores"]


# ---------------------------------------------------------------------------------------------- the LM layer


def test_a_scoring_call_missing_in_replay_fails_clearly_without_loading_the_model(tmp_path):
    from cscprog.cache import CacheMissError, ResponseCache, activate
    from cscprog.lm.local.engine import AsyncLlamaEngine, LlamaEngine

    engine = LlamaEngine(tmp_path / "never-loaded.gguf")  # the model loads on the first real call only
    lm = dspy.LM("local/never-loaded", engine=engine, async_engine=AsyncLlamaEngine(engine))
    with ResponseCache(tmp_path / "cache", mode="replay") as cache, activate(cache, role="classifier"):
        with pytest.raises(CacheMissError, match="role classifier, model local/never-loaded") as miss:
            LabelScorer(ESCONV, calibrate=False).choose(lm, "Seeker: I failed.", "How did you prepare?")
    assert "How did you prepare?" in miss.value.excerpt
    assert engine.load_seconds is None


def test_the_scoring_request_keys_model_prompt_and_options_in_order():
    from cscprog.cache import ResponseCache
    from cscprog.lm.choices import scoring_request

    lm = scripted_lm(lambda field, request: "x")
    messages = LabelScorer(ESCONV).messages("", "Hi")
    cache = ResponseCache(None)
    key = cache.cache_key(scoring_request(lm, messages, ["A", "B"]))
    assert key == cache.cache_key(scoring_request(lm, messages, ["A", "B"]))
    assert key != cache.cache_key(scoring_request(lm, messages, ["B", "A"]))
    assert key != cache.cache_key(scoring_request(lm, LabelScorer(ESCONV).messages("", "Hello"), ["A", "B"]))
    assert key != cache.cache_key(scoring_request(lm.copy(model="local/other"), messages, ["A", "B"]))


@pytest.mark.embedded
def test_scored_labels_are_cached_counted_and_replayed_without_the_model(tmp_path):
    pytest.importorskip("llama_cpp", reason='needs llama-cpp-python (pip install "cscprog[local]")')
    from cscprog.cache import CacheMissError
    from cscprog.config import config_from_dict
    from cscprog.lm.local.model import unload_models
    from cscprog.lm.local.weights import find_chunks
    from cscprog.lm.runtime import Runtime

    try:
        find_chunks("0.5b")
    except ConfigError as error:
        pytest.skip(f"0.5B weights not installed: {error}")
    dialogue = Dialogue(id="d", language="en", turns=[
        Turn(speaker="customer", text="I lost my job last week and I can't sleep."),
        Turn(speaker="supporter", text="How long did you work there?"),
        Turn(speaker="customer", text="Nine years."),
        Turn(speaker="supporter", text="Losing a job after nine years must feel really painful."),
    ])

    def annotate(mode: str, data: Dialogue = dialogue) -> tuple[Dialogue, dict, Runtime]:
        config = config_from_dict({"lm": {"model": "local", "local_context": 2048},
                                   "cache": {"dir": str(tmp_path / "cache"), "mode": mode}}, environ={})
        runtime = Runtime(config)
        try:
            with runtime.activate():
                result = StrategyClassifier(ESCONV, concurrency=1, method="score")(data)
        finally:
            runtime.close()
        return result.dialogue, runtime.usage()["by_role"]["classifier"], runtime

    first, usage, _ = annotate("readwrite")
    assert usage["live_calls"] == 3 + 2 and usage["prompt_tokens"] > 0  # 3 content-free turns, 2 supporter turns
    second, usage, _ = annotate("readwrite")
    assert second == first and usage["live_calls"] == 0 and usage["cache_hits"] == 5
    unload_models()
    third, usage, runtime = annotate("replay")
    assert third == first and usage["live_calls"] == 0
    assert local_engine_of(runtime.lm("classifier")).load_seconds is None  # no model was loaded to replay
    changed = dialogue.model_copy(deep=True)
    changed.turns[3].text = "What helped you sleep before?"
    with pytest.raises(CacheMissError, match="role classifier"):
        annotate("replay", changed)
