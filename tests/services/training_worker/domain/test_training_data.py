"""User data parsing and validation, target encoding, generators and splits."""

from __future__ import annotations

import numpy as np
import pytest
from training_worker.domain.config import OptimizerConfig, RegularizationConfig, SweepConfig, TrainConfig
from training_worker.domain.data import (
    Dataset,
    blobs,
    dataset_from_rows,
    encode_target,
    holdout_split,
    kfold_splits,
    linear_data,
    parse_csv,
    polynomial_1d,
    stratified_kfold_splits,
    two_class_shapes,
)
from training_worker.domain.errors import IncompatibleData, InvalidConfig, InvalidDataset
from training_worker.domain.runner import train_sweep


def test_parse_csv_with_header_and_named_label() -> None:
    data = parse_csv("a,b,price\n1,2,3.5\n4,5,6.5\n7,8,9.5\n", "price")
    assert data.feature_names == ("a", "b")
    assert data.target_name == "price"
    np.testing.assert_array_equal(data.X, [[1, 2], [4, 5], [7, 8]])
    np.testing.assert_array_equal(data.y, [3.5, 6.5, 9.5])
    assert data.task == "regression"


def test_parse_csv_without_header_bytes_semicolons_and_label_index() -> None:
    data = parse_csv(b"1;10;0\n2;20;1\n3;30;0\n", 0)
    assert data.feature_names == ("col1", "col2")
    np.testing.assert_array_equal(data.y, [1, 2, 3])
    np.testing.assert_array_equal(data.X[:, 0], [10, 20, 30])


def test_parse_csv_text_labels_become_classes() -> None:
    data = parse_csv("x,species\n1.0,setosa\n2.0,virginica\n1.5,setosa\n3.0,versicolor\n", "species")
    assert data.task == "classification"
    assert data.class_names == ("setosa", "versicolor", "virginica")
    np.testing.assert_array_equal(data.y, [0, 2, 0, 1])


