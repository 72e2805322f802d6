"""Shared fixtures: every test gets fresh DSPy settings, a temporary cache and a clean environment.

Process-wide state is put back after each test (DSPy's cache, the price-lookup memo) or each module (the
loaded embedded models). The one thing shared by the whole session is the models directory (:func:`models_dir`):
the embedded model's weights are assembled once per machine, not once per test.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dspy
import pytest

from cscprog.config import LMSettings
from cscprog.lm import pricing
from cscprog.lm.local.model import unload_models
from cscprog.lm.local.weights import MODELS_DIR_ENV

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED_DATA.is_dir():  # a clone checked out elsewhere: look beside the working directory too
    SHARED_DATA = Path(os.environ.get("CSCPROG_SHARED_DATA", Path.cwd().parent / "shared" / "data"))

# Read before any test clears the CSCPROG_* variables: the models directory this machine's runs use.
MODELS_DIR = Path(os.environ[MODELS_DIR_ENV]).expanduser() if os.environ.get(MODELS_DIR_ENV) \
    else LMSettings().models_path


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The machine's models directory (``$CSCPROG_MODELS_DIR`` when the session starts, else ``[lm] models_dir``'s
    default): every test that loads the embedded model uses the one assembled, verified file there."""
    return MODELS_DIR


@pytest.fixture(autouse=True)
def fresh_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, models_dir: Path):
    """Isolate each test: no CSCPROG_* variables, caches under a temp dir, DSPy settings restored after; the
    models directory stays the machine's one."""
    for name in list(os.environ):
        if name.startswith("CSCPROG_"):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("CSCPROG_CACHE_DIR", str(home / "cscprog-cache"))
    monkeypatch.setenv(MODELS_DIR_ENV, str(models_dir))
    monkeypatch.setenv("DSPY_CACHEDIR", str(home / "dspy-cache"))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.chdir(home)
    previous_cache = dspy.cache
    dspy.cache = dspy.clients.Cache(enable_disk_cache=False, enable_memory_cache=True, disk_cache_dir=None)
    try:
        with dspy.context(lm=None, adapter=None, callbacks=[], track_usage=False):
            yield
    finally:
        dspy.cache = previous_cache
        pricing.uninstall()  # a Runtime memoizes DSPy's price lookup process-wide; the next test starts without


@pytest.fixture(autouse=True, scope="module")
def fresh_local_models():
    """Loaded embedded models are shared by the tests of one module (loading takes seconds), freed after it."""
    try:
        yield
    finally:
        unload_models()


@pytest.fixture
def shared_data() -> Path:
    """The real dialogue data in ../shared/data; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder not found: {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A local 2-CPU Ray for the tests of one module (skipped without Ray); workers get their own DSPy cache."""
    ray = pytest.importorskip("ray")
    scratch = tmp_path_factory.mktemp("ray-workers")
    env = {"DSPY_CACHEDIR": str(scratch / "dspy-cache"), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, runtime_env={"env_vars": env})
    yield
    ray.shutdown()
