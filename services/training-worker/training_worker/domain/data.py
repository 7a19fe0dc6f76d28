"""Datasets: the in-memory table the domain trains on, built-in generators, user rows and CSV text, splits."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from training_worker.domain.config import ModelKind
from training_worker.domain.errors import IncompatibleData, InvalidConfig, InvalidDataset

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]
Task = Literal["regression", "classification"]

MAX_CELLS = 50_000_000
MAX_CSV_BYTES = 256 * 1024 * 1024
MAX_CLASSES = 100
# Training holds at least one row out for validation and keeps two to fit: fewer rows can never train.
MIN_ROWS = 3

_Where = Callable[[int], str]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A numeric feature matrix X (n, d) and target y (n,): a real value, or a class index 0..K-1."""

    X: FloatArray
    y: FloatArray
    feature_names: tuple[str, ...]
    target_name: str = "y"
    task: Task = "regression"
    class_names: tuple[str, ...] = ()
    name: str = "data"
    columns: tuple[str, ...] = ()
    """Every column of the source table in its order, label included (empty for generated data)."""

    def __post_init__(self) -> None:
        if self.X.ndim != 2 or self.y.ndim != 1 or self.X.shape[0] != self.y.shape[0]:
            raise InvalidDataset(f"X must be (n, d) and y (n,), got {self.X.shape} and {self.y.shape}")
        if self.X.shape[0] == 0 or self.X.shape[1] == 0:
            raise InvalidDataset("the dataset is empty: it needs at least one row and one feature column")
        if len(self.feature_names) != self.X.shape[1]:
            raise InvalidDataset(f"{len(self.feature_names)} feature names for {self.X.shape[1]} columns")
        if self.task == "classification" and len(self.class_names) < 2:
            raise InvalidDataset("a classification dataset needs at least two class names")

    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return int(self.X.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for a regression target)."""
        return len(self.class_names)

    def subset(self, index: IndexArray) -> Dataset:
        """The rows at index, same columns and classes."""
        return replace(self, X=self.X[index], y=self.y[index])


def encode_target(dataset: Dataset, model: ModelKind) -> Dataset:
    """The dataset with its target checked and encoded for model: real values, or class indices 0..K-1."""
    if model == "linear":
        if dataset.task == "classification":
            raise IncompatibleData(
                f"linear regression needs a numeric target, but '{dataset.target_name}' holds the classes "
                f"{', '.join(dataset.class_names[:5])}; use logistic or softmax"
            )
        return dataset
    if dataset.task == "classification":
        classed = dataset
    else:
        values = np.unique(dataset.y)
        if not np.all(values == np.round(values)):
            raise IncompatibleData(
                f"{model} regression needs class labels, but '{dataset.target_name}' has non-integer values"
            )
        if values.size > MAX_CLASSES:
            raise IncompatibleData(f"'{dataset.target_name}' has {values.size} classes; at most {MAX_CLASSES}")
        if values.size < 2:
            raise IncompatibleData(f"'{dataset.target_name}' has a single class; classification needs two")
        names = tuple(_format_number(v) for v in values)
        y = np.searchsorted(values, dataset.y).astype(np.float64)
        classed = replace(dataset, y=y, task="classification", class_names=names)
    if model == "logistic" and classed.n_classes != 2:
        raise IncompatibleData(
            f"logistic regression is binary, but '{dataset.target_name}' has {classed.n_classes} classes; use softmax"
        )
    return classed


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# Built-in generators -------------------------------------------------------------------------------


def polynomial_1d(
    *,
    n_samples: int = 20,
    noise: float = 0.25,
    coefficients: Sequence[float] = (0.0, 2.0, 0.0, -2.5),
    x_range: tuple[float, float] = (-1.0, 1.0),
    seed: int = 0,
) -> Dataset:
    """Noisy samples of a 1-D polynomial (coefficients in ascending powers): the overfitting demo."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(x_range[0], x_range[1], size=n_samples))
    y = polynomial_values(coefficients, x) + noise * rng.standard_normal(n_samples)
    return Dataset(x[:, None], y, ("x",), "y", "regression", (), "polynomial_1d")


def polynomial_values(coefficients: Sequence[float], x: FloatArray) -> FloatArray:
    """The polynomial with ascending coefficients evaluated at x."""
    y = np.zeros_like(x)
    for c in reversed(coefficients):
        y = y * x + c
    return y


