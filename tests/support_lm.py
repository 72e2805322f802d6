"""Helpers shared by the LM-layer tests: configs pointing at a loopback server, answers, a sentinel key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dspy

from cscprog.config import Config, config_from_dict
from cscprog.testing import AnswerRequest

SENTINEL_KEY = "sk-cscprog-SENTINEL-7f3a9c2e51"
"""A fake API key: tests check it reaches the server and never lands on disk or in a manifest."""
KEY_ENV = "TEST_LLM_API_KEY"

QA = "question -> answer"


def tagged_answer(tag: str):
    """An answer function returning ``<tag>:<question>`` for every field."""

    def answer(field: str, request: AnswerRequest) -> str:
        return f"{tag}:{request.inputs.get('question', '')}"

    return answer


def make_config(
    cache_dir: Path | None,
    *,
    api_base: str | None = None,
    mode: str = "readwrite",
    model: str = "openai/test-model",
    roles: dict[str, dict[str, Any]] | None = None,
    budget: dict[str, Any] | None = None,
    **lm: Any,
) -> Config:
    """A validated config for a loopback server, ignoring the environment's CSCPROG_* overrides."""
    section: dict[str, Any] = {"model": model, "temperature": 0.0, "api_key_env": KEY_ENV, **lm}
    if api_base is not None:
        section["api_base"] = api_base
    data: dict[str, Any] = {"lm": section, "cache": {"dir": str(cache_dir or "unused"), "mode": mode}}
    if roles:
        data["roles"] = roles
    if budget:
        data["budget"] = budget
    return config_from_dict(data, environ={})


def qa() -> dspy.Predict:
    """A fresh ``question -> answer`` predictor."""
    return dspy.Predict(QA)


def all_bytes(directory: Path) -> bytes:
    """Every byte of every file under ``directory``."""
    return b"".join(path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file())
