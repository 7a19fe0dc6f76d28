"""scikit-learn's bundled datasets load locally with the right task and shape."""

from __future__ import annotations

import pytest
from training_worker.datasets import load_sklearn
from training_worker.domain.errors import InvalidDataset


@pytest.mark.parametrize(
    ("name", "shape", "task", "classes"),
    [
        ("diabetes", (442, 10), "regression", 0),
        ("iris", (150, 4), "classification", 3),
        ("breast_cancer", (569, 30), "classification", 2),
        ("wine", (178, 13), "classification", 3),
        ("digits", (1797, 64), "classification", 10),
    ],
)
def test_bundled_datasets(name: str, shape: tuple[int, int], task: str, classes: int) -> None:
    data = load_sklearn(name)
    assert data.X.shape == shape
    assert data.task == task
    assert data.n_classes == classes
    assert len(data.feature_names) == shape[1]
    if classes:
        assert set(data.y.astype(int)) == set(range(classes))


def test_unknown_dataset() -> None:
    with pytest.raises(InvalidDataset, match="unknown scikit-learn dataset 'mnist'"):
        load_sklearn("mnist")
