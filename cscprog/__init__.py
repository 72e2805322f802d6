"""cscprog: customer-support conversation (CSC) work with LLMs as declarative, optimizable DSPy programs."""

from __future__ import annotations

__version__ = "0.1.0"