def linear_data(*, n_samples: int = 500, n_features: int = 5, noise: float = 0.5, seed: int = 0) -> Dataset:
    """Gaussian features and a target linear in them, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    w = rng.standard_normal(n_features)
    b = float(rng.standard_normal())
    y = X @ w + b + noise * rng.standard_normal(n_samples)
    names = tuple(f"x{i}" for i in range(n_features))
    return Dataset(X, y, names, "y", "regression", (), "linear")


def high_dim_linear(*, n_samples: int = 120, n_features: int = 200, noise: float = 0.01, seed: int = 0) -> Dataset:
    """Gaussian features and y = 0.05 + Σ 0.01·x_i + noise: far more features than a small training set can fix."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    y = 0.05 + 0.01 * X.sum(axis=1) + noise * rng.standard_normal(n_samples)
    names = tuple(f"x{i}" for i in range(n_features))
    return Dataset(X, y, names, "y", "regression", (), "high_dim_linear")


def blobs(
    *, n_samples: int = 300, n_features: int = 2, n_classes: int = 2, cluster_std: float = 1.5, seed: int = 0
) -> Dataset:
    """Isotropic Gaussian clusters, one per class, with balanced class sizes."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-4.0, 4.0, size=(n_classes, n_features))
    labels = rng.permutation(np.arange(n_samples) % n_classes)
    X = centers[labels] + cluster_std * rng.standard_normal((n_samples, n_features))
    names = tuple(f"x{i}" for i in range(n_features))
    classes = tuple(f"class_{k}" for k in range(n_classes))
    return Dataset(X, labels.astype(np.float64), names, "label", "classification", classes, "blobs")


def two_class_shapes(
    shape: Literal["moons", "circles"], *, n_samples: int = 200, noise: float = 0.2, factor: float = 0.5, seed: int = 0
) -> Dataset:
    """Two classes in 2-D that no line separates: interleaving half circles (moons) or concentric circles.

    The same shapes as scikit-learn's make_moons and make_circles (circles: the inner one scaled by factor),
    with Gaussian noise of standard deviation noise, in shuffled order.
    """
    rng = np.random.default_rng(seed)
    n_outer = n_samples // 2
    n_inner = n_samples - n_outer
    if shape == "moons":
        t_out, t_in = np.linspace(0.0, np.pi, n_outer), np.linspace(0.0, np.pi, n_inner)
        outer = np.column_stack([np.cos(t_out), np.sin(t_out)])
        inner = np.column_stack([1.0 - np.cos(t_in), 0.5 - np.sin(t_in)])
    else:
        t_out = np.linspace(0.0, 2.0 * np.pi, n_outer, endpoint=False)
        t_in = np.linspace(0.0, 2.0 * np.pi, n_inner, endpoint=False)
        outer = np.column_stack([np.cos(t_out), np.sin(t_out)])
        inner = factor * np.column_stack([np.cos(t_in), np.sin(t_in)])
    X = np.vstack([outer, inner]) + noise * rng.standard_normal((n_samples, 2))
    y = np.concatenate([np.zeros(n_outer), np.ones(n_inner)])
    order = rng.permutation(n_samples)
    return Dataset(X[order], y[order], ("x0", "x1"), "label", "classification", ("class_0", "class_1"), shape)


def check_rows(rows: int, limit: int | None) -> None:
    """The one check of the row limit (an upload as it is parsed, a job's data at admission); None: no limit."""
    if limit is not None and rows > limit:
        raise InvalidDataset(f"{rows:,} rows, over the limit of {limit:,}")


# User data -----------------------------------------------------------------------------------------


def dataset_from_rows(
    rows: Sequence[Sequence[object]],
    label_column: str | int = -1,
    columns: Sequence[str] | None = None,
    *,
    max_rows: int | None = None,
    name: str = "inline",
) -> Dataset:
    """A dataset from rows of cells; the label column may hold numbers or class names."""
    if len(rows) == 0:
        raise InvalidDataset("no rows: the dataset is empty")
    width = len(rows[0])
    header = tuple(columns) if columns is not None else tuple(f"col{i}" for i in range(width))
    if columns is not None and len(header) != width:
        raise InvalidDataset(f"{len(header)} column names but row 1 has {width} cells")
    return _build(list(rows), header, label_column, first_row=1, max_rows=max_rows, name=name)


def parse_csv(
    data: str | bytes,
    label_column: str | int = -1,
    *,
    header: bool | None = None,
    max_rows: int | None = None,
    max_bytes: int = MAX_CSV_BYTES,
    name: str = "csv",
) -> Dataset:
    """A dataset from CSV text; the header row is detected (a row with any non-numeric cell) unless given."""
    text = _csv_text(data, max_bytes)
    try:
        sniffed = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else None
    except csv.Error:
        sniffed = None
    delimiter = sniffed.delimiter if sniffed is not None else ","
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter)
    try:
        numbered = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        # A cell over the csv module's field limit (128 KiB) would otherwise escape as a 500.
        raise InvalidDataset(f"line {reader.line_num}: {exc}") from None
    if not numbered:
        raise InvalidDataset("the CSV is empty")
    names, body = _header_and_body(numbered, header)
    if not body:
        raise InvalidDataset("the CSV has a header but no data rows")
    for number, row in body:
        if len(row) != len(names):
            raise InvalidDataset(f"line {number} has {len(row)} cells, expected {len(names)}")
    rows: list[Sequence[object]] = [row for _, row in body]
    return _build(rows, names, label_column, first_row=body[0][0], max_rows=max_rows, name=name, lines=body)


