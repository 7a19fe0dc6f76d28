"""The ridge path from one decomposition: every λ's weights, and exact leave-one-out errors, for about one fit.

With the centred features Xc = X − x̄ and the eigendecomposition XcᵀXc = V·diag(e)·Vᵀ (e = s², the squared
singular values of Xc), write P = XcV (n, d), the left singular vectors scaled by s. For α = n·λ (our λ
against the summed squared error, see `ridge_closed_form`) and f = 1/(e + α):

* weights      w(α) = V·(f ⊙ Pᵀyc),  b(α) = ȳ − x̄·w(α)
* fitted       ŷ(α) = ȳ + P·(f ⊙ Pᵀyc)
* hat diagonal h(α) = 1/n + (P ⊙ P)·f       (the 1/n is the unpenalized intercept's share)
* LOO residual e_i(α) = (y_i − ŷ_i(α)) / (1 − h_i(α))

The last line is exact for penalized least squares with a fixed design, as scikit-learn's `_RidgeGCV` uses:
each error equals refitting at the same α without row i. The α of every λ goes into one matrix product
over the λ grid, so the path costs the decomposition (one Gram matrix) plus two (n, d)·(d, L) products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training_worker.domain.data import FloatArray

_GRAM_CHUNK_ROWS = 8192
# Forming XᵀX squares the condition number; below this ratio of the smallest to the largest eigenvalue the
# Gram route would lose more than about eight digits, so the decomposition takes the SVD of Xc instead.
_GRAM_MIN_RATIO = 1e-8


def centred_gram(X: FloatArray, x_mean: FloatArray) -> FloatArray:
    """XcᵀXc for the centred X − x_mean, without a centred copy of X when that is numerically safe."""
    n, d = X.shape
    gram = X.T @ X
    shift = n * np.outer(x_mean, x_mean)
    # XcᵀXc = XᵀX − n·x̄x̄ᵀ avoids copying X, but cancels digits when a feature's mean is large against its
    # spread; past a 1e4 ratio (losing over four of sixteen digits) centre explicitly, one row block at a time.
    if np.any(np.diag(shift) > 1e4 * np.maximum(np.diag(gram) - np.diag(shift), np.finfo(np.float64).tiny)):
        gram = np.zeros((d, d))
        for start in range(0, n, _GRAM_CHUNK_ROWS):
            block = X[start : start + _GRAM_CHUNK_ROWS] - x_mean
            gram += block.T @ block
        return gram
    gram -= shift
    return gram


@dataclass(frozen=True, eq=False)
class RidgeDecomposition:
    """The spectral decomposition of centred training features that every λ of a ridge path reuses."""

    x_mean: FloatArray
    eigenvalues: FloatArray
    V: FloatArray
    n_samples: int

    @classmethod
    def of(cls, X: FloatArray) -> RidgeDecomposition:
        """The decomposition of X's centred Gram matrix (or of X itself when that is ill-conditioned)."""
        x_mean = X.mean(axis=0)
        e, V = np.linalg.eigh(centred_gram(X, x_mean))
        if e[-1] <= 0.0 or e[0] < _GRAM_MIN_RATIO * e[-1]:
            _, s, Vt = np.linalg.svd(X - x_mean, full_matrices=False)
            e, V = s * s, Vt.T
        return cls(x_mean, np.maximum(e, 0.0), V, X.shape[0])

    def filters(self, lambdas: FloatArray) -> FloatArray:
        """f = 1/(e + nλ) per eigenvalue (rows) and λ (columns); 0 where both vanish (the null space at λ = 0)."""
        denom = self.eigenvalues[:, None] + self.n_samples * np.asarray(lambdas, dtype=np.float64)[None, :]
        tiny = np.finfo(np.float64).eps * max(float(self.eigenvalues.max()), 1.0) * self.eigenvalues.size
        return np.where(denom > tiny, 1.0 / np.maximum(denom, tiny), 0.0)

    def weights(self, X: FloatArray, y: FloatArray, lambdas: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Weights (d, L) and biases (L,) of the ridge fit at every λ, on the rows X the decomposition came from."""
        y_mean = float(y.mean())
        # Xcᵀyc = Xᵀyc because yc sums to zero.
        r = self.V.T @ (X.T @ (y - y_mean))
        W = self.V @ (self.filters(lambdas) * r[:, None])
        return W, y_mean - self.x_mean @ W


@dataclass(frozen=True, eq=False)
class RidgeLOO:
    """Leave-one-out residuals (n, L) of a ridge path, its in-sample residuals (n, L), and mean squares per λ."""

    lambdas: FloatArray
    residuals: FloatArray
    fit_residuals: FloatArray

    @property
    def train_mse(self) -> FloatArray:
        """Mean squared in-sample error per λ of the fit on all rows."""
        mse: FloatArray = np.mean(self.fit_residuals**2, axis=0)
        return mse

    @property
    def mse(self) -> FloatArray:
        """Mean squared leave-one-out error per λ."""
        mse: FloatArray = np.mean(self.residuals**2, axis=0)
        return mse


def ridge_loo_path(X: FloatArray, y: FloatArray, lambdas: FloatArray) -> RidgeLOO:
    """Exact leave-one-out residuals of the ridge fit (bias unpenalized) at every λ, from one decomposition."""
    lams = np.asarray(lambdas, dtype=np.float64)
    dec = RidgeDecomposition.of(X)
    n = X.shape[0]
    y_mean = float(y.mean())
    yc = y - y_mean
    P = X @ dec.V
    P -= dec.x_mean @ dec.V
    F = dec.filters(lams)
    fitted = P @ (F * (P.T @ yc)[:, None])
    P *= P
    hat = P @ F
    hat += 1.0 / n
    fit_residuals = yc[:, None] - fitted
    residuals: FloatArray = fit_residuals / (1.0 - hat)
    return RidgeLOO(lams, residuals, fit_residuals)
