"""One fit: iterative descent with regularization, early stopping and cancellation, or the closed-form ridge.

Regularization never touches the bias. With learning rate η_t (after the schedule) and gradient g of the
data loss, one step for the weights is

* none:      w ← w − η_t·d(g)
* l2:        w ← w − η_t·d(g + λw)             (coupled: λw goes through momentum / Adam's moments)
* decoupled: w ← (1 − η_t·λ)·w − η_t·d(g)      (AdamW-style, PyTorch convention: the decay is scaled by η_t)
* l1:        w ← soft_threshold(w − η_t·d(g), η_t·λ)   (proximal gradient)

where d(·) is the optimizer's direction (identity for GD and SGD without momentum). For d = identity,
coupled and decoupled are the same map exactly: w − η(g + λw) = (1 − ηλ)w − ηg, so λ' = λ in this
convention; under the unscaled convention w ← w − λ'·w the equivalent is λ' = η·λ. With Adam the two differ,
because d rescales λw coordinate by coordinate (Loshchilov & Hutter, 2019).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from training_worker.domain.config import (
    ActivationKind,
    EarlyStoppingConfig,
    OptimizerConfig,
    RegularizationConfig,
    TrainConfig,
)
from training_worker.domain.data import Dataset, FloatArray, IndexArray
from training_worker.domain.errors import Cancelled, Diverged, InvalidConfig
from training_worker.domain.features import FeaturePipeline
from training_worker.domain.models import Objective, Targets, sigmoid, softmax
from training_worker.domain.network import Layer, Network, activate
from training_worker.domain.optim import direction_for, learning_rate
from training_worker.domain.quasi_newton import lbfgs
from training_worker.domain.ridge_path import centred_gram

EpochHook = Callable[[int, float, float | None, float], None]
"""Called after each epoch with (epoch 1-based, train loss, validation loss or None, weight L2 norm)."""

StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class History:
    """Per-epoch losses, the weights' L2 (Frobenius) norm, over all layers and per layer, and the learning rate.

    train_loss is the mean of the epoch's mini-batch losses, each taken at the weights its gradient was
    computed at (Keras' convention; for full batch, the loss at the start of the epoch): it comes free with
    the gradients, where an end-of-epoch value would cost another pass over the data. val_loss and
    weight_norm are measured at the end of the epoch.
    """

    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    weight_norm: tuple[float, ...]
    lr: tuple[float, ...]
    layer_norms: tuple[tuple[float, ...], ...] = ()
    """Per epoch, the norm of each layer's weights (one layer for a model without hidden layers)."""

    @classmethod
    def of(
        cls, train_loss: list[float], val_loss: list[float], layer_norms: list[tuple[float, ...]], lr: list[float]
    ) -> History:
        """The history of a descent, the total norm per epoch taken over the layers."""
        total = tuple(math.hypot(*norms) for norms in layer_norms)
        return cls(tuple(train_loss), tuple(val_loss), total, tuple(lr), tuple(layer_norms))


@dataclass(frozen=True, eq=False)
class FittedModel:
    """A trained model: the feature pipeline, any hidden layers, and the head's weights W (d, K) and bias b (K,)."""

    kind: str
    features: FeaturePipeline
    W: FloatArray
    b: FloatArray
    class_names: tuple[str, ...] = ()
    hidden: tuple[Layer, ...] = ()
    activation: ActivationKind = "relu"

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every layer, the head last."""
        return (*self.hidden, (self.W, self.b))

    def weight_vector(self) -> FloatArray:
        """Every layer's weights, biases excluded, as one vector."""
        return np.concatenate([W.ravel() for W, _ in self.layers])

    def scores(self, X: FloatArray) -> FloatArray:
        """Raw scores HW + b on raw (untransformed) features, H the last hidden layer's output (or the features)."""
        H = self.features.transform(X)
        for W, b in self.hidden:
            H = activate(self.activation, H @ W + b)
        return H @ self.W + self.b

    def predict(self, X: FloatArray) -> FloatArray:
        """Regression values, or predicted class indices as floats."""
        Z = self.scores(X)
        if self.kind == "linear":
            values: FloatArray = Z[:, 0]
            return values
        if self.kind == "logistic":
            return (Z[:, 0] > 0.0).astype(np.float64)
        labels: FloatArray = np.argmax(Z, axis=1).astype(np.float64)
        return labels

    def predict_proba(self, X: FloatArray) -> FloatArray:
        """Class probabilities (n, K) for a classifier."""
        Z = self.scores(X)
        if self.kind == "logistic":
            p = sigmoid(Z[:, 0])
            return np.column_stack([1.0 - p, p])
        if self.kind == "softmax":
            return softmax(Z)
        raise InvalidConfig("a regression model has no class probabilities")


@dataclass(frozen=True)
class FitResult:
    """The outcome of one fit."""

    model: FittedModel
    history: History
    epochs_run: int
    stopped_early: bool
    best_epoch: int


class Updater:
    """Applies one regularized optimizer step to W and b in place."""

    def __init__(
        self, optimizer: OptimizerConfig, regularization: RegularizationConfig, W: FloatArray, b: FloatArray
    ) -> None:
        self.W, self.b = W, b
        self.direction = direction_for(optimizer, W, b)
        self.kind = regularization.kind if regularization.lam > 0.0 else "none"
        self.lam = regularization.lam

    def step(self, gW: FloatArray, gb: FloatArray, lr: float, *, track: bool = False) -> float:
        """One step from the data-loss gradient (gW, gb) at learning rate lr.

        With track, returns the largest change of a weight or bias divided by lr (for gradient descent the
        largest entry of the penalized, or for l1 the proximal, gradient); else 0.
        """
        before = (self.W.copy(), self.b.copy()) if track else None
        if self.kind == "l2":
            gW = gW + self.lam * self.W
        dW, db = self.direction(gW, gb)
        if self.kind == "decoupled":
            self.W *= 1.0 - lr * self.lam
        self.W -= lr * dW
        self.b -= lr * db
        if self.kind == "l1":
            threshold = lr * self.lam
            np.copyto(self.W, np.sign(self.W) * np.maximum(np.abs(self.W) - threshold, 0.0))
        if before is None:
            return 0.0
        moved = max(float(np.max(np.abs(self.W - before[0]), initial=0.0)), float(np.max(np.abs(self.b - before[1]))))
        return moved / lr


def fit(
    train: Dataset,
    val: Dataset | None,
    config: TrainConfig,
    *,
    on_epoch: EpochHook | None = None,
    should_stop: StopCheck | None = None,
) -> FitResult:
    """Fit config.model on train, reporting (and early-stopping on) the loss on val if given."""
    features = FeaturePipeline.fit(train.X, config.features)
    X = features.transform(train.X)
    Xv = features.transform(val.X) if val is not None else None
    objective = Objective.for_model(config.model, max(train.n_classes, 2))
    T = objective.targets(train.y)
    Tv = objective.targets(val.y) if val is not None else None
    if config.optimizer.kind == "closed_form":
        W, b, history = _closed_form(X, T, Xv, Tv, objective, config, on_epoch, should_stop)
        model = FittedModel(config.model, features, W, b, train.class_names)
        return FitResult(model, history, 1, False, 1)
    layers, history, epochs_run, stopped, best = descend(
        X, T, Xv, Tv, objective, config, on_epoch=on_epoch, should_stop=should_stop
    )
    (*hidden, (W, b)) = layers
    activation = config.network.activation if config.network is not None else "relu"
    model = FittedModel(config.model, features, W, b, train.class_names, tuple(hidden), activation)
    return FitResult(model, history, epochs_run, stopped, best)


def descend(
    X: FloatArray,
    T: Targets,
    Xv: FloatArray | None,
    Tv: Targets | None,
    objective: Objective,
    config: TrainConfig,
    *,
    on_epoch: EpochHook | None = None,
    should_stop: StopCheck | None = None,
    start: Network | None = None,
) -> tuple[list[Layer], History, int, bool, int]:
    """Iterative training on model features from start (trained in place) or `Network.initial` for config.

    Returns (layers, history, epochs run, stopped early, best epoch).
    """
    if config.early_stopping is not None and (Xv is None or Tv is None):
        raise InvalidConfig("early stopping needs validation data (a validation split > 0)")
    net = start or Network.initial(objective, X.shape[1], config.network, config.seed, config.init_std)
    if config.optimizer.kind == "lbfgs":
        return _quasi_newton(net, X, T, None if Xv is None or Tv is None else (Xv, Tv), config, on_epoch, should_stop)
    epochs = _Epochs(net, X, T, config)
    patience = _Patience(config.early_stopping, net)
    train_loss, val_loss, lrs = list[float](), list[float](), list[float]()
    norms: list[tuple[float, ...]] = []
    epoch = 0
    # A diverging run overflows; that is reported as Diverged at the end of its epoch, not as a warning.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, config.epochs + 1):
            if should_stop is not None and should_stop():
                raise Cancelled(epoch)
            lr = learning_rate(config.schedule, config.optimizer.lr, epoch - 1, config.epochs)
            loss = epochs.run(lr)
            vloss = net.loss(Xv, Tv) if Xv is not None and Tv is not None else None
            layer_norms = net.norms()
            norm = math.hypot(*layer_norms)
            if not (np.isfinite(loss) and np.isfinite(norm)):
                raise Diverged(f"training diverged at epoch {epoch} (learning rate {lr:g}); lower the learning rate")
            train_loss.append(loss)
            norms.append(layer_norms)
            lrs.append(lr)
            if vloss is not None:
                val_loss.append(vloss)
            if on_epoch is not None:
                on_epoch(epoch, loss, vloss, norm)
            if (config.tol is not None and epochs.moved <= config.tol) or patience.exhausted(vloss, epoch):
                break
    best_epoch = patience.finish(epoch)
    return net.layers, History.of(train_loss, val_loss, norms, lrs), epoch, patience.stopped, best_epoch


def _quasi_newton(
    net: Network,
    X: FloatArray,
    T: Targets,
    validation: tuple[FloatArray, Targets] | None,
    config: TrainConfig,
    on_epoch: EpochHook | None,
    should_stop: StopCheck | None,
) -> tuple[list[Layer], History, int, bool, int]:
    """`descend` by L-BFGS: each iteration is reported as an epoch, with no learning rate (recorded as 0)."""

    def report(iteration: int, loss: float, vloss: float | None, norm: float) -> None:
        if on_epoch is not None:
            on_epoch(iteration, loss, vloss, norm)
        if should_stop is not None and should_stop():
            raise Cancelled(iteration + 1)

    if should_stop is not None and should_stop():
        raise Cancelled(1)
    trace = lbfgs(net, X, T, validation, config, report)
    iterations = len(trace.train_loss)
    history = History.of(trace.train_loss, trace.val_loss, trace.layer_norms, [0.0] * iterations)
    return net.layers, history, iterations, False, iterations


class _Patience:
    """Early stopping: remembers the best validation loss and its weights, and says when patience runs out."""

    def __init__(self, config: EarlyStoppingConfig | None, net: Network) -> None:
        self.config, self.net = config, net
        self.best_loss, self.best_epoch, self.waited = np.inf, 0, 0
        self.best = net.copy()
        self.stopped = False

    def exhausted(self, vloss: float | None, epoch: int) -> bool:
        """Record epoch's validation loss; True once it has not improved for patience epochs."""
        if self.config is None or vloss is None:
            return False
        if vloss < self.best_loss - self.config.min_delta:
            self.best_loss, self.best_epoch, self.waited = vloss, epoch, 0
            self.best = self.net.copy()
            return False
        self.waited += 1
        self.stopped = self.waited >= self.config.patience
        return self.stopped

    def finish(self, last_epoch: int) -> int:
        """Restore the best weights if asked; the epoch whose weights the fit keeps."""
        if self.config is not None and self.config.restore_best and self.best_epoch > 0:
            self.net.restore(self.best)
            return self.best_epoch
        return last_epoch


class _Epochs:
    """One epoch of regularized updates over the training rows: full batch, or shuffled mini-batches."""

    def __init__(self, net: Network, X: FloatArray, T: Targets, config: TrainConfig) -> None:
        self.net, self.X, self.T = net, X, T
        self.updaters = [Updater(config.optimizer, config.regularization, W, b) for W, b in net.layers]
        n = X.shape[0]
        opt = config.optimizer
        self.batch = n if opt.kind == "gd" or opt.batch_size is None else opt.batch_size
        self.rng = np.random.default_rng((config.seed, 3))
        self.track = config.tol is not None
        self.moved = np.inf
        self.X_batch = np.empty((min(self.batch, n), X.shape[1]))
        self.T_batch = np.empty((min(self.batch, n), *T.shape[1:]), dtype=T.dtype)

    def run(self, lr: float) -> float:
        """One epoch at learning rate lr; the mean of its mini-batch losses."""
        X, T, batch = self.X, self.T, self.batch
        n = X.shape[0]
        if batch >= n:
            return self._step(X, T, lr)
        loss = 0.0
        order: IndexArray = self.rng.permutation(n)
        for start in range(0, n, batch):
            rows = order[start : start + batch]
            if rows.size == batch:
                # Gathering into reused buffers saves an allocation per batch: the gather is most of
                # the cost of an SGD epoch on tall data.
                np.take(X, rows, axis=0, out=self.X_batch)
                np.take(T, rows, axis=0, out=self.T_batch)
                loss += self._step(self.X_batch, self.T_batch, lr) * rows.size
            else:
                loss += self._step(X[rows], T[rows], lr) * rows.size
        return loss / n

    def _step(self, X: FloatArray, T: Targets, lr: float) -> float:
        loss, grads = self.net.loss_and_grad(X, T)
        moved = [
            updater.step(gW, gb, lr, track=self.track) for updater, (gW, gb) in zip(self.updaters, grads, strict=True)
        ]
        self.moved = max(moved)
        return loss


def _closed_form(
    X: FloatArray,
    T: Targets,
    Xv: FloatArray | None,
    Tv: Targets | None,
    objective: Objective,
    config: TrainConfig,
    on_epoch: EpochHook | None,
    should_stop: StopCheck | None,
) -> tuple[FloatArray, FloatArray, History]:
    if config.model != "linear":
        raise InvalidConfig(f"the closed-form solver is for linear models, not {config.model}")
    reg = config.regularization
    if reg.kind not in ("none", "l2") and reg.lam > 0.0:
        raise InvalidConfig(f"the closed-form solver minimizes the L2 (ridge) objective, not {reg.kind}")
    if should_stop is not None and should_stop():
        raise Cancelled(1)
    w, bias = ridge_closed_form(X, T[:, 0], reg.lam if reg.kind == "l2" else 0.0)
    W, b = w[:, None], np.array([bias])
    loss = objective.loss(W, b, X, T)
    vloss = objective.loss(W, b, Xv, Tv) if Xv is not None and Tv is not None else None
    norm = float(np.linalg.norm(W))
    if on_epoch is not None:
        on_epoch(1, loss, vloss, norm)
    history = History((loss,), () if vloss is None else (vloss,), (norm,), (0.0,), ((norm,),))
    return W, b, history


def ridge_closed_form(X: FloatArray, y: FloatArray, lam: float) -> tuple[FloatArray, float]:
    """Exact minimizer (w, b) of (1/2n)‖Xw + b − y‖² + (λ/2)‖w‖², the bias unpenalized.

    Setting the gradient to zero gives b = ȳ − x̄·w and (XcᵀXc + nλI)w = Xcᵀyc with Xc, yc the centred
    data; this is scikit-learn's Ridge(alpha=n·λ, fit_intercept=True), whose objective ‖y − Xw − b‖² + α‖w‖²
    is 2n times ours.
    """
    n, d = X.shape
    x_mean = X.mean(axis=0)
    y_mean = float(y.mean())
    yc = y - y_mean
    # Xcᵀyc = Xᵀyc because the centred yc sums to zero, so the right-hand side needs no centred copy of X.
    rhs = X.T @ yc
    gram = centred_gram(X, x_mean)
    if lam > 0.0:
        gram.flat[:: d + 1] += n * lam
        try:
            L = np.linalg.cholesky(gram)
            w = np.linalg.solve(L.T, np.linalg.solve(L, rhs))
        except np.linalg.LinAlgError:
            w = np.linalg.lstsq(gram, rhs, rcond=None)[0]
    else:
        # Without a penalty the system may be singular (more features than rows): take the minimum-norm
        # least-squares solution, which is also what λ → 0⁺ converges to.
        w = np.linalg.lstsq(X - x_mean, yc, rcond=None)[0]
    return w, y_mean - float(x_mean @ w)
