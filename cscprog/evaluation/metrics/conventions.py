"""Metric conventions as data: how each score is computed, written as a signature beside every figure.

A figure such as "BLEU-2 = 11.2" means little until it says how it was computed; sacrebleu prints a signature
(``nrefs:1|case:mixed|tok:zh|smooth:exp|version:2.4.0``) for that reason. Every score cscprog reports carries
one, built here from a frozen convention:

* :class:`BleuConvention`: corpus-level (sacrebleu) or sentence-averaged (nltk's ``sentence_bleu``), tokenizer
  (``auto``: sacrebleu ``zh`` for Chinese references and ``13a`` otherwise; ``char``: every character, spaces
  included, as ``list(text)`` gives), smoothing (``exp``/``method3``: the same NIST rule, applied per corpus or
  per sentence);
* :class:`RougeConvention`: ``cjk-char+word`` (cscprog's: CJK characters and lowercased words) or
  ``rouge-score`` (the rouge-score package's default tokenizer: lowercased ``[a-z0-9]+`` runs only, so Chinese
  characters are dropped and a pure-Chinese pair scores 0);
* BERTScore and BLEURT signatures name the model and its settings (:func:`bertscore_signature`,
  :func:`bleurt_signature`).

Two named profiles (:data:`PROFILES`): ``standard`` (cscprog's defaults) and ``paper`` (the authors' likely
protocol: sentence-averaged character BLEU with smoothing method3, as the metric code of their family of projects
does; ROUGE-L as rouge-score's default tokenizer computes it, which explains the paper's R-L sitting below its
B-2; BERTScore F1 without rescaling, bert-base-chinese layer 8 for Chinese).

Example:
    ```python
    from cscprog.evaluation.metrics.conventions import get_profile

    paper = get_profile("paper")
    paper.bleu.signature(2)    # 'BLEU-2|sentence-mean|tok:char|smooth:method3|nltk-rules'
    ```
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Literal

__all__ = [
    "PAPER_BERTSCORE_LAYER",
    "PAPER_BERTSCORE_MODEL",
    "PROFILES",
    "BleuConvention",
    "Profile",
    "RougeConvention",
    "bertscore_signature",
    "bleurt_signature",
    "get_profile",
    "package_version",
]

PAPER_BERTSCORE_MODEL = "bert-base-chinese"
"""The BERTScore model of the paper's protocol for Chinese (bert-score's default for ``lang="zh"``)."""

PAPER_BERTSCORE_LAYER = 8
"""The layer bert-score uses for bert-base-chinese."""


def package_version(name: str) -> str:
    """The installed version of a distribution, or ``"absent"``.

    Example:
        ```python
        package_version("sacrebleu")   # '2.6.0'
        ```
    """
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


@dataclass(frozen=True)
class BleuConvention:
    """How BLEU is computed.

    Attributes:
        level: ``corpus`` (n-gram counts summed over the corpus, sacrebleu) or ``sentence`` (mean of per-pair
            scores, nltk's rules).
        tokenize: ``auto``, a sacrebleu tokenizer name (``zh``, ``13a``, ...), or ``char`` (``list(text)``).
        smooth: ``exp`` (sacrebleu's name) or ``method3`` (nltk's name) for the NIST geometric smoothing.
    """

    level: Literal["corpus", "sentence"] = "corpus"
    tokenize: str = "auto"
    smooth: Literal["exp", "method3"] = "exp"

    def signature(self, max_order: int) -> str:
        """``BLEU-N|level|tok:...|smooth:...|implementation``.

        Example:
            ```python
            BleuConvention().signature(4)   # 'BLEU-4|corpus|tok:auto(zh,13a)|smooth:exp|sacrebleu:2.6.0'
            ```
        """
        tok = "auto(zh,13a)" if self.tokenize == "auto" else self.tokenize
        level = "corpus" if self.level == "corpus" else "sentence-mean"
        implementation = f"sacrebleu:{package_version('sacrebleu')}" if self.level == "corpus" else "nltk-rules"
        return f"BLEU-{max_order}|{level}|tok:{tok}|smooth:{self.smooth}|{implementation}"


@dataclass(frozen=True)
class RougeConvention:
    """How ROUGE-L is tokenized (the score is always the LCS F1, beta 1, averaged over pairs).

    Attributes:
        tokens: ``cjk-char+word`` or ``rouge-score`` (see the module docstring).
    """

    tokens: Literal["cjk-char+word", "rouge-score"] = "cjk-char+word"

    def signature(self) -> str:
        """``ROUGE-L|f1|sentence-mean|tok:...|empty:...``.

        Example:
            ```python
            RougeConvention("rouge-score").signature()
            ```
        """
        if self.tokens == "rouge-score":
            return "ROUGE-L|f1|sentence-mean|tok:rouge-score-default([a-z0-9]+,lower,no-stem)|empty:0"
        return "ROUGE-L|f1|sentence-mean|tok:cjk-char+word(lower)|empty-both:1"


@dataclass(frozen=True)
class Profile:
    """A named set of conventions.

    Attributes:
        name: ``standard`` or ``paper``.
        bleu: The BLEU convention.
        rouge: The ROUGE-L convention.
        bertscore_model: The model the profile asks for (None: whatever ``[metrics] bertscore_model`` names, else
            the packaged encoder).
        bertscore_layer: Its layer.
        description: One line for reports.
    """

    name: str
    bleu: BleuConvention
    rouge: RougeConvention
    bertscore_model: str | None
    bertscore_layer: int | None
    description: str


PROFILES: dict[str, Profile] = {
    "standard": Profile(
        "standard", BleuConvention("corpus", "auto", "exp"), RougeConvention("cjk-char+word"), None, None,
        "cscprog's defaults: sacrebleu corpus BLEU (zh/13a), character/word ROUGE-L",
    ),
    "paper": Profile(
        "paper", BleuConvention("sentence", "char", "method3"), RougeConvention("rouge-score"),
        PAPER_BERTSCORE_MODEL, PAPER_BERTSCORE_LAYER,
        "the paper's likely protocol: sentence-mean character BLEU (nltk method3), rouge-score's default "
        "tokenizer for ROUGE-L, BERTScore F1 without rescaling (bert-base-chinese layer 8)",
    ),
}
"""The named profiles."""


def get_profile(name: str) -> Profile:
    """The profile called ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).

    Example:
        ```python
        get_profile("standard").bleu.level   # 'corpus'
        ```
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown metric profile {name!r}; known: {', '.join(PROFILES)}") from None


def bertscore_signature(model: str, layer: int, *, idf: bool, rescale: bool) -> str:
    """``BERTScore|F1|model:...|layer:N|idf:yes/no|rescale:yes/no|bert-score:VERSION``.

    Example:
        ```python
        bertscore_signature("bert-base-chinese", 8, idf=False, rescale=False)
        ```
    """
    yes_no = {True: "yes", False: "no"}
    return (f"BERTScore|F1|model:{model}|layer:{layer}|idf:{yes_no[idf]}|rescale:{yes_no[rescale]}"
            f"|bert-score:{package_version('bert-score')}")


def bleurt_signature(checkpoint: str) -> str:
    """``BLEURT|checkpoint:NAME|bleurt-pytorch:VERSION``.

    Example:
        ```python
        bleurt_signature("BLEURT-20-D12")
        ```
    """
    return f"BLEURT|checkpoint:{checkpoint}|bleurt-pytorch:{package_version('bleurt-pytorch')}"
