"""The numerical core of training: weighted ridge regressions solved through the Gram matrix,
out-of-fold scores, Platt calibration, decision thresholds and the sentiment softmax.

Why ridge: every theme and sentiment column shares one factorisation of
``G + lambda I`` (G = X X^T over a few thousand comments), so all labels, and every
cross-validation fold, cost one Cholesky each; an iterative logistic fit of the same
50 columns took ten times longer. Platt scaling on out-of-fold scores then turns the
ridge scores into probabilities and the thresholds are tuned on those.

The Gram matrix costs n^2 memory and its Cholesky n^3 time, so above
``EXACT_MAX_EXAMPLES`` comments the same regressions are solved by conjugate gradients
(``solve_ridge_cg``) on the same dual system, touching X only through sparse products and
preconditioned by a randomised Nystroem approximation of it (``Nystroem``): memory grows
with n times the preconditioner's rank instead of n^2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import scipy.sparse as sp

#: Up to this many examples the ridge regressions are solved exactly (Gram matrix and
#: Cholesky, ``solve_ridge``); above it by conjugate gradients (``solve_ridge_cg``).
EXACT_MAX_EXAMPLES = 8000
#: Conjugate gradients stop for a column when |residual| <= CG_TOLERANCE |right-hand side|.
#: At 1e-4 the ridge scores of the 4,993 shipped comments were within 2e-4 of an exact
#: float64 solve, and a stored model's confidences moved no more than at 1e-5: what is left
#: is the int8 rounding of its weights (docs/themes-model.md, "Training at scale").
CG_TOLERANCE = 1e-4
CG_MAX_ITERATIONS = 1000
#: Rank of the Nystroem preconditioner (n x rank float64 is its memory) and the subspace
#: iterations of its sketch (each costs about as much as 4 CG iterations and saved 5-7):
#: at 20,000 comments, 20-25 iterations per fit instead of 113-146 unpreconditioned.
NYSTROEM_RANK = 200
NYSTROEM_POWER = 1
#: The preconditioner's random sketch is drawn with this seed (results do not depend on it
#: beyond the solver's tolerance; fixing it keeps training deterministic).
NYSTROEM_SEED = 0

#: The most frequent feature columns go through a dense product (BLAS), the rest through a
#: sparse one: a sparse X X^T spends most of its time on the few features in every comment.
_DENSE_COLUMNS = 1000


def gram(x: sp.csr_matrix) -> np.ndarray:
    """X X^T + 1 (the 1 is an unpenalised-ish constant feature: the intercept), float32."""
    import numpy as np

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
    import numpy as np
    import scipy.linalg as sla

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
    import numpy as np

    return np.asarray(g[np.ix_(rows, sol.rows)] @ sol.dual, dtype=np.float64)


def primal(x: sp.csr_matrix, sol: RidgeSolution) -> tuple[np.ndarray, np.ndarray]:
    """(weights features x columns, bias) of a dual solution. The product runs in float32
    (as the exact solution is), the bias is summed in the dual's own precision."""
    import numpy as np

    xs = x if _all_rows(sol.rows, x.shape[0]) else x[sol.rows]
    coef = xs.T @ sol.dual.astype(np.float32, copy=False)
    return np.asarray(coef, dtype=np.float64), sol.dual.sum(axis=0).astype(np.float64)


def _all_rows(rows: np.ndarray, n: int) -> bool:
    import numpy as np

    return len(rows) == n and bool((rows == np.arange(n)).all())


# --- conjugate gradients, for more examples than a Gram matrix fits -----------------------


