from __future__ import annotations

import json

import pytest

from cscprog.errors import TaxonomyError, UnknownStrategyError
from cscprog.framework import load_taxonomy, taxonomy_from_dict


@pytest.fixture(scope="module")
def csc():
    return load_taxonomy("csc")


def test_csc_has_five_stages_and_twelve_strategies(csc):
    assert csc.stage_names == ("Connecting", "Identifying", "Exploring", "Resolving", "Maintaining")
    assert len(csc.names) == 12
    assert [s.abbr for s in csc.strategies] == ["GT", "IV", "RP", "PR", "EM", "PS", "ID", "RI", "FR", "RC", "AC", "OT"]
    assert csc.strategy("Greeting").zh == "礼貌问候"
    assert csc.stage_of("Appreciation and Closure") == "Maintaining"
    assert csc.fallback == "Others"
    assert all(s.definition and s.note for s in csc.strategies)


@pytest.mark.parametrize("label", ["策略1 礼貌问候", "礼貌问候", "Greeting", "GT", "greeting", "1", " GREETING ", "gt"])
def test_every_label_form_parses_to_greeting(csc, label):
    assert csc.parse(label).name == "Greeting"


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("策略7 信息传达", "Information Delivery"),
        ("策略12 其它", "Others"),
        ("Restatement or Paraphrasing", "Restatement or Paraphrasing"),
        ("restatement", "Restatement or Paraphrasing"),
        ("AC", "Appreciation and Closure"),
        (11, "Appreciation and Closure"),
        ("策略2确认身份", "Identity Verification"),
        ("Strategy 4", "Problem Refinement"),
    ],
)
def test_labels(csc, label, expected):
    assert csc.parse(label).name == expected


def test_released_number_decides(csc):
    # The released data maps by the number N of "策略N 名称".
    assert csc.parse("策略6 提供建议").name == "Providing Suggestions"


@pytest.mark.parametrize("label", ["策略5 情感管理+策略7 信息传达", "EM + ID", "策略5 情感管理、策略7 信息传达"])
def test_multi_label_is_reported_as_such(csc, label):
    assert [s.name for s in csc.parse_all(label)] == ["Emotional Management", "Information Delivery"]
    with pytest.raises(UnknownStrategyError, match="holds 2 labels"):
        csc.parse(label)


def test_unknown_label_names_label_and_place(csc):
    with pytest.raises(UnknownStrategyError) as info:
        csc.parse("Upselling", where="calls.json, record 3, turn 2")
    assert "Upselling" in str(info.value) and "record 3, turn 2" in str(info.value)
    assert info.value.label == "Upselling"


def test_unknown_label_can_map_to_others(csc):
    assert csc.parse("Upselling", unknown="fallback").name == "Others"
    assert [s.name for s in csc.parse_all("GT+Upselling", unknown="fallback")] == ["Greeting", "Others"]


def test_empty_label_is_an_error(csc):
    with pytest.raises(UnknownStrategyError):
        csc.parse("  ")


def test_released_label_rendering(csc):
    assert csc.released_label("Greeting") == "策略1 礼貌问候"
    assert csc.released_label("Others") == "策略12 其它"
    assert all(csc.parse(csc.released_label(n)).name == n for n in csc.names)


def test_stage_override(csc):
    moved = csc.with_stages({"EM": "Exploring", "Problem Refinement": "identifying"})
    assert moved.stage_of("Emotional Management") == "Exploring"
    assert moved.stage_of("Problem Refinement") == "Identifying"
    assert csc.stage_of("Emotional Management") == "Identifying"  # the original is unchanged
    with pytest.raises(TaxonomyError, match="no stage"):
        csc.with_stages({"EM": "Nowhere"})
    with pytest.raises(UnknownStrategyError):
        csc.with_stages({"Bogus": "Exploring"})


def test_esconv_aliases_absorb_real_label_variants():
    esconv = load_taxonomy("esconv")
    assert len(esconv.names) == 8
    for raw, name in [("Questions", "Question"), ("Question", "Question"), ("Other", "Others"), ("Others", "Others"),
                      ("Direct Guidance", "Providing Suggestions"),
                      ("Approval and Reassurance", "Affirmation and Reassurance"),
                      ("Restatement", "Restatement or Paraphrasing")]:
        assert esconv.parse(raw).name == name


def test_taxonomy_file_round_trip(tmp_path, csc):
    path = tmp_path / "mine.json"
    data = csc.to_dict()
    data["name"] = "mine"
    path.write_text(json.dumps(data), encoding="utf-8")
    mine = load_taxonomy(path)
    assert mine.name == "mine" and mine.names == csc.names and mine.flow == csc.flow


def test_custom_toml_taxonomy(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(
        'name = "tiny"\nfallback = "Other"\n'
        '[[stages]]\nname = "Open"\n[[stages]]\nname = "Close"\n'
        '[[strategies]]\nname = "Hello"\nstage = "Open"\ndefinition = "Say hello."\naliases = ["hi"]\n'
        '[[strategies]]\nname = "Bye"\nstage = "Close"\ndefinition = "Say bye."\n'
        '[[strategies]]\nname = "Other"\nstage = "any"\ndefinition = "Anything else."\n'
        '[flow]\nopening = "Hello"\nclosing = "Bye"\n',
        encoding="utf-8",
    )
    tiny = load_taxonomy(path)
    assert tiny.parse("hi").name == "Hello"
    assert tiny.parse("2").name == "Bye"
    assert tiny.strategy("Hello").abbr == "H"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stages": [], "strategies": []}, "missing key 'name'"),
        ({"name": "x", "stages": [{"name": "A"}], "strategies": [{"name": "S", "stage": "B", "definition": "d"}]},
         "unknown stage 'B'"),
        ({"name": "x", "stages": [{"name": "A"}], "strategies": [{"name": "S", "stage": "A"}]},
         "missing key 'definition'"),
        ({"name": "x", "stages": [], "strategies": [], "flow": {"bogus": 1}}, "unknown key"),
        ({"name": "x", "stages": [{"name": "A"}], "strategies": [{"name": "S", "stage": "A", "definition": "d"}],
          "flow": {"opening": "Nope"}}, "flow.opening"),
    ],
)
def test_malformed_taxonomy_names_the_key(data, message):
    with pytest.raises(TaxonomyError, match=message):
        taxonomy_from_dict(data, source="t.toml")


def test_unknown_taxonomy_name():
    with pytest.raises(TaxonomyError, match="no such taxonomy"):
        load_taxonomy("nonexistent")


def test_describe_mentions_every_strategy(csc):
    text = csc.describe()
    assert all(name in text for name in csc.names)
    assert "礼貌问候" in csc.describe("zh")
