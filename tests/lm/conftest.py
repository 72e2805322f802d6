"""Fixtures of the LM-layer tests: quick transient backoff, and the sentinel API key in the environment."""

from __future__ import annotations

import pytest

import cscprog.lm.invoke as invoke_module
from tests.support_lm import KEY_ENV, SENTINEL_KEY


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    """Transient retries wait milliseconds, not seconds."""
    monkeypatch.setattr(invoke_module, "BASE_DELAY", 0.01)


@pytest.fixture
def key(monkeypatch):
    """The sentinel key in the variable the test configs name."""
    monkeypatch.setenv(KEY_ENV, SENTINEL_KEY)
