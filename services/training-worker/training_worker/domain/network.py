"""Fully connected networks: hidden layers with ReLU or tanh before the head of a linear, logistic or softmax model.

Layer l maps H_{l−1} (n, d_{l−1}) to H_l = act(H_{l−1}·W_l + b_l); the last layer gives the scores Z whose loss
the model's `Objective` defines (linear head: half the MSE, sigmoid head: log-loss, softmax head: cross-entropy).
A model without hidden layers is the plain linear, logistic or softmax model, trained from zero unless
a random start (init_std) is asked for.
Backpropagation is vectorised over the batch: one matrix product per layer forward and two backward.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from training_worker.domain.config import ActivationKind, InitKind, NetworkConfig
from training_worker.domain.data import FloatArray
from training_worker.domain.models import Objective, Targets

Layer = tuple[FloatArray, FloatArray]
"""Weights W (fan_in, fan_out) and bias b (fan_out,) of one layer."""

Gradients = list[Layer]


def activate(kind: ActivationKind, Z: FloatArray) -> FloatArray:
    """The activation of Z, computed in place."""
    if kind == "relu":
        np.maximum(Z, 0.0, out=Z)
    else:
        np.tanh(Z, out=Z)
    return Z


def _scale_by_derivative(kind: ActivationKind, D: FloatArray, H: FloatArray) -> None:
    """D ← D ⊙ act′, from the layer's output H: relu′ = [H > 0], tanh′ = 1 − H²."""
    if kind == "relu":
        D *= H > 0.0
    else:
        D *= 1.0 - H * H


def initial_layers(sizes: list[int], init: InitKind, rng: np.random.Generator) -> list[Layer]:
    """Random weights and (but for glorot_bias) zero biases for the layer sizes [inputs, hidden..., outputs].

    He: N(0, 2/fan_in), suited to ReLU; Xavier (Glorot): U(±√(6/(fan_in + fan_out))), suited to tanh;
    glorot_bias: Xavier's weights, then the biases from the same range, as scikit-learn's MLPs start (its
    `_init_coef` for ReLU and tanh).
    """
    layers: list[Layer] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        bias = np.zeros(fan_out)
        if init == "he":
            W = rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
        else:
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-bound, bound, size=(fan_in, fan_out))
            if init == "glorot_bias":
                bias = rng.uniform(-bound, bound, size=fan_out)
        layers.append((W, bias))
    return layers


class Network:
    """The trainable parameters of a model (hidden layers, then the head), updated in place by the optimizer."""

    def __init__(self, objective: Objective, layers: list[Layer], activation: ActivationKind = "relu") -> None:
        self.objective = objective
        self.layers = layers
        self.activation = activation

    @classmethod
    def initial(
        cls, objective: Objective, n_inputs: int, config: NetworkConfig | None, seed: int, init_std: float = 0.0
    ) -> Network:
        """The starting point of a fit, fixed by seed: config's initialisation, or N(0, init_std²) weights.

        Without hidden layers and init_std = 0 the weights start at zero.
        """
        rng = np.random.default_rng((seed, 4))
        if config is None:
            shape = (n_inputs, objective.n_outputs)
            W = rng.normal(0.0, init_std, size=shape) if init_std > 0.0 else np.zeros(shape)
            return cls(objective, [(W, np.zeros(objective.n_outputs))])
        sizes = [n_inputs, *config.hidden, objective.n_outputs]
        return cls(objective, initial_layers(sizes, config.init, rng), config.activation)

    def hidden(self, X: FloatArray) -> list[FloatArray]:
        """The input and the output of every hidden layer on the rows X."""
        outputs = [X]
        for W, b in self.layers[:-1]:
            Z = outputs[-1] @ W
            Z += b
            outputs.append(activate(self.activation, Z))
        return outputs

    def scores(self, X: FloatArray) -> FloatArray:
        """The head's scores on the rows X."""
        W, b = self.layers[-1]
        Z = self.hidden(X)[-1] @ W
        Z += b
        return Z

    def loss(self, X: FloatArray, T: Targets) -> float:
        """The reported data loss on the rows X."""
        return self.objective.loss_from_scores(self.scores(X), T)

    def loss_and_grad(self, X: FloatArray, T: Targets) -> tuple[float, Gradients]:
        """The reported loss on the rows X and the gradient of the descended data loss, layer by layer."""
        if len(self.layers) == 1:
            W, b = self.layers[0]
            loss, gW, gb = self.objective.loss_and_grad(W, b, X, T)
            return loss, [(gW, gb)]
        outputs = self.hidden(X)
        W, b = self.layers[-1]
        Z = outputs[-1] @ W
        Z += b
        loss, D = self.objective.scores_loss_and_grad(Z, T)
        grads: Gradients = []
        for index in range(len(self.layers) - 1, -1, -1):
            H = outputs[index]
            grads.append((H.T @ D, D.sum(axis=0)))
            if index > 0:
                D = D @ self.layers[index][0].T
                _scale_by_derivative(self.activation, D, H)
        grads.reverse()
        return loss, grads

    def norms(self) -> tuple[float, ...]:
        """The L2 (Frobenius) norm of each layer's weights, biases excluded."""
        return tuple(float(np.linalg.norm(W)) for W, _ in self.layers)

    def copy(self) -> list[Layer]:
        """A copy of the parameters."""
        return [(W.copy(), b.copy()) for W, b in self.layers]

    def restore(self, layers: list[Layer]) -> None:
        """Set the parameters in place to layers."""
        for (W, b), (W0, b0) in zip(self.layers, layers, strict=True):
            W[...], b[...] = W0, b0