@pytest.mark.parametrize(
    ("text", "label", "message"),
    [
        ("a,b,y\n1,2,3\n4,5\n7,8,9\n", "y", "line 3 has 2 cells, expected 3"),
        ("a,b,y\n1,2,3\n4,five,6\n", "y", "line 3, column 'b': 'five' is not a number"),
        ("a,b,y\n1,2,3\n4,,6\n", "y", "line 3, column 'b': empty (missing) value"),
        ("a,b,y\n1,2,3\n4,nan,6\n", "y", "line 3, column 'b': missing, NaN or infinite"),
        ("a,b,y\n1,2,3\n4,5,inf\n", "y", "line 3, label column 'y': missing, NaN or infinite"),
        ("a,b,y\n1,2,3\n", "price", "label column 'price' not found; the columns are a, b, y"),
        ("a,b,y\n1,2,3\n", 5, "label column index 5 is out of range"),
        ("", "y", "the CSV is empty"),
        ("a,b,y\n", "y", "header but no data rows"),
        ("a,a,y\n1,2,3\n", "y", "duplicate column names"),
        ("y\n1\n2\n", "y", "at least one feature and a label"),
        ("x,c\n1,a\n2,a\n", "c", "single class 'a'"),
        ("x,c\n1,a\n2,2\x00\n3,b\n", "c", "line 3 contains a NUL character"),
        ("x,c\n1,a\n2," + "b" * 200_000 + "\n", "c", "line 3: field larger than field limit"),
    ],
)
def test_parse_csv_rejects_bad_data_with_a_clear_message(text: str, label: str | int, message: str) -> None:
    with pytest.raises(InvalidDataset, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_csv(text, label)


def test_parse_csv_limits_rows_and_bytes() -> None:
    text = "a,y\n" + "".join(f"{i},{i}\n" for i in range(20))
    with pytest.raises(InvalidDataset, match="20 rows, over the limit of 10"):
        parse_csv(text, "y", max_rows=10)
    with pytest.raises(InvalidDataset, match="over the limit of 16"):
        parse_csv(text, "y", max_bytes=16)


def test_parse_csv_rejects_non_utf8_bytes() -> None:
    with pytest.raises(InvalidDataset, match="not UTF-8"):
        parse_csv(b"a,y\n1,\xff\n", "y")


def test_dataset_from_rows_validates_shape_and_cells() -> None:
    data = dataset_from_rows([[1.0, 2.0, 0.0], [3.0, 4.0, 1.0]], "y", ["a", "b", "y"])
    assert data.feature_names == ("a", "b")
    with pytest.raises(InvalidDataset, match="row 2 has 2 cells, expected 3"):
        dataset_from_rows([[1.0, 2.0, 0.0], [3.0, 4.0]])
    with pytest.raises(InvalidDataset, match="row 1, column 'col1': missing, NaN or infinite"):
        dataset_from_rows([[1.0, float("nan"), 0.0], [3.0, 4.0, 1.0]])
    with pytest.raises(InvalidDataset, match="row 2, column 'col0': 'x' is not a number"):
        dataset_from_rows([[1.0, 2.0, 0.0], ["x", 4.0, 1.0]])
    with pytest.raises(InvalidDataset, match="empty"):
        dataset_from_rows([])
    with pytest.raises(InvalidDataset, match="2 column names but row 1 has 3 cells"):
        dataset_from_rows([[1.0, 2.0, 0.0]], columns=["a", "b"])


def test_encode_target_checks_the_model_against_the_labels() -> None:
    three = dataset_from_rows([[0.1, 0], [0.2, 1], [0.3, 2], [0.4, 1]])
    assert encode_target(three, "softmax").class_names == ("0", "1", "2")
    with pytest.raises(IncompatibleData, match=r"logistic regression is binary.*3 classes"):
        encode_target(three, "logistic")
    signs = encode_target(dataset_from_rows([[0.1, -1], [0.2, 1], [0.3, -1]]), "logistic")
    np.testing.assert_array_equal(signs.y, [0, 1, 0])
    with pytest.raises(IncompatibleData, match="non-integer values"):
        encode_target(dataset_from_rows([[0.1, 0.5], [0.2, 1.0]]), "softmax")
    text = parse_csv("x,c\n1,a\n2,b\n", "c")
    with pytest.raises(IncompatibleData, match="linear regression needs a numeric target"):
        encode_target(text, "linear")


def test_dataset_rejects_inconsistent_arrays() -> None:
    with pytest.raises(InvalidDataset, match="X must be"):
        Dataset(np.zeros((3, 2)), np.zeros(4), ("a", "b"))
    with pytest.raises(InvalidDataset, match="empty"):
        Dataset(np.zeros((0, 2)), np.zeros(0), ("a", "b"))


def test_generators_are_seeded_and_shaped() -> None:
    a, b = polynomial_1d(seed=4), polynomial_1d(seed=4)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, polynomial_1d(seed=5).y)
    assert a.X.shape == (20, 1)
    lin = linear_data(n_samples=50, n_features=7, seed=1)
    assert lin.X.shape == (50, 7)
    clusters = blobs(n_samples=90, n_classes=3, seed=2)
    assert clusters.class_names == ("class_0", "class_1", "class_2")
    assert np.bincount(clusters.y.astype(int)).tolist() == [30, 30, 30]


