"""Model objectives: the mean data loss of linear, logistic and softmax regression and its gradient.

Weights are stored as W (d, K) and the bias as b (K,): K = 1 for linear and logistic regression and K = the
number of classes for softmax. The losses the optimizer descends are

* linear:   (1/2n)·‖Xw + b − y‖²            (half the MSE, so the gradient is Xᵀr/n),
* logistic: (1/n)·Σ log(1 + e^z) − t·z       (mean log-loss, z = Xw + b),
* softmax:  (1/n)·Σ logsumexp(z) − z_t       (mean cross-entropy),

to which the regularizer adds (λ/2)‖W‖² (or λ‖W‖₁); the bias is never penalized. Reported losses are the
plain data losses: MSE for regression and log-loss for classification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from training_worker.domain.config import ModelKind
from training_worker.domain.data import FloatArray

Targets = npt.NDArray[Any]


def softplus(z: FloatArray) -> FloatArray:
    """log(1 + e^z), without overflow for large |z|.

    Written as max(z, 0) + log1p(e^−|z|) rather than np.logaddexp(0, z): the same values to rounding, several
    times faster (numpy's logaddexp is not vectorised), and it is most of a logistic loss evaluation.
    """
    L: FloatArray = np.exp(-np.abs(z))
    np.log1p(L, out=L)
    L += np.maximum(z, 0.0)
    return L


def sigmoid(z: FloatArray) -> FloatArray:
    """The logistic function, without overflow for large |z|."""
    p: FloatArray = np.exp(-softplus(-z))
    return p


def softmax(Z: FloatArray) -> FloatArray:
    """Row-wise softmax, shifted by the row maximum for stability."""
    E: FloatArray = np.exp(Z - Z.max(axis=1, keepdims=True))
    E /= E.sum(axis=1, keepdims=True)
    return E


@dataclass(frozen=True)
class Objective:
    """The data loss of one model kind, with K outputs."""

    kind: ModelKind
    n_outputs: int

    @classmethod
    def for_model(cls, kind: ModelKind, n_classes: int) -> Objective:
        """The objective of kind; n_classes matters only for softmax."""
        return cls(kind, n_classes if kind == "softmax" else 1)

    def targets(self, y: FloatArray) -> Targets:
        """y encoded as the objective expects: a column (n, 1), or integer labels (n,) for softmax."""
        if self.kind == "softmax":
            return y.astype(np.intp)
        return y.reshape(-1, 1)

    def loss_and_grad(
        self, W: FloatArray, b: FloatArray, X: FloatArray, T: Targets
    ) -> tuple[float, FloatArray, FloatArray]:
        """The reported loss at (W, b) on the rows X, and the gradient (∂W, ∂b) of the descended loss."""
        Z = X @ W
        Z += b
        loss, D = self.scores_loss_and_grad(Z, T)
        return loss, X.T @ D, D.sum(axis=0)

    def scores_loss_and_grad(self, Z: FloatArray, T: Targets) -> tuple[float, FloatArray]:
        """The reported loss at the scores Z and the gradient of the descended loss in Z; Z is overwritten."""
        n = Z.shape[0]
        if self.kind == "linear":
            Z -= T
            loss = float(np.vdot(Z, Z)) / n
        elif self.kind == "logistic":
            # log(1 + e^z) − t·z = L + (1 − t)·z with L = log(1 + e^−z), and σ(z) = e^−L: one softplus for both.
            L = softplus(-Z)
            loss = float(np.mean(L + (1.0 - T) * Z))
            Z = np.exp(-L)
            Z -= T
        else:
            Z -= Z.max(axis=1, keepdims=True)
            E = np.exp(Z)
            total = E.sum(axis=1, keepdims=True)
            rows = np.arange(n)
            loss = float(np.mean(np.log(total[:, 0]) - Z[rows, T]))
            Z = E / total
            Z[rows, T] -= 1.0
        Z /= n
        return loss, Z

    def loss(self, W: FloatArray, b: FloatArray, X: FloatArray, T: Targets) -> float:
        """The reported data loss: MSE for linear regression, mean log-loss otherwise."""
        Z = X @ W
        Z += b
        return self.loss_from_scores(Z, T)

    def loss_from_scores(self, Z: FloatArray, T: Targets) -> float:
        """The reported data loss from the scores Z = XW + b."""
        if self.kind == "linear":
            return float(np.mean((Z - T) ** 2))
        if self.kind == "logistic":
            return float(np.mean(softplus(Z) - T * Z))
        shifted = Z - Z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(shifted).sum(axis=1))
        return float(np.mean(lse - shifted[np.arange(Z.shape[0]), T]))