def _data_operator(x: sp.csr_matrix, r: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A -> diag(r) (X X^T + 1) diag(r) A for n x k float64 A, through two sparse products
    (float32, as the Gram matrix is) and never an n x n array."""
    import numpy as np

    xt = x.T  # a CSC view of the same arrays: no copy

    def apply(a: np.ndarray) -> np.ndarray:
        ra = a * r[:, None]
        out = np.asarray(x @ (xt @ ra.astype(np.float32)), dtype=np.float64)
        out += ra.sum(axis=0)
        out *= r[:, None]
        return out

    return apply


@dataclass
class Nystroem:
    """A rank-k approximation F F^T of diag(r) (X X^T + 1) diag(r) over every example
    (r^2 the weights), from a randomised Nystroem sketch (Tropp, Yurtsever, Udell and
    Cevher 2017; as a preconditioner, Frangella, Tropp and Udell 2023). Built once, it
    preconditions the fit on any subset of the rows: (F_S F_S^T + l2 I) approximates that
    fit's matrix, and its inverse is cheap by Woodbury."""

    factor: np.ndarray  # n x k, float64

    @classmethod
    def build(
        cls,
        x: sp.csr_matrix,
        weights: np.ndarray,
        rank: int,
        seed: int = NYSTROEM_SEED,
        power: int = NYSTROEM_POWER,
    ) -> Nystroem:
        import numpy as np
        import scipy.linalg as sla

        n = x.shape[0]
        rank = max(1, min(rank, n))
        apply = _data_operator(x, np.sqrt(weights))
        rng = np.random.default_rng(seed)
        omega = sla.qr(
            rng.standard_normal((n, rank)), mode="economic", overwrite_a=True, check_finite=False
        )[0]
        y = np.empty_like(omega)
        for step in range(power + 1):
            for start in range(0, rank, 64):  # bounds the features x chunk product between
                y[:, start : start + 64] = apply(omega[:, start : start + 64])
            if step < power:  # a subspace iteration: sketch with the range of A omega
                omega = sla.qr(y, mode="economic", check_finite=False)[0]
        # A small shift keeps omega^T y positive definite despite float32 products.
        shift = float(np.finfo(np.float32).eps * np.linalg.norm(y))
        for _attempt in range(5):
            y += shift * omega
            core = omega.T @ y
            try:
                upper = sla.cholesky((core + core.T) / 2, lower=False, check_finite=False)
                break
            except np.linalg.LinAlgError:
                y -= shift * omega
                shift *= 100.0
        else:  # pragma: no cover - the operator is positive semi-definite
            raise np.linalg.LinAlgError("the Nystroem sketch is not positive definite")
        del omega
        # b = y upper^-1, in y's memory; then b b^T = y (omega^T y)^-1 y^T, the Nystroem
        # approximation (of the operator plus shift * I on the sketch's range).
        b = sla.solve_triangular(
            upper, y.T, trans="T", lower=False, overwrite_b=True, check_finite=False
        ).T
        del y
        s2, v = np.linalg.eigh(b.T @ b)  # b = U sqrt(s2) V^T
        s2 = np.maximum(s2, 0.0)
        scale = np.sqrt(np.maximum(s2 - shift, 0.0) / np.where(s2 > 0, s2, 1.0))
        return cls(factor=b @ (v * scale))  # U sqrt(eigenvalues - shift)

    def preconditioner(self, rows: np.ndarray, l2: float) -> Callable[[np.ndarray], np.ndarray]:
        """R -> (F_S F_S^T + l2 I)^-1 R for the rows S = ``rows``."""
        import numpy as np
        import scipy.linalg as sla

        f = self.factor if _all_rows(rows, len(self.factor)) else self.factor[rows]
        core = sla.cho_factor(f.T @ f + l2 * np.eye(f.shape[1]), check_finite=False)

        def apply(res: np.ndarray) -> np.ndarray:
            out = res - f @ sla.cho_solve(core, f.T @ res, check_finite=False)
            out /= l2
            return out

        return apply


@dataclass
class CGReport:
    """How a conjugate-gradient fit went."""

    iterations: int
    #: Per column, |residual| / |right-hand side| at the end (0 for a column of zeros).
    residuals: np.ndarray
    converged: bool


def solve_ridge_cg(
    x: sp.csr_matrix,
    targets: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray,
    l2: float,
    nystroem: Nystroem | None = None,
    *,
    tolerance: float = CG_TOLERANCE,
    max_iterations: int = CG_MAX_ITERATIONS,
) -> tuple[RidgeSolution, CGReport]:
    """``solve_ridge``'s system, diag(r) (X X^T + 1) diag(r) alpha + l2 alpha = diag(r) Y,
    solved by preconditioned conjugate gradients, every column at once (each its own CG;
    a column stops when |residual| <= tolerance |diag(r) Y|, and later iterations skip it).
    Without ``nystroem``, plain (unpreconditioned) conjugate gradients."""
    import numpy as np

    xs = x if _all_rows(rows, x.shape[0]) else x[rows]
    r = np.sqrt(weights[rows])
    apply = _data_operator(xs, r)
    rhs = targets[rows] * r[:, None]
    norms = np.sqrt((rhs * rhs).sum(axis=0))
    limit = tolerance * norms
    precondition = nystroem.preconditioner(rows, l2) if nystroem is not None else lambda v: v.copy()
    alpha = np.zeros_like(rhs)
    residuals = np.zeros(rhs.shape[1])
    # The columns still iterating, and their solution, residual and direction, side by side
    # in compact arrays; a column leaves them once it has converged.
    active = np.flatnonzero(norms > limit)
    res = rhs[:, active]
    del rhs
    sol = np.zeros_like(res)
    direction = precondition(res)
    rz = (res * direction).sum(axis=0)
    iterations = 0
    while active.size and iterations < max_iterations:
        iterations += 1
        image = apply(direction)
        image += l2 * direction
        step = rz / (direction * image).sum(axis=0)
        sol += step * direction
        image *= step
        res -= image
        del image
        res_norm = np.sqrt((res * res).sum(axis=0))
        residuals[active] = res_norm / norms[active]
        done = res_norm <= limit[active]
        if done.any():
            alpha[:, active[done]] = sol[:, done]
            keep = ~done
            active, sol, res = active[keep], sol[:, keep], res[:, keep]
            direction, rz = direction[:, keep], rz[keep]
            if not active.size:
                break
        z = precondition(res)
        rz_new = (res * z).sum(axis=0)
        z += (rz_new / rz) * direction
        direction, rz = z, rz_new
    alpha[:, active] = sol  # only when max_iterations stopped it
    report = CGReport(iterations, residuals, converged=not active.size)
    alpha *= r[:, None]
    return RidgeSolution(rows=rows, dual=alpha), report


def primal_scores(
    x: sp.csr_matrix, coef: np.ndarray, bias: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Scores of ``rows`` from primal weights: X[rows] W + b (float32 product)."""
    import numpy as np

    xs = x if _all_rows(rows, x.shape[0]) else x[rows]
    return np.asarray(xs @ coef.astype(np.float32), dtype=np.float64) + bias


def platt(
    scores: np.ndarray, y: np.ndarray, weights: np.ndarray, iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Per column (a, c) so that sigmoid(a * score + c) is a calibrated probability: Platt's
    method (weighted, with his smoothed targets), by Newton's method with step halving."""
    import numpy as np
    from scipy.special import expit

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
    import numpy as np

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
    import numpy as np
    from scipy.optimize import minimize
    from scipy.special import log_softmax

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
    import numpy as np

    return np.minimum((np.asarray(hashes) * folds).astype(np.int64), folds - 1)
