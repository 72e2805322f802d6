"""Fine-tuning export: every format parses back to the gold turns, splits by dialogue, completions are scored."""

from __future__ import annotations

import json
import sys

import pytest

from cscprog.data import Dialogue, Turn
from cscprog.errors import ConfigError, DataError
from cscprog.evaluation.predictions import score_file
from cscprog.finetune.export import (
    FORMATS,
    default_system_prompt,
    export_examples,
    format_target,
    parse_completion,
    split_paths,
    write_export,
)
from cscprog.framework import load_taxonomy
from cscprog.samples import load_sample

CSC = load_taxonomy("csc")
JSONL_FORMATS = ("openai", "sharegpt", "alpaca")


def parts(row: dict, fmt: str) -> tuple[str | None, str, str]:
    """(system, user, assistant) of one exported example."""
    if fmt in ("openai", "hf"):
        roles = {m["role"]: m["content"] for m in row["messages"]}
        assert [m["role"] for m in row["messages"]][-2:] == ["user", "assistant"]
        return roles.get("system"), roles["user"], roles["assistant"]
    if fmt == "sharegpt":
        values = {m["from"]: m["value"] for m in row["conversations"]}
        assert [m["from"] for m in row["conversations"]][-2:] == ["human", "gpt"]
        return values.get("system"), values["human"], values["gpt"]
    return row["instruction"], row["input"], row["output"]


def positions(dialogues: list[Dialogue]) -> list[tuple[str, int]]:
    return [(d.id, i) for d in dialogues for i in d.supporter_indices()]


def check_parses_back(rows: list[dict], fmt: str, dialogues: list[Dialogue], meta=lambda row: row["metadata"]):
    by_id = {d.id: d for d in dialogues}
    seen = []
    for row in rows:
        info = meta(row)
        dialogue = by_id[info["dialogue_id"]]
        turn = dialogue.turns[info["turn_index"]]
        system, user, assistant = parts(row, fmt)
        assert system == default_system_prompt(CSC)
        assert user.endswith("Conversation so far:\n" + dialogue.transcript(info["turn_index"]))
        assert f"Language: {dialogue.language}" in user
        assert parse_completion(assistant, CSC) == (turn.strategy, turn.text.strip(), None)
        assert info["strategy"] == turn.strategy and info["language"] == dialogue.language
        seen.append((info["dialogue_id"], info["turn_index"]))
    assert seen == positions(dialogues)  # one example per supporter turn, in order, none dropped


