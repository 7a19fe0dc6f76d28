"""Every fold's L-BFGS fit at one λ as one problem, so that one pass over the data serves all folds.

The k-fold fits of a model without hidden layers are independent problems on row subsets of one matrix.
With the folds' weights side by side, the scores of every fold on every row are one product Φ·[V_1 … V_k] and
the gradients another, Φᵀ·[D_1 … D_k]: the data is read once per iteration instead of once per fold, and
reading it is what those products cost when the model has few outputs. Each fold keeps its own
standardization, folded into its weights (x′ = (φ − μ)/σ gives x′·W + b = φ·(W/σ) + (b − μ·(W/σ))), its own
training rows and its penalty on W. The summed objective is separable, so its minimizer is every fold's, and
L-BFGS's stop on the largest gradient entry holds each fold to tol. The validation rows' scores come with the
same product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from training_worker.domain.config import TrainConfig
from training_worker.domain.data import Dataset, FloatArray, IndexArray
from training_worker.domain.errors import Cancelled
from training_worker.domain.features import FeaturePipeline, expand
from training_worker.domain.models import Objective, Targets
from training_worker.domain.quasi_newton import check_lbfgs, minimize_lbfgs

FoldLosses = Callable[[int, int, float, float, float], None]
"""Called per fold after each λ with (fold, iterations, training loss, validation loss, weight norm)."""


@dataclass(frozen=True, eq=False)
class FoldStack:
    """The expanded features of the training part once, and each fold's rows and standardization."""

    Phi: FloatArray
    T: Targets
    folds: list[tuple[IndexArray, IndexArray]]
    mean: FloatArray
    """(folds, d): each fold's feature means (zero when not standardizing)."""
    scale: FloatArray
    """(folds, d): each fold's feature scales (one when not standardizing)."""
    objective: Objective

    @classmethod
    def of(cls, train: Dataset, config: TrainConfig, folds: list[tuple[IndexArray, IndexArray]]) -> FoldStack:
        """The stack of train's folds, each standardized on its training rows as `FeaturePipeline` would."""
        Phi = expand(train.X, config.features.degree)
        mean, scale = np.zeros((len(folds), Phi.shape[1])), np.ones((len(folds), Phi.shape[1]))
        for k, (rows, _) in enumerate(folds):
            pipeline = FeaturePipeline.fit(train.X[rows], config.features)
            if pipeline.mean is not None and pipeline.scale is not None:
                mean[k], scale[k] = pipeline.mean, pipeline.scale
        objective = Objective.for_model(config.model, max(train.n_classes, 2))
        return cls(Phi, objective.targets(train.y), folds, mean, scale, objective)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(folds, features, outputs)."""
        return len(self.folds), self.Phi.shape[1], self.objective.n_outputs


class _Stacked:
    """The summed objective of every fold at one λ; θ holds each fold's W (d, K) then b (K,), fold by fold."""

    def __init__(self, stack: FoldStack, lam: float) -> None:
        self.stack, self.lam = stack, lam

    def split(self, theta: FloatArray) -> tuple[FloatArray, FloatArray]:
        """W (folds, d, K) and b (folds, K) of theta (views)."""
        folds, d, K = self.stack.shape
        blocks = theta.reshape(folds, (d + 1) * K)
        return blocks[:, : d * K].reshape(folds, d, K), blocks[:, d * K :]

    def scores(self, theta: FloatArray) -> FloatArray:
        """(n, folds·K): every fold's scores on every row, from one product over the data."""
        W, b = self.split(theta)
        V = W / self.stack.scale[:, :, None]
        c = b - np.einsum("fd,fdk->fk", self.stack.mean, V)
        Z: FloatArray = self.stack.Phi @ V.transpose(1, 0, 2).reshape(V.shape[1], -1)
        Z += c.ravel()
        return Z

    def value_and_grad(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """The summed penalized objective and its gradient at theta."""
        stack, (folds, d, K) = self.stack, self.stack.shape
        W, _ = self.split(theta)
        Z = self.scores(theta)
        D = np.zeros_like(Z)
        value, sums = 0.0, np.empty((folds, K))
        scale = 0.5 if stack.objective.kind == "linear" else 1.0
        for k, (rows, _) in enumerate(stack.folds):
            loss, Dk = stack.objective.scores_loss_and_grad(Z[rows, k * K : (k + 1) * K], stack.T[rows])
            D[rows, k * K : (k + 1) * K] = Dk
            sums[k] = Dk.sum(axis=0)
            value += scale * loss + 0.5 * self.lam * float(np.vdot(W[k], W[k]))
        G = (stack.Phi.T @ D).reshape(d, folds, K).transpose(1, 0, 2)
        gW = (G - stack.mean[:, :, None] * sums[:, None, :]) / stack.scale[:, :, None] + self.lam * W
        return value, np.concatenate([gW.reshape(folds, d * K), sums], axis=1).ravel()

    def losses(self, theta: FloatArray) -> list[tuple[float, float]]:
        """Each fold's reported training and validation loss at theta."""
        Z, K, objective = self.scores(theta), self.stack.objective.n_outputs, self.stack.objective
        return [
            (
                objective.loss_from_scores(Z[rows, k * K : (k + 1) * K], self.stack.T[rows]),
                objective.loss_from_scores(Z[held, k * K : (k + 1) * K], self.stack.T[held]),
            )
            for k, (rows, held) in enumerate(self.stack.folds)
        ]


def fold_path(
    stack: FoldStack,
    config: TrainConfig,
    lambdas: list[float],
    warm_start: bool,
    on_lambda: Callable[[int], FoldLosses],
    should_stop: Callable[[], bool] | None,
) -> None:
    """Fit every fold at each λ in the order given, each λ from the previous one's solution if warm_start.

    on_lambda(i) gives the report for the i-th λ of the list; cancellation is checked after every iteration.
    """
    check_lbfgs(config)
    folds, d, K = stack.shape
    theta = np.zeros(folds * (d + 1) * K)
    for i, lam in enumerate(lambdas):
        problem = _Stacked(stack, lam if config.regularization.kind == "l2" else 0.0)
        iterations = 0

        def callback(_: FloatArray) -> None:
            nonlocal iterations
            iterations += 1
            if should_stop is not None and should_stop():
                raise Cancelled(iterations + 1)

        start = theta if warm_start else np.zeros_like(theta)
        theta = minimize_lbfgs(problem.value_and_grad, start, config, callback).x
        report = on_lambda(i)
        W, _ = problem.split(theta)
        for k, (train_loss, val_loss) in enumerate(problem.losses(theta)):
            report(k, max(1, iterations), train_loss, val_loss, float(np.linalg.norm(W[k])))
