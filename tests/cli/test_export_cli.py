"""cscprog export: every format from the command line, splits, bad input, and `cscprog score` on completions."""

from __future__ import annotations

import json

import pytest

from cscprog.cli import main
from cscprog.data.completion import default_system_prompt, parse_completion
from cscprog.framework import load_taxonomy
from cscprog.samples import load_sample

CSC = load_taxonomy("csc")


def run(capsys, *args):
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def assistant_text(row: dict, fmt: str) -> str:
    if fmt == "openai":
        return row["messages"][-1]["content"]
    if fmt == "sharegpt":
        return row["conversations"][-1]["value"]
    return row["output"]


def supporter_turns(sample: str) -> int:
    return sum(len(d.supporter_indices()) for d in load_sample(sample))


@pytest.mark.parametrize("fmt", ["openai", "sharegpt", "alpaca"])
def test_export_every_jsonl_format_parses_back(capsys, tmp_path, fmt):
    out_file = tmp_path / f"{fmt}.jsonl"
    code, out, err = run(capsys, "export", "sample:annotated_zh", "--format", fmt, "-o", out_file, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["examples"] == {"all": supporter_turns("annotated_zh")} == {"all": 97}
    gold = {d.id: d for d in load_sample("annotated_zh")}
    rows = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 97
    for row in rows:
        turn = gold[row["metadata"]["dialogue_id"]].turns[row["metadata"]["turn_index"]]
        assert parse_completion(assistant_text(row, fmt), CSC) == (turn.strategy, turn.text.strip(), None)


def test_export_split_prints_a_table_and_writes_one_file_per_split(capsys, tmp_path):
    code, out, err = run(capsys, "export", "sample:annotated_en", "--format", "openai", "-o", tmp_path / "csc.jsonl",
                         "--split", "train=0.8,dev=0.2")
    assert code == 0, err
    assert "train" in out and "dev" in out and "written to" in out
    ids = {}
    total = 0
    for name in ("train", "dev"):
        lines = (tmp_path / f"csc.{name}.jsonl").read_text(encoding="utf-8").splitlines()
        total += len(lines)
        ids[name] = {json.loads(line)["metadata"]["dialogue_id"] for line in lines}
    assert total == supporter_turns("annotated_en") and ids["train"] and ids["dev"]
    assert not ids["train"] & ids["dev"]
    before = (tmp_path / "csc.dev.jsonl").read_bytes()
    assert run(capsys, "export", "sample:annotated_en", "--format", "openai", "-o", tmp_path / "csc.jsonl",
               "--split", "train=0.8,dev=0.2")[0] == 0
    assert (tmp_path / "csc.dev.jsonl").read_bytes() == before  # deterministic


def test_system_prompt_options_and_metadata_switch(capsys, tmp_path):
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("Act as a calm bank agent.\n", encoding="utf-8")
    code, _, err = run(capsys, "export", "sample:annotated_en", "--format", "sharegpt", "-o", tmp_path / "a.jsonl",
                       "--system-prompt-file", prompt_file, "--no-metadata")
    assert code == 0, err
    row = json.loads((tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert row["conversations"][0] == {"from": "system", "value": "Act as a calm bank agent."} and "metadata" not in row
    code, _, err = run(capsys, "export", "sample:annotated_en", "--format", "alpaca", "-o", tmp_path / "b.jsonl",
                       "--system-prompt", "Answer as the agent.")
    assert code == 0, err
    assert json.loads((tmp_path / "b.jsonl").read_text().splitlines()[0])["instruction"] == "Answer as the agent."
    code, _, err = run(capsys, "export", "sample:annotated_en", "--format", "openai", "-o", tmp_path / "c.jsonl",
                       "--taxonomy", "csc")
    assert code == 0, err
    assert json.loads((tmp_path / "c.jsonl").read_text().splitlines()[0])["messages"][0]["content"] \
        == default_system_prompt(CSC)


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "xml"], "--format"),
    (["--format", "openai", "--split", "train=0.9,dev=0.2"], "sum to 1"),
    (["--format", "openai", "--split", "train:0.9"], "--split"),
    (["--format", "openai", "--split", "train=0.5,train=0.5"], "twice"),
    (["--format", "openai", "--system-prompt", "x", "--system-prompt-file", "p.txt"], "not both"),
    (["--format", "openai", "--system-prompt-file", "missing.txt"], "missing.txt"),
    (["--format", "alpaca", "--system-prompt", ""], "alpaca"),
    (["--format", "openai", "--taxonomy", "esconv"], "esconv"),
])
def test_bad_options_are_exit_2_with_one_line(capsys, tmp_path, args, message):
    code, out, err = run(capsys, "export", "sample:annotated_en", "-o", tmp_path / "x.jsonl", *args)
    assert code == 2 and out == "" and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unannotated_data_is_exit_2_naming_the_turn(capsys, tmp_path):
    code, _, err = run(capsys, "export", "sample:raw", "--format", "openai", "-o", tmp_path / "x.jsonl")
    assert code == 2 and "turn 0" in err and "'strategy'" in err