@pytest.mark.parametrize("fmt", JSONL_FORMATS)
def test_every_jsonl_format_parses_back_to_the_gold_turns(fmt, tmp_path):
    dialogues = load_sample("annotated")
    result = write_export(tmp_path / "ft.jsonl", dialogues, fmt)
    lines = (tmp_path / "ft.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == result.examples["all"] == 183 + 97 == len(positions(dialogues))
    assert result.paths == {"all": tmp_path / "ft.jsonl"} and result.dialogues == {"all": 36}
    check_parses_back(rows, fmt, dialogues)
    assert any("客服 [Greeting]:" in parts(row, fmt)[1] for row in rows)  # Chinese history stays Chinese


def test_the_opening_turn_has_an_empty_history_and_the_layout_is_the_documented_one():
    dialogue = load_sample("annotated_en")[0]
    row = export_examples([dialogue], format="openai")[0]
    user, assistant = row["messages"][1]["content"], row["messages"][2]["content"]
    assert user == f"Domain: {dialogue.domain}\nLanguage: en\nConversation so far:\n(the conversation has not started)"
    assert assistant == f"Strategy: {dialogue.turns[0].strategy}\nReply: {dialogue.turns[0].text}"
    assert row["metadata"] == {"dialogue_id": dialogue.id, "turn_index": 0, "language": "en",
                               "domain": dialogue.domain, "strategy": dialogue.turns[0].strategy}
    zh = load_sample("annotated_zh")[0]
    target = export_examples([zh], format="alpaca")[1]["output"]
    assert target.startswith(f"Strategy: {zh.turns[2].strategy}\nReply: ") and zh.turns[2].text in target


def test_system_prompt_is_configurable_and_can_be_left_out():
    dialogues = load_sample("annotated_en")[:2]
    custom = export_examples(dialogues, format="sharegpt", system_prompt="  Be a helpful bank agent.\n")
    assert custom[0]["conversations"][0] == {"from": "system", "value": "Be a helpful bank agent."}
    bare = export_examples(dialogues, format="openai", system_prompt="")
    assert [m["role"] for m in bare[0]["messages"]] == ["user", "assistant"]
    assert [m["from"] for m in export_examples(dialogues, format="sharegpt", system_prompt="")[0]["conversations"]] \
        == ["human", "gpt"]
    assert export_examples(dialogues, format="alpaca", system_prompt="Do it.")[0]["instruction"] == "Do it."
    with pytest.raises(ConfigError, match="alpaca"):
        export_examples(dialogues, format="alpaca", system_prompt=" ")
    esconv = default_system_prompt(load_taxonomy("esconv"))
    assert "Reflection of feelings" in esconv and "Greeting, Identity Verification" not in esconv


def test_metadata_can_be_left_out_and_language_selects_dialogues():
    dialogues = load_sample("annotated")
    rows = export_examples(dialogues, format="openai", metadata=False)
    assert all(set(row) == {"messages"} for row in rows) and len(rows) == 280
    zh_rows = export_examples(dialogues, format="alpaca", language="zh")
    assert len(zh_rows) == 97 and {row["metadata"]["language"] for row in zh_rows} == {"zh"}


def test_split_is_by_dialogue_deterministic_and_complete(tmp_path):
    dialogues = load_sample("annotated")
    ratios = {"train": 0.7, "dev": 0.3}
    result = write_export(tmp_path / "csc.jsonl", dialogues, "openai", split=ratios)
    assert result.paths == split_paths(tmp_path / "csc.jsonl", ["train", "dev"])
    assert result.paths["train"].name == "csc.train.jsonl" and result.paths["dev"].name == "csc.dev.jsonl"
    assert not (tmp_path / "csc.jsonl").exists()
    ids = {}
    for name, path in result.paths.items():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert len(rows) == result.examples[name] > 0
        ids[name] = {row["metadata"]["dialogue_id"] for row in rows}
        assert len(ids[name]) == result.dialogues[name]
        part = [d for d in dialogues if d.id in ids[name]]
        check_parses_back(rows, "openai", part)  # every turn of each of its dialogues, nothing else
    assert not ids["train"] & ids["dev"]  # no dialogue leaks across splits
    assert ids["train"] | ids["dev"] == {d.id for d in dialogues}
    first = {name: path.read_bytes() for name, path in result.paths.items()}
    again = write_export(tmp_path / "again" / "csc.jsonl", list(reversed(dialogues)), "openai", split=ratios)
    assert {name: {json.loads(x)["metadata"]["dialogue_id"] for x in path.read_text().splitlines()}
            for name, path in again.paths.items()} == ids  # the split depends on ids only, not on order
    write_export(tmp_path / "csc.jsonl", dialogues, "openai", split=ratios)
    assert {name: path.read_bytes() for name, path in result.paths.items()} == first  # byte-identical rerun
    other = write_export(tmp_path / "salted.jsonl", dialogues, "openai", split=ratios, salt="another")
    assert other.dialogues != result.dialogues or other.examples != result.examples


@pytest.mark.parametrize("split", [{"train": 0.9, "dev": 0.2}, {"train": 1.2, "dev": -0.2}, {"a/b": 1.0}, {}])
def test_bad_split_is_a_config_error(split, tmp_path):
    with pytest.raises(ConfigError, match="split"):
        write_export(tmp_path / "x.jsonl", load_sample("annotated_en"), "openai", split=split)


def test_bad_input_names_the_record_and_turn(tmp_path):
    with pytest.raises(DataError, match=r"record 0, turn 0, field 'strategy'.*no strategy"):
        export_examples(load_sample("raw"), format="openai")
    twice = load_sample("annotated_en")[:1] * 2
    with pytest.raises(DataError, match="duplicate dialogue id"):
        write_export(tmp_path / "x.jsonl", twice, "openai", split={"train": 0.5, "dev": 0.5})
    with pytest.raises(DataError, match="not in the esconv taxonomy"):
        export_examples(load_sample("annotated_en"), format="openai", taxonomy=load_taxonomy("esconv"))
    with pytest.raises(ConfigError, match="unknown export format"):
        export_examples(load_sample("annotated_en"), format="csv")
    with pytest.raises(DataError, match="no supporter turn to export in language 'fr'"):
        write_export(tmp_path / "x.jsonl", load_sample("annotated_en"), "openai", language="fr")
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(DataError, match="cannot write"):
        write_export(tmp_path / "dir.jsonl", load_sample("annotated_en"), "openai")
    assert not list(tmp_path.glob(".*.tmp"))


def test_hf_dataset_round_trips_with_load_from_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    dialogues = load_sample("annotated")
    result = write_export(tmp_path / "hf", dialogues, "hf")
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    rows = loaded.to_list()
    assert len(rows) == result.examples["all"] == 280
    check_parses_back(rows, "hf", dialogues, meta=lambda row: row)
    assert [row["messages"] for row in rows] == [row["messages"] for row in export_examples(dialogues,
                                                                                              format="openai")]
    split = write_export(tmp_path / "hf_split", dialogues, "hf", split={"train": 0.75, "dev": 0.25})
    loaded = datasets.load_from_disk(str(tmp_path / "hf_split"))
    assert set(loaded) == {"train", "dev"}
    assert {name: len(loaded[name]) for name in loaded} == split.examples
    assert not set(loaded["train"]["dialogue_id"]) & set(loaded["dev"]["dialogue_id"])
    empty = write_export(tmp_path / "hf_empty", dialogues[:1], "hf", split={"train": 0.5, "dev": 0.5})
    assert sorted(empty.examples.values())[0] == 0  # one dialogue: one split stays empty but typed
    assert set(datasets.load_from_disk(str(tmp_path / "hf_empty"))) == {"train", "dev"}


def test_hf_without_datasets_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail as when it is absent
    with pytest.raises(ConfigError, match=r'pip install "cscprog\[hf\]"'):
        write_export(tmp_path / "hf", load_sample("annotated_en"), "hf")
    assert set(FORMATS) == {"openai", "sharegpt", "alpaca", "hf"}


@pytest.mark.parametrize(("text", "expected"), [
    ("Strategy: Greeting\nReply: Hello!", ("Greeting", "Hello!", None)),
    ("  \n strategy :  gt \n\n REPLY：  Hello there.\nSecond line.  ",
     ("Greeting", "Hello there.\nSecond line.", None)),
    ("**Strategy:** IV **Reply:** May I have your name?", ("Identity Verification", "May I have your name?", None)),
    ("策略：策略1 礼貌问候\n回复：您好，请问有什么可以帮您？", ("Greeting", "您好，请问有什么可以帮您？", None)),
    ("Strategy: 礼貌问候\nReply: 您好", ("Greeting", "您好", None)),
    ("Strategy: 7\nResponse: Your card ships today.", ("Information Delivery", "Your card ships today.", None)),
    ("Strategy: [Emotional Management]\nI understand how frustrating this is.",
     ("Emotional Management", "I understand how frustrating this is.", None)),
])
def test_parse_completion_tolerates_whitespace_keys_and_label_forms(text, expected):
    assert parse_completion(text, CSC) == expected


@pytest.mark.parametrize(("text", "strategy", "reply", "problem"), [
    ("Reply: Hello!", None, "Hello!", "no 'Strategy:' line"),
    ("Strategy: Teleportation\nReply: Hi", None, "Hi", "unknown strategy label 'Teleportation'"),
    ("Strategy: Greeting + Identity Verification\nReply: Hi", None, "Hi", "holds 2 labels"),
    ("Strategy:\nReply: Hi", None, "Hi", "names no strategy"),
    ("Strategy: Greeting\nReply:   ", "Greeting", None, "no reply"),
    ("Strategy: Greeting", "Greeting", None, "no reply"),
    ("Sure! I'd be glad to help with your account.", None, None, "no 'Strategy:' or 'Reply:' key"),
    ("   ", None, None, "empty completion"),
    (None, None, None, "empty completion"),
])
def test_parse_completion_reports_missing_parts_without_raising(text, strategy, reply, problem):
    got_strategy, got_reply, got_problem = parse_completion(text, CSC)
    assert (got_strategy, got_reply) == (strategy, reply)
    assert got_problem is not None and problem in got_problem


def gold_completions(tmp_path, dialogues, fmt="openai"):
    """A predictions file whose completions are the exported gold targets."""
    path = tmp_path / f"pred-{fmt}.jsonl"
    rows = export_examples(dialogues, format=fmt)
    path.write_text("".join(json.dumps({**{k: row["metadata"][k] for k in ("dialogue_id", "turn_index")},
                                        "completion": parts(row, fmt)[2]}, ensure_ascii=False) + "\n"
                            for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(("sample", "fmt"), [("annotated_en", "sharegpt"), ("annotated_zh", "alpaca")])
def test_score_file_on_gold_completions_is_perfect(sample, fmt, tmp_path):
    dialogues = load_sample(sample)
    result = score_file(gold_completions(tmp_path, dialogues, fmt), dialogues, CSC, semantic=False)
    assert result["accuracy"] == 100.0 and result["bleu2"] == 100.0 and result["bleu4"] == 100.0
    assert result["rouge_l"] == 100.0 and result["failures"] == 0 and result["n"] == len(positions(dialogues))
    assert result["coverage"]["completions"] == result["n"] and result["coverage"]["unparseable_completions"] == 0


def test_garbled_and_null_completions_are_failures_never_dropped(tmp_path):
    dialogues = load_sample("annotated_en")
    path = gold_completions(tmp_path, dialogues)
    lines = path.read_text(encoding="utf-8").splitlines()
    first, second = json.loads(lines[0]), json.loads(lines[1])
    first["completion"] = "I am sorry, as an AI I cannot help with that."
    second["completion"] = None
    lines[0], lines[1] = json.dumps(first), json.dumps(second)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = score_file(path, dialogues, CSC, semantic=False)
    n = len(positions(dialogues))
    assert result["n"] == n and result["failures"] == 2
    assert result["accuracy"] == pytest.approx(100 * (n - 2) / n, abs=0.01) and result["bleu2"] < 100
    assert result["coverage"]["unparseable_completions"] == 2 and result["coverage"]["completions"] == n


def test_completion_lines_are_validated(tmp_path):
    dialogues = load_sample("annotated_en")
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"dialogue_id": dialogues[0].id, "turn_index": 0, "completion": "x",
                                "pred_strategy": "Greeting"}) + "\n")
    with pytest.raises(DataError, match=r"line 1, field 'completion'.*not both"):
        score_file(path, dialogues, CSC, semantic=False)
    path.write_text(json.dumps({"dialogue_id": dialogues[0].id, "turn_index": 0, "completion": ["x"]}) + "\n")
    with pytest.raises(DataError, match=r"field 'completion'.*got list"):
        score_file(path, dialogues, CSC, semantic=False)


def test_format_target_matches_the_parser():
    turn = Turn(speaker="supporter", strategy="Feedback Request", text="Did that solve it?")
    assert parse_completion(format_target(turn.strategy, turn.text), CSC) == ("Feedback Request",
                                                                               "Did that solve it?", None)
