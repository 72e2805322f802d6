"""BERTScore and BLEURT through their packages on tiny random models built here (real code paths, no download)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("bert_score")

from cscprog.evaluation.metrics.neural import load_bertscore, load_bleurt  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz", *"您好卡已冻结请问有什么帮"]
PAIRS = [("您好，请问", "您好，有什么"), ("卡已冻结", "您的卡冻结了"), ("hello there", "hi there"), ("", "abc")]


def _vocab(folder: Path) -> Path:
    path = folder / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


def _tiny_bert(folder: Path) -> Path:
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    transformers.BertTokenizerFast(vocab_file=str(_vocab(folder))).save_pretrained(folder)
    return folder


def _greedy_f1(model, tokenizer, layer: int, hypothesis: str, reference: str) -> float:
    """BERTScore F1 written out: each inner token's best cosine against every token of the other side ([CLS] and
    [SEP] included as candidates, as bert-score does), averaged over inner tokens only."""

    def states(text: str):
        encoded = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**encoded, output_hidden_states=True).hidden_states[layer][0]
        return hidden / hidden.norm(dim=-1, keepdim=True)

    hyp, ref = states(hypothesis), states(reference)
    cosine = hyp @ ref.T
    precision, recall = cosine[1:-1].max(dim=1).values.mean(), cosine[:, 1:-1].max(dim=0).values.mean()
    return float(2 * precision * recall / (precision + recall))


def test_bertscore_over_a_local_directory_equals_greedy_matching_by_hand(tmp_path):
    folder = _tiny_bert(tmp_path)
    scorer, reason = load_bertscore(str(folder), layer=2)
    assert reason is None, reason
    scores = scorer.score([h for h, _ in PAIRS[:3]], [r for _, r in PAIRS[:3]])
    model = transformers.BertModel.from_pretrained(folder).eval()
    tokenizer = transformers.BertTokenizerFast.from_pretrained(folder)
    for (hyp, ref), score in zip(PAIRS[:3], scores, strict=True):
        assert score == pytest.approx(_greedy_f1(model, tokenizer, 2, hyp, ref), abs=1e-5)
    assert f"model:{folder.name}|layer:2|idf:no|rescale:no" in scorer.signature


def test_bertscore_idf_changes_the_weights_and_says_so(tmp_path):
    folder = _tiny_bert(tmp_path)
    plain, _ = load_bertscore(str(folder), layer=2)
    weighted, _ = load_bertscore(str(folder), layer=2, idf=True)
    hyps, refs = [h for h, _ in PAIRS[:3]], [r for _, r in PAIRS[:3]]
    assert weighted.score(hyps, refs) != plain.score(hyps, refs)
    assert "idf:yes" in weighted.signature


def test_bertscore_reasons_instead_of_numbers(tmp_path):
    assert "not a model directory" in load_bertscore(str(tmp_path), layer=2)[1]
    folder = _tiny_bert(tmp_path / "m")
    assert "bertscore_layer" in load_bertscore(str(folder))[1]
    assert "bertscore_baseline" in load_bertscore(str(folder), layer=2, rescale=True)[1]


def test_bleurt_checkpoint_scores_like_its_model(tmp_path):
    bleurt = pytest.importorskip("bleurt_pytorch")
    config = bleurt.BleurtConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(1)
    model = bleurt.BleurtForSequenceClassification(config).eval()
    model.save_pretrained(tmp_path)
    tokenizer = bleurt.BleurtTokenizer(vocab_file=str(_vocab(tmp_path)))
    tokenizer.save_pretrained(tmp_path)
    scorer, reason = load_bleurt(str(tmp_path))
    assert reason is None, reason
    hyps, refs = [h for h, _ in PAIRS], [r for _, r in PAIRS]
    scores = scorer.score(hyps, refs)
    with torch.no_grad():
        for hyp, ref, score in zip(hyps, refs, scores, strict=True):
            expected = model(**tokenizer([ref], [hyp], return_tensors="pt")).logits.item()
            assert score == pytest.approx(expected, abs=1e-5)
    assert scorer.signature.startswith(f"BLEURT|checkpoint:{tmp_path.name}|bleurt-pytorch:")


def test_bleurt_without_checkpoint_says_how_to_get_one(tmp_path):
    scorer, reason = load_bleurt(None)
    assert scorer is None and "bleurt_checkpoint" in reason
    assert "no config.json" in load_bleurt(str(tmp_path))[1]
