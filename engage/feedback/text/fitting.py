"""The numerical core of training: weighted ridge regressions solved through the Gram matrix,
out-of-fold scores, Platt calibration, decision thresholds and the sentiment softmax.

Why ridge: every theme and sentiment column shares one factorisation of
``G + lambda I`` (G = X X^T over a few thousand comments), so all labels, and every
cross-validation fold, cost one Cholesky each; an iterative logistic fit of the same
50 columns took ten times longer. Platt scaling on out-of-fold scores then turns the
ridge scores into probabilities and the thresholds are tuned on those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit, log_softmax

#: The most frequent feature columns go through a dense product (BLAS), the rest through a
#: sparse one: a sparse X X^T spends most of its time on the few features in every comment.
_DENSE_COLUMNS = 1000


def gram(x: sp.csr_matrix) -> np.ndarray:
    """X X^T + 1 (the 1 is an unpenalised-ish constant feature: the intercept), float32."""
    xc = x.tocsc()
    df = np.diff(xc.indptr)
    order = np.argsort(-df, kind="stable")
    dense = xc[:, order[:_DENSE_COLUMNS]].toarray()
    g = np.asarray(dense @ dense.T, dtype=np.float32)
    del dense
    rest = xc[:, order[_DENSE_COLUMNS:]]
    sparse = (rest @ rest.T.tocsr()).tocoo()
    # Added entry by entry: no second n x n array at any time.
    g[sparse.row, sparse.col] += sparse.data.astype(np.float32)
    g += np.float32(1.0)
    return g


@dataclass
class RidgeSolution:
    """Dual coefficients of a weighted ridge fit on ``rows``: W = X[rows]^T (r * alpha)."""

    rows: np.ndarray
    dual: np.ndarray  # len(rows) x columns, already multiplied by sqrt(weight)


def solve_ridge(
    g: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray,
    l2: float,
    *,
    overwrite: bool = False,
) -> RidgeSolution:
    """Minimise sum_i w_i |y_i - x_i W - b|^2 + l2 (|W|^2 + |b|^2) over ``rows``, in the
    dual: with r = sqrt(w), alpha = (diag(r) G diag(r) + l2 I)^-1 diag(r) Y.

    ``overwrite`` (all rows only) factorises ``g`` in place instead of a copy: the last
    fit does not need ``g`` any more, and n x n float32 is the largest thing in memory."""
    r = np.sqrt(weights[rows]).astype(np.float32)
    if overwrite:
        if len(rows) != len(g):
            raise ValueError("overwrite needs every row")
        m = g
    else:
        m = g[np.ix_(rows, rows)]
    m *= r[:, None]
    m *= r[None, :]
    m[np.diag_indices_from(m)] += np.float32(l2)
    factor = sla.cho_factor(m, lower=False, overwrite_a=True, check_finite=False)
    alpha = sla.cho_solve(factor, targets[rows].astype(np.float32) * r[:, None], check_finite=False)
    return RidgeSolution(rows=rows, dual=alpha * r[:, None])


def ridge_scores(g: np.ndarray, sol: RidgeSolution, rows: np.ndarray) -> np.ndarray:
    """Scores of ``rows`` (which may be outside the fit) from the Gram matrix."""
    return np.asarray(g[np.ix_(rows, sol.rows)] @ sol.dual, dtype=np.float64)


def primal(x: sp.csr_matrix, sol: RidgeSolution) -> tuple[np.ndarray, np.ndarray]:
    """(weights features x columns, bias) of a dual solution."""
    coef = x[sol.rows].T @ sol.dual
    return np.asarray(coef, dtype=np.float64), sol.dual.sum(axis=0).astype(np.float64)


def platt(
    scores: np.ndarray, y: np.ndarray, weights: np.ndarray, iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Per column (a, c) so that sigmoid(a * score + c) is a calibrated probability: Platt's
    method (weighted, with his smoothed targets), by Newton's method with step halving."""
    pos = weights @ y
    neg = weights.sum() - pos
    target = np.where(y > 0, (pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0))
    wcol = weights[:, None]

    def loss(a: np.ndarray, c: np.ndarray) -> np.ndarray:
        z = a * scores + c
        return (wcol * (np.logaddexp(0.0, z) - target * z)).sum(axis=0)

    a = np.ones(scores.shape[1])
    c = np.zeros(scores.shape[1])
    current = loss(a, c)
    for _ in range(iterations):
        p = expit(a * scores + c)
        resid = wcol * (p - target)
        curv = wcol * p * (1.0 - p)
        ga, gc = (resid * scores).sum(axis=0), resid.sum(axis=0)
        haa = (curv * scores * scores).sum(axis=0) + 1e-10
        hac = (curv * scores).sum(axis=0)
        hcc = curv.sum(axis=0) + 1e-10
        det = haa * hcc - hac * hac
        det = np.where(det > 1e-20, det, 1e-20)
        da = (hcc * ga - hac * gc) / det
        dc = (haa * gc - hac * ga) / det
        step = np.ones_like(a)
        for _halving in range(30):
            trial = loss(a - step * da, c - step * dc)
            worse = trial > current + 1e-12
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        moved = np.abs(step * da).max(initial=0.0) + np.abs(step * dc).max(initial=0.0)
        a, c = a - step * da, c - step * dc
        current = loss(a, c)
        if moved < 1e-7:
            break
    return a, c


