"""``cscprog arena`` against the real loopback OpenAI server: two candidates, outputs, report, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest
from cscprog.optimizers import CompileResult, save_compiled

from cscprog.agents.responder import ResponseGenerator
from cscprog.cli import main
from cscprog.testing import OpenAICompatibleServer
from tests.arena.support import ArenaScript


@pytest.fixture(scope="module")
def server():
    with OpenAICompatibleServer(answer=ArenaScript(), latency=0.001) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, server: OpenAICompatibleServer) -> Path:
    path = tmp_path / "cscprog.toml"
    path.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\ntemperature = 0.0\n'
                    f'[cache]\ndir = "{tmp_path / "cache"}"\n[run]\nconcurrency = 2\nseed = 7\n')
    return path


def test_arena_compares_a_program_and_a_chat_endpoint(tmp_path: Path, config: Path, capsys) -> None:
    prompt = tmp_path / "agent.txt"
    prompt.write_text("You are a bank's support agent. Be brief.\n", encoding="utf-8")
    out = tmp_path / "arena"
    args = ["arena", "-C", "base=program", "-C", f"plain=chat:{prompt}", "-n", "2", "--turn-cap", "6",
            "-o", str(out), "--config", str(config), "--progress", "off", "--resamples", "200"]
    assert main(args + ["--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result == json.loads((out / "result.json").read_text())
    assert list(result["candidates"]) == ["base", "plain"]
    assert result["candidates"]["plain"]["kind"] == "chat" and result["counts"]["conversations"] == {
        "base": 2, "plain": 2}
    assert result["summary"]["plain"]["strategy_sources"] == {"classifier": 2}
    assert result["summary"]["base"]["strategy_sources"] == {"emitted": 2}
    assert result["counts"]["pairs"] == 2 and result["pairwise"][0]["a"] == "base"
    manifest = json.loads((out / "conversations.jsonl.manifest.json").read_text())
    assert {"arena_agent", "responder", "customer", "arena_judge"} <= set(manifest["roles"])
    report = (out / "report.md").read_text()
    assert "| score | base | plain |" in report and "## Pairwise" in report
    assert result["command"].startswith("cscprog arena --output") and f"Command: `{result['command']}`" in report
    assert "arena conversations: 4 item(s)" in captured.err

    assert main(args) == 2  # finished work is never overwritten
    assert "pass --resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert json.loads((out / "result.json").read_text())["summary"] == result["summary"]


def test_arena_refuses_bad_candidates_with_status_2(tmp_path: Path, config: Path, capsys) -> None:
    base = ["arena", "-n", "1", "-o", str(tmp_path / "x"), "--config", str(config), "--progress", "off"]
    assert main(base + ["-C", "robot"]) == 2
    assert "program, module or chat" in capsys.readouterr().err
    assert main(base + ["-C", "chat:missing.txt"]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert main(base + ["-C", "x=module:no_such_package_xyz:Agent"]) == 2
    assert "cannot import" in capsys.readouterr().err
    assert main(base + ["-C", "a=program", "-C", "a=program"]) == 2
    assert "unique" in capsys.readouterr().err


def test_arena_runs_a_compiled_program_and_a_module_by_import_path(tmp_path: Path) -> None:
    marker = "DEMO-a7f3: Good morning, the card desk here."
    program = ResponseGenerator()
    program.write_reply.demos = [dspy.Example(history="Customer: hi", strategy="Greeting", language="en",
                                              reply=marker)]
    saved = save_compiled(tmp_path / "compiled.json", CompileResult(
        program=program, before={"metric": 0.0}, after={"metric": 0.0}, recipe="none", settings={"optimizer": None}))
    script = ArenaScript()
    shown: list[str] = []

    def answer(field_name, request):
        shown.append(" ".join(text for _, text in request.messages))
        return script(field_name, request)

    with OpenAICompatibleServer(answer=answer, latency=0.001) as server:
        config = tmp_path / "cscprog.toml"
        config.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\ntemperature = 0.0\n'
                          f'[cache]\ndir = "{tmp_path / "cache"}"\n[run]\nseed = 7\n')
        out = tmp_path / "arena"
        assert main(["arena", "-C", f"program:{saved}", "-C", "mine=module:tests.arena.support:ReplyOnly",
                     "-n", "2", "--turn-cap", "4", "-o", str(out), "--config", str(config), "--progress", "off",
                     "--resamples", "100"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["candidates"]["compiled"]["source"] == str(saved)  # named after the file by default
    assert result["candidates"]["mine"] == {"name": "mine", "kind": "module", "class": "ReplyOnly",
                                            "source": "tests.arena.support:ReplyOnly", "role": "responder"}
    assert any(marker in text for text in shown)  # the compiled program's demo reached the model
    assert result["summary"]["compiled"]["strategy_sources"] == {"emitted": 2}
    assert result["summary"]["mine"]["strategy_sources"] == {"classifier": 2}  # it names no strategies
    assert result["summary"]["mine"]["scores"]["resolved"]["estimate"] == 0.0  # it never unblocks the card
    assert result["counts"]["pairs"] == 2


def test_arena_runs_a_fine_tuned_responder_prompted_in_its_training_layout(tmp_path: Path) -> None:
    from cscprog.data.completion import default_system_prompt
    from cscprog.framework import load_taxonomy

    trained_system = default_system_prompt(load_taxonomy("csc"))
    script = ArenaScript()
    layouts: list[tuple[str, str]] = []

    def answer(field_name, request):
        if request.model == "ft-model":  # the fine-tuned model: the export's layout in, Strategy/Reply out
            layouts.append((request.system, request.format))
            return "Strategy: Greeting\nReply: Good morning, your card is unblocked now."
        return script(field_name, request)

    with OpenAICompatibleServer(answer=answer, latency=0.001) as server:
        config = tmp_path / "cscprog.toml"
        config.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\ntemperature = 0.0\n'
                          f'[roles.responder]\nmodel = "openai/ft-model"\napi_base = "{server.url}"\n'
                          f'[cache]\ndir = "{tmp_path / "cache"}"\n[run]\nseed = 7\n')
        out = tmp_path / "arena"
        assert main(["arena", "-C", "ft=module:cscprog.finetune.program:FinetunedResponder", "-n", "1",
                     "--turn-cap", "4", "-o", str(out), "--config", str(config), "--progress", "off",
                     "--resamples", "100"]) == 0
    assert layouts and all(layout == (trained_system, "plain") for layout in layouts)
    record = json.loads((out / "conversations.jsonl").read_text().splitlines()[0])
    agent = [turn for turn in record["dialogue"]["turns"] if turn["speaker"] == "supporter"]
    assert agent[0] == {**agent[0], "strategy": "Greeting", "text": "Good morning, your card is unblocked now."}
    assert record["scores"]["strategy_source"] == "emitted" and record["scores"]["resolved"]


def test_a_budget_stops_the_arena_cleanly_and_resume_finishes_it(tmp_path: Path, server: OpenAICompatibleServer,
                                                                 capsys) -> None:
    def config(name: str, budget: str) -> Path:
        path = tmp_path / name
        path.write_text(f'[lm]\nmodel = "openai/test-model"\napi_base = "{server.url}"\ntemperature = 0.0\n'
                        f'[cache]\ndir = "{tmp_path / "cache"}"\n[run]\nconcurrency = 1\nseed = 7\n{budget}')
        return path

    prompt = tmp_path / "agent.txt"
    prompt.write_text("You are a bank's support agent.\n", encoding="utf-8")
    out = tmp_path / "arena"
    args = ["arena", "-C", "base=program", "-C", f"plain=chat:{prompt}", "-n", "2", "--turn-cap", "6", "-o", str(out),
            "--progress", "off", "--resamples", "100"]
    assert main(args + ["--config", str(config("tight.toml", "[budget]\nmax_calls = 12\n"))]) == 1
    err = capsys.readouterr().err
    assert "stopped" in err and "--resume" in err
    stopped = json.loads((out / "result.json").read_text())
    assert sum(stopped["counts"]["conversations"].values()) < 4 and stopped["counts"]["pairs"] == 0
    assert "pairs" not in stopped["runs"]  # the pairs wait for every conversation

    assert main(args + ["--config", str(config("open.toml", "")), "--resume"]) == 0
    resumed = json.loads((out / "result.json").read_text())
    assert resumed["counts"]["conversations"] == {"base": 2, "plain": 2} and resumed["counts"]["pairs"] == 2
    whole = tmp_path / "whole"
    assert main(args[:-6] + ["-o", str(whole), "--progress", "off", "--resamples", "100",
                             "--config", str(config("open.toml", ""))]) == 0
    for name in ("conversations.jsonl", "pairs.jsonl"):
        assert sorted((whole / name).read_text().splitlines()) == sorted((out / name).read_text().splitlines())
    assert json.loads((whole / "result.json").read_text())["summary"] == resumed["summary"]