def _csv_text(data: str | bytes, max_bytes: int) -> str:
    """The CSV as text, refused when too large, not UTF-8, or holding a NUL."""
    if len(data) > max_bytes:
        raise InvalidDataset(f"the CSV is {len(data)} bytes, over the limit of {max_bytes}")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidDataset(f"the CSV is not UTF-8 text (byte {exc.start})") from exc
    else:
        text = data
    nul = text.find("\x00")
    if nul >= 0:
        raise InvalidDataset(f"line {text.count(chr(10), 0, nul) + 1} contains a NUL character, which no cell may hold")
    return text


def _header_and_body(
    numbered: list[tuple[int, list[str]]], header: bool | None
) -> tuple[tuple[str, ...], list[tuple[int, list[str]]]]:
    """The column names (the first row's when it is a header, given or detected) and the numbered data rows."""
    first = numbered[0][1]
    has_header = header if header is not None else not all(_is_number(cell) for cell in first)
    if not has_header:
        return tuple(f"col{i}" for i in range(len(first))), numbered
    names = tuple(cell.strip() for cell in first)
    if len(set(names)) != len(names):
        raise InvalidDataset(f"the header has duplicate column names: {', '.join(names)}")
    return names, numbered[1:]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _build(
    rows: list[Sequence[object]],
    names: tuple[str, ...],
    label_column: str | int,
    *,
    first_row: int,
    max_rows: int | None,
    name: str,
    lines: list[tuple[int, list[str]]] | None = None,
) -> Dataset:
    def where(i: int) -> str:
        return f"line {lines[i][0]}" if lines is not None else f"row {first_row + i}"

    width = len(names)
    check_rows(len(rows), max_rows)
    if len(rows) * width > MAX_CELLS:
        raise InvalidDataset(f"{len(rows) * width} cells, over the limit of {MAX_CELLS}")
    if width < 2:
        raise InvalidDataset("each row needs at least one feature and a label")
    for i, row in enumerate(rows):
        if len(row) != width:
            raise InvalidDataset(f"{where(i)} has {len(row)} cells, expected {width} (ragged rows)")
    label = _resolve_column(label_column, names)
    feature_idx = [j for j in range(width) if j != label]
    table = np.empty((len(rows), width), dtype=object)
    table[:, :] = rows
    try:
        X = table[:, feature_idx].astype(np.float64)
    except (ValueError, TypeError):
        X = _locate_bad_cell(table, feature_idx, names, where)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise InvalidDataset(f"{where(i)}, column '{names[feature_idx[j]]}': missing, NaN or infinite value")
    labels = table[:, label]
    target = names[label]
    try:
        y = labels.astype(np.float64)
    except (ValueError, TypeError):
        return _categorical(X, labels, names, feature_idx, target, where, name)
    if not np.isfinite(y).all():
        i = int(np.argwhere(~np.isfinite(y))[0][0])
        raise InvalidDataset(f"{where(i)}, label column '{target}': missing, NaN or infinite value")
    return Dataset(X, y, tuple(names[j] for j in feature_idx), target, "regression", (), name, names)


