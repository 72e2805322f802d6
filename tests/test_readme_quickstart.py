"""What the README tells a new user holds: the hosted quick start, the Python snippet, the options it names."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from cscprog.cli import main
from cscprog.cli.app import cli_command
from cscprog.testing import OpenAICompatibleServer
from tests.test_demo import answer

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CSCPROG_CONFIG", "CSCPROG_MODEL", "CSCPROG_API_BASE", "CSCPROG_CACHE_MODE", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CSCPROG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_hosted_quick_start_config_is_the_shipped_file_and_its_commands_run(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    section = _section("A hosted model in three steps")
    config = ROOT / "examples" / "hosted.toml"
    assert _blocks(section, "toml") == [config.read_text(encoding="utf-8")]
    commands = [line.split("#")[0].split() for line in _blocks(section, "bash")[0].splitlines()]
    demo = next(argv for argv in commands if argv[:2] == ["cscprog", "demo"])
    evaluate = next(argv for argv in commands if argv[:2] == ["cscprog", "evaluate"])
    assert "export" in commands[0] and "OPENAI_API_KEY=sk-..." in commands[0]
    config_arg = str(config)

    # without the exported key: exit 2 naming the variable, before any call or file
    assert main([arg if arg != "examples/hosted.toml" else config_arg for arg in demo[1:]]) == 2
    err = capsys.readouterr().err
    assert "lm.api_key_env" in err and "OPENAI_API_KEY" in err and not (clean_env / "cscprog-demo").exists()

    # with the key exported: the evaluate command runs for real (the endpoint moved to a loopback server)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-quickstart")
    with OpenAICompatibleServer(answer=answer) as server:
        monkeypatch.setenv("CSCPROG_API_BASE", server.url)
        argv = [arg if arg != "examples/hosted.toml" else config_arg for arg in evaluate[1:]]
        assert main([*argv, "--limit", "1", "--no-plots", "--progress", "off"]) == 0, capsys.readouterr().err
        assert server.count > 0
    assert (clean_env / "results" / "hosted" / "report.md").is_file()


def test_the_python_snippet_runs_as_written_and_splits_by_dialogue(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    snippet = _blocks(_section("Python API"), "python")[0]
    assert "trainset[40:60]" not in snippet and "split_dialogues" in snippet
    with OpenAICompatibleServer(answer=answer) as server:
        config = clean_env / "cscprog.toml"
        config.write_text(f'[lm]\nmodel = "openai/served"\napi_base = "{server.url}"\n[run]\nconcurrency = 2\n',
                          encoding="utf-8")
        scope: dict[str, object] = {}
        exec(compile(textwrap.dedent(snippet), "README.md", "exec"), scope)  # noqa: S102 - the README's own code
        assert server.count > 0
    train_ids = {example.dialogue_id for example in scope["trainset"][:40]}
    dev_ids = {example.dialogue_id for example in scope["devset"][:20]}
    assert train_ids and dev_ids and not train_ids & dev_ids
    assert scope["result"] is not None and capsys.readouterr().out.strip()


def test_the_options_the_readme_names_are_the_cli_options() -> None:
    commands = cli_command().commands

    def options(name: str) -> set[str]:
        return {opt for param in commands[name].params for opt in param.opts}

    text = " ".join(_section("Command line").split())
    assert "Every command takes `--config FILE` (`-c`)" in text
    for name in commands:
        if name != "cache":
            assert {"--config", "-c"} <= options(name), name
    claim = re.search(r"The run commands (.+?) also take (.+?), show progress", text)
    assert claim is not None
    runs = re.findall(r"`([a-z-]+)`", claim.group(1))
    flags = re.findall(r"`(--[a-z-]+)`", claim.group(2))
    assert len(runs) == 7 and flags == ["--concurrency", "--resume", "--engine", "--progress"]
    for name in runs:
        assert set(flags) <= options(name), name
    assert "--concurrency" in options("compile") and "--resume" not in options("compile")
    assert {"--progress", "--fresh"} <= options("demo") and "--resume" not in options("demo")
    assert "`compare` takes `--concurrency`, `--resume` and `--progress`" in text
    assert {"--concurrency", "--resume", "--progress"} <= options("compare")
    assert "`finetune` takes `--resume`" in text and {"--resume", "--progress"} <= options("finetune")
    for name in ("stats", "export", "import", "clear"):
        assert {"--dir", "--config", "-c"} <= {opt for p in commands["cache"].commands[name].params for opt in p.opts}
    table = _section("Command line").split("\n\n", 1)[0]
    for row in re.findall(r"^\| `cscprog ([a-z-]+)", table, flags=re.M):
        assert row in commands, row
    named = set(re.findall(r"^\| `cscprog ([a-z-]+)", table, flags=re.M))
    assert set(commands) - named == set(), "every command is in the README's table"


def test_the_demo_output_is_ignored_by_git() -> None:
    assert "cscprog-demo/" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()