def test_moons_and_circles_are_seeded_two_class_shapes_no_line_separates() -> None:
    moons = two_class_shapes("moons", n_samples=101, noise=0.0, seed=3)
    assert moons.X.shape == (101, 2)
    assert moons.class_names == ("class_0", "class_1")
    assert np.bincount(moons.y.astype(np.intp)).tolist() == [50, 51]
    outer, inner = moons.X[moons.y == 0], moons.X[moons.y == 1]
    np.testing.assert_allclose(np.hypot(*outer.T), 1.0)
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1.0, inner[:, 1] - 0.5), 1.0)
    assert outer[:, 1].min() >= -1e-12 and inner[:, 1].max() <= 0.5 + 1e-12
    circles = two_class_shapes("circles", n_samples=80, noise=0.0, factor=0.3, seed=3)
    radii = np.hypot(*circles.X.T)
    np.testing.assert_allclose(radii[circles.y == 0], 1.0)
    np.testing.assert_allclose(radii[circles.y == 1], 0.3)
    noisy = two_class_shapes("moons", n_samples=60, noise=0.2, seed=4)
    np.testing.assert_array_equal(noisy.X, two_class_shapes("moons", n_samples=60, noise=0.2, seed=4).X)
    assert not np.array_equal(noisy.X, two_class_shapes("moons", n_samples=60, noise=0.2, seed=5).X)


def test_splits_partition_the_rows() -> None:
    rng = np.random.default_rng(0)
    train, val = holdout_split(50, 0.2, rng)
    assert len(val) == 10
    assert sorted([*train, *val]) == list(range(50))
    folds = kfold_splits(23, 5, np.random.default_rng(0))
    assert sorted(int(i) for _, v in folds for i in v) == list(range(23))
    for tr, va in folds:
        assert not set(tr) & set(va)
    with pytest.raises(InvalidConfig, match="5-fold validation needs at least 5"):
        kfold_splits(4, 5, rng)
    with pytest.raises(InvalidConfig, match="too few"):
        holdout_split(2, 0.5, rng)


def test_stratified_folds_spread_every_class_as_evenly_as_sklearns() -> None:
    # 3 classes of 47, 11 and 4 rows: a plain shuffled partition puts the 4 rare rows in at most 4 of 5 folds
    # unevenly; stratified, each fold's count of each class is within one of the others, as StratifiedKFold's.
    labels = np.repeat([0.0, 1.0, 2.0], [47, 11, 4])
    folds = stratified_kfold_splits(labels, 5, np.random.default_rng(1))
    assert sorted(int(i) for _, v in folds for i in v) == list(range(labels.size))
    for train, val in folds:
        assert not set(train) & set(val)
        assert train.size + val.size == labels.size
    counts = np.array([[np.sum(labels[val] == c) for c in (0, 1, 2)] for _, val in folds])
    assert np.all(counts.max(axis=0) - counts.min(axis=0) <= 1)
    sizes = [val.size for _, val in folds]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(InvalidConfig, match="5-fold validation needs at least 5"):
        stratified_kfold_splits(labels[:4], 5, np.random.default_rng(0))


def test_sweeps_of_classifiers_validate_on_stratified_folds() -> None:
    # Two rare rows of class 1 among 40: stratified 2-fold validation puts one in each fold, so neither fold's
    # training part is without them; a seed whose plain shuffle puts both in one fold shows the difference.
    y = np.zeros(40)
    y[[3, 17]] = 1.0
    X = np.random.default_rng(2).standard_normal((40, 2))
    data = Dataset(X, y, ("a", "b"), task="classification", class_names=("0", "1"))
    seed = next(s for s in range(100) if _rare_rows_share_a_fold(40, [3, 17], s))
    config = TrainConfig(
        model="logistic", optimizer=OptimizerConfig("lbfgs"), regularization=RegularizationConfig("l2", 0.0), seed=seed
    )
    outcome = train_sweep(data, config, SweepConfig((1.0,), "kfold", 2), 0.0)
    assert outcome.sweep is not None
    # With one rare row in each fold's training and validation part, both folds predict it with a small, equal
    # probability: the spread over folds is small. Had one fold trained without it, that fold's loss would differ.
    point = outcome.sweep.points[0]
    assert point.val_loss_std < 0.05 * point.val_loss


def _rare_rows_share_a_fold(n: int, rows: list[int], seed: int) -> bool:
    folds = kfold_splits(n, 2, np.random.default_rng((seed, 2)))
    return any(set(rows) <= set(val.tolist()) for _, val in folds)
