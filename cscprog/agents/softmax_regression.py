"""Multinomial logistic regression in numpy: the small classifier over sentence embeddings.

:func:`fit_softmax` standardizes the features (mean and spread of the training rows), then fits one weight
vector per class by full-batch Adam on the cross-entropy with an L2 penalty. It is deterministic (zero start,
no sampling), needs no dependency beyond numpy and fits a few thousand 384-dimensional rows in seconds.

Example:
    ```python
    import numpy as np
    from cscprog.agents.softmax_regression import fit_softmax

    fitted = fit_softmax(np.random.default_rng(0).normal(size=(40, 5)), np.arange(40) % 2, classes=2)
    fitted.probabilities(np.zeros((1, 5))).shape   # (1, 2)
    ```
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SoftmaxRegression", "fit_softmax"]


@dataclass(frozen=True)
class SoftmaxRegression:
    """A fitted model: ``softmax(((x - mean) / scale) @ weights + bias)``.

    Attributes:
        mean: Per-feature mean of the training rows.
        scale: Per-feature standard deviation of the training rows (never 0).
        weights: ``(features, classes)``.
        bias: ``(classes,)``.
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per input row.

        Raises:
            ValueError: the rows do not have the fitted number of features.

        Example:
            ```python
            fitted.probabilities(x).argmax(axis=1)
            ```
        """
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.mean.shape[0]:
            raise ValueError(f"expected rows of {self.mean.shape[0]} features, got shape {features.shape}")
        logits = ((features - self.mean) / self.scale) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def fit_softmax(
    features: np.ndarray, labels: np.ndarray, *, classes: int, l2: float = 0.3, steps: int = 300,
    learning_rate: float = 0.005,
) -> SoftmaxRegression:
    """Fit multinomial logistic regression (see the module docstring).

    Args:
        features: ``(rows, features)``.
        labels: ``(rows,)`` class indices in ``[0, classes)``.
        classes: How many classes (a class with no row keeps a low bias).
        l2: The L2 penalty on the weights (on standardized features).
        steps: Full-batch Adam steps.
        learning_rate: Adam's step size.

    Raises:
        ValueError: no rows, mismatched lengths, a label outside the classes, or a non-positive setting.

    Example:
        ```python
        fitted = fit_softmax(x, y, classes=8, l2=0.3)
        ```
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or x.shape[0] == 0 or y.shape != (x.shape[0],):
        raise ValueError(f"need (rows, features) and (rows,) with rows > 0, got {x.shape} and {y.shape}")
    if classes < 1 or y.min() < 0 or y.max() >= classes:
        raise ValueError(f"labels must lie in [0, {classes}), got {y.min()}..{y.max()}")
    if l2 < 0 or steps < 1 or learning_rate <= 0:
        raise ValueError(f"need l2 >= 0, steps >= 1, learning_rate > 0; got {l2}, {steps}, {learning_rate}")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    onehot = np.eye(classes)[y]
    params = [np.zeros((x.shape[1], classes)), np.zeros(classes)]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    for step in range(1, steps + 1):
        logits = z @ params[0] + params[1]
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        error = (probs - onehot) / len(y)
        grads = [z.T @ error + l2 * params[0], error.sum(axis=0)]
        for index, grad in enumerate(grads):
            first[index] = 0.9 * first[index] + 0.1 * grad
            second[index] = 0.999 * second[index] + 0.001 * grad * grad
            corrected = first[index] / (1 - 0.9**step)
            params[index] -= learning_rate * corrected / (np.sqrt(second[index] / (1 - 0.999**step)) + 1e-8)
    return SoftmaxRegression(mean=mean, scale=scale, weights=params[0], bias=params[1])