def test_hf_format_from_the_command_line(capsys, tmp_path):
    datasets = pytest.importorskip("datasets")
    code, out, err = run(capsys, "export", "sample:annotated_en", "--format", "hf", "-o", tmp_path / "hf",
                         "--split", "train=0.5,dev=0.5", "--json")
    assert code == 0, err
    summary = json.loads(out)
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert {name: len(loaded[name]) for name in loaded} == summary["examples"]
    assert summary["total_examples"] == supporter_turns("annotated_en")


def completions_from_export(capsys, tmp_path, sample: str, fmt: str):
    exported = tmp_path / f"{sample}.{fmt}.jsonl"
    assert run(capsys, "export", f"sample:{sample}", "--format", fmt, "-o", exported)[0] == 0
    predictions = tmp_path / f"{sample}.{fmt}.predictions.jsonl"
    lines = []
    for line in exported.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        lines.append(json.dumps({"dialogue_id": row["metadata"]["dialogue_id"],
                                 "turn_index": row["metadata"]["turn_index"],
                                 "completion": assistant_text(row, fmt)}, ensure_ascii=False))
    predictions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return predictions


@pytest.mark.parametrize(("sample", "fmt"), [("annotated_en", "openai"), ("annotated_zh", "sharegpt")])
def test_score_on_gold_completions_gives_100(capsys, tmp_path, sample, fmt):
    predictions = completions_from_export(capsys, tmp_path, sample, fmt)
    code, out, err = run(capsys, "score", predictions, "--reference", f"sample:{sample}", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["accuracy"] == 100.0 and result["bleu2"] == 100.0 and result["bleu4"] == 100.0
    assert result["failures"] == 0 and result["n"] == supporter_turns(sample)
    assert result["coverage"]["unparseable_completions"] == 0


def test_score_counts_a_garbled_completion_as_a_failure(capsys, tmp_path):
    predictions = completions_from_export(capsys, tmp_path, "annotated_en", "alpaca")
    lines = predictions.read_text(encoding="utf-8").splitlines()
    garbled = json.loads(lines[3])
    garbled["completion"] = "Strat: ??? -- the model rambles here without any layout"
    lines[3] = json.dumps(garbled)
    predictions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "score", predictions, "--reference", "sample:annotated_en", "--json")
    assert code == 0, err
    result = json.loads(out)
    n = supporter_turns("annotated_en")
    assert result["n"] == n and result["failures"] == 1 and result["accuracy"] < 100
    assert result["coverage"]["unparseable_completions"] == 1 and result["coverage"]["turns_scored"] == n


def test_export_leaves_out_dialogues_the_quality_judge_rejected(capsys, tmp_path):
    passed, rejected, plain = load_sample("annotated_zh")[:3]
    passed.metadata["judge"] = {"passed": True, "criteria_passed": 5}
    rejected.metadata["judge"] = {"passed": False, "rule_check": {"rule": "repeated_turn"}}
    data = tmp_path / "judged.jsonl"
    data.write_text("".join(d.model_dump_json() + "\n" for d in (passed, rejected, plain)), encoding="utf-8")
    code, out, err = run(capsys, "export", data, "--format", "openai", "-o", tmp_path / "x.jsonl", "--json")
    assert code == 0, err
    assert f"left out 1 dialogue(s) the quality judge rejected: {rejected.id}" in err
    rows = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {row["metadata"]["dialogue_id"] for row in rows} == {passed.id, plain.id}
    assert len(rows) == len(passed.supporter_indices()) + len(plain.supporter_indices())
