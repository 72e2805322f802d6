"""Each recipe compiles in seconds against a scripted LM that is right only when the compiled prompt teaches it.

The scripted "model" answers the strategy of a turn whose customer says their card was *stolen* correctly
(Emotional Management) only when the prompt carries the rule (in the instructions, as COPRO/MIPROv2/GEPA can
write it) or a demo of such a turn (as bootstrapping adds); otherwise it answers Information Delivery. Every
other turn is Information Delivery. So the uncompiled program scores 50% strategy accuracy on the dev set and
a working compile scores 100%.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import dspy
import pytest
from cscprog.optimizers import (
    RECIPES,
    CompiledProgramError,
    compile_program,
    load_compiled,
    read_compiled,
    recipe_settings,
    save_compiled,
    training_examples,
)

import cscprog
from cscprog.agents.responder import ResponseGenerator
from cscprog.config import config_from_dict
from cscprog.errors import ConfigError
from cscprog.evaluation.metrics.dspy_metrics import strategy_accuracy
from cscprog.lm.runtime import Runtime
from cscprog.samples import load_sample
from cscprog.testing import default_answer, scripted_lm

RULE = "RULE: stolen => Emotional Management"
PROPOSAL = f"Choose the support strategy of the next supporter turn. {RULE}"
PROPOSAL_FIELDS = {"proposed_instruction", "new_instruction", "instruction"}


def _taught(request) -> bool:
    if RULE in request.system:
        return True
    messages = request.messages[:-1]  # demos: user/assistant pairs before the current turn
    for (role, text), (next_role, answer) in zip(messages, messages[1:], strict=False):
        if role == "user" and next_role == "assistant" and "stolen" in text and "Emotional Management" in answer:
            return True
    return False


def answer(field: str, request) -> str:
    if field in PROPOSAL_FIELDS:
        return PROPOSAL
    if field == "strategy":
        history = request.inputs.get("history", "")
        stolen = "stolen" in history.splitlines()[-1] if history else False
        return "Emotional Management" if stolen and _taught(request) else "Information Delivery"
    if field == "reply":
        return f"I can help with that ({request.inputs.get('strategy', '')})."
    if field == "proposed_prefix_for_output_field":
        return "Strategy:"
    return default_answer(field, request)


def example(text: str, strategy: str) -> dspy.Example:
    return dspy.Example(
        history=f"Supporter [Greeting]: Hello, how can I help?\nCustomer: {text}",
        language="en", domain="", strategy=strategy, reply="I understand, let me help you.",
    ).with_inputs("history", "language", "domain")


EM, ID = "Emotional Management", "Information Delivery"
TRAIN = [example("My card was stolen this morning!", EM), example("What is the fee for transfers?", ID),
         example("Someone has stolen my wallet and cards.", EM), example("When does the branch open?", ID),
         example("My phone with the banking app was stolen.", EM), example("How do I raise my limit?", ID),
         example("I think my card details were stolen online.", EM), example("What is the savings rate?", ID)]
DEV = [example("Help, my bag with my card was stolen!", EM), example("What are your opening hours?", ID),
       example("My credit card got stolen on the train.", EM), example("How much is the annual fee?", ID)]


@pytest.fixture
def lm():
    task = scripted_lm(answer, temperature=0.0)
    with dspy.context(lm=task):
        yield task


RECIPE_OVERRIDES = {
    "bootstrap": {},
    "copro": {"breadth": 2, "depth": 1},
    "mipro": {"auto": None, "num_candidates": 2, "num_trials": 3, "minibatch": False},
    "gepa": {"max_metric_calls": 40, "reflection_minibatch_size": 2},
}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_each_recipe_improves_strategy_accuracy(recipe, lm):
    if recipe == "mipro" and importlib.util.find_spec("optuna") is None:
        pytest.skip("optuna not installed (cscprog[optimize])")
    result = compile_program(ResponseGenerator(), TRAIN, DEV, recipe=recipe, budget="light",
                             metric=strategy_accuracy, overrides=RECIPE_OVERRIDES[recipe], num_threads=1)
    assert result.before["strategy_accuracy"] == 50.0
    assert result.after["strategy_accuracy"] == 100.0 and result.after["metric"] == 100.0
    assert result.improvement == 50.0
    assert result.settings["optimizer"] == {"bootstrap": "BootstrapFewShot", "copro": "COPRO", "mipro": "MIPROv2",
                                            "gepa": "GEPA"}[recipe]


def test_mipro_without_optuna_is_a_config_error_naming_the_package(lm, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # what an uninstalled package looks like to the import system
    with pytest.raises(ConfigError, match="needs the package 'optuna'"):
        compile_program(ResponseGenerator(), TRAIN, DEV, recipe="mipro", metric=strategy_accuracy)


def test_budgets_and_overrides_are_documented_settings():
    assert recipe_settings("bootstrap", "light")["optimizer"] == "BootstrapFewShot"
    medium = recipe_settings("bootstrap", "medium")
    assert medium["optimizer"] == "BootstrapFewShotWithRandomSearch" and medium["init"]["num_candidate_programs"] == 6
    assert recipe_settings("mipro", "heavy")["init"]["auto"] == "heavy"
    gepa = recipe_settings("gepa", "light", {"max_metric_calls": 30})["init"]
    assert gepa["auto"] is None and gepa["max_metric_calls"] == 30
    assert recipe_settings("mipro", "light", {"num_trials": 4})["compile"]["num_trials"] == 4
    with pytest.raises(ConfigError, match="unknown optimizer recipe 'simba'"):
        recipe_settings("simba")
    with pytest.raises(ConfigError, match="unknown budget 'huge'"):
        recipe_settings("copro", "huge")
    with pytest.raises(ConfigError, match="COPRO has no setting 'depthh'"):
        recipe_settings("copro", "light", {"depthh": 2})


def test_a_compile_replays_from_the_cache_with_no_new_calls(lm):
    first = compile_program(ResponseGenerator(), TRAIN, DEV, recipe="copro", metric=strategy_accuracy,
                            overrides={"breadth": 2, "depth": 1})
    calls = lm.engine.calls
    again = compile_program(ResponseGenerator(), TRAIN, DEV, recipe="copro", metric=strategy_accuracy,
                            overrides={"breadth": 2, "depth": 1})
    assert lm.engine.calls == calls
    assert again.program.dump_state() == first.program.dump_state()
    assert again.after == first.after


def test_runtime_roles_task_lm_runs_the_program_and_reflection_lm_proposes(tmp_path):
    engines = {}

    def factory(role, settings):
        engines[role] = scripted_lm(answer, model=f"scripted/{role}", temperature=0.0)
        return engines[role]

    runtime = Runtime(config_from_dict({"cache": {"dir": str(tmp_path / "cache")}}), lm_factory=factory)
    try:
        with runtime.activate():
            result = compile_program(ResponseGenerator(), TRAIN, DEV, recipe="copro", metric=strategy_accuracy,
                                     overrides={"breadth": 2, "depth": 1})
    finally:
        runtime.close()
    assert result.after["strategy_accuracy"] == 100.0
    proposals = [r for r in engines["reflection"].engine.requests if "proposed_instruction" in r.outputs]
    assert proposals and all("strategy" not in r.outputs for r in engines["reflection"].engine.requests)
    assert any("strategy" in r.outputs for r in engines["responder"].engine.requests)


def test_default_metric_and_sample_data_compile_and_round_trip(lm, tmp_path):
    dialogues = load_sample("annotated_en")
    train = training_examples(dialogues[:3])
    dev = training_examples(dialogues[3:5])
    assert all("history_turns" not in ex for ex in train)
    result = compile_program(ResponseGenerator(), train, dev, recipe="bootstrap")
    assert result.settings["weights"] == {"strategy": 0.5, "reply": 0.5}
    assert set(result.before) == {"metric", "strategy_accuracy", "reply_rouge_l", "n", "failures"}
    path = save_compiled(tmp_path / "program.json", result, inputs={"train": "sample:annotated_en"})
    document = read_compiled(path)
    manifest = document["manifest"]
    assert document["program_class"] == "cscprog.agents.responder.ResponseGenerator"
    assert manifest["optimizer"] == "BootstrapFewShot" and manifest["before"] == result.before
    assert manifest["versions"]["cscprog"] == cscprog.__version__ and manifest["taxonomy"]["name"] == "csc"
    loaded = load_compiled(path)
    assert isinstance(loaded, ResponseGenerator)
    assert loaded.dump_state() == json.loads(json.dumps(result.program.dump_state(), default=str))
    assert len(loaded.predict_strategy.demos) == len(result.program.predict_strategy.demos) > 0
    # the loaded program answers like the compiled one
    probe = dev[0].inputs().toDict()
    assert loaded(**probe).strategy == result.program(**probe).strategy


def test_loading_refuses_another_class_or_version(lm, tmp_path):
    result = compile_program(ResponseGenerator(), TRAIN[:4], DEV[:2], recipe="bootstrap", metric=strategy_accuracy)
    path = save_compiled(tmp_path / "program.json", result)
    from cscprog.agents.classifier import StrategyClassifier

    with pytest.raises(CompiledProgramError, match="compiled for cscprog.agents.responder.ResponseGenerator, not "
                                                   "cscprog.agents.classifier.StrategyClassifier"):
        load_compiled(path, StrategyClassifier)
    document = json.loads(path.read_text())
    document["cscprog_version"] = "0.0.1"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    with pytest.raises(CompiledProgramError, match=r"compiled with cscprog 0.0.1, but this is cscprog"):
        load_compiled(old)
    assert isinstance(load_compiled(old, check_version=False), ResponseGenerator)
    (tmp_path / "bad.json").write_text('{"format": "something-else"}')
    with pytest.raises(CompiledProgramError, match="not a cscprog compiled program"):
        load_compiled(tmp_path / "bad.json")
    with pytest.raises(CompiledProgramError, match="no such compiled program file"):
        load_compiled(tmp_path / "missing.json")
