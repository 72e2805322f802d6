"""compile --metric: any metric of a profile or a weighted mix; the strategy definitions survive instruction rewrites.

The scripted LM of ``test_recipes`` proposes an instruction without a single strategy definition, as a real
proposer usually does; every recipe that rewrites instructions must still run each candidate, and save the
compiled program, with all twelve definitions.
"""

from __future__ import annotations

import importlib.util
import json

import dspy
import pytest
from cscprog.optimizers import compile_program, load_compiled, save_compiled
from cscprog.signatures import GuidedPredict

from cscprog.agents.responder import ResponseGenerator
from cscprog.errors import ConfigError
from cscprog.evaluation.metrics.columns import metric_columns
from cscprog.evaluation.metrics.conventions import get_profile
from cscprog.evaluation.metrics.objective import Objective, parse_objective, parse_terms
from cscprog.framework import load_taxonomy
from cscprog.testing import scripted_lm
from tests.optimizers.test_recipes import DEV, PROPOSAL, RECIPE_OVERRIDES, TRAIN, answer

CSC = load_taxonomy("csc")


def test_specs_parse_to_normalized_weights_and_bad_specs_say_why():
    assert parse_terms("bleu2") == {"bleu2": 1.0}
    assert parse_terms("3*acc + 1*rouge-l") == {"accuracy": 0.75, "rouge_l": 0.25}
    assert parse_terms("0.5*accuracy+0.5*rouge_l") == {"accuracy": 0.5, "rouge_l": 0.5}
    for spec, says in (("macro_f1", "corpus figure"), ("bleu5", "unknown metric"), ("acc+accuracy", "twice"),
                       ("0.5 rouge_l", "not a term"), ("0*bleu2", "sum to 0"), ("", "not a term")):
        with pytest.raises(ConfigError, match=says):
            parse_terms(spec)
    with pytest.raises(ConfigError, match="bertscore is not available"):
        parse_objective("bertscore", labels=CSC.names)


@pytest.mark.parametrize("profile", ["standard", "paper"])
def test_each_term_scores_an_example_as_the_evaluation_scores_that_turn(profile):
    gold = dspy.Example(strategy="Greeting", reply="Hello, thank you for calling the bank. How can I help?")
    pred = dspy.Prediction(strategy="Greeting", reply="Hello, thanks for calling. How may I help you today?")
    metric = parse_objective("0.2*accuracy+0.4*bleu2+0.4*rouge_l", labels=CSC.names, profile=profile)
    columns = metric_columns([pred.reply], [gold.reply], [gold.strategy], [pred.strategy], CSC.names,
                             get_profile(profile), metric.scorers)
    want = 0.2 * 1.0 + 0.4 * columns["bleu2"].statistic.point() / 100 + 0.4 * columns["rouge_l"].statistic.point() / 100
    assert metric(gold, pred) == pytest.approx(want)
    assert 0 < metric(gold, pred) < 1 and metric.__name__ == f"0.2*accuracy+0.4*bleu2+0.4*rouge_l[{profile}]"
    assert metric(gold, dspy.Prediction(strategy=None, reply=None)) == 0.0  # a failed generation scores 0


def test_paper_rouge_drops_chinese_characters_as_the_paper_column_does():
    gold = dspy.Example(strategy="Greeting", reply="您好，请问有什么可以帮您？")
    pred = dspy.Prediction(strategy="Greeting", reply="您好，请问有什么可以帮您？")
    assert Objective({"rouge_l": 1.0}, labels=CSC.names, profile="standard")(gold, pred) == 1.0
    assert Objective({"rouge_l": 1.0}, labels=CSC.names, profile="paper")(gold, pred) == 0.0


def _has_every_definition(text: str) -> bool:  # prompts indent the instructions, so look line by line
    return all(strategy.describe("en") in text for strategy in CSC.strategies)


@pytest.mark.parametrize("recipe", ["copro", "mipro", "gepa"])
def test_instruction_rewrites_keep_every_strategy_definition(recipe, tmp_path):
    if recipe == "mipro" and importlib.util.find_spec("optuna") is None:
        pytest.skip("optuna not installed (cscprog[optimize])")
    lm = scripted_lm(answer, temperature=0.0)
    metric = parse_objective("0.5*accuracy+0.5*bleu2", labels=CSC.names)
    with dspy.context(lm=lm):
        result = compile_program(ResponseGenerator(), TRAIN, DEV, recipe=recipe, budget="light", metric=metric,
                                 overrides=RECIPE_OVERRIDES[recipe], num_threads=1)
    assert result.settings["metric"] == "0.5*accuracy+0.5*bleu2[standard]"
    predictors = result.program.predictors()
    assert predictors and all(isinstance(p, GuidedPredict) for p in predictors)
    for predictor in predictors:
        assert _has_every_definition(predictor.signature.instructions)
    # the proposal replaced the instruction, and every candidate still ran with the definitions
    assert any(PROPOSAL in p.signature.instructions for p in predictors)
    program_runs = [r for r in lm.engine.requests if {"strategy"} == set(r.outputs) or {"reply"} == set(r.outputs)]
    assert program_runs and all(_has_every_definition(r.system) for r in program_runs)
    assert any(PROPOSAL in r.system for r in program_runs)
    # and the saved program holds them
    path = tmp_path / "program.json"
    save_compiled(path, result)
    assert _has_every_definition(path.read_text(encoding="utf-8"))
    loaded = load_compiled(path)
    assert all(_has_every_definition(p.signature.instructions) for p in loaded.predictors())


def test_compile_cli_takes_a_metric_of_a_profile_and_refuses_bad_ones(capsys, tmp_path):
    from cscprog.cli import main
    from cscprog.testing import OpenAICompatibleServer

    def run(*args):
        code = main([str(arg) for arg in args])
        out, err = capsys.readouterr()
        return code, out, err

    with OpenAICompatibleServer(answer, model_name="test-model") as server:
        config = tmp_path / "cscprog.toml"
        config.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\n\n'
                          f'[cache]\ndir = "{tmp_path / "cache"}"\n\n[run]\nconcurrency = 2\n', encoding="utf-8")
        common = ["compile", "--train", "sample:annotated_en", "--train-limit", 2, "--dev", "sample:annotated_en",
                  "--dev-limit", 1, "--optimizer", "copro", "--config", config]
        code, out, err = run(*common, "-o", tmp_path / "p.json", "--metric", "0.5*accuracy+0.5*bleu2",
                             "--metrics", "paper", "--json")
        assert code == 0, err
        summary = json.loads(out)
        assert summary["settings"]["metric"] == "0.5*accuracy+0.5*bleu2[paper]"
        assert _has_every_definition((tmp_path / "p.json").read_text(encoding="utf-8"))
        for extra, says in ((["--metric", "macro_f1"], "corpus figure"),
                            (["--metric", "bleu2", "--weights", "strategy=1"], "--weights and --metric"),
                            (["--metrics", "paper"], "give --metric too"),
                            (["--metric", "bleu2", "--metrics", "sacre"], "--metrics")):
            code, out, err = run(*common, "-o", tmp_path / "q.json", *extra)
            assert code == 2 and says in err, (extra, err)
