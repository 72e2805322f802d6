"""The loaders and statistics on real dialogues nobody on the team wrote (../shared/data; skipped if absent)."""

from __future__ import annotations

from cscprog.data import dataset_stats, next_turn_examples, read_dialogues, write_dialogues
from cscprog.framework import load_taxonomy


def test_sgd_banking_dialogues_load_as_raw(shared_data):
    loaded = read_dialogues(shared_data / "sgd_banking" / "dialogues.jsonl")
    assert len(loaded) == 200 and not loaded.skipped
    assert all(not d.is_annotated for d in loaded)
    assert loaded.dialogues[0].id.startswith("sgd-")  # the file's own ids are kept
    stats = dataset_stats(loaded.dialogues)
    assert stats["supporter_turns"] > 1000 and set(stats["domains"]) == {"Banks_1", "Banks_2", "Payment_1"}
    starts = sum(d.turns[0].speaker == "customer" for d in loaded)
    assert starts > 150  # most start with the customer


def test_esconv_failed_dialogues_with_the_esconv_taxonomy(shared_data, tmp_path):
    esconv = load_taxonomy("esconv")
    loaded = read_dialogues(shared_data / "esconv" / "FailedESConv.json", taxonomy=esconv)
    assert len(loaded) == 196 and not loaded.skipped
    stats = dataset_stats(loaded.dialogues, esconv)
    assert stats["supporter_turns"] == 2377
    counts = stats["strategy_counts"]
    # the messy real labels are absorbed: "Questions"+"Question", "Other"(+"Others"), "Direct Guidance" etc.
    assert counts["Question"] == 528 and counts["Others"] == 400
    assert sum(counts.values()) == 2377
    assert next_turn_examples(loaded.dialogues)[0].strategy in esconv.names
    out = tmp_path / "esconv.jsonl"
    write_dialogues(out, loaded.dialogues)
    assert [d.id for d in read_dialogues(out, taxonomy=esconv)] == [d.id for d in loaded]


def test_esconv_labels_are_unknown_to_csc(shared_data):
    loaded = read_dialogues(shared_data / "esconv" / "FailedESConv.json", skip_invalid=True)
    assert loaded.skipped and all(e.field == "annotation.strategy" for e in loaded.skipped)
