"""Plain, immutable training configuration: what the domain needs, free of any message schema."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

ModelKind = Literal["linear", "logistic", "softmax"]
ModelLabel = Literal["linear", "logistic", "softmax", "polynomial", "mlp"]
ActivationKind = Literal["relu", "tanh"]
InitKind = Literal["he", "xavier", "glorot_bias"]
OptimizerKind = Literal["gd", "sgd", "adam", "closed_form", "lbfgs"]
ScheduleKind = Literal["constant", "step", "cosine"]
RegularizationKind = Literal["none", "l2", "decoupled", "l1"]
ValidationKind = Literal["kfold", "holdout", "loo"]


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and its hyper-parameters; batch_size None means full batch."""

    kind: OptimizerKind = "gd"
    lr: float = 0.1
    momentum: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    batch_size: int | None = None


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule evaluated once per epoch."""

    kind: ScheduleKind = "constant"
    step_size: int = 100
    gamma: float = 0.5
    min_lr: float = 0.0


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Stop when the validation loss has not improved by min_delta for patience epochs."""

    patience: int = 20
    min_delta: float = 0.0
    restore_best: bool = True


@dataclass(frozen=True)
class RegularizationConfig:
    """Penalty on the weights (never the bias): kind and strength lam."""

    kind: RegularizationKind = "none"
    lam: float = 0.0

    def with_lam(self, lam: float) -> RegularizationConfig:
        """The same kind of regularization at another strength."""
        return replace(self, lam=lam)


@dataclass(frozen=True)
class FeatureConfig:
    """Feature pipeline: per-feature powers up to degree, then optional standardization."""

    degree: int = 1
    standardize: bool = True


@dataclass(frozen=True)
class NetworkConfig:
    """Hidden layers of a fully connected network: their sizes, activation and weight initialisation."""

    hidden: tuple[int, ...] = (32,)
    activation: ActivationKind = "relu"
    init: InitKind = "he"


@dataclass(frozen=True)
class TrainConfig:
    """Everything one fit needs, apart from the data; a network puts hidden layers before the model's head."""

    model: ModelKind = "linear"
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    epochs: int = 200
    early_stopping: EarlyStoppingConfig | None = None
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    seed: int = 0
    network: NetworkConfig | None = None
    init_std: float = 0.0
    """Without hidden layers: the standard deviation of the random initial weights (0: start from zero)."""
    tol: float | None = None
    """Stop once an epoch's last step moves no parameter by more than tol × the learning rate."""

    def with_lam(self, lam: float) -> TrainConfig:
        """This configuration with the regularization strength replaced."""
        return replace(self, regularization=self.regularization.with_lam(lam))


@dataclass(frozen=True)
class SweepConfig:
    """A regularization path: the λ grid and how each λ is validated (loo: exact leave-one-out, ridge only)."""

    lambdas: tuple[float, ...]
    validation: ValidationKind = "kfold"
    folds: int = 5
    holdout_fraction: float = 0.25
    warm_start: bool = True
    """Iterative fits start from the previous (larger) λ's solution on the same fold."""
