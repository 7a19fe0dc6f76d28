"""Feature pipeline: per-feature polynomial expansion, then standardization fitted on the training rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training_worker.domain.config import FeatureConfig
from training_worker.domain.data import FloatArray


@dataclass(frozen=True, eq=False)
class FeaturePipeline:
    """Maps raw features to model features; mean and scale are None when not standardizing."""

    degree: int
    mean: FloatArray | None
    scale: FloatArray | None

    @classmethod
    def fit(cls, X: FloatArray, config: FeatureConfig) -> FeaturePipeline:
        """Learn the standardization of the expanded training features."""
        if not config.standardize:
            return cls(config.degree, None, None)
        expanded = expand(X, config.degree)
        mean = expanded.mean(axis=0)
        scale = expanded.std(axis=0)
        # A constant column carries no signal; dividing by 1 keeps it finite (and zero after centring).
        scale[scale == 0.0] = 1.0
        return cls(config.degree, mean, scale)

    def transform(self, X: FloatArray) -> FloatArray:
        """Expanded and (if fitted so) standardized features; the input itself when there is nothing to do."""
        expanded = expand(X, self.degree)
        if self.mean is None or self.scale is None:
            return expanded
        return (expanded - self.mean) / self.scale

    def names(self, raw: tuple[str, ...]) -> tuple[str, ...]:
        """Names of the model features."""
        if self.degree == 1:
            return raw
        return tuple(f"{name}^{p}" if p > 1 else name for p in range(1, self.degree + 1) for name in raw)


def expand(X: FloatArray, degree: int) -> FloatArray:
    """Columns X, X², …, X^degree (powers of each feature, no interaction terms)."""
    if degree == 1:
        return X
    return np.hstack([X**p for p in range(1, degree + 1)])
