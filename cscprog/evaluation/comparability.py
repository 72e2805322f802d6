"""Which of our columns can stand next to the paper's Table 2, and why not when they cannot.

The paper's columns are B-2, B-4, R-L, BS, BR and ACC on its Chinese CSConv test set. A column of ours is
comparable only when it was computed the way the paper most likely computed it (the ``paper`` profile of
:mod:`~cscprog.evaluation.metrics.conventions`) and, for the model-based columns, with the same model:

* B-2/B-4: the ``paper`` profile (sentence-averaged character BLEU, smoothing method3); corpus BLEU differs from
  it by 2-4 points on the same outputs;
* R-L: rouge-score's default tokenizer; per-character ROUGE-L on Chinese runs several times the paper's;
* BS: BERTScore F1 of bert-base-chinese layer 8 without idf or rescaling; any other model gives other numbers;
* BR: never marked comparable: the paper does not say which BLEURT checkpoint it used;
* ACC: the same definition under every profile.

In every case the paper's rows are on CSConv's test set: our figures are comparable only on that data, which
the report reminds the reader of.

Example:
    ```python
    from cscprog.evaluation.comparability import paper_comparability

    paper_comparability(result)["R-L"]   # {'comparable': False, 'why': 'character-level ROUGE-L ...'}
    ```
"""

from __future__ import annotations

from typing import Any

from cscprog.evaluation.metrics.conventions import PAPER_BERTSCORE_LAYER, PAPER_BERTSCORE_MODEL

__all__ = ["paper_comparability"]


def _bertscore(signature: str | None, value: Any) -> tuple[bool, str]:
    if value is None or not signature:
        return False, "not computed"
    fields = dict(part.split(":", 1) for part in signature.split("|") if ":" in part)
    model, layer = fields.get("model", ""), fields.get("layer")
    if PAPER_BERTSCORE_MODEL not in model.lower() or layer != str(PAPER_BERTSCORE_LAYER):
        return False, (f"model {model} layer {layer}; the paper's is {PAPER_BERTSCORE_MODEL} layer "
                       f"{PAPER_BERTSCORE_LAYER} (set [metrics] bertscore_model to a local copy)")
    if fields.get("idf") != "no" or fields.get("rescale") != "no":
        return False, "idf weighting or baseline rescaling is on; the paper's F1 uses neither"
    return True, f"{PAPER_BERTSCORE_MODEL} layer {PAPER_BERTSCORE_LAYER}, F1, no idf, no rescaling"


def paper_comparability(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{column: {"comparable": bool, "why": str}}`` for B-2, B-4, R-L, BS, BR and ACC.

    Example:
        ```python
        marks = paper_comparability(json.loads(Path("eval/result.json").read_text()))
        ```
    """
    profile = (result.get("metrics") or {}).get("profile", "standard")
    signatures = result.get("signatures") or {}
    paper = profile == "paper"
    bleu_why = ("sentence-averaged character BLEU with smoothing method3 (the paper's likely protocol)" if paper else
                "corpus BLEU (sacrebleu); the paper's is most likely sentence-averaged character BLEU, which differs "
                "by 2-4 points: use --metrics paper")
    rouge_why = ("rouge-score's default tokenizer (only Latin letters and digits count, as in the paper)" if paper
                 else "character/word ROUGE-L runs several times the paper's R-L, which rouge-score's default "
                      "tokenizer computes over Latin letters and digits only: use --metrics paper")
    bs_ok, bs_why = _bertscore(signatures.get("bertscore"), result.get("bertscore"))
    br_why = ("the paper does not name its BLEURT checkpoint; compare BR across our runs only"
              if result.get("bleurt") is not None else "not computed")
    marks = {
        "B-2": (paper, bleu_why),
        "B-4": (paper, bleu_why),
        "R-L": (paper, rouge_why),
        "BS": (bs_ok, bs_why),
        "BR": (False, br_why),
        "ACC": (result.get("accuracy") is not None, "exact strategy match, failures wrong (same definition)"),
    }
    return {column: {"comparable": ok, "why": why} for column, (ok, why) in marks.items()}
