"""Full-batch L-BFGS on the exact regularized objective, for paths where curvature pays.

The minimized objective is the descended data loss (half the MSE, log-loss or cross-entropy, as in `models`)
plus (λ/2)·Σ‖W_l‖² over every layer's weights, biases never penalized. scikit-learn's `LogisticRegression`
(lbfgs) minimizes the mean log-loss plus ‖w‖²/(2·C·n), the same problem at C = 1/(n·λ). An iteration counts as
an epoch (each costs about one pass over the data); the fit stops when the largest entry of the penalized
gradient is at most tol (sklearn's gtol, default 1e-4), when the objective stops decreasing (ftol 64 machine
epsilons, as sklearn's), or after `epochs` iterations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import OptimizeResult, minimize

from training_worker.domain.config import TrainConfig
from training_worker.domain.data import FloatArray
from training_worker.domain.errors import InvalidConfig
from training_worker.domain.models import Targets
from training_worker.domain.network import Network

DEFAULT_TOL = 1e-4
"""scikit-learn's LogisticRegression tol, used when the configuration sets none."""

_FTOL = 64 * float(np.finfo(float).eps)


IterationHook = Callable[[int, float, float | None, float], None]
"""Called after each iteration with (iteration 1-based, train loss, validation loss or None, weight L2 norm)."""


@dataclass
class QuasiNewtonTrace:
    """Per iteration: the reported training loss, validation loss (if any) and each layer's weight norm."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    layer_norms: list[tuple[float, ...]] = field(default_factory=list)
    converged: bool = False


def check_lbfgs(config: TrainConfig) -> None:
    """Raise InvalidConfig unless config is an objective L-BFGS minimizes: smooth (L2 or none), no early stopping."""
    if config.regularization.kind not in ("none", "l2") and config.regularization.lam > 0.0:
        raise InvalidConfig(f"lbfgs minimizes the L2-penalized objective, not {config.regularization.kind}")
    if config.early_stopping is not None:
        raise InvalidConfig("lbfgs runs to convergence; early stopping needs gd, sgd or adam")


def lbfgs(
    net: Network,
    X: FloatArray,
    T: Targets,
    validation: tuple[FloatArray, Targets] | None,
    config: TrainConfig,
    on_iteration: IterationHook | None = None,
) -> QuasiNewtonTrace:
    """Minimize the regularized objective from net's parameters, writing the minimizer back into net.

    on_iteration(iteration, train_loss, val_loss or None, norm) is called after each iteration; it may raise
    `Cancelled` to stop the fit.
    """
    check_lbfgs(config)
    lam = config.regularization.lam if config.regularization.kind == "l2" else 0.0
    problem = _Problem(net, X, T, lam)
    trace = QuasiNewtonTrace()

    def callback(theta: FloatArray) -> None:
        problem.unpack(theta)
        vloss = net.loss(*validation) if validation is not None else None
        norms = net.norms()
        trace.train_loss.append(problem.last_loss)
        trace.layer_norms.append(norms)
        if vloss is not None:
            trace.val_loss.append(vloss)
        if on_iteration is not None:
            on_iteration(len(trace.train_loss), problem.last_loss, vloss, math.hypot(*norms))

    result = minimize_lbfgs(problem.value_and_grad, problem.pack(), config, callback)
    problem.unpack(result.x)
    if not trace.train_loss:
        # Already optimal at the start: record the starting point as the one iteration.
        callback(result.x)
    trace.converged = bool(result.success)
    return trace


def minimize_lbfgs(
    value_and_grad: Callable[[FloatArray], tuple[float, FloatArray]],
    start: FloatArray,
    config: TrainConfig,
    callback: Callable[[FloatArray], None],
) -> OptimizeResult:
    """scipy's L-BFGS-B from start, at most config.epochs iterations, stopping as scikit-learn's lbfgs does."""
    options = {"maxiter": config.epochs, "maxls": 50, "gtol": config.tol or DEFAULT_TOL, "ftol": _FTOL}
    return minimize(value_and_grad, start, method="L-BFGS-B", jac=True, callback=callback, options=options)


class _Problem:
    """The objective over the network's parameters flattened into one vector, layer by layer (W then b)."""

    def __init__(self, net: Network, X: FloatArray, T: Targets, lam: float) -> None:
        self.net, self.X, self.T, self.lam = net, X, T, lam
        # Reported linear loss is the MSE; the descended one (whose gradient the network returns) is half of it.
        self.scale = 0.5 if net.objective.kind == "linear" else 1.0
        self.last_loss = math.nan

    def pack(self) -> FloatArray:
        """The parameters as one vector."""
        return np.concatenate([part.ravel() for layer in self.net.layers for part in layer])

    def unpack(self, theta: FloatArray) -> None:
        """Write theta into the network's arrays in place."""
        offset = 0
        for W, b in self.net.layers:
            for part in (W, b):
                part[...] = theta[offset : offset + part.size].reshape(part.shape)
                offset += part.size

    def value_and_grad(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """The regularized objective and its gradient at theta."""
        self.unpack(theta)
        loss, grads = self.net.loss_and_grad(self.X, self.T)
        self.last_loss = loss
        value = self.scale * loss
        parts: list[FloatArray] = []
        for (W, _), (gW, gb) in zip(self.net.layers, grads, strict=True):
            if self.lam > 0.0:
                value += 0.5 * self.lam * float(np.vdot(W, W))
                gW = gW + self.lam * W
            parts += [gW.ravel(), gb]
        return value, np.concatenate(parts)
