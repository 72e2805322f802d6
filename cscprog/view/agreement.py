"""Agreement and uncertainty for human ratings: Wilson intervals, Cohen's kappa, Fleiss' kappa.

Example:
    ```python
    from cscprog.view.agreement import cohen_kappa, fleiss_kappa, wilson_interval

    wilson_interval(8, 10)                                   # (0.49, 0.94), 95%
    cohen_kappa([("a", "a"), ("b", "b"), ("a", "b")])        # 0.4
    fleiss_kappa([{"a": 2}, {"a": 1, "b": 1}, {"b": 2}])     # 0.33
    ```
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

__all__ = ["cohen_kappa", "fleiss_kappa", "wilson_interval"]

Z95 = 1.959963984540054
"""The two-sided 95% quantile of the standard normal."""


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None when ``n`` is 0.

    Example:
        ```python
        wilson_interval(0, 5)   # (0.0, 0.43)
        ```
    """
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None with no items or when it is undefined.

    When both raters used one and the same label on every item, the chance agreement is 1 and kappa is
    undefined: None is returned (observed agreement is then 1; report it beside).

    Example:
        ```python
        cohen_kappa([("A", "A"), ("B", "tie")])   # 0.33
        ```
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


def fleiss_kappa(items: Sequence[Mapping[str, int]]) -> float | None:
    """Fleiss' kappa: per item, how many raters chose each label (the same number of raters on every item).

    Returns None with fewer than two raters, no items, or no variation at all (undefined).

    Raises:
        ValueError: the items do not all have the same number of ratings.

    Example:
        ```python
        fleiss_kappa([{"A": 3}, {"A": 2, "tie": 1}, {"B": 3}])
        ```
    """
    if not items:
        return None
    raters = sum(items[0].values())
    if any(sum(item.values()) != raters for item in items):
        raise ValueError("Fleiss' kappa needs the same number of ratings on every item")
    if raters < 2:
        return None
    n = len(items)
    totals: Counter[str] = Counter()
    for item in items:
        totals.update(item)
    shares = {label: count / (n * raters) for label, count in totals.items()}
    per_item = [(sum(c * c for c in item.values()) - raters) / (raters * (raters - 1)) for item in items]
    observed = sum(per_item) / n
    expected = sum(p * p for p in shares.values())
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)
