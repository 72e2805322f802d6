"""Training examples for fine-tuning: one per supporter turn, bad data named or counted (tiny tokenizer, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from cscprog.data import Dialogue  # noqa: E402
from cscprog.errors import DataError  # noqa: E402
from cscprog.finetune.data import build_training_set, example_tokens, rows_from_examples  # noqa: E402
from cscprog.samples import load_sample  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    from tests.finetune.tiny_model import build_tiny_model

    texts = [turn.text for dialogue in load_sample("annotated") for turn in dialogue.turns]
    directory = build_tiny_model(tmp_path_factory.mktemp("tiny"), texts)
    return AutoTokenizer.from_pretrained(str(directory))


def _dialogue(turns: list[dict], id: str = "d1") -> Dialogue:
    return Dialogue.model_validate({"id": id, "language": "en", "turns": turns})


def test_one_example_per_supporter_turn_with_the_export_layout(tokenizer) -> None:
    dialogues = load_sample("annotated")
    data = build_training_set(dialogues, tokenizer, max_length=100_000)
    supporter_turns = sum(len(d.supporter_indices()) for d in dialogues)
    assert len(data.rows) == supporter_turns and not data.skipped
    first = data.rows[0]
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert first["completion"][0]["content"].startswith("Strategy: Greeting\nReply: ")
    assert "Conversation so far:" in first["prompt"][1]["content"]
    assert len(data.fingerprint) == 64
    assert any(row["prompt"][1]["content"].startswith("Domain: ") and "Language: zh" in row["prompt"][1]["content"]
               for row in data.rows)


def test_examples_from_compile_rows_equal_examples_from_dialogues(tokenizer) -> None:
    from cscprog.optimizers import training_examples

    dialogues = load_sample("annotated_en")[:3]
    by_dialogue = build_training_set(dialogues, tokenizer, max_length=100_000)
    by_example = rows_from_examples(training_examples(dialogues), tokenizer, max_length=100_000)
    assert by_example.fingerprint == by_dialogue.fingerprint


def test_too_long_examples_are_skipped_and_counted(tokenizer) -> None:
    dialogues = load_sample("annotated_en")[:2]
    full = build_training_set(dialogues, tokenizer, max_length=100_000)
    lengths = sorted(example_tokens(tokenizer, row) for row in full.rows)
    limit = lengths[len(lengths) // 2]
    cut = build_training_set(dialogues, tokenizer, max_length=limit)
    assert len(cut.rows) + len(cut.skipped) == len(full.rows)
    assert cut.skipped and all(item["tokens"] > limit for item in cut.skipped)
    assert cut.summary()["skipped_too_long"] == len(cut.skipped)
    with pytest.raises(DataError, match="longer than finetune.max_length"):
        build_training_set(dialogues, tokenizer, max_length=lengths[0] - 1)


def test_data_without_supporter_turns_is_an_error(tokenizer) -> None:
    dialogue = _dialogue([{"speaker": "customer", "text": "Hello?"}, {"speaker": "customer", "text": "Anyone?"}])
    with pytest.raises(DataError, match="no supporter turn"):
        build_training_set([dialogue], tokenizer, max_length=512, source="train.jsonl")


def test_unknown_strategy_names_record_turn_and_field(tokenizer) -> None:
    good = load_sample("annotated_en")[0]
    bad = _dialogue([{"speaker": "customer", "text": "Hi"},
                     {"speaker": "supporter", "strategy": "Telepathy", "text": "I know."}], id="bad")
    with pytest.raises(DataError) as caught:
        build_training_set([good, bad], tokenizer, max_length=4096, source="train.jsonl")
    message = str(caught.value)
    assert "train.jsonl" in message and "Telepathy" in message
    assert caught.value.record == 1 and caught.value.turn == 1 and caught.value.field == "strategy"


def test_dialogues_without_supporter_turns_are_counted(tokenizer) -> None:
    lonely = _dialogue([{"speaker": "customer", "text": "Hello?"}], id="lonely")
    data = build_training_set([load_sample("annotated_en")[0], lonely], tokenizer, max_length=100_000)
    assert data.summary()["dialogues_without_supporter_turns"] == 1
    assert data.dialogues == 2


def test_unknown_strategy_in_compile_examples(tokenizer) -> None:
    import dspy

    example = dspy.Example(history="Customer: hi", language="en", domain="", strategy="Telepathy", reply="Hi")
    with pytest.raises(DataError, match="Telepathy"):
        rows_from_examples([example], tokenizer, max_length=512)


def test_tiny_model_helper_writes_a_loadable_directory(tmp_path: Path) -> None:
    from tests.finetune.tiny_model import build_tiny_model

    directory = build_tiny_model(tmp_path / "m", ["hello world"] * 3, vocab_size=300)
    assert (directory / "config.json").is_file() and (directory / "tokenizer.json").is_file()


def _judged(dialogues: list[Dialogue], failing: str | None) -> list[Dialogue]:
    """Run the real quality judge (scripted verdicts); dialogues whose text contains ``failing`` fail a criterion."""
    import json

    import dspy

    from cscprog.rolecs.judge import QualityJudge
    from cscprog.testing import scripted_lm

    def answer(field, request):
        fails = failing is not None and failing in request.inputs["transcript"] and field == "role_consistency"
        return json.dumps({"reason": "checked", "passed": "false" if fails else "true"})

    with dspy.context(lm=scripted_lm(answer)):
        return [QualityJudge()(dialogue).dialogue for dialogue in dialogues]


def test_judged_rolecs_output_mixes_with_csconv_samples_and_only_passed_dialogues_train(tokenizer) -> None:
    csconv = [load_sample("annotated_en")[0], load_sample("annotated_zh")[0]]
    synthesized = [d.model_copy(update={"id": f"rp-{d.id}"})
                   for d in (load_sample("annotated_zh")[1], load_sample("annotated_en")[1])]
    judged = _judged(synthesized, failing=synthesized[1].turns[1].text[:25])
    assert [d.metadata["judge"]["passed"] for d in judged] == [True, False]
    data = build_training_set(csconv + judged, tokenizer, max_length=100_000, source="mixed")
    trained = {row["dialogue_id"] for row in data.rows}
    assert trained == {csconv[0].id, csconv[1].id, judged[0].id}
    assert len(data.rows) == sum(len(d.supporter_indices()) for d in (*csconv, judged[0]))
    summary = data.summary()
    assert summary["judge_rejected"] == 1 and summary["judge_rejected_ids"] == [judged[1].id]
    assert summary["judged_dialogues"] == 1 and summary["dialogues"] == 4
    zh_turns = sum(len(d.supporter_indices()) for d in (csconv[1], judged[0]))
    assert summary["languages"] == {"en": len(csconv[0].supporter_indices()), "zh": zh_turns}
    assert any("Language: zh" in row["prompt"][1]["content"] and row["dialogue_id"] == judged[0].id
               for row in data.rows)


def test_a_verdict_that_is_not_a_pass_leaves_the_dialogue_out(tokenizer) -> None:
    from cscprog.finetune.judged import judge_rejected

    base = load_sample("annotated_en")[0]
    unjudgeable = base.model_copy(update={"metadata": {"judge": {"passed": False, "failure": "no JSON"}}})
    odd = base.model_copy(update={"metadata": {"judge": {"passed": "true"}}})  # a string is not a pass
    assert judge_rejected(unjudgeable) and judge_rejected(odd) and not judge_rejected(base)
    with pytest.raises(DataError, match="rejected every one of the 2 dialogues"):
        build_training_set([unjudgeable, odd], tokenizer, max_length=100_000, source="judged.jsonl")
