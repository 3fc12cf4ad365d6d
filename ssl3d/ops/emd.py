"""Earth mover's distance between equal-size clouds.

* :func:`emd_exact` solves the assignment problem exactly (SciPy's Jonker-Volgenant solvers on
  the squared-distance matrix, after an auction's prices have pruned it when numba is
  installed), for evaluation. The authors used an approximate auction match.
* :func:`emd_sinkhorn` is a differentiable entropic approximation (log-domain Sinkhorn), for
  training losses that want one; it approaches the exact value from above as epsilon -> 0.

EMD here = mean over points of the squared distance to the matched point (METHOD section 9).
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.spatial.distance import cdist

from ssl3d.ops import _auction
from ssl3d.ops._checks import check_same_batch, check_tensor


def optimal_assignment(cost: np.ndarray, warm_start: bool | None = None) -> np.ndarray:
    """Column of each row in a minimum-cost one-to-one matching of ``cost`` (N, N), exact.

    ``warm_start`` (default: when numba is installed) first runs an epsilon-scaling auction. Its
    prices p give reduced costs r[i, j] = cost[i, j] + p[j] - min_j'(cost[i, j'] + p[j']) >= 0,
    and every matching's total cost is its total r plus one constant. So an optimal matching's
    total r is at most that of the auction's (near-optimal) matching, and none of its edges can
    have a larger r: SciPy's sparse solver then finds the optimum among the few edges left.
    """
    if warm_start is None:
        warm_start = _auction.HAVE_NUMBA
    scale = float(cost.max() - cost.min()) if cost.size else 0.0
    if not (warm_start and scale > 0):
        rows, cols = linear_sum_assignment(cost)
        return cols[np.argsort(rows)]
    n = len(cost)
    prices, matched = _auction.auction_prices(cost, eps_start=scale / 20, eps_final=scale * 1e-7)
    reduced = cost + prices[None, :]
    reduced -= reduced.min(1, keepdims=True)
    bound = float(reduced[np.arange(n), matched].sum())
    i, j = np.nonzero(reduced <= bound * (1 + 1e-9) + 1e-12 * scale)  # margin for rounding
    # A positive offset: the sparse solver drops stored zeros. It adds n to every matching.
    offset = bound if bound > 0 else 1.0
    graph = csr_matrix((reduced[i, j] + offset, (i, j)), shape=(n, n))
    rows, cols = min_weight_full_bipartite_matching(graph)
    return cols[np.argsort(rows)]


def _emd_one(pair: tuple[np.ndarray, np.ndarray]) -> float:
    x, y = pair
    cost = cdist(x, y, "sqeuclidean")
    return float(cost[np.arange(len(cost)), optimal_assignment(cost)].mean())


def emd_exact(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray,
              workers: int = 1) -> np.ndarray:
    """Exact EMD for each pair of clouds (no gradient).

    x, y: (B, N, 3) with the same N (one-to-one matching). Returns (B,) float64 numpy array.
    ``workers`` > 1 solves pairs in that many processes.
    """
    x = torch.as_tensor(x)
    y = torch.as_tensor(y)
    check_tensor(x, "x", (None, None, 3))
    check_tensor(y, "y", (None, None, 3))
    check_same_batch(("x", x), ("y", y))
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"EMD needs clouds of equal size, got {x.shape[1]} and {y.shape[1]} points")
    xs = x.detach().cpu().double().numpy()
    ys = y.detach().cpu().double().numpy()
    pairs = list(zip(xs, ys))
    if _auction.HAVE_NUMBA:  # compile (or load the cache) once, before any worker forks
        _auction.auction_prices(np.eye(2), 1.0, 1.0)
    if workers > 1 and len(pairs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            out = list(pool.map(_emd_one, pairs, chunksize=max(1, len(pairs) // (4 * workers))))
    else:
        out = [_emd_one(p) for p in pairs]
    return np.asarray(out, dtype=np.float64)


def emd_sinkhorn(x: torch.Tensor, y: torch.Tensor, epsilon: float = 1e-3,
                 iters: int = 100) -> torch.Tensor:
    """Entropic-regularised EMD (differentiable), log-domain Sinkhorn with uniform weights.

    x, y: (B, N, 3), (B, M, 3). ``epsilon`` is the regularisation in squared-distance units.
    Returns (B,): the transport cost sum_ij P_ij |x_i - y_j|^2 of the regularised plan, scaled
    to a mean per point (equal to the exact EMD's definition when N = M and epsilon -> 0).
    """
    check_tensor(x, "x", (None, None, 3))
    check_tensor(y, "y", (None, None, 3))
    check_same_batch(("x", x), ("y", y))
    n, m = x.shape[1], y.shape[1]
    cost = ((x.unsqueeze(2) - y.unsqueeze(1)) ** 2).sum(-1)  # (B, N, M)
    log_a = torch.full((x.shape[0], n), -math.log(n), dtype=x.dtype, device=x.device)
    log_b = torch.full((x.shape[0], m), -math.log(m), dtype=x.dtype, device=x.device)
    f = torch.zeros_like(log_a)
    g = torch.zeros_like(log_b)
    for _ in range(iters):
        f = -epsilon * torch.logsumexp((g.unsqueeze(1) - cost) / epsilon + log_b.unsqueeze(1), 2)
        g = -epsilon * torch.logsumexp((f.unsqueeze(2) - cost) / epsilon + log_a.unsqueeze(2), 1)
    log_plan = (f.unsqueeze(2) + g.unsqueeze(1) - cost) / epsilon \
        + log_a.unsqueeze(2) + log_b.unsqueeze(1)
    # The plan's total mass is 1; per-point mean = total cost (uniform masses 1/N).
    return (torch.exp(log_plan) * cost).sum((1, 2))