def _resolve_column(label_column: str | int, names: tuple[str, ...]) -> int:
    if isinstance(label_column, int):
        if -len(names) <= label_column < len(names):
            return label_column % len(names)
        raise InvalidDataset(
            f"label column index {label_column} is out of range for {len(names)} columns", field="label_column"
        )
    if label_column in names:
        return names.index(label_column)
    raise InvalidDataset(
        f"label column '{label_column}' not found; the columns are {', '.join(names)}", field="label_column"
    )


def _locate_bad_cell(
    table: npt.NDArray[np.object_],
    feature_idx: list[int],
    names: tuple[str, ...],
    where: _Where,
) -> FloatArray:
    for i in range(table.shape[0]):
        for j in feature_idx:
            cell = table[i, j]
            if isinstance(cell, str) and not cell.strip():
                raise InvalidDataset(f"{where(i)}, column '{names[j]}': empty (missing) value")
            try:
                float(cell)
            except (ValueError, TypeError):
                raise InvalidDataset(f"{where(i)}, column '{names[j]}': {cell!r} is not a number") from None
    raise InvalidDataset("the feature columns are not numeric")


def _categorical(
    X: FloatArray,
    labels: npt.NDArray[np.object_],
    names: tuple[str, ...],
    feature_idx: list[int],
    target: str,
    where: _Where,
    name: str,
) -> Dataset:
    text = [str(v).strip() for v in labels]
    for i, value in enumerate(text):
        if not value:
            raise InvalidDataset(f"{where(i)}, label column '{target}': empty label")
    classes = sorted(set(text))
    if len(classes) > MAX_CLASSES:
        raise InvalidDataset(f"label column '{target}' has {len(classes)} classes; at most {MAX_CLASSES}")
    if len(classes) < 2:
        raise InvalidDataset(f"label column '{target}' has a single class '{classes[0]}'")
    lookup = {c: k for k, c in enumerate(classes)}
    y = np.fromiter((lookup[v] for v in text), dtype=np.float64, count=len(text))
    features = tuple(names[j] for j in feature_idx)
    return Dataset(X, y, features, target, "classification", tuple(classes), name, names)


# Splits --------------------------------------------------------------------------------------------


def holdout_split(n: int, fraction: float, rng: np.random.Generator) -> tuple[IndexArray, IndexArray]:
    """Random (train, validation) row indices with about fraction of the rows held out."""
    if fraction <= 0.0:
        return np.arange(n, dtype=np.intp), np.empty(0, dtype=np.intp)
    n_val = min(max(1, math.floor(n * fraction + 0.5)), n - 2)
    if n_val < 1:
        raise InvalidConfig(f"{n} rows are too few to hold out a validation set; need at least 3")
    order = rng.permutation(n).astype(np.intp)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def kfold_splits(n: int, folds: int, rng: np.random.Generator) -> list[tuple[IndexArray, IndexArray]]:
    """k (train, validation) index pairs from one shuffled partition into folds near-equal parts."""
    if folds > n:
        raise InvalidConfig(f"{folds}-fold validation needs at least {folds} training rows, got {n}")
    parts = np.array_split(rng.permutation(n).astype(np.intp), folds)
    splits = []
    for k, val in enumerate(parts):
        train = np.concatenate([p for i, p in enumerate(parts) if i != k])
        splits.append((np.sort(train), np.sort(val)))
    return splits


def stratified_kfold_splits(
    labels: FloatArray, folds: int, rng: np.random.Generator
) -> list[tuple[IndexArray, IndexArray]]:
    """k (train, validation) index pairs in which every class is spread over the folds as evenly as it can be.

    Each class's rows, shuffled, are dealt to the folds in turn, the deal continuing where the previous class
    stopped: a class's count differs by at most one between folds, and so do the fold sizes (the guarantee of
    scikit-learn's StratifiedKFold, its default for classifiers).
    """
    n = labels.size
    if folds > n:
        raise InvalidConfig(f"{folds}-fold validation needs at least {folds} training rows, got {n}")
    fold_of = np.empty(n, dtype=np.intp)
    dealt = 0
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        fold_of[rows] = (dealt + np.arange(rows.size)) % folds
        dealt += rows.size
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(folds)]