def tune_thresholds(
    probs: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    grid: np.ndarray,
    tolerance: float,
    default: float,
) -> np.ndarray:
    """Per column, the threshold with the best weighted F1 on out-of-fold probabilities;
    among thresholds within ``tolerance`` of the best, the median (steadier than the
    single best point when a label has few examples)."""
    out = np.full(probs.shape[1], default)
    for j in range(probs.shape[1]):
        pos = y[:, j] > 0
        if weights[pos].sum() <= 0:
            continue
        hit = probs[:, j][None, :] >= grid[:, None]
        tp = (hit & pos) @ weights
        fp = (hit & ~pos) @ weights
        fn = (~hit & pos) @ weights
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12)
        out[j] = float(np.median(grid[f1 >= f1.max() - tolerance]))
    return out


def softmax_stacker(
    scores: np.ndarray,
    classes: np.ndarray,
    weights: np.ndarray,
    n_classes: int,
    l2: float,
    class_weight_power: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(M, m) so that softmax(scores @ M + m) predicts ``classes``: a small multinomial
    logistic regression on the ridge scores (weighted; rare classes up-weighted by
    (largest / class) ** class_weight_power), L2 on M pulling it towards the identity."""
    k = scores.shape[1]
    if len(classes) == 0:
        return np.eye(k, n_classes), np.zeros(n_classes)
    counts = np.bincount(classes, weights=weights, minlength=n_classes)
    present = counts > 0
    scale = np.zeros(n_classes)
    scale[present] = (counts[present].max() / counts[present]) ** class_weight_power
    w = weights * scale[classes]
    w = w / w.sum()
    rows = np.arange(len(classes))
    eye = np.eye(k, n_classes)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        mat = theta[: k * n_classes].reshape(k, n_classes)
        logp = log_softmax(scores @ mat + theta[k * n_classes :], axis=1)
        p = np.exp(logp)
        p[rows, classes] -= 1.0
        g = p * w[:, None]
        diff = mat - eye
        value = -float((w * logp[rows, classes]).sum()) + 0.5 * l2 * float((diff * diff).sum())
        grad = np.concatenate([(scores.T @ g + l2 * diff).ravel(), g.sum(axis=0)])
        return value, grad

    theta0 = np.concatenate([eye.ravel(), np.zeros(n_classes)])
    result = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    theta = result.x
    return theta[: k * n_classes].reshape(k, n_classes), theta[k * n_classes :]


def fold_of(hashes: Sequence[float], folds: int) -> np.ndarray:
    """Fold number of each example from its group's hash in [0, 1)."""
    return np.minimum((np.asarray(hashes) * folds).astype(np.int64), folds - 1)
