"""Training-worker messages: the job spec, its progress, its result, failure and cancellation."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from quartet_contracts.registry import Message, event_type
from quartet_contracts.schemas.claimcheck import ResultRef, take
from quartet_contracts.validation import FieldError, shown

MAX_EPOCHS = 100_000
MAX_ROWS = 1_000_000
MAX_FEATURES = 10_000
MAX_CELLS = 50_000_000
MAX_DEGREE = 30
MAX_CLASSES = 100
MAX_LAMBDAS = 100
MAX_LAM = 1e6
MAX_HIDDEN_LAYERS = 3
MAX_UNITS = 4096
SPEC_HASH_VERSION = "training-spec/1"

SKLEARN_TASKS: dict[str, tuple[str, int]] = {
    "diabetes": ("regression", 0),
    "iris": ("classification", 3),
    "breast_cancer": ("classification", 2),
    "wine": ("classification", 3),
    "digits": ("classification", 10),
}

JobId = Annotated[str, Field(min_length=1, max_length=200)]


class _Spec(Message):
    """Spec parts: like every message, plus no NaN or infinity anywhere."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Model ---------------------------------------------------------------------------------------------


class _PlainModel(_Spec):
    """A model without hidden layers, whose weights start at zero unless init_std asks for random ones."""

    init_std: float = Field(
        default=0.0,
        ge=0.0,
        le=100.0,
        description="Standard deviation of the N(0, σ²) initial weights of gradient methods, fixed by the seed; "
        "0 starts from zero.",
    )


class LinearModel(_PlainModel):
    """Linear regression, mean squared error."""

    kind: Literal["linear"] = "linear"


class LogisticModel(_PlainModel):
    """Binary logistic regression, log-loss."""

    kind: Literal["logistic"] = "logistic"


class SoftmaxModel(_PlainModel):
    """Multiclass softmax regression, cross-entropy."""

    kind: Literal["softmax"] = "softmax"


class PolynomialModel(_PlainModel):
    """Linear regression on the powers 1..degree of each feature, standardized."""

    kind: Literal["polynomial"] = "polynomial"
    degree: int = Field(default=3, ge=1, le=MAX_DEGREE)


HEAD_TASKS: dict[str, Literal["linear", "logistic", "softmax"]] = {
    "linear": "linear",
    "sigmoid": "logistic",
    "softmax": "softmax",
}
"""The plain model whose loss each network head trains: half the MSE, the log-loss, the cross-entropy."""


class MLPModel(_Spec):
    """A fully connected network: 1 to 3 hidden layers of ReLU or tanh units, then a linear, sigmoid or softmax head."""

    kind: Literal["mlp"] = "mlp"
    hidden: tuple[Annotated[int, Field(ge=1, le=MAX_UNITS)], ...] = Field(
        default=(32,), min_length=1, max_length=MAX_HIDDEN_LAYERS, description="Units of each hidden layer."
    )
    activation: Literal["relu", "tanh"] = "relu"
    head: Literal["linear", "sigmoid", "softmax"] = "linear"
    init: Literal["he", "xavier", "glorot_bias"] = Field(
        default="he",
        description="he: N(0, 2/fan_in) weights; xavier: U(±√(6/(fan_in + fan_out))) weights; both with zero "
        "biases. glorot_bias: xavier's weights and biases drawn from the same range, as scikit-learn's "
        "MLPClassifier and MLPRegressor start.",
    )


ModelSpec = Annotated[
    LinearModel | LogisticModel | SoftmaxModel | PolynomialModel | MLPModel, Field(discriminator="kind")
]


# Optimizer and schedule ----------------------------------------------------------------------------


class GradientDescent(_Spec):
    """Full-batch gradient descent."""

    kind: Literal["gd"] = "gd"
    lr: float = Field(default=0.1, gt=0.0, le=100.0)


