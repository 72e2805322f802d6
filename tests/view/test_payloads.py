"""The data behind the pages: safe embedding, verdicts and drop reasons, flow flags, run rows and scores."""

from __future__ import annotations

import json
import re

import dspy
import pytest

from cscprog.agents.responder import ResponseGenerator
from cscprog.arena import ArenaSettings, ModuleCandidate, run_arena
from cscprog.cli import main
from cscprog.csconv.rewriter import RewriteDecision
from cscprog.data import Dialogue, Turn, write_dialogues
from cscprog.errors import DataError
from cscprog.framework import load_taxonomy
from cscprog.rolecs.judge import QualityJudge
from cscprog.rolecs.plan import synthesis_plan
from cscprog.samples import load_sample
from cscprog.testing import scripted_lm
from cscprog.view.build import view_payload
from cscprog.view.dialogues import dialogue_payload, verdict_of
from cscprog.view.page import embed_json, render_page
from cscprog.view.runs import load_run, run_payload, turn_scores
from tests.arena.support import ArenaScript, NeverResolves, make_profiles

CSC = load_taxonomy("csc")
HOSTILE = "</script><script>window.pwned = 1</script><!-- {{DATA}} {{SCRIPTS}} \u2028"


def test_embedded_json_cannot_end_its_script_block_and_round_trips():
    text = embed_json({"t": HOSTILE})
    assert "<" not in text and ">" not in text and "\u2028" not in text
    assert json.loads(text) == {"t": HOSTILE}
    page = render_page("viewer", {"kind": "dialogues", "t": HOSTILE}, title="<b>title</b>")
    block = re.search(r'<script type="application/json" id="cscprog-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(block)["t"] == HOSTILE
    assert "&lt;b&gt;title&lt;/b&gt;" in page and "<b>title</b>" not in page
    assert page.count("{{") == 0 or "{{DATA}}" not in page.replace(block, "")  # placeholders in data stay data
    assert "http://" not in page and "https://" not in page  # nothing fetched from the network


def test_flow_violations_point_at_the_turn_they_show_at():
    dialogue = Dialogue(id="x", turns=[
        Turn(speaker="supporter", strategy="Information Delivery", text="Our fees are listed online."),
        Turn(speaker="customer", text="ok"),
        Turn(speaker="supporter", strategy="Information Delivery", text="They apply monthly."),
        Turn(speaker="customer", text="fine"),
        Turn(speaker="supporter", strategy="Information Delivery", text="And yearly."),
    ])
    record = dialogue_payload([dialogue], CSC, source="t")["dialogues"][0]
    rules = {(v["rule"], v["turn"]) for v in record["flow"]}
    assert ("opening", 0) in rules and ("repeat", 4) in rules and ("closing", 4) in rules
    assert ("verification", None) in rules
    assert [t["k"] for t in record["turns"]] == [CSC.names.index("Information Delivery"), None] * 2 + [6]


def test_rewrite_drops_and_judge_verdicts_become_verdicts_with_reasons():
    dialogue = load_sample("annotated_en")[0]
    dropped = dialogue.model_copy(update={"metadata": {
        "rewrite": RewriteDecision(False, "postfilter", "multi_label", "turn 3 has two strategies").to_json(),
        "judge": None, "screen": None}})
    assert verdict_of(dropped) == {"status": "dropped", "label": "postfilter: multi_label",
                                   "reason": "turn 3 has two strategies", "details": {}}
    phrase = load_sample("annotated_en")[1].turns[1].text[:20]

    def answer(field, request):
        fails = field == "varied_expression" and phrase in request.inputs["transcript"]
        return json.dumps({"reason": f"{field} reason", "passed": "false" if fails else "true"})

    with dspy.context(lm=scripted_lm(answer)):
        kept, rejected = QualityJudge().filter_passing(load_sample("annotated_en")[:2])
    assert verdict_of(kept[0])["status"] == "passed"
    verdict = verdict_of(rejected[0])
    assert verdict["status"] == "rejected" and verdict["label"] == "judge: failed varied_expression"
    assert verdict["reason"] == "varied_expression: varied_expression reason"
    assert verdict_of(load_sample("annotated_en")[2])["status"] == "none"


def test_a_dialogue_file_brings_its_dropped_and_failed_items(tmp_path):
    dialogues = load_sample("annotated_en")[:3]
    output = tmp_path / "out.jsonl"
    write_dialogues(output, dialogues[:2])
    drop = RewriteDecision(False, "prefilter", "min_pairs", "only 2 pairs").to_json()
    write_dialogues(tmp_path / "out.dropped.jsonl",
                    [dialogues[2].model_copy(update={"metadata": {"rewrite": drop}})])
    (tmp_path / "out.jsonl.failures.jsonl").write_text(
        json.dumps({"item_id": "raw-9", "error": "GenerationFailure", "reason": "no JSON", "role": "rewriter"}) + "\n")
    data = view_payload([str(output)], taxonomy=CSC)
    assert [d["verdict"]["status"] for d in data["dialogues"]] == ["none", "none", "dropped"]
    assert data["failures"][0]["item_id"] == "raw-9" and data["failures"][0]["file"] == "out.jsonl.failures.jsonl"
    assert view_payload([str(output)], taxonomy=CSC, side_outputs=False)["failures"] == []
    only_failures = view_payload([str(tmp_path / "out.jsonl.failures.jsonl")], taxonomy=CSC)
    assert len(only_failures["dialogues"]) == 3 and len(only_failures["failures"]) == 1
    assert len(view_payload([str(tmp_path)], taxonomy=CSC)["dialogues"]) == 3


def test_per_turn_scores():
    assert turn_scores("your card is blocked", "your card is blocked") == [100.0, 100.0]
    rouge, bleu = turn_scores("Your card is blocked.", "your card is blocked")
    assert rouge == 100.0 and 0 < bleu < 100  # ROUGE-L folds case; sacrebleu BLEU does not
    assert turn_scores(None, "anything at all") == [0.0, 0.0]


def test_a_run_and_a_comparison_join_the_same_turns(eval_runs):
    run_a, run_b = eval_runs
    first = load_run(run_a)
    data = run_payload([first], CSC)
    expected = [(r["dialogue_id"], r["turn_index"]) for r in first.records]
    assert [(data["dialogues"][row["d"]]["id"], row["k"]) for row in data["rows"]] == expected
    assert len(data["dialogues"]) == 6 and data["runs"][0]["scores"]["n"] == len(expected)
    right = sum(row["p"][0] == row["g"] for row in data["rows"])
    assert right == round(first.result["accuracy"] * len(expected) / 100)
    both = view_payload([str(run_a), str(run_b)], taxonomy=CSC)
    assert [r["name"] for r in both["runs"]] == ["run_a", "run_b"] and both["only"] == [0, 0]
    assert {row["r"][1][:3] for row in both["rows"]} == {"[b]"}


def test_view_cli_writes_a_page_and_bad_input_exits_2(tmp_path, eval_runs, capsys):
    assert main(["view", "sample:annotated_en", "-o", str(tmp_path / "p.html")]) == 0
    assert (tmp_path / "p.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["view", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "q.html")]) == 2
    assert "missing.jsonl: no such file or directory" in capsys.readouterr().err
    assert main(["view", str(eval_runs[0]), str(tmp_path), "-o", str(tmp_path / "r.html")]) == 2
    assert "not an evaluation run directory" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"turns": [{"speaker": "supporter", "text": "hi", "strategy": "Nonsense"}]}\n')
    assert main(["view", str(bad), "-o", str(tmp_path / "s.html")]) == 2
    assert "bad.jsonl" in capsys.readouterr().err


def test_a_run_without_its_reference_data_names_the_fix(tmp_path, eval_runs):
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("predictions.jsonl", "result.json"):
        text = (eval_runs[0] / name).read_text(encoding="utf-8")
        (copy / name).write_text(text.replace("sample:annotated_en", "gone.jsonl"), encoding="utf-8")
    with pytest.raises(DataError, match="give it with --data"):
        load_run(copy)
    assert load_run(copy, data="sample:annotated_en").records


def test_arena_conversations_show_their_candidate_and_resolution(tmp_path):
    dialogues = load_sample("annotated_en")[:3]
    records = []
    for n, (dialogue, candidate) in enumerate(zip(dialogues, ("base", "compiled", "base"), strict=True)):
        scores = {"resolved": n != 1, "resolution_reason": f"reason {n}", "flow_ok": True, "satisfaction": 4}
        records.append({"id": f"{candidate}/c{n}/t0", "candidate": candidate, "customer_id": f"c{n}",
                        "topic": "complaints", "trial": 0, "scores": scores, "dialogue": dialogue.to_json()})
    run = tmp_path / "arena"
    run.mkdir()
    (run / "conversations.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    (run / "customers.jsonl").write_text(json.dumps({"id": "c0", "goal": "a refund"}) + "\n")
    data = view_payload([str(run)], taxonomy=CSC)  # the run folder: its conversations, not customers.jsonl
    assert [d["candidate"] for d in data["dialogues"]] == ["base", "compiled", "base"]
    assert [d["verdict"]["status"] for d in data["dialogues"]] == ["resolved", "unresolved", "resolved"]
    assert data["dialogues"][1]["verdict"]["reason"] == "reason 1"
    (run / "conversations.jsonl").write_text(json.dumps({**records[0], "dialogue": {"turns": "x"}}) + "\n")
    with pytest.raises(DataError, match="line 1"):
        view_payload([str(run / "conversations.jsonl")], taxonomy=CSC)


def test_a_real_arena_run_folder_shows_every_conversation_and_its_verdict(tmp_path):
    plan = synthesis_plan(make_profiles(1), ["risk management and security"], seed=7)
    with dspy.context(lm=scripted_lm(ArenaScript())):
        run_arena([ModuleCandidate("base", ResponseGenerator()), NeverResolves()], plan,
                  ArenaSettings(output_dir=tmp_path / "arena", resamples=50), CSC)
    records = [json.loads(line) for line in (tmp_path / "arena" / "conversations.jsonl").read_text().splitlines()]
    data = view_payload([str(tmp_path / "arena")], taxonomy=CSC)
    assert [d["id"] for d in data["dialogues"]] == [r["id"] for r in records]
    assert {d["candidate"] for d in data["dialogues"]} == {"base", "stall"}
    assert [d["verdict"]["status"] for d in data["dialogues"]] == [
        "resolved" if r["scores"]["resolved"] else "unresolved" for r in records]
    assert "unresolved" in {d["verdict"]["status"] for d in data["dialogues"]}  # the stalling agent resolves nothing
