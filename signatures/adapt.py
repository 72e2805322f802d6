"""Fit a signature to a taxonomy: strategy fields typed as its labels, its definitions in the instructions.

Signatures in this package are written against the CSC taxonomy (``Literal`` of its 12 strategy names).
:func:`for_taxonomy` returns a copy for any other taxonomy (ESConv, a user's file), so every module follows
the taxonomy in use without a second set of prompts.

Example:
    ```python
    from cscprog.framework import load_taxonomy
    from cscprog.signatures import ClassifyStrategy, for_taxonomy

    esconv_sig = for_taxonomy(ClassifyStrategy, load_taxonomy("esconv"))
    esconv_sig.output_fields["strategy"].annotation   # Literal['Question', ..., 'Others']
    ```
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import dspy

from cscprog.framework import Taxonomy, load_taxonomy

STRATEGY_FIELDS = ("strategy",)
"""Field names that hold one strategy label."""

CSC = load_taxonomy("csc")
CscStrategy = Literal[CSC.names]  # type: ignore[valid-type]
"""The 12 CSC strategy names as a type, for signature fields."""


def strategy_type(taxonomy: Taxonomy) -> Any:
    """``Literal`` of the taxonomy's strategy names."""
    return Literal[taxonomy.names]  # type: ignore[valid-type]


def strategy_guide(taxonomy: Taxonomy, language: str = "en") -> str:
    """The stages and strategies, one strategy a line, for a signature's instructions."""
    return f"Support strategies ({taxonomy.name} framework), grouped by stage:\n{taxonomy.describe(language)}"


def for_taxonomy(
    signature: type[dspy.Signature],
    taxonomy: Taxonomy,
    *,
    fields: Iterable[str] = STRATEGY_FIELDS,
    with_guide: bool = True,
) -> type[dspy.Signature]:
    """A copy of ``signature`` whose strategy fields are typed by ``taxonomy`` and whose instructions end with
    the taxonomy's strategy definitions.

    Args:
        signature: A signature class of this package.
        taxonomy: The taxonomy in use.
        fields: Names of the fields holding a strategy label (input or output).
        with_guide: Append the stage and strategy definitions to the instructions.
    """
    label_type = strategy_type(taxonomy)
    adapted = signature
    for name in fields:
        if name in adapted.output_fields or name in adapted.input_fields:
            adapted = adapted.with_updated_fields(name, type_=label_type)
    if with_guide:
        adapted = adapted.with_instructions(f"{signature.instructions.rstrip()}\n\n{strategy_guide(taxonomy)}")
    return adapted
