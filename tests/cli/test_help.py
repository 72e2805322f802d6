"""Every command's --help says what its author wrote: no swallowed brackets, no raw markup, honest metavars."""

from __future__ import annotations

import re

import pytest

from cscprog.cli.app import cli_command, run


def _walk(command, path=()):
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(cli_command()))


def _flat(text: str) -> str:
    return " ".join(text.replace("│", " ").replace("\\", "").split())


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=lambda p: " ".join(p) or "cscprog")
def test_help_renders_every_word(path: tuple[str, ...], capsys: pytest.CaptureFixture,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("TERMINAL_WIDTH", "100")
    assert run([*path, "--help"]) == 0
    out = capsys.readouterr().out
    flat = _flat(out)
    assert not re.search(r"<(bool|str|text|list\[str\])>", out), out
    assert "`" not in out, out
    assert not re.search(r"--\w(?![\w-])", out), f"a one-letter long option: {out}"
    command = dict(COMMANDS)[path]
    for text in [command.help or "", *(param.help or "" for param in command.params)]:
        for token in re.findall(r"\[[^\]\s]+\]", text):
            assert token in flat, f"{token} swallowed in {' '.join(path)} --help:\n{out}"


def test_bracketed_install_hints_survive(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert run(["synthesize", "--help"]) == 0
    flat = _flat(capsys.readouterr().out)
    assert 'pip install "cscprog[ray]"' in flat and "(default: [run] concurrency of the config)" in flat
    assert "--count -n" in flat or "--count" in flat
