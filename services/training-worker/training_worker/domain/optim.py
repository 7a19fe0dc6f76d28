"""Learning-rate schedules and the update directions of gradient descent, momentum SGD and Adam."""

from __future__ import annotations

import math

import numpy as np

from training_worker.domain.config import OptimizerConfig, ScheduleConfig
from training_worker.domain.data import FloatArray


def learning_rate(schedule: ScheduleConfig, base_lr: float, epoch: int, epochs: int) -> float:
    """The learning rate of epoch (0-based) under schedule."""
    if schedule.kind == "constant":
        return base_lr
    if schedule.kind == "step":
        return base_lr * schedule.gamma ** (epoch // schedule.step_size)
    progress = epoch / max(1, epochs - 1)
    return schedule.min_lr + (base_lr - schedule.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Direction:
    """Turns a gradient into an update direction; the step is w ← w − lr·direction."""

    def __call__(self, gW: FloatArray, gb: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The direction for the gradient (gW, gb); plain gradient descent returns it unchanged."""
        return gW, gb


class Momentum(Direction):
    """Heavy-ball momentum: v ← μ·v + g, direction v."""

    def __init__(self, mu: float, W: FloatArray, b: FloatArray) -> None:
        self.mu = mu
        self.vW = np.zeros_like(W)
        self.vb = np.zeros_like(b)

    def __call__(self, gW: FloatArray, gb: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The updated velocity."""
        self.vW *= self.mu
        self.vW += gW
        self.vb *= self.mu
        self.vb += gb
        return self.vW, self.vb


class Adam(Direction):
    """Adam (Kingma & Ba): bias-corrected first moment over the root of the second moment."""

    def __init__(self, beta1: float, beta2: float, eps: float, W: FloatArray, b: FloatArray) -> None:
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.mW, self.vW = np.zeros_like(W), np.zeros_like(W)
        self.mb, self.vb = np.zeros_like(b), np.zeros_like(b)

    def __call__(self, gW: FloatArray, gb: FloatArray) -> tuple[FloatArray, FloatArray]:
        """m̂ / (√v̂ + ε) for the weights and the bias."""
        self.t += 1
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        return (
            self._moment(self.mW, self.vW, gW, c1, c2),
            self._moment(self.mb, self.vb, gb, c1, c2),
        )

    def _moment(self, m: FloatArray, v: FloatArray, g: FloatArray, c1: float, c2: float) -> FloatArray:
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * g * g
        direction: FloatArray = (m / c1) / (np.sqrt(v / c2) + self.eps)
        return direction


def direction_for(config: OptimizerConfig, W: FloatArray, b: FloatArray) -> Direction:
    """A fresh update rule for config, with state shaped like W and b."""
    if config.kind == "adam":
        return Adam(config.beta1, config.beta2, config.eps, W, b)
    if config.kind == "sgd" and config.momentum > 0.0:
        return Momentum(config.momentum, W, b)
    return Direction()
