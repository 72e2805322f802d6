"""RolePlaySimulator: stop conditions, the "false" string bug, unknown labels, the flow guard, per-role backends,
determinism with a cache, the synthesis plan, failures, and one dialogue on the embedded model."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

import dspy
import pytest

from cscprog.config import ROLES, config_from_dict
from cscprog.data import Profile
from cscprog.framework import load_taxonomy
from cscprog.lm.runtime import Runtime
from cscprog.rolecs.plan import TOPIC_DOMAINS, TOPICS, dialogue_id_for, synthesis_plan
from cscprog.rolecs.roleplay import FINISH_REASONS, TURN_ATTEMPTS, RolePlayFailure, RolePlaySimulator
from cscprog.samples import load_profiles
from cscprog.testing import AnswerRequest, OpenAICompatibleServer, scripted_lm

CSC = load_taxonomy("csc")
FIVE_ROLES = ("planner", "supporter_assistant", "supporter", "customer_assistant", "customer")
ROLE_OUTPUTS = {
    ("goal", "scenario"): "planner",
    ("strategy",): "supporter_assistant",
    ("reply",): "supporter",
    ("direction",): "customer_assistant",
    ("utterance", "finished"): "customer",
}
SUPPORTER_LINE = re.compile(r"^(Supporter|客服)\b", re.MULTILINE)
CUSTOMER_LINE = re.compile(r"^(Customer|客户)\b", re.MULTILINE)

GT, IV, PR, ID, PS, AC = (
    "Greeting",
    "Identity Verification",
    "Problem Refinement",
    "Information Delivery",
    "Providing Suggestions",
    "Appreciation and Closure",
)


class Script:
    """A role-play "model": answers each role from the prompt it reads.

    The supporter assistant's choice is ``strategies[k]`` for the k-th supporter turn (counted in the history it
    is shown); ``"A|B"`` means A, or B when the prompt's labels do not offer A. The customer's k-th line says
    ``finished(k)`` (the raw text put in the reply).
    """

    def __init__(self, strategies: list[str], finished: Callable[[int], str] = lambda k: "false", tag: str = ""):
        self.strategies = strategies
        self.finished = finished
        self.tag = tag

    def __call__(self, field: str, request: AnswerRequest) -> str:
        history = request.inputs.get("history", "")
        supporter_turns = len(SUPPORTER_LINE.findall(history))
        customer_turns = len(CUSTOMER_LINE.findall(history))
        if field == "strategy":
            choices = self.strategies[min(supporter_turns, len(self.strategies) - 1)].split("|")
            offered = request.output_types.get("strategy", "")
            return next((choice for choice in choices if f"'{choice}'" in offered), choices[0])
        if field == "finished":
            return self.finished(customer_turns)
        if field == "reply":
            return f"{self.tag}reply {supporter_turns} following {request.inputs['strategy']}."
        if field == "direction":
            return f"{self.tag}direction {customer_turns}: answer the question."
        if field == "utterance":
            return f"{self.tag}utterance {customer_turns}."
        if field == "goal":
            return f"{self.tag}get a disputed card fee refunded"
        if field == "scenario":
            return f"{self.tag}A fee of 35 appeared on the statement after a trip abroad."
        raise AssertionError(f"unexpected output field {field!r}")


def profile() -> Profile:
    return load_profiles()[0]


def simulate(script: Script, *, adapter: dspy.Adapter | None = None, **options) -> tuple[object, dspy.LM]:
    lm = scripted_lm(script, cache=False)
    with dspy.context(lm=lm, adapter=adapter):
        dialogue = RolePlaySimulator(**options)(profile=profile(), topic="complaints and disputes").dialogue
    return dialogue, lm


def strategies_of(dialogue) -> list[str | None]:
    return dialogue.supporter_strategies()


def assert_well_formed(dialogue) -> None:
    assert dialogue.turns[0].speaker == "supporter"
    assert dialogue.is_alternating()
    assert all(turn.strategy in CSC.names for turn in dialogue.turns if turn.speaker == "supporter")
    assert all(turn.strategy is None for turn in dialogue.turns if turn.speaker == "customer")
    assert all(turn.metadata["direction"] for turn in dialogue.turns if turn.speaker == "customer")
    assert dialogue.metadata["finish_reason"] in FINISH_REASONS


# --- stop conditions ------------------------------------------------------------------------------------------------


def test_closing_strategy_is_written_and_ends_the_dialogue():
    dialogue, _ = simulate(Script([GT, IV, PR, AC, ID]))
    assert_well_formed(dialogue)
    assert strategies_of(dialogue) == [GT, IV, PR, AC]
    assert [turn.speaker for turn in dialogue.turns][-2:] == ["customer", "supporter"]
    assert dialogue.turns[-1].text == f"reply 3 following {AC}."
    assert dialogue.metadata["finish_reason"] == "closing"
    assert dialogue.metadata["flow_violations"] == []
    assert dialogue.scenario.topic == "complaints and disputes"
    assert dialogue.scenario.goal == "get a disputed card fee refunded"
    assert dialogue.scenario.text.startswith("A fee of 35")
    assert dialogue.profile == profile() and dialogue.domain == "complaints" and dialogue.language == "en"
    assert [turn.metadata["direction"] for turn in dialogue.turns[1::2]] == [
        f"direction {k}: answer the question." for k in (0, 1, 2)
    ]


def test_customer_finished_gets_exactly_one_more_supporter_turn():
    dialogue, _ = simulate(Script([GT, IV, PR, ID, PS], finished=lambda k: "true" if k == 1 else "false"))
    assert_well_formed(dialogue)
    assert [turn.speaker for turn in dialogue.turns] == ["supporter", "customer"] * 2 + ["supporter"]
    assert dialogue.turns[3].metadata["finished"] is True and dialogue.turns[1].metadata["finished"] is False
    assert strategies_of(dialogue) == [GT, IV, PR]
    assert dialogue.metadata["finish_reason"] == "customer_finished"


@pytest.mark.parametrize(("cap", "utterances"), [(5, 5), (6, 5), (7, 7), (8, 7)])
def test_cap_stops_on_a_supporter_turn_within_max_utterances(cap, utterances):
    dialogue, _ = simulate(Script([GT, IV, PR, ID, PS, PR, ID]), max_utterances=cap)
    assert_well_formed(dialogue)
    assert len(dialogue.turns) == utterances and dialogue.turns[-1].speaker == "supporter"
    assert dialogue.metadata["finish_reason"] == "cap" and dialogue.metadata["max_utterances"] == cap
    assert dialogue.metadata["flow_violations"] == []  # an unfinished dialogue is not blamed for its closing


def test_default_cap_comes_from_the_runtime_config(tmp_path):
    config = config_from_dict(
        {"lm": {"model": "scripted/x"}, "cache": {"dir": str(tmp_path), "mode": "off"}, "run": {"max_utterances": 4}},
        environ={},
    )
    runtime = Runtime(config, lm_factory=lambda role, settings: scripted_lm(Script([GT, IV, PR, ID])))
    with runtime.activate():
        dialogue = RolePlaySimulator()(profile=profile(), topic="product consultation").dialogue
    runtime.close()
    assert len(dialogue.turns) == 3 and dialogue.metadata["max_utterances"] == 4  # ends on the supporter
    assert dialogue.metadata["finish_reason"] == "cap"
    with dspy.context(lm=scripted_lm(Script([GT, IV, PR, ID]), cache=False)):
        uncapped = RolePlaySimulator()(profile=profile(), topic="product consultation").dialogue
    assert len(uncapped.turns) == 49  # the configuration default (50) without a runtime, ending on the supporter


# --- the reference release's "false" string bug -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "raw"),
    [(None, "false"), (None, "False"), (dspy.JSONAdapter(), "false"), (dspy.JSONAdapter(), '"false"')],
    ids=["chat-false", "chat-False", "json-bool", "json-string"],
)
def test_customer_saying_false_does_not_end_the_dialogue(adapter, raw):
    dialogue, lm = simulate(Script([GT, IV, PR, ID, PS, AC], finished=lambda k: raw), adapter=adapter)
    assert_well_formed(dialogue)
    assert dialogue.metadata["finish_reason"] == "closing"
    assert strategies_of(dialogue) == [GT, IV, PR, ID, PS, AC]
    assert all(turn.metadata["finished"] is False for turn in dialogue.turns if turn.speaker == "customer")
    customer_prompts = [r for r in lm.engine.requests if r.outputs == ("utterance", "finished")]
    assert customer_prompts and all(r.format == ("json" if adapter else "chat") for r in customer_prompts)


def test_customer_saying_true_as_a_json_string_ends_the_dialogue():
    script = Script([GT, IV, PR, ID], finished=lambda k: '"true"' if k == 0 else '"false"')
    dialogue, _ = simulate(script, adapter=dspy.JSONAdapter())
    assert dialogue.metadata["finish_reason"] == "customer_finished" and len(dialogue.turns) == 3


def test_a_finished_flag_that_is_no_bool_is_retried_then_fails():
    dialogue_script = Script([GT, IV], finished=lambda k: "true|false")
    with pytest.raises(RolePlayFailure) as caught:
        simulate(dialogue_script)
    failure = caught.value
    assert failure.role == "customer" and failure.dialogue_id == dialogue_id_for(profile(), "complaints and disputes")
    assert [turn.speaker for turn in failure.partial.turns] == ["supporter"]
    assert "finish_reason" not in failure.partial.metadata


# --- unknown labels and the flow guard ----------------------------------------------------------------------------


def test_unknown_strategy_becomes_others_and_is_counted_aliases_are_resolved():
    dialogue, lm = simulate(Script([GT, "Small Talk", "IV", PR, AC]))
    assert_well_formed(dialogue)
    assert strategies_of(dialogue) == [GT, "Others", IV, PR, AC]
    assert dialogue.metadata["unknown_strategies"] == 1
    supporter_turns = [turn for turn in dialogue.turns if turn.speaker == "supporter"]
    assert supporter_turns[1].metadata == {"unknown_strategy": "Small Talk"}
    assert "unknown_strategy" not in supporter_turns[2].metadata  # "IV" is an alias of a known strategy
    second_turn = [
        r for r in lm.engine.requests
        if r.outputs == ("strategy",) and len(SUPPORTER_LINE.findall(r.inputs["history"])) == 1
    ]
    # 3 attempts (retries at the role's temperature with fresh rollout ids), each ChatAdapter then its JSON fallback
    assert [(r.format, r.temperature) for r in second_turn] == [("chat", None), ("json", None)] * 3


def test_guard_replaces_a_non_greeting_opening():
    script = Script([ID, IV, PR, AC])
    unguarded, _ = simulate(script)
    assert strategies_of(unguarded)[0] == ID
    assert [v["rule"] for v in unguarded.metadata["flow_violations"]] == ["opening"]
    guarded, _ = simulate(script, hard_flow_guard=True)
    assert_well_formed(guarded)
    assert strategies_of(guarded) == [GT, IV, PR, AC]
    assert guarded.turns[0].metadata["guard"] == {"rule": "opening", "proposed": ID}
    assert guarded.turns[0].text == f"reply 0 following {GT}."  # the reply follows the corrected strategy
    assert guarded.metadata["guard_corrections"] == 1 and guarded.metadata["flow_violations"] == []


def test_guard_reasks_a_third_repeat_without_the_repeated_label():
    script = Script([GT, IV, ID, ID, f"{ID}|{PS}", AC])
    unguarded, _ = simulate(script)
    assert strategies_of(unguarded) == [GT, IV, ID, ID, ID, AC]
    assert [(v["rule"], v["position"]) for v in unguarded.metadata["flow_violations"]] == [("repeat", 4)]
    guarded, lm = simulate(script, hard_flow_guard=True)
    assert strategies_of(guarded) == [GT, IV, ID, ID, PS, AC]
    assert guarded.turns[8].metadata["guard"] == {"rule": "repeat", "proposed": ID}
    assert guarded.metadata["guard_corrections"] == 1 and guarded.metadata["flow_violations"] == []
    restricted = [
        r for r in lm.engine.requests if r.outputs == ("strategy",) and f"'{ID}'" not in r.output_types["strategy"]
    ]
    assert len(restricted) == 1 and f"'{PS}'" in restricted[0].output_types["strategy"]


def test_empty_reply_fails_the_dialogue_after_retries():
    def answer(field, request):
        return "" if field == "reply" else Script([GT])(field, request)

    lm = scripted_lm(answer, cache=False)
    with dspy.context(lm=lm), pytest.raises(RolePlayFailure, match="supporter") as caught:
        RolePlaySimulator(attempts=2)(profile=profile(), topic="product consultation")
    assert caught.value.role == "supporter" and caught.value.partial.turns == []
    assert caught.value.partial.scenario is not None
    assert len([r for r in lm.engine.requests if r.outputs == ("reply",)]) == TURN_ATTEMPTS  # a turn gets at least 4


class CopyingScript(Script):
    """A model that copies the scenario into its first reply attempt, and repeats itself as the customer once."""

    def __call__(self, field: str, request: AnswerRequest) -> str:
        first = request.seed in (None, 0)
        if field == "reply" and first and "Supporter" not in request.inputs.get("history", ""):
            return "A fee of 35 appeared on the statement after a trip abroad."
        if field == "utterance" and first:
            return "I would really like that fee refunded today."
        return super().__call__(field, request)


def test_a_degenerate_turn_is_asked_for_again_and_never_joins_the_dialogue():
    lm = scripted_lm(CopyingScript([GT, IV, PR, AC]), cache=False, seed=0)
    with dspy.context(lm=lm):
        dialogue = RolePlaySimulator(attempts=2)(profile=profile(), topic="complaints and disputes").dialogue
    texts = [turn.text for turn in dialogue.turns]
    assert texts[0] == f"reply 0 following {GT}." and "A fee of 35" not in " ".join(texts)
    long = "I would really like that fee refunded today."
    assert texts[1::2] == [long, "utterance 1.", long]  # an echo is refused; one distant repeat is what callers do
    replies = [r for r in lm.engine.requests if "reply" in r.outputs and "Supporter" not in r.inputs["history"]]
    assert [r.seed for r in replies] == [0, 1]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="max_utterances"):
        RolePlaySimulator(max_utterances=1)
    simulator = RolePlaySimulator()
    with dspy.context(lm=scripted_lm(Script([GT]), cache=False)):
        with pytest.raises(ValueError, match="topic"):
            simulator(profile=profile(), topic="  ")
        with pytest.raises(ValueError, match="language"):
            simulator(profile=profile(), topic="product consultation", language="fr")
        with pytest.raises(ValueError, match="p-empty"):
            simulator(profile=Profile(id="p-empty"), topic="product consultation")


def test_chinese_profile_gets_a_chinese_dialogue():
    chinese = next(p for p in load_profiles() if p.language == "zh")
    lm = scripted_lm(Script([GT, IV, AC]), cache=False)
    with dspy.context(lm=lm):
        dialogue = RolePlaySimulator()(profile=chinese, topic="risk management and security").dialogue
    assert dialogue.language == "zh" and dialogue.domain == "risk_security"
    assert strategies_of(dialogue) == [GT, IV, AC]
    assert all(r.inputs["language"] == "zh" for r in lm.engine.requests)
    assert any(r.inputs.get("history", "").startswith("客服") for r in lm.engine.requests)


# --- per-role backends --------------------------------------------------------------------------------------------


def role_servers(script: Script, seen: dict[str, list[tuple[str, ...]]]) -> dict[str, OpenAICompatibleServer]:
    def recording(role: str):
        def answer(field: str, request: AnswerRequest) -> str:
            if field == request.outputs[0]:
                seen[role].append(request.outputs)
            return script(field, request)

        return answer

    return {role: OpenAICompatibleServer(answer=recording(role), model_name=f"{role}-model") for role in FIVE_ROLES}


def role_config(tmp_path, servers: dict[str, OpenAICompatibleServer], default_url: str, mode: str = "readwrite"):
    return config_from_dict(
        {
            "lm": {"model": "openai/default-model", "api_base": default_url, "temperature": 0.8, "seed": 1234},
            "roles": {
                role: {"model": f"openai/{role}-model", "api_base": server.url} for role, server in servers.items()
            },
            "cache": {"dir": str(tmp_path / "cache"), "mode": mode},
        },
        environ={},
    )


def test_each_role_uses_its_own_backend(tmp_path):
    seen: dict[str, list[tuple[str, ...]]] = {role: [] for role in FIVE_ROLES}
    servers = role_servers(Script([GT, IV, PR, AC]), seen)
    with OpenAICompatibleServer(model_name="default-model") as default:
        for server in servers.values():
            server.start()
        try:
            urls = {role: server.url for role, server in servers.items()}
            runtime = Runtime(role_config(tmp_path, servers, default.url))
            with runtime.activate():
                dialogue = RolePlaySimulator()(profile=profile(), topic="complaints and disputes").dialogue
            used = runtime.roles_used()
            usage = runtime.usage()
            runtime.close()
        finally:
            for server in servers.values():
                server.stop()
        assert default.count == 0
    assert strategies_of(dialogue) == [GT, IV, PR, AC]
    for role, server in servers.items():
        bodies = [request.body for request in server.requests]
        assert bodies and {body["model"] for body in bodies} == {f"{role}-model"}
        assert {ROLE_OUTPUTS[outputs] for outputs in seen[role]} == {role}
        assert {body["temperature"] for body in bodies} == {0.8} and {body["seed"] for body in bodies} == {1234}
        assert used[role]["endpoint"] == urls[role] and used[role]["model"] == f"openai/{role}-model"
    assert len(seen["planner"]) == 1 and len(seen["supporter"]) == 4 and len(seen["customer"]) == 3
    assert set(FIVE_ROLES) <= set(usage["by_role"])


# --- determinism ------------------------------------------------------------------------------------------------


def test_same_inputs_same_dialogue_without_a_cache():
    script = Script([GT, IV, "Small Talk", PR, ID, PS, AC], finished=lambda k: "false")
    first, first_lm = simulate(script, hard_flow_guard=True)
    second, second_lm = simulate(script, hard_flow_guard=True)
    assert first_lm.engine.calls == second_lm.engine.calls > 0
    assert json.dumps(first.to_json(), sort_keys=True) == json.dumps(second.to_json(), sort_keys=True)


def test_cached_run_replays_identically(tmp_path):
    script = Script([GT, IV, PR, ID, AC])
    servers = role_servers(script, {role: [] for role in FIVE_ROLES})

    def run(mode: str) -> tuple[str, int]:
        before = sum(server.count for server in servers.values())
        runtime = Runtime(role_config(tmp_path, servers, default.url, mode=mode))
        with runtime.activate():
            dialogue = RolePlaySimulator()(profile=profile(), topic="complaints and disputes", dialogue_id="d-1")
        dialogue = dialogue.dialogue
        runtime.close()
        return json.dumps(dialogue.to_json(), sort_keys=True), sum(s.count for s in servers.values()) - before

    with OpenAICompatibleServer() as default:
        for server in servers.values():
            server.start()
        try:
            recorded, live_calls = run("readwrite")
            script.tag = "CHANGED "  # the servers now answer differently: only the cache can reproduce the dialogue
            replayed, replay_calls = run("replay")
        finally:
            for server in servers.values():
                server.stop()
    assert live_calls > 0 and replay_calls == 0
    assert replayed == recorded and "CHANGED" not in replayed


# --- the synthesis plan -------------------------------------------------------------------------------------------


def test_topics_are_the_seven_of_the_method():
    assert len(TOPICS) == 7 and set(TOPIC_DOMAINS) == set(TOPICS)
    assert "complaints and disputes" in TOPICS and "technical support and online services" in TOPICS


def test_synthesis_plan_is_a_deterministic_shuffled_cross_product():
    profiles = load_profiles()
    plan = synthesis_plan(profiles, TOPICS, seed=1234)
    assert len(plan) == len(profiles) * 7
    assert {(p.id, t) for _, p, t in plan} == {(p.id, t) for p in profiles for t in TOPICS}
    assert len({dialogue_id for dialogue_id, _, _ in plan}) == len(plan)
    assert all(dialogue_id == dialogue_id_for(p, t) for dialogue_id, p, t in plan)
    assert synthesis_plan(list(reversed(profiles)), list(reversed(TOPICS)), seed=1234) == plan  # input order irrelevant
    assert synthesis_plan(profiles, TOPICS, n=10, seed=1234) == plan[:10]
    other = synthesis_plan(profiles, TOPICS, seed=7)
    assert other != plan and sorted(other, key=lambda item: item[0]) == sorted(plan, key=lambda item: item[0])
    assert [(p.id, t) for _, p, t in plan[:3]] != [(profiles[0].id, TOPICS[0]), (profiles[0].id, TOPICS[1]),
                                                   (profiles[0].id, TOPICS[2])]
    assert dialogue_id_for(profiles[0], TOPICS[0]) == dialogue_id_for(profiles[0].model_copy(), TOPICS[0])


@pytest.mark.parametrize(
    ("profiles", "topics", "n", "message"),
    [
        ([Profile(id="a"), Profile(id="a")], TOPICS, None, "duplicate profile id"),
        ([Profile(id="a")], ["x", "x"], None, "duplicate topics"),
        ([Profile(id="a")], ["x", " "], None, "non-empty"),
        ([Profile(id="a")], TOPICS, -1, "n must be"),
    ],
)
def test_synthesis_plan_refuses_bad_input(profiles: list[Profile], topics: Iterable[str], n, message):
    with pytest.raises(ValueError, match=message):
        synthesis_plan(profiles, list(topics), n=n)


def test_simulator_exposes_its_five_role_predictors():
    names = dict(RolePlaySimulator().named_predictors())
    assert set(names) == set(FIVE_ROLES) and set(FIVE_ROLES) <= set(ROLES)
    esconv = load_taxonomy("esconv")
    adapted = RolePlaySimulator(esconv)
    assert "Question" in str(adapted.supporter_assistant.signature.output_fields["strategy"].annotation)
    assert "Question" in str(adapted.supporter.signature.input_fields["strategy"].annotation)


# --- the embedded model -------------------------------------------------------------------------------------------


@pytest.mark.embedded
def test_one_short_dialogue_on_the_embedded_model(tmp_path):
    pytest.importorskip("llama_cpp")
    from cscprog.errors import ConfigError
    from cscprog.lm.local.engine import recommended_adapter
    from cscprog.lm.local.weights import find_chunks

    try:
        find_chunks("0.5b")
    except ConfigError as error:
        pytest.skip(f"0.5B weights not installed: {error}")
    config = config_from_dict(
        {
            "lm": {"model": "local", "local_model_size": "0.5b", "local_context": 4096, "max_tokens": 64},
            "cache": {"dir": str(tmp_path / "cache")},
        },
        environ={},
    )
    runtime = Runtime(config)
    with runtime.activate(), dspy.context(adapter=recommended_adapter()):
        dialogue = RolePlaySimulator(max_utterances=6, hard_flow_guard=True)(
            profile=profile(), topic="account and transaction management"
        ).dialogue
    usage = runtime.usage()
    runtime.close()
    assert_well_formed(dialogue)
    assert 2 <= len(dialogue.turns) <= 6
    assert dialogue.turns[0].strategy == GT  # the guard makes the opening certain
    assert all(turn.text.strip() for turn in dialogue.turns)
    assert dialogue.scenario.goal and dialogue.scenario.text
    assert set(FIVE_ROLES) <= set(usage["by_role"])
