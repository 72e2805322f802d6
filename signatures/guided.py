"""A predictor whose instructions always end with a fixed guide: the taxonomy's strategy definitions.

Instruction optimizers (COPRO, MIPROv2, GEPA) rewrite a predictor's instructions wholesale, and a proposed
instruction rarely repeats the twelve strategy definitions it was shown, so a compiled program would choose among
strategy names it no longer has definitions for. :class:`GuidedPredict` keeps the guide apart from the part an
optimizer may rewrite: every call runs with the guide re-attached when the current instructions lack it (so an
optimizer scores each candidate instruction *with* the definitions), and :meth:`GuidedPredict.ensure_guide` writes
it back into the stored signature (``cscprog.optimizers.compile_program`` calls it on the compiled program, so the
saved program holds the definitions too). An instruction that already holds the guide is left unchanged, so the
prompt is exactly the one :func:`~cscprog.signatures.for_taxonomy` writes.

Example:
    ```python
    from cscprog.framework import load_taxonomy
    from cscprog.signatures import GuidedPredict, PredictStrategy, for_taxonomy, strategy_guide

    csc = load_taxonomy("csc")
    predict = GuidedPredict(for_taxonomy(PredictStrategy, csc, with_guide=False), strategy_guide(csc))
    predict.signature = predict.signature.with_instructions("Pick the next strategy.")   # as COPRO does
    predict.guided_signature().instructions.endswith(strategy_guide(csc))                 # True
    ```
"""

from __future__ import annotations

from typing import Any

import dspy

__all__ = ["GuidedPredict", "with_guide"]


def with_guide(signature: type[dspy.Signature], guide: str) -> type[dspy.Signature]:
    """``signature`` with ``guide`` appended to its instructions after a blank line, unless they hold it already.

    Example:
        ```python
        with_guide(dspy.Signature("history -> strategy", "Pick one."), "Strategies: ...").instructions
        # 'Pick one.\\n\\nStrategies: ...'
        ```
    """
    instructions = signature.instructions or ""
    if guide in instructions:
        return signature
    return signature.with_instructions(f"{instructions.rstrip()}\n\n{guide}" if instructions.strip() else guide)


class GuidedPredict(dspy.Predict):
    """``dspy.Predict`` whose calls always carry ``guide`` at the end of the instructions.

    Args:
        signature: The signature (with or without the guide in its instructions).
        guide: Text that must stay in the instructions (e.g. :func:`~cscprog.signatures.strategy_guide`).
        **config: As for ``dspy.Predict``.

    Raises:
        ValueError: an empty guide.

    Example:
        ```python
        GuidedPredict(for_taxonomy(WriteReply, csc, with_guide=False), strategy_guide(csc))
        ```
    """

    def __init__(self, signature: Any, guide: str, **config: Any) -> None:
        if not guide.strip():
            raise ValueError("guide must not be empty")
        super().__init__(signature, **config)
        self.guide = guide
        self.ensure_guide()

    def guided_signature(self) -> type[dspy.Signature]:
        """The current signature with the guide (re-)attached."""
        return with_guide(self.signature, self.guide)

    def ensure_guide(self) -> None:
        """Write the guide back into the stored signature when an optimizer's rewrite dropped it."""
        self.signature = self.guided_signature()

    def forward(self, **kwargs: Any) -> Any:
        """As ``dspy.Predict.forward``, with the guided signature unless a call passes its own."""
        return super().forward(**{"signature": self.guided_signature(), **kwargs})

    async def aforward(self, **kwargs: Any) -> Any:
        """As ``dspy.Predict.aforward``, with the guided signature unless a call passes its own."""
        return await super().aforward(**{"signature": self.guided_signature(), **kwargs})