class SGD(_Spec):
    """Mini-batch stochastic gradient descent with heavy-ball momentum."""

    kind: Literal["sgd"] = "sgd"
    lr: float = Field(default=0.01, gt=0.0, le=100.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    batch_size: int = Field(default=32, ge=1, le=MAX_ROWS)


class Adam(_Spec):
    """Adam; batch_size None means full batch."""

    kind: Literal["adam"] = "adam"
    lr: float = Field(default=0.01, gt=0.0, le=100.0)
    beta1: float = Field(default=0.9, ge=0.0, lt=1.0)
    beta2: float = Field(default=0.999, ge=0.0, lt=1.0)
    eps: float = Field(default=1e-8, gt=0.0, le=1.0)
    batch_size: int | None = Field(default=None, ge=1, le=MAX_ROWS)


class ClosedForm(_Spec):
    """Exact ridge solution of the normal equations (linear and polynomial models, L2 or none)."""

    kind: Literal["closed_form"] = "closed_form"


class LBFGS(_Spec):
    """Full-batch L-BFGS on the exact L2-penalized objective (or none), to a gradient tolerance.

    Each iteration counts as an epoch; tol (default 1e-4, as scikit-learn's) bounds the largest entry of the
    penalized gradient. The default optimizer of logistic and softmax sweeps.
    """

    kind: Literal["lbfgs"] = "lbfgs"


OptimizerSpec = Annotated[GradientDescent | SGD | Adam | ClosedForm | LBFGS, Field(discriminator="kind")]
_WITHOUT_LR = (ClosedForm, LBFGS)


class ConstantSchedule(_Spec):
    """The same learning rate every epoch."""

    kind: Literal["constant"] = "constant"


class StepSchedule(_Spec):
    """Multiply the learning rate by gamma every step_size epochs."""

    kind: Literal["step"] = "step"
    step_size: int = Field(default=100, ge=1, le=MAX_EPOCHS)
    gamma: float = Field(default=0.5, gt=0.0, le=1.0)


class CosineSchedule(_Spec):
    """Cosine annealing from the optimizer's lr down to min_lr at the last epoch."""

    kind: Literal["cosine"] = "cosine"
    min_lr: float = Field(default=0.0, ge=0.0)


ScheduleSpec = Annotated[ConstantSchedule | StepSchedule | CosineSchedule, Field(discriminator="kind")]


class EarlyStopping(_Spec):
    """Stop when the validation loss has not improved by min_delta for patience epochs."""

    patience: int = Field(default=20, ge=1, le=MAX_EPOCHS)
    min_delta: float = Field(default=0.0, ge=0.0)
    restore_best: bool = True


class Regularization(_Spec):
    """Penalty on the weights, never the bias: none, l2 (coupled), decoupled (AdamW-style) or l1."""

    kind: Literal["none", "l2", "decoupled", "l1"] = "l2"
    lam: float = Field(default=0.01, ge=0.0, le=MAX_LAM)

    @model_validator(mode="before")
    @classmethod
    def _none_defaults_to_zero(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("kind") == "none" and "lam" not in raw:
            return {**raw, "lam": 0.0}
        return raw

    @model_validator(mode="after")
    def _none_has_no_strength(self) -> Regularization:
        if self.kind == "none" and self.lam != 0.0:
            raise FieldError("lam", "must be 0 when kind is none")
        return self


# Mode ----------------------------------------------------------------------------------------------


def _default_lambdas() -> tuple[float, ...]:
    return (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


class SingleRun(_Spec):
    """One fit at regularization.lam."""

    kind: Literal["single"] = "single"


class Sweep(_Spec):
    """A regularization path: every λ validated by k-fold, holdout or (closed-form ridge) leave-one-out.

    The best λ is refitted. Iterative fits run the grid from the largest λ down, each warm-started from the
    previous solution; the closed-form ridge path solves every λ from one decomposition per fold.
    """

    kind: Literal["sweep"] = "sweep"
    lambdas: tuple[float, ...] = Field(default_factory=_default_lambdas, min_length=1, max_length=MAX_LAMBDAS)
    validation: Literal["kfold", "holdout", "loo"] = "kfold"
    warm_start: bool = Field(
        default=True,
        description="Start each iterative fit from the previous (larger) λ's solution; false starts every fit "
        "from the model's initial weights, as when the starting point is part of the experiment.",
    )
    folds: int = Field(default=5, ge=2, le=20)
    holdout_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)

    @field_validator("lambdas")
    @classmethod
    def _sorted_unique(cls, lambdas: tuple[float, ...]) -> tuple[float, ...]:
        bad = [lam for lam in lambdas if not 0.0 <= lam <= MAX_LAM]
        if bad:
            raise ValueError(f"every λ must be in [0, {MAX_LAM:g}], got {shown(bad[0])}")
        return tuple(sorted(set(lambdas)))


ModeSpec = Annotated[SingleRun | Sweep, Field(discriminator="kind")]


# Data ----------------------------------------------------------------------------------------------


class Polynomial1D(_Spec):
    """Noisy samples of a 1-D polynomial (ascending coefficients) on [x_min, x_max]."""

    name: Literal["polynomial_1d"] = "polynomial_1d"
    n_samples: int = Field(default=20, ge=3, le=MAX_ROWS)
    noise: float = Field(default=0.25, ge=0.0, le=1e6)
    coefficients: tuple[float, ...] = Field(default=(0.0, 2.0, 0.0, -2.5), min_length=1, max_length=MAX_DEGREE + 1)
    x_min: float = -1.0
    x_max: float = 1.0

    @model_validator(mode="after")
    def _range(self) -> Polynomial1D:
        if self.x_min >= self.x_max:
            raise FieldError("x_min", "must be below x_max")
        return self


class _LinearTarget(_Spec):
    """Gaussian features and a target linear in them, with Gaussian noise."""

    n_samples: int = Field(default=500, ge=3, le=MAX_ROWS)
    n_features: int = Field(default=5, ge=1, le=MAX_FEATURES)
    noise: float = Field(default=0.5, ge=0.0, le=1e6)

    @model_validator(mode="after")
    def _cells(self) -> _LinearTarget:
        _check_cells(self.n_samples, self.n_features)
        return self


class LinearData(_LinearTarget):
    """Gaussian features and a linear target with Gaussian noise."""

    name: Literal["linear"] = "linear"


class HighDimLinear(_LinearTarget):
    """Many Gaussian features, few of them informative together: y = 0.05 + Σ 0.01·x_i + noise.

    The "Dive into Deep Learning" weight-decay demonstration: 200 features, 20 training rows, 100 validation
    rows (a validation_split of 100/120), noise 0.01.
    """

    name: Literal["high_dim_linear"] = "high_dim_linear"
    n_samples: int = Field(default=120, ge=3, le=MAX_ROWS)
    n_features: int = Field(default=200, ge=1, le=MAX_FEATURES)
    noise: float = Field(default=0.01, ge=0.0, le=1e6)


class Blobs(_Spec):
    """Gaussian clusters, one per class."""

    name: Literal["blobs"] = "blobs"
    n_samples: int = Field(default=300, ge=3, le=MAX_ROWS)
    n_features: int = Field(default=2, ge=1, le=MAX_FEATURES)
    n_classes: int = Field(default=2, ge=2, le=MAX_CLASSES)
    cluster_std: float = Field(default=1.5, gt=0.0, le=1e6)

    @model_validator(mode="after")
    def _cells(self) -> Blobs:
        _check_cells(self.n_samples, self.n_features)
        if self.n_classes > self.n_samples:
            raise FieldError("n_classes", "must not exceed n_samples")
        return self


class _TwoClassShape(_Spec):
    """Two classes in 2-D with Gaussian noise, half the samples each."""

    n_samples: int = Field(default=200, ge=4, le=MAX_ROWS)
    noise: float = Field(default=0.2, ge=0.0, le=1e6)


class Moons(_TwoClassShape):
    """Two interleaving half circles, one class each: no line separates them."""

    name: Literal["moons"] = "moons"


class Circles(_TwoClassShape):
    """Two concentric circles, the inner one scaled by factor, one class each."""

    name: Literal["circles"] = "circles"
    factor: float = Field(default=0.5, gt=0.0, lt=1.0)


def _check_cells(rows: int, columns: int, field: str = "n_samples") -> None:
    if rows * columns > MAX_CELLS:
        raise FieldError(
            field, f"{rows} rows × {columns} columns = {rows * columns} cells, over the limit of {MAX_CELLS}"
        )


GeneratorSpec = Annotated[
    Polynomial1D | LinearData | HighDimLinear | Blobs | Moons | Circles, Field(discriminator="name")
]


class GeneratorSource(_Spec):
    """Synthetic data from a built-in generator, seeded by the job's seed."""

    kind: Literal["generator"] = "generator"
    generator: GeneratorSpec = Field(default_factory=LinearData)


class SklearnSource(_Spec):
    """A dataset bundled with scikit-learn (nothing is downloaded)."""

    kind: Literal["sklearn"] = "sklearn"
    name: Literal["diabetes", "iris", "breast_cancer", "wine", "digits"]


LabelColumn = str | int


class InlineSource(_Spec):
    """Rows given in the job itself; label_column is a column name or index (default the last)."""

    kind: Literal["inline"] = "inline"
    rows: list[list[float]] = Field(min_length=3, max_length=MAX_ROWS)
    columns: list[str] | None = None
    label_column: LabelColumn = -1

    @model_validator(mode="after")
    def _rectangular(self) -> InlineSource:
        width = len(self.rows[0])
        if width < 2:
            raise FieldError("rows", "each row needs at least one feature and a label")
        for i, row in enumerate(self.rows):
            if len(row) != width:
                raise FieldError("rows", f"row {i + 1} has {len(row)} cells, expected {width} (ragged rows)")
        _check_cells(len(self.rows), width, "rows")
        if self.columns is not None:
            if len(self.columns) != width:
                raise FieldError("columns", f"{len(self.columns)} names for rows of {width} cells")
            if len(set(self.columns)) != width:
                raise FieldError("columns", "names must be unique")
        _check_label(self.label_column, self.columns, width)
        return self


def _check_label(label: LabelColumn, columns: list[str] | None, width: int) -> None:
    if isinstance(label, int):
        if not -width <= label < width:
            raise FieldError("label_column", f"index {shown(label)} is out of range for {width} columns")
    elif columns is None or label not in columns:
        raise FieldError("label_column", f"{shown(label)} is not one of the columns")


class UploadSource(_Spec):
    """A CSV uploaded beforehand, referenced by its dataset id."""

    kind: Literal["upload"] = "upload"
    dataset_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    label_column: LabelColumn = -1


DataSource = Annotated[GeneratorSource | SklearnSource | InlineSource | UploadSource, Field(discriminator="kind")]


def _default_data(model: Any) -> dict[str, Any]:
    model_kind = str(model.get("kind") if isinstance(model, dict) else getattr(model, "kind", "linear"))
    if model_kind == "mlp":
        head = model.get("head", "linear") if isinstance(model, dict) else getattr(model, "head", "linear")
        model_kind = HEAD_TASKS.get(str(head), "linear")
    if model_kind == "polynomial":
        return {"kind": "generator", "generator": {"name": "polynomial_1d"}}
    if model_kind == "logistic":
        return {"kind": "generator", "generator": {"name": "blobs", "n_classes": 2}}
    if model_kind == "softmax":
        return {"kind": "generator", "generator": {"name": "blobs", "n_classes": 3}}
    return {"kind": "generator", "generator": {"name": "linear"}}


# The job spec --------------------------------------------------------------------------------------


class TrainingJobSpec(_Spec):
    """A training job: model, optimizer, schedule, regularization, mode and data source."""

    model: ModelSpec = Field(default_factory=LinearModel)
    optimizer: OptimizerSpec = Field(default_factory=GradientDescent)
    schedule: ScheduleSpec = Field(default_factory=ConstantSchedule)
    epochs: int = Field(default=200, ge=1, le=MAX_EPOCHS)
    early_stopping: EarlyStopping | None = None
    regularization: Regularization = Field(default_factory=Regularization)
    mode: ModeSpec = Field(default_factory=SingleRun)
    data: DataSource = Field(default_factory=GeneratorSource)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    validation_split: float = Field(default=0.2, ge=0.0, lt=1.0)
    standardize: bool = True
    tol: float | None = Field(
        default=None,
        gt=0.0,
        le=1e6,
        description="Stop an iterative fit once an epoch's last step moves no weight or bias by more than "
        "tol × the learning rate (for full-batch gd: the largest entry of the penalized gradient).",
    )

    @model_validator(mode="before")
    @classmethod
    def _data_defaults_to_the_model(cls, raw: Any) -> Any:
        """A spec without data trains on a generator that suits its model."""
        if isinstance(raw, dict) and "data" not in raw:
            return {**raw, "data": _default_data(raw.get("model"))}
        return raw

    @model_validator(mode="before")
    @classmethod
    def _sweeps_of_classifiers_default_to_lbfgs(cls, raw: Any) -> Any:
        """A logistic or softmax sweep without an optimizer runs L-BFGS: the path's fits converge in a few passes."""
        if not isinstance(raw, dict) or "optimizer" in raw:
            return raw
        mode, model = raw.get("mode"), raw.get("model")
        mode_kind = mode.get("kind") if isinstance(mode, dict) else getattr(mode, "kind", None)
        model_kind = model.get("kind") if isinstance(model, dict) else getattr(model, "kind", None)
        if mode_kind == "sweep" and model_kind in ("logistic", "softmax"):
            return {**raw, "optimizer": {"kind": "lbfgs"}}
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> TrainingJobSpec:
        kind = self.model.kind
        if isinstance(self.optimizer, ClosedForm):
            if kind not in ("linear", "polynomial"):
                raise FieldError("optimizer", f"closed_form solves linear and polynomial models, not {kind}")
            if self.regularization.kind not in ("none", "l2"):
                raise FieldError(
                    "optimizer",
                    f"closed_form solves the L2 (ridge) objective; regularization kind "
                    f"{self.regularization.kind} needs gd, sgd or adam",
                )
        if isinstance(self.optimizer, LBFGS):
            self._check_lbfgs()
        if isinstance(self.schedule, CosineSchedule) and not isinstance(self.optimizer, _WITHOUT_LR):
            lr = self.optimizer.lr
            if self.schedule.min_lr >= lr:
                raise FieldError("schedule.min_lr", f"{self.schedule.min_lr:g} must be below the lr {lr:g}")
        if self.early_stopping is not None and self.validation_split == 0.0:
            raise FieldError("early_stopping", "needs a validation_split above 0")
        if isinstance(self.mode, Sweep) and self.regularization.kind == "none":
            raise FieldError("mode", "a λ sweep needs regularization kind l2, decoupled or l1, not none")
        if (
            isinstance(self.mode, Sweep)
            and self.mode.validation == "loo"
            and not isinstance(self.optimizer, ClosedForm)
        ):
            raise FieldError("mode.validation", "leave-one-out is the closed-form ridge path's; use kfold or holdout")
        self._check_task()
        return self

    def _check_lbfgs(self) -> None:
        if self.regularization.kind not in ("none", "l2"):
            raise FieldError(
                "optimizer",
                f"lbfgs minimizes the smooth L2-penalized objective; regularization kind {self.regularization.kind} "
                "needs gd, sgd or adam",
            )
        if self.early_stopping is not None:
            raise FieldError("early_stopping", "lbfgs runs to its tolerance; early stopping needs gd, sgd or adam")

    def planned_epochs(self) -> int:
        """Upper bound on the epochs the job runs over all its fits, for the service's budget checks."""
        per_fit = 1 if isinstance(self.optimizer, ClosedForm) else self.epochs
        if isinstance(self.mode, Sweep):
            folds = self.mode.folds if self.mode.validation == "kfold" else 1
            if self.mode.validation == "loo":
                return 3
            return per_fit * (len(self.mode.lambdas) * folds + 2)
        return per_fit * 2

    def _check_task(self) -> None:
        task, classes = self._known_task()
        if task is None:
            return
        kind = self.model.kind
        if isinstance(self.model, MLPModel):
            self._check_head(self.model, task, classes)
            return
        if kind in ("linear", "polynomial") and task == "classification":
            raise FieldError("model", f"{kind} regression needs a numeric target; this data is a classification set")
        if kind == "logistic" and (task != "classification" or classes != 2):
            what = "a regression target" if task == "regression" else f"{classes} classes"
            raise FieldError("model", f"logistic regression is binary, but the data has {what}; use softmax")
        if kind == "softmax" and task != "classification":
            raise FieldError("model", "softmax needs class labels; this data has a regression target")

    @staticmethod
    def _check_head(model: MLPModel, task: str, classes: int) -> None:
        if model.head == "linear" and task == "classification":
            raise FieldError("model.head", "a linear head needs a numeric target; this data is a classification set")
        if model.head == "sigmoid" and (task != "classification" or classes != 2):
            what = "a regression target" if task == "regression" else f"{classes} classes"
            raise FieldError("model.head", f"a sigmoid head is binary, but the data has {what}; use softmax")
        if model.head == "softmax" and task != "classification":
            raise FieldError("model.head", "a softmax head needs class labels; this data has a regression target")

    def _known_task(self) -> tuple[str | None, int]:
        data = self.data
        if isinstance(data, SklearnSource):
            return SKLEARN_TASKS[data.name]
        if isinstance(data, GeneratorSource):
            gen = data.generator
            if isinstance(gen, Blobs):
                return "classification", gen.n_classes
            if isinstance(gen, Moons | Circles):
                return "classification", 2
            return "regression", 0
        return None, 0


def normalized_spec_hash(spec: TrainingJobSpec) -> str:
    """sha256 of the canonical JSON of the spec, with every default filled and irrelevant fields dropped.

    Two specs that must train the same model hash the same: defaults spelled out or left implicit, λ grid in
    any order, λ of a sweep (the sweep chooses it), and the epoch settings of the closed-form solver.
    """
    body = spec.model_dump(mode="json")
    if body["mode"]["kind"] == "sweep":
        body["regularization"]["lam"] = 0.0
    if body["optimizer"]["kind"] == "closed_form":
        for key in ("schedule", "epochs", "early_stopping", "tol"):
            body.pop(key)
    canonical = json.dumps(
        {"version": SPEC_HASH_VERSION, "spec": body}, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# Messages ------------------------------------------------------------------------------------------


@event_type("quartet.training.TrainingRequested.v1", topic="training.jobs")
class TrainingRequested(TrainingJobSpec):
    """A training job was requested; the data is the job spec, the job id is the CloudEvent id."""


@event_type("quartet.training.TrainingProgressed.v1", topic="training.progress")
class TrainingProgressed(Message):
    """A training job finished an epoch; progress runs 0..1 over the whole job (the whole sweep)."""

    job_id: JobId
    epoch: int = Field(ge=1, le=MAX_EPOCHS)
    epochs: int = Field(ge=1, le=MAX_EPOCHS)
    progress: float = Field(ge=0.0, le=1.0)
    train_loss: float
    val_loss: float | None = None
    weight_norm: float = Field(ge=0.0)
    phase: Literal["fit", "sweep", "reference"] = "fit"
    sweep_step: int | None = Field(default=None, ge=1)
    sweep_steps: int | None = Field(default=None, ge=1)
    lam: float | None = Field(default=None, ge=0.0)


class WeightSimilarity(Message):
    """Learned weights against the unregularized ones: dot, cosine (None if a norm is 0), L1 and L2 distance."""

    dot: float
    cosine: float | None
    l1: float = Field(ge=0.0)
    l2: float = Field(ge=0.0)


class History(Message):
    """Per-epoch training and validation loss and the weights' L2 norm of the final fit, overall and per layer."""

    train_loss: list[float]
    val_loss: list[float]
    weight_norm: list[float]
    layer_norms: list[list[float]] = Field(
        default_factory=list, description="Per epoch, the L2 norm of each layer's weights (the head last)."
    )


class LayerWeights(Message):
    """One hidden layer: each unit's input weights (one row per unit) and its bias."""

    weights: list[list[float]]
    bias: list[float]


class SweepPoint(Message):
    """One λ of the validation curve: mean train and validation loss over folds, and the spread."""

    lam: float = Field(ge=0.0)
    train_loss: float
    val_loss: float
    val_loss_std: float = Field(ge=0.0)


class SweepCurve(Message):
    """The validation curve of a λ sweep and the λ it chose."""

    points: list[SweepPoint]
    best_lam: float = Field(ge=0.0)
    validation: Literal["kfold", "holdout", "loo"]
    folds: int = Field(ge=1, description="Folds validated on: 1 for holdout, the training rows for leave-one-out.")
    seconds_per_lambda: float | None = Field(
        default=None, ge=0.0, description="Wall time of the whole path (every fold) divided by the number of λ."
    )


@event_type("quartet.training.TrainingCompleted.v1", topic="training.results")
class TrainingCompleted(Message):
    """A training job finished: weights, bias, metrics, history, similarity to λ = 0, plots.

    On the results topic the parts that grow with the spec (`LARGE_PARTS`) are left out and `result_ref` names
    where they are stored; `GET /jobs/{id}/result` answers with them put back.
    """

    job_id: JobId
    spec_hash: str | None = None
    model: Literal["linear", "logistic", "softmax", "polynomial", "mlp"]
    feature_names: list[str] = Field(default_factory=list)
    class_names: list[str] = Field(default_factory=list)
    weights: list[float] | list[list[float]] | None = None
    bias: float | list[float]
    lam: float = Field(ge=0.0)
    metrics: dict[str, float]
    reference_metrics: dict[str, float]
    history: History | None = None
    similarity: WeightSimilarity
    layer_similarity: list[WeightSimilarity] = Field(
        default_factory=list,
        max_length=MAX_HIDDEN_LAYERS + 1,
        description="Each layer's weights against the unregularized fit's (the head last).",
    )
    hidden_layers: list[LayerWeights] | None = Field(
        default=None,
        max_length=MAX_HIDDEN_LAYERS,
        description="A network's hidden layers; weights and bias hold its head.",
    )
    sweep: SweepCurve | None = None
    epochs_run: int = Field(ge=1)
    stopped_early: bool = False
    cached: bool = False
    plots: list[str] = Field(default_factory=list)
    result_ref: ResultRef | None = None


# Every part of a training result whose size grows with the spec: epochs, features or classes. The rest
# (metrics, λ, similarity, a sweep of at most MAX_LAMBDAS points, one bias per class) stays bounded.
TRAINING_LARGE_PARTS = ("history", "weights", "hidden_layers", "feature_names", "class_names")


def split_training_result(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A TrainingCompleted as JSON split into its bounded summary and its large parts."""
    summary = dict(result)
    return summary, take(summary, TRAINING_LARGE_PARTS)


@event_type("quartet.training.TrainingFailed.v1", topic="training.results")
class TrainingFailed(Message):
    """A training job failed: the error type and a detail a user can act on."""

    job_id: JobId
    error_type: str = Field(min_length=1, max_length=200)
    detail: str = Field(max_length=10_000)
    field: str | None = Field(default=None, max_length=200, description="The spec field to fix, when known.")


@event_type("quartet.training.TrainingCancelled.v1", topic="training.results")
class TrainingCancelled(Message):
    """A training job stopped because it was cancelled, at the epoch given if it had started."""

    job_id: JobId
    epoch: int | None = Field(default=None, ge=1)


@event_type("quartet.training.CancelTraining.v1", topic="training.control")
class CancelTraining(Message):
    """Ask the worker running job_id to stop it at the next epoch boundary."""

    job_id: JobId
