"""Dataset cards: what ``cscprog export`` writes beside the data, in the Hugging Face card format."""

from __future__ import annotations

import json

import pytest

from cscprog.cli import main
from cscprog.data import write_dialogues
from cscprog.finetune.card import CARD_MARKER, file_fingerprint
from cscprog.finetune.export import write_export
from cscprog.samples import load_sample, sample_path


def front_matter(text: str) -> str:
    assert text.startswith("---\n")
    return text.split("---\n")[1]


def test_export_writes_a_card_with_counts_distributions_fingerprints_and_the_command(tmp_path, capsys):
    out = tmp_path / "ft" / "csc.jsonl"
    assert main(["export", "sample:annotated_en", "--format", "openai", "-o", str(out), "--split",
                 "train=0.8,dev=0.2", "--license", "mit", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    card = (tmp_path / "ft" / "README.md").read_text(encoding="utf-8")
    assert summary["card"] == str(tmp_path / "ft" / "README.md")
    header = front_matter(card)
    assert "license: mit" in header and "- en" in header and "path: csc.train.jsonl" in header
    assert "split: dev" in header and CARD_MARKER in card
    dialogues = load_sample("annotated_en")
    greetings = sum(d.supporter_strategies().count("Greeting") for d in dialogues)
    assert f"| Greeting | {greetings} |" in card
    assert "| Connecting |" in card and "Appreciation and Closure | AC | 感谢与告别" in card
    assert f"{len(dialogues)} dialogues" in card
    for split in ("train", "dev"):
        path = tmp_path / "ft" / f"csc.{split}.jsonl"
        assert f"| {split} | {summary['dialogues'][split]} | {summary['examples'][split]} |" in card
        assert file_fingerprint(path) in card
    assert file_fingerprint(sample_path("annotated_en")) in card
    assert "cscprog export sample:annotated_en --format openai" in card
    assert "No run manifest was found" in card


def test_card_reads_the_generation_config_from_the_source_run_manifest(tmp_path):
    source = tmp_path / "synth.jsonl"
    write_dialogues(source, load_sample("annotated_en")[:4])
    manifest = {"command": "cscprog synth --n 4", "seed": 1234, "versions": {"cscprog": "0.1.0"},
                "roles": {"supporter": {"model": "openai/deepseek-r1", "temperature": 0.8, "seed": 1234,
                                        "max_tokens": None},
                          "customer": {"model": "openai/qwen", "temperature": 0.7, "seed": None, "max_tokens": 256}},
                "cache": {"mode": "readwrite", "version": "1", "hits": 3, "misses": 40}}
    (tmp_path / "synth.jsonl.manifest.json").write_text(json.dumps(manifest))
    result = write_export(tmp_path / "out" / "x.jsonl", load_sample("annotated_en")[:4], "sharegpt",
                          source=str(source), command="cscprog export synth.jsonl -f sharegpt")
    card = result.card.read_text(encoding="utf-8")
    assert "| supporter | openai/deepseek-r1 | 0.8 | 1234 |" in card
    assert "| customer | openai/qwen | 0.7 | None | 256 |" in card
    assert "cscprog synth --n 4" in card and "3 hits, 40 misses" in card
    assert "license: unknown" in front_matter(card)


def test_a_foreign_readme_is_kept_and_no_card_writes_none(tmp_path):
    (tmp_path / "README.md").write_text("# my notes\n")
    result = write_export(tmp_path / "a.jsonl", load_sample("annotated_en")[:2], "alpaca")
    assert (tmp_path / "README.md").read_text() == "# my notes\n"
    assert result.card == tmp_path / "a.README.md" and CARD_MARKER in result.card.read_text()
    other = write_export(tmp_path / "b" / "b.jsonl", load_sample("annotated_en")[:2], "alpaca", card=False)
    assert other.card is None and not (tmp_path / "b" / "README.md").exists()


def test_hf_export_carries_the_card_in_its_directory(tmp_path):
    pytest.importorskip("datasets")
    result = write_export(tmp_path / "hf", load_sample("annotated_en")[:3], "hf")
    assert result.card == tmp_path / "hf" / "README.md"
    card = result.card.read_text(encoding="utf-8")
    assert "`hf` format" in card and "configs:" not in front_matter(card)
