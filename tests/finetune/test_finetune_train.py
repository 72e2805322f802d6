"""LoRA fine-tuning of a tiny random Qwen2 model on CPU: the loss falls, the adapter is served through DSPy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from cscprog.cli import main  # noqa: E402
from cscprog.config import FinetuneSettings, LMSettings, config_from_dict  # noqa: E402
from cscprog.data import Dialogue  # noqa: E402
from cscprog.errors import ConfigError  # noqa: E402
from cscprog.finetune.program import FinetunedResponder  # noqa: E402
from cscprog.finetune.serve import finetuned_runtime, load_finetuned  # noqa: E402
from cscprog.finetune.train import finetune  # noqa: E402
from cscprog.framework import load_taxonomy  # noqa: E402
from tests.finetune.tiny_model import build_tiny_model  # noqa: E402

MEMORIZE = [
    Dialogue.model_validate({"id": "m1", "language": "en", "turns": [
        {"speaker": "customer", "text": "My card is lost."},
        {"speaker": "supporter", "strategy": "Emotional Management", "text": "I am sorry, let us fix it."}]}),
    Dialogue.model_validate({"id": "m2", "language": "en", "turns": [
        {"speaker": "supporter", "strategy": "Greeting", "text": "Hello, how can I help?"}]}),
]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cscprog.data.completion import default_system_prompt

    texts = [default_system_prompt()] + [t.text for d in MEMORIZE for t in d.turns] + ["Strategy: Reply: Language:"]
    return build_tiny_model(tmp_path_factory.mktemp("tiny-base"), texts * 3)


def _settings(base: Path, **overrides) -> FinetuneSettings:
    values = {"base": str(base), "rank": 16, "alpha": 32, "dropout": 0.0, "learning_rate": 2e-2, "epochs": 60,
              "batch_size": 2, "max_length": 512, "save_steps": 20, "seed": 0}
    values.update(overrides)
    return FinetuneSettings(**values)


@pytest.fixture(scope="module")
def trained(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ft") / "run"
    steps: list[tuple[int, int, float | None]] = []
    result = finetune(MEMORIZE, out, settings=_settings(tiny_base), lm=LMSettings(),
                      progress=lambda *a: steps.append(a))
    return result, steps


@pytest.mark.slow
def test_loss_falls_on_a_memorization_set_and_the_manifest_says_so(trained) -> None:
    result, steps = trained
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert manifest["steps"] == 60 and manifest["data"]["examples"] == 2
    assert manifest["final_loss"] < 0.2 * manifest["first_loss"], manifest["loss_curve"]
    assert manifest["device"] == "cpu" and manifest["versions"]["trl"]
    assert manifest["hyperparameters"]["rank"] == 16 and len(manifest["data"]["fingerprint"]) == 64
    assert manifest["wall_time_s"] > 0 and manifest["merged_gguf"] is None
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
    assert steps[-1][0] == 60 and steps[-1][1] == 60 and steps[-1][2] is not None


@pytest.mark.slow
def test_the_adapter_is_served_through_dspy_in_the_responder_format(trained, tmp_path: Path) -> None:
    result, _ = trained
    model = load_finetuned(result.out_dir)
    config = config_from_dict({"cache": {"dir": str(tmp_path / "cache")}})
    runtime = finetuned_runtime(config, model)
    program = FinetunedResponder(load_taxonomy("csc"))
    try:
        with runtime.activate():
            prediction = program(history=MEMORIZE[0].transcript(1), language="en", domain="")
            opening = program(history=MEMORIZE[1].transcript(0), language="en", domain="")
    finally:
        runtime.close()
    assert (prediction.strategy, prediction.reply) == ("Emotional Management", "I am sorry, let us fix it.")
    assert (opening.strategy, opening.reply) == ("Greeting", "Hello, how can I help?")
    assert runtime.roles_used()["responder"]["model"].startswith("finetuned/")


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint_and_refuses_other_runs(tiny_base: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    settings = _settings(tiny_base, epochs=2, batch_size=1, save_steps=2)
    first = finetune(MEMORIZE, out, settings=settings, lm=LMSettings(), max_steps=2)
    assert first.manifest["steps"] == 2
    with pytest.raises(ConfigError, match="--resume"):
        finetune(MEMORIZE, out, settings=settings, lm=LMSettings())
    with pytest.raises(ConfigError, match="other settings"):
        finetune(MEMORIZE, out, settings=_settings(tiny_base, rank=4), lm=LMSettings(),
                 resume=True)
    resumed = finetune(MEMORIZE, out, settings=settings, lm=LMSettings(), resume=True)
    assert resumed.manifest["resumed_from"] == "checkpoint-2" and resumed.manifest["steps"] == 4


SYNTHESIZED = [
    Dialogue.model_validate({"id": "rp-zh-1", "language": "zh", "domain": "cards", "turns": [
        {"speaker": "customer", "text": "我的卡被锁了。"},
        {"speaker": "supporter", "strategy": "Emotional Management", "text": "别着急，我马上帮您解锁。"}]}),
    Dialogue.model_validate({"id": "rp-en-2", "language": "en", "turns": [
        {"speaker": "customer", "text": "Where is my refund?"},
        {"speaker": "supporter", "strategy": "Information Delivery", "text": "It arrives in three days."}]}),
]


def _verdicts(field, request) -> str:
    """The judge's answers: every criterion passes, except role consistency for the refund dialogue."""
    fails = "Where is my refund?" in request.inputs["transcript"] and field == "role_consistency"
    return json.dumps({"reason": "checked", "passed": "false" if fails else "true"})


def _jsonl(path: Path, dialogues: list[Dialogue]) -> Path:
    path.write_text("\n".join(d.model_dump_json() for d in dialogues) + "\n")
    return path


