"""Evaluation metrics and the similarity measures between two weight vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training_worker.domain.data import FloatArray


def mse(y: FloatArray, pred: FloatArray) -> float:
    """Mean squared error."""
    return float(np.mean((y - pred) ** 2))


def r2(y: FloatArray, pred: FloatArray) -> float:
    """Coefficient of determination; 0 for a constant target that is not predicted exactly."""
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def accuracy(labels: npt.NDArray[np.intp], predicted: npt.NDArray[np.intp]) -> float:
    """Fraction of correctly predicted labels."""
    return float(np.mean(labels == predicted))


def log_loss(labels: npt.NDArray[np.intp], proba: FloatArray) -> float:
    """Mean negative log-likelihood of the true class; probabilities clipped away from 0."""
    p = proba[np.arange(labels.shape[0]), labels]
    return float(-np.mean(np.log(np.clip(p, 1e-15, 1.0))))


def f1(labels: npt.NDArray[np.intp], predicted: npt.NDArray[np.intp], n_classes: int) -> float:
    """F1 of class 1 for a binary task, macro-averaged F1 over the classes otherwise."""
    classes = [1] if n_classes == 2 else list(range(n_classes))
    scores = []
    for k in classes:
        tp = float(np.sum((predicted == k) & (labels == k)))
        fp = float(np.sum((predicted == k) & (labels != k)))
        fn = float(np.sum((predicted != k) & (labels == k)))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0)
    return float(np.mean(scores))


@dataclass(frozen=True)
class Similarity:
    """How alike two weight vectors are: dot product, cosine (None if either is zero), L1 and L2 distances."""

    dot: float
    cosine: float | None
    l1: float
    l2: float


def similarity(a: FloatArray, b: FloatArray) -> Similarity:
    """The four similarity measures between a and b, flattened."""
    u, v = a.ravel(), b.ravel()
    dot = float(u @ v)
    norms = float(np.linalg.norm(u)) * float(np.linalg.norm(v))
    return Similarity(
        dot=dot,
        cosine=dot / norms if norms > 0.0 else None,
        l1=float(np.abs(u - v).sum()),
        l2=float(np.linalg.norm(u - v)),
    )
