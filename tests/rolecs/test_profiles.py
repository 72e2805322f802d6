"""Profiles: verbalising with the profiler role, and near-duplicate removal with the packaged wordllama model."""

from __future__ import annotations

import importlib.util
import logging
import socket

import dspy
import pytest

from cscprog.config import config_from_dict
from cscprog.data import Profile
from cscprog.errors import ConfigError
from cscprog.lm.invoke import GenerationFailure
from cscprog.lm.runtime import Runtime
from cscprog.rolecs.profiles import (
    EMBED_EXTRA,
    ProfileVerbalizer,
    WordLlamaEmbedder,
    dedupe_profiles,
    profile_text,
    verbalize,
)
from cscprog.samples import load_profiles
from cscprog.testing import AnswerRequest, scripted_lm

HAS_WORDLLAMA = importlib.util.find_spec("wordllama") is not None
needs_wordllama = pytest.mark.skipif(not HAS_WORDLLAMA, reason=f"wordllama not installed (the {EMBED_EXTRA} extra)")


def describe(field: str, request: AnswerRequest) -> str:
    facts = request.inputs["facts"]
    return ("你是" if request.inputs["language"] == "zh" else "You are ") + facts.split(";")[0]


# --- verbalising -------------------------------------------------------------------------------------------------


def test_verbalize_fills_a_missing_description_through_the_profiler_role(tmp_path):
    bare = next(p for p in load_profiles() if p.language == "en" and not p.description)
    built = []

    def factory(role, settings):
        built.append(role)
        return scripted_lm(describe, model=f"scripted/{role}")

    config = config_from_dict(
        {"lm": {"model": "scripted/x"}, "cache": {"dir": str(tmp_path), "mode": "off"}}, environ={}
    )
    runtime = Runtime(config, lm_factory=factory)
    with runtime.activate():
        described = verbalize(bare)
    runtime.close()
    assert "profiler" in built
    assert described.description == f"You are {bare.facts().split(';')[0]}"
    assert described.model_dump(exclude={"description"}) == bare.model_dump(exclude={"description"})
    assert bare.description == ""  # the input is not changed


def test_verbalize_keeps_an_existing_description_without_calling_the_lm():
    described = next(p for p in load_profiles() if p.description)
    lm = scripted_lm(describe, cache=False)
    with dspy.context(lm=lm):
        assert verbalize(described) is described
    assert lm.engine.calls == 0


def test_verbalize_writes_chinese_for_a_chinese_profile():
    bare = next(p for p in load_profiles() if p.language == "zh" and not p.description)
    with dspy.context(lm=scripted_lm(describe, cache=False)):
        assert verbalize(bare).description.startswith("你是")


def test_verbalize_rejects_a_description_not_in_the_second_person():
    lm = scripted_lm(lambda field, request: "The customer is a farmer.", cache=False)
    with dspy.context(lm=lm), pytest.raises(GenerationFailure, match="second person"):
        ProfileVerbalizer(attempts=2)(profile=Profile(id="p", occupation="farmer"))
    assert lm.engine.calls == 2
    with pytest.raises(ValueError, match="no structured facts"):
        ProfileVerbalizer()(profile=Profile(id="p-none"))


# --- near-duplicates ----------------------------------------------------------------------------------------------


def near_copy(profile: Profile) -> Profile:
    """The same person with one small change, under a new id."""
    return profile.model_copy(update={"id": f"{profile.id}-copy", "age": (profile.age or 40) + 1})


def test_profile_text_uses_values_then_description():
    structured = Profile(id="p", age=34, occupation="nurse", products=["card", "loan"], description="You are ...")
    assert profile_text(structured) == "34. nurse. card, loan"
    assert profile_text(Profile(id="p", description="You are a nurse.")) == "You are a nurse."


@needs_wordllama
def test_dedupe_removes_a_near_copy_and_keeps_the_packaged_english_profiles():
    english = [p for p in load_profiles() if p.language == "en"]
    copied = near_copy(english[3])
    profiles = english[:5] + [copied] + english[5:]
    kept, removed = dedupe_profiles(profiles, threshold=0.85)
    assert kept == english  # the first of the pair stays, order kept
    assert [(d.profile.id, d.duplicate_of) for d in removed] == [(copied.id, english[3].id)]
    assert removed[0].similarity > 0.95


@needs_wordllama
def test_dedupe_on_all_packaged_profiles_and_the_chinese_caveat():
    profiles = load_profiles()
    copied = near_copy(profiles[16])
    kept, removed = dedupe_profiles([*profiles, copied], threshold=0.9)
    assert kept == profiles and [d.profile.id for d in removed] == [copied.id]
    # wordllama barely knows Chinese: at the paper's 0.85 a distinct Chinese pair already counts as a duplicate
    _, strict = dedupe_profiles(profiles, threshold=0.85)
    assert strict and all(d.profile.language == "zh" for d in strict)


@needs_wordllama
def test_threshold_behaviour():
    profiles = [p for p in load_profiles() if p.language == "en"]
    embedder = WordLlamaEmbedder()
    counts = [len(dedupe_profiles(profiles, threshold=t, embedder=embedder)[1]) for t in (0.99, 0.85, 0.6, 0.4, 0.2)]
    assert counts[0] == counts[1] == 0
    assert counts == sorted(counts) and counts[-1] > counts[-2] > 0
    twins = [profiles[0], profiles[0].model_copy(update={"id": "twin"})]
    assert len(dedupe_profiles(twins, threshold=1.0, embedder=embedder)[1]) == 0  # "above", not "at least"
    assert dedupe_profiles(twins, threshold=0.999, embedder=embedder)[1][0].duplicate_of == profiles[0].id
    for bad in (0.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="threshold"):
            dedupe_profiles(profiles, threshold=bad, embedder=embedder)


@needs_wordllama
def test_wordllama_loads_offline_from_the_package(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    root = logging.getLogger()
    handlers = list(root.handlers)
    embedder = WordLlamaEmbedder()
    vectors = embedder(["You are a retired teacher.", "You are a nurse on night shifts."])
    assert vectors.shape == (2, 256) and embedder.load_seconds is not None and embedder.load_seconds < 30
    assert root.handlers == handlers  # wordllama's logging.basicConfig on import is undone


def test_dedupe_with_an_embedder_of_ones_own_and_bad_embedders():
    pytest.importorskip("numpy")
    vectors = {"a": [1.0, 0.0], "b": [0.99, 0.1], "c": [0.0, 1.0]}
    profiles = [Profile(id=key, description=key) for key in ("a", "b", "c")]
    kept, removed = dedupe_profiles(profiles, embedder=lambda texts: [vectors[t] for t in texts])
    assert [p.id for p in kept] == ["a", "c"] and removed[0].duplicate_of == "a"
    with pytest.raises(ValueError, match="zero vector for profile 'b'"):
        dedupe_profiles(profiles, embedder=lambda texts: [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="shape"):
        dedupe_profiles(profiles, embedder=lambda texts: [[1.0, 0.0]])
    with pytest.raises(ValueError, match="'empty'"):
        dedupe_profiles([Profile(id="empty")], embedder=lambda texts: [[1.0]])
    assert dedupe_profiles([]) == ([], [])


def test_without_wordllama_the_error_names_the_extra(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wordllama" else real_find_spec(name, *a)
    )
    with pytest.raises(ConfigError, match=rf"cscprog\[{EMBED_EXTRA}\]"):
        dedupe_profiles(load_profiles()[:2])