def test_cli_finetune_trains_on_csconv_and_judged_rolecs_output_and_reports_bad_data(
        tiny_base: Path, tmp_path: Path, capsys) -> None:
    from cscprog.testing import OpenAICompatibleServer

    data = _jsonl(tmp_path / "train.jsonl", MEMORIZE)
    synthesized = _jsonl(tmp_path / "rolecs.jsonl", SYNTHESIZED)
    with OpenAICompatibleServer(_verdicts, model_name="judge-model") as server:
        config = tmp_path / "judge.toml"
        config.write_text(f'[lm]\nmodel = "openai/judge-model"\napi_base = "{server.url}"\n'
                          f'[cache]\ndir = "{tmp_path / "cache"}"\n')
        code = main(["judge", str(synthesized), "-o", str(tmp_path / "judged.jsonl"), "-c", str(config),
                     "--progress", "off"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    code = main(["finetune", str(data), str(tmp_path / "judged.jsonl"), "-o", str(tmp_path / "out"), "--base",
                 str(tiny_base), "--max-steps", "2", "--progress", "plain", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["steps"] == 2 and summary["examples"] == 3  # 2 memorized turns + the passed Chinese one
    assert summary["judged_dialogues"] == 1 and summary["judge_rejected"] == 1
    assert summary["languages"] == {"en": 2, "zh": 1}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["data"]["judge_rejected_ids"] == ["rp-en-2"]
    assert "finetune: step 2/2 loss" in captured.err
    assert main(["finetune", str(data), str(data), "-o", str(tmp_path / "dup"), "--base", str(tiny_base)]) == 2
    assert "is also in" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "turns": [{"speaker": "customer", "text": "hi"}]}) + "\n")
    assert main(["finetune", str(bad), "-o", str(tmp_path / "out2"), "--base", str(tiny_base)]) == 2
    assert "no supporter turn" in capsys.readouterr().err
    assert main(["finetune", str(data), "-o", str(tmp_path / "out3"), "--base", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_and_respond_take_the_fine_tuned_model(trained, tmp_path: Path, capsys, monkeypatch) -> None:
    result, _ = trained
    monkeypatch.setenv("CSCPROG_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "test.jsonl"
    data.write_text("\n".join(d.model_dump_json() for d in MEMORIZE) + "\n")
    code = main(["evaluate", str(data), "--model", str(result.out_dir), "-o", str(tmp_path / "eval"), "--json",
                 "--no-plots", "--progress", "off"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    scores = json.loads(captured.out)
    assert scores["n"] == 2 and scores["failures"] == 0 and scores["accuracy"] == 100.0
    code = main(["respond", str(data), "--model", str(result.out_dir), "-o", str(tmp_path / "turns.jsonl"),
                 "--progress", "off"])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "turns.jsonl").read_text().splitlines()]
    assert {(row["pred_strategy"], row["pred_reply"]) for row in rows} == {
        ("Emotional Management", "I am sorry, let us fix it."), ("Greeting", "Hello, how can I help?")}
    assert main(["respond", str(data), "--model", str(tmp_path), "-o", str(tmp_path / "x.jsonl")]) == 2
    assert "not a finished `cscprog finetune` output" in capsys.readouterr().err


def _base_responder(field, request) -> str:
    """The configured responder before fine-tuning: a wrong strategy and a filler reply for every turn."""
    return "Others" if field == "strategy" else "Please hold."


@pytest.mark.slow
def test_cli_compile_optimizer_finetune_trains_saves_and_serves_the_fine_tuned_model(
        tiny_base: Path, tmp_path: Path, capsys) -> None:
    from cscprog.optimizers import load_compiled

    from cscprog.testing import OpenAICompatibleServer

    data = _jsonl(tmp_path / "train.jsonl", MEMORIZE)
    program = tmp_path / "program.json"
    settings = _settings(tiny_base)
    with OpenAICompatibleServer(_base_responder, model_name="base-model") as server:
        config = tmp_path / "cscprog.toml"
        config.write_text(f'[lm]\nmodel = "openai/base-model"\napi_base = "{server.url}"\ntemperature = 0.0\n'
                          f'[cache]\ndir = "{tmp_path / "cache"}"\n[finetune]\n'
                          + "".join(f"{key} = {json.dumps(value)}\n"
                                    for key, value in settings.model_dump(mode="json").items()
                                    if value is not None))
        code = main(["compile", "--train", str(data), "--dev", str(data), "--optimizer", "finetune", "-o",
                     str(program), "-c", str(config), "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        summary = json.loads(captured.out)
        assert summary["recipe"] == "finetune" and summary["settings"]["steps"] == 60
        assert summary["before"]["strategy_accuracy"] == 0.0 and summary["after"]["strategy_accuracy"] == 100.0
        model_dir = tmp_path / "program.model"
        assert (model_dir / "adapter" / "adapter_model.safetensors").is_file()
        assert json.loads((model_dir / "manifest.json").read_text())["data"]["examples"] == 2
        loaded = load_compiled(program, FinetunedResponder)
        assert loaded.model_dir == str(model_dir.resolve())
        before_respond = server.count
        code = main(["respond", str(data), "--program", str(program), "-o", str(tmp_path / "turns.jsonl"),
                     "-c", str(config), "--progress", "off"])
        assert code == 0, capsys.readouterr().err
        assert server.count == before_respond  # the fine-tuned model answered, not the configured responder
    rows = [json.loads(line) for line in (tmp_path / "turns.jsonl").read_text().splitlines()]
    assert {(row["pred_strategy"], row["pred_reply"]) for row in rows} == {
        ("Emotional Management", "I am sorry, let us fix it."), ("Greeting", "Hello, how can I help?")}
