"""Data loading for jobs: scikit-learn's bundled datasets, the built-in generators, inline rows and CSVs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from quartet_contracts.schemas.training import (
    Blobs,
    Circles,
    DataSource,
    GeneratorSource,
    HighDimLinear,
    InlineSource,
    LinearData,
    Moons,
    Polynomial1D,
    SklearnSource,
    UploadSource,
)
from sklearn import datasets as sk_datasets

from training_worker.domain.data import (
    Dataset,
    blobs,
    dataset_from_rows,
    high_dim_linear,
    linear_data,
    parse_csv,
    polynomial_1d,
    two_class_shapes,
)
from training_worker.domain.errors import InvalidConfig, InvalidDataset

__all__ = ["UploadReader", "dataset_from_rows", "load_data", "load_sklearn", "parse_csv"]

UploadReader = Callable[[str], bytes | str]
"""Returns the CSV content uploaded under a dataset id; raises KeyError if there is none."""

_LOADERS = {
    "diabetes": sk_datasets.load_diabetes,
    "iris": sk_datasets.load_iris,
    "breast_cancer": sk_datasets.load_breast_cancer,
    "wine": sk_datasets.load_wine,
    "digits": sk_datasets.load_digits,
}


def load_sklearn(name: str) -> Dataset:
    """One of scikit-learn's bundled datasets (diabetes, iris, breast_cancer, wine, digits), read from disk."""
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise InvalidDataset(f"unknown scikit-learn dataset {name!r}; choose one of {', '.join(_LOADERS)}") from None
    bunch = loader()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.float64)
    features = tuple(str(f) for f in bunch.feature_names)
    if name == "diabetes":
        return Dataset(X, y, features, "disease_progression", "regression", (), name)
    classes = tuple(str(c) for c in bunch.target_names)
    return Dataset(X, y, features, "target", "classification", classes, name)


def load_data(source: DataSource, seed: int, *, uploads: UploadReader | None = None) -> Dataset:
    """The dataset a job's data source describes; generators are seeded by the job's seed.

    Its size was admitted before the job ran (the training kind's budget check), so no limit is checked here.
    """
    if isinstance(source, GeneratorSource):
        return _generate(source, seed)
    if isinstance(source, SklearnSource):
        return load_sklearn(source.name)
    if isinstance(source, InlineSource):
        return dataset_from_rows(source.rows, source.label_column, source.columns)
    return _read_upload(source, uploads)


def _generate(source: GeneratorSource, seed: int) -> Dataset:
    gen = source.generator
    if isinstance(gen, Polynomial1D):
        return polynomial_1d(
            n_samples=gen.n_samples,
            noise=gen.noise,
            coefficients=gen.coefficients,
            x_range=(gen.x_min, gen.x_max),
            seed=seed,
        )
    if isinstance(gen, LinearData):
        return linear_data(n_samples=gen.n_samples, n_features=gen.n_features, noise=gen.noise, seed=seed)
    if isinstance(gen, HighDimLinear):
        return high_dim_linear(n_samples=gen.n_samples, n_features=gen.n_features, noise=gen.noise, seed=seed)
    if isinstance(gen, Blobs):
        return blobs(
            n_samples=gen.n_samples,
            n_features=gen.n_features,
            n_classes=gen.n_classes,
            cluster_std=gen.cluster_std,
            seed=seed,
        )
    if isinstance(gen, Moons):
        return two_class_shapes("moons", n_samples=gen.n_samples, noise=gen.noise, seed=seed)
    if isinstance(gen, Circles):
        return two_class_shapes("circles", n_samples=gen.n_samples, noise=gen.noise, factor=gen.factor, seed=seed)
    raise InvalidConfig(f"unknown generator {gen!r}")


def _read_upload(source: UploadSource, uploads: UploadReader | None) -> Dataset:
    if uploads is None:
        raise InvalidConfig("this worker has no upload store, so dataset_id sources cannot be read")
    try:
        content = uploads(source.dataset_id)
    except KeyError:
        raise InvalidDataset(f"no uploaded dataset with id {source.dataset_id!r}") from None
    return parse_csv(content, source.label_column, name=source.dataset_id)
