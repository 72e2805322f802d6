from __future__ import annotations

import pytest

from cscprog.framework import allowed_next, check_flow, load_taxonomy

GOOD = ["Greeting", "Identity Verification", "Information Delivery", "Feedback Request", "Appreciation and Closure"]


@pytest.fixture(scope="module")
def csc():
    return load_taxonomy("csc")


def test_good_flow_has_no_violation(csc):
    assert check_flow(GOOD, csc) == []


def test_each_rule(csc):
    rules = lambda strategies, **kw: [v.rule for v in check_flow(strategies, csc, **kw)]  # noqa: E731
    assert rules(["Information Delivery", *GOOD[1:]]) == ["opening"]
    assert rules(["Greeting", "Information Delivery", "Problem Refinement", "Others", "Identity Verification",
                  "Appreciation and Closure"]) == ["verification"]
    assert rules(GOOD[:-1]) == ["closing"]
    assert rules(["Greeting", "Identity Verification", "Others", "Others", "Others", "Appreciation and Closure"]) \
        == ["repeat"]
    assert rules(["Greeting", "Identity Verification", "Others"], complete=False) == []


def test_violation_positions_and_messages(csc):
    found = check_flow(["Greeting", "Identity Verification", "Others", "Others", "Others", "Others"], csc)
    repeat = [v for v in found if v.rule == "repeat"]
    assert len(repeat) == 1 and repeat[0].position == 4 and "more than 2" in repeat[0].message
    closing = [v for v in found if v.rule == "closing"][0]
    assert closing.position == 5


def test_allowed_next(csc):
    assert allowed_next([], csc) == ("Greeting",)
    assert "Others" not in allowed_next(["Greeting", "Others", "Others"], csc)
    assert "Others" in allowed_next(["Greeting", "Others"], csc)


def test_esconv_has_no_csc_rules():
    esconv = load_taxonomy("esconv")
    assert check_flow(["Question", "Question", "Question", "Question"], esconv) == []
