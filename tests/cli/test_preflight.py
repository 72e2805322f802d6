"""Every command that calls a model refuses to start, with exit 2 and the config key to fix, when its setup
cannot work: an unset key variable, ``model = "local"`` without the local extra, an ``api_base`` nobody answers.
Nothing is called and nothing is written before that."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from cscprog.cli import main
from cscprog.config import config_from_dict
from cscprog.lm.preflight import SetupError, check_setup, provider_key_names, setup_problems


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _commands(out: Path) -> dict[str, list[str]]:
    return {
        "rewrite": ["rewrite", "sample:raw", "-o", str(out / "rewrite.jsonl")],
        "annotate": ["annotate", "sample:annotated_en", "-o", str(out / "annotate.jsonl")],
        "synthesize": ["synthesize", "-n", "1", "-o", str(out / "synthesize.jsonl")],
        "judge": ["judge", "sample:annotated_en", "-o", str(out / "judge.jsonl")],
        "respond": ["respond", "sample:annotated_en", "-o", str(out / "respond.jsonl")],
        "evaluate": ["evaluate", "sample:annotated_en", "--limit", "1", "--no-plots", "-o", str(out / "evaluate")],
        "compile": ["compile", "--train", "sample:annotated_en", "--dev", "sample:annotated_en", "--optimizer",
                    "bootstrap", "-o", str(out / "compile.json")],
        "demo": ["demo", "-o", str(out / "demo")],
        "arena": ["arena", "-C", "base=program", "-C", "other=program", "-n", "1", "-o", str(out / "arena")],
        "compare --judge": ["compare", "runs/run_a", "runs/run_b", "--judge", "--judge-output",
                            str(out / "pairs.jsonl")],
    }


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ambient config or keys; any request that slipped through would hit a closed local proxy port."""
    for name in ("CSCPROG_CONFIG", "CSCPROG_MODEL", "CSCPROG_API_BASE", "CSCPROG_CACHE_MODE", "OPENAI_API_KEY",
                 "CSCPROG_TEST_KEY"):
        monkeypatch.delenv(name, raising=False)
    dead = f"http://127.0.0.1:{_closed_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.setenv("CSCPROG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


SETUPS = {
    "missing key variable": ('[lm]\nmodel = "openai/gpt-4o-mini"\napi_key_env = "CSCPROG_TEST_KEY"\n',
                             ("lm.api_key_env", "CSCPROG_TEST_KEY")),
    "missing provider key": ('[lm]\nmodel = "openai/gpt-4o-mini"\n', ("lm.api_key_env", "OPENAI_API_KEY")),
    "missing local extra": ('[lm]\nmodel = "local"\n', ("lm.model", 'cscprog[local]')),
    "unreachable api_base": ('[lm]\nmodel = "openai/served"\napi_base = "http://127.0.0.1:{port}/v1"\n',
                             ("lm.api_base", "nothing answers at http://127.0.0.1:")),
}


@pytest.mark.parametrize("setup", list(SETUPS))
@pytest.mark.parametrize("command", list(_commands(Path("."))))
def test_command_stops_before_any_call(command: str, setup: str, isolated: Path, capsys: pytest.CaptureFixture,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    text, expected = SETUPS[setup]
    if setup == "missing local extra":
        monkeypatch.setitem(sys.modules, "llama_cpp", None)  # how Python marks a module as not importable
    if command == "compare --judge":  # two real evaluation runs to compare (scripted programs, no network)
        from tests.view.conftest import make_runs

        make_runs(isolated / "runs", limit=1)
    config = isolated / "cscprog.toml"
    config.write_text(text.format(port=_closed_port()), encoding="utf-8")
    out = isolated / "out"
    argv = _commands(out)[command]
    assert main([*argv, "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for part in expected:
        assert part in err, err
    assert not out.exists(), "nothing is written before the setup is checked"
    assert not (isolated / "cache").exists() or not any((isolated / "cache").rglob("*.db")), "no cache entry"


def test_problems_name_the_role_key_and_group_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CSCPROG_TEST_KEY", raising=False)
    config = config_from_dict({"lm": {"model": "openai/gpt-4o-mini", "api_key_env": "CSCPROG_TEST_KEY"},
                               "roles": {"judge": {"api_base": f"http://user:secret@127.0.0.1:{_closed_port()}/v1",
                                                   "api_key_env": "CSCPROG_JUDGE_KEY"}}},
                              environ={})
    problems = setup_problems(config, ("planner", "customer", "judge"), environ={"CSCPROG_JUDGE_KEY": "k"})
    assert [problem.key for problem in problems] == ["lm.api_key_env", "roles.judge.api_base"]
    assert problems[0].roles == ("planner", "customer")
    assert "secret" not in str(problems[1]) and "user" not in str(problems[1])
    assert setup_problems(config, ("planner",), environ={"CSCPROG_TEST_KEY": "k"}) == []


def test_replay_needs_no_key_and_no_network() -> None:
    config = config_from_dict({"lm": {"model": "openai/gpt-4o-mini", "api_key_env": "CSCPROG_TEST_KEY",
                                      "api_base": f"http://127.0.0.1:{_closed_port()}/v1"},
                               "cache": {"mode": "replay"}}, environ={})
    check_setup(config, ("responder", "judge"), environ={})


def test_a_live_endpoint_and_a_set_key_pass() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        config = config_from_dict({"lm": {"model": "openai/served", "api_base": f"http://127.0.0.1:{port}/v1"}},
                                  environ={})
        check_setup(config, ("responder",), environ={})
    with pytest.raises(SetupError, match=r"lm\.api_base: nothing answers"):
        check_setup(config, ("responder",), environ={})


def test_arena_checks_every_role_it_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from cscprog.arena import ArenaSettings, ChatCandidate, arena_roles

    candidates = [ChatCandidate("plain", "You are a bank agent."), ChatCandidate("other", "Be brief.")]
    roles = arena_roles(candidates, ArenaSettings(output_dir=Path("unused")))
    assert set(roles) == {"planner", "customer_assistant", "customer", "arena_agent", "arena_judge", "classifier",
                          "pair_judge"}
    assert "pair_judge" not in arena_roles(candidates[:1], ArenaSettings(output_dir=Path("unused")))
    monkeypatch.delenv("CSCPROG_PAIR_KEY", raising=False)
    config = config_from_dict({"lm": {"model": "openai/served", "api_base": "http://127.0.0.1:1/v1"},
                               "roles": {"pair_judge": {"model": "openai/gpt-4o-mini", "api_base": None,
                                                        "api_key_env": "CSCPROG_PAIR_KEY"}}}, environ={})
    keys = [problem.key for problem in setup_problems(config, roles, probe_timeout=0.5, environ={})]
    assert "roles.pair_judge.api_key_env" in keys


def test_provider_key_names_come_from_the_provider_table() -> None:
    assert provider_key_names("openai/gpt-4o-mini") == ("OPENAI_API_KEY",)
    assert "ANTHROPIC_API_KEY" in provider_key_names("anthropic/claude-3-5-haiku-latest")
    assert provider_key_names("ollama/qwen2.5") == ()  # a keyless local server
    assert provider_key_names("gpt-4o-mini") == ()     # no provider named: not guessed
