"""The response program of a fine-tuned model: prompted exactly as it was trained, parsed like the export.

A model fine-tuned by ``cscprog finetune`` learned one layout: the export's system prompt, a user message with the
domain, the language and the conversation so far (:func:`cscprog.finetune.export.user_message`), and the answer
``Strategy: <name>`` / ``Reply: <text>``. DSPy's usual adapters would prompt it in another layout (field markers,
JSON), so :class:`CompletionAdapter` renders a signature's inputs in the training layout and reads the answer back
with :func:`cscprog.data.completion.parse_completion`. :class:`FinetunedResponder` is a
:class:`~cscprog.agents.responder.ResponseGenerator` (so ``respond_dialogues``, ``evaluate`` and the CLI take it
as they are) that makes one such call per turn, through :func:`cscprog.lm.invoke.invoke` (role ``responder``:
the runtime's cache, budget and ledger apply).

Example:
    ```python
    from cscprog.finetune.program import FinetunedResponder

    program = FinetunedResponder()
    with runtime.activate():   # the responder role on the fine-tuned model (see cscprog.finetune.serve)
        pred = program(history="Customer: I lost my card.", language="en", domain="")
    pred.strategy, pred.reply
    ```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

from cscprog.agents.responder import ROLE, ResponseGenerator
from cscprog.data.completion import default_system_prompt, parse_completion
from cscprog.finetune.export import user_message
from cscprog.framework import Taxonomy
from cscprog.lm.invoke import invoke

__all__ = ["CompletionAdapter", "FinetunedResponder", "NextTurn"]


class NextTurn(dspy.Signature):
    """Write the supporter's next turn: its support strategy, then the reply."""

    history: str = dspy.InputField(desc="The conversation so far")
    language: str = dspy.InputField(desc="en or zh")
    domain: str = dspy.InputField(desc="Business domain, empty when unknown")
    strategy: str = dspy.OutputField(desc="One strategy name of the taxonomy")
    reply: str = dspy.OutputField(desc="The supporter's next utterance")


class CompletionAdapter(dspy.Adapter):
    """Formats ``history, language, domain`` as the training examples' messages; parses ``Strategy:``/``Reply:``.

    Args:
        taxonomy: The taxonomy the model was trained on (its names are in the system prompt and parsed back).
        system_prompt: The training system prompt (None: :func:`default_system_prompt`, as the export uses).

    Example:
        ```python
        with dspy.context(adapter=CompletionAdapter(taxonomy)):
            dspy.Predict(NextTurn)(history=..., language="en", domain="")
        ```
    """

    def __init__(self, taxonomy: Taxonomy, system_prompt: str | None = None) -> None:
        super().__init__()
        self.taxonomy = taxonomy
        self.system_prompt = default_system_prompt(taxonomy) if system_prompt is None else system_prompt.strip()

    def format(self, signature: type[dspy.Signature], demos: list[dict[str, Any]],
               inputs: dict[str, Any]) -> list[dict[str, Any]]:
        """The system prompt and one user message, exactly as in training (demos are not used)."""
        user = user_message(str(inputs.get("history") or ""), str(inputs.get("language") or "en"),
                            str(inputs.get("domain") or ""))
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": user}]

    def parse(self, signature: type[dspy.Signature], completion: str) -> dict[str, Any]:
        """``{"strategy", "reply"}`` from the model's text.

        Raises:
            AdapterParseError: the text names no strategy of the taxonomy or has no reply.
        """
        strategy, reply, problem = parse_completion(completion, self.taxonomy)
        if problem is not None or strategy is None or reply is None:
            raise AdapterParseError(type(self).__name__, signature, completion, problem or "unparseable")
        return {"strategy": strategy, "reply": reply}


class FinetunedResponder(ResponseGenerator):
    """The next supporter turn from a fine-tuned model, in one call (strategy then reply, as trained).

    Args:
        taxonomy: The taxonomy of the training data (default CSC).
        system_prompt: The system prompt the model was trained with (None: the export's default).
        attempts: Attempts per turn at a parseable answer (greedy decoding repeats itself, so 1 by default).
        model_dir: The ``cscprog finetune`` output this program answers with (recorded when it is saved as a
            compiled program; the runtime serving it is built by :func:`cscprog.finetune.serve.finetuned_runtime`).

    Example:
        ```python
        rows = respond_dialogues(FinetunedResponder(tax), dialogues, "reference")
        ```
    """

    def __init__(self, taxonomy: Taxonomy | None = None, *, system_prompt: str | None = None,
                 attempts: int = 1, model_dir: str | Path | None = None) -> None:
        super().__init__(taxonomy, attempts=attempts)
        self.system_prompt = system_prompt
        self.model_dir = str(Path(model_dir).resolve()) if model_dir is not None else None
        self.next_turn = dspy.Predict(NextTurn)

    def forward(self, history: str, language: str = "en", domain: str = "",
                strategy: str | None = None) -> dspy.Prediction:
        """The strategy and reply after ``history``.

        Raises:
            ValueError: a ``strategy`` was given: the model was trained to choose its own.
            GenerationFailure: no parseable answer after ``attempts``.
        """
        if strategy is not None:
            raise ValueError("a fine-tuned responder predicts the strategy itself; the oracle setting is not "
                             "available for it")
        with dspy.context(adapter=CompletionAdapter(self.taxonomy, self.system_prompt)):
            answer = invoke(self.next_turn, role=ROLE, attempts=self.attempts, validate=self.check_strategy,
                            history=history, language=language, domain=domain)
        return dspy.Prediction(strategy=self.taxonomy.parse(answer.strategy).name, reply=answer.reply.strip())
