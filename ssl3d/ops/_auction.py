"""Forward auction with epsilon-scaling (Bertsekas), compiled by numba when it is installed.

It does not decide the answer: its prices and its near-optimal matching bound which edges an
optimal matching can use (:func:`ssl3d.ops.emd.optimal_assignment`), and SciPy's exact solver
then runs on those few. On the dense 1024 x 1024 matrices of evaluation this is about eight
times faster than SciPy alone.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:  # optional: without numba, emd_exact solves from cold
    njit = None


def auction_prices(cost: np.ndarray, eps_start: float, eps_final: float,
                   factor: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Object prices and an assignment of the minimum-cost matching of ``cost`` (N, N).

    Gauss-Seidel bidding: each unassigned row takes the column j maximising -cost[i, j] - p[j]
    and raises p[j] by its margin over the second best plus eps; eps shrinks by ``factor`` from
    ``eps_start`` to ``eps_final``. The result's total cost is within N * eps_final of the
    optimum. Returns (prices (N,), assignment (N,) column of each row).
    """
    if cost.ndim != 2 or cost.shape[0] != cost.shape[1]:
        raise ValueError(f"cost must be a square (N, N) matrix, got {cost.shape}")
    if not (0 < eps_final <= eps_start) or factor <= 1:
        raise ValueError(f"need 0 < eps_final <= eps_start and factor > 1, got {eps_final}, "
                         f"{eps_start}, {factor}")
    prices = np.zeros(cost.shape[1])
    assign = _auction(np.ascontiguousarray(cost, dtype=np.float64), prices, eps_start, eps_final,
                      factor)
    return prices, assign


def _auction_py(cost, prices, eps_start, eps_final, factor):
    n = cost.shape[0]
    owner = np.empty(n, np.int64)  # column -> row holding it
    assign = np.empty(n, np.int64)  # row -> column
    queue = np.empty(n, np.int64)  # ring buffer of unassigned rows
    eps = eps_start
    while True:
        owner[:] = -1
        assign[:] = -1
        for i in range(n):
            queue[i] = i
        head, count = 0, n
        while count > 0:
            i = queue[head]
            head = (head + 1) % n
            count -= 1
            best, second, jbest = -np.inf, -np.inf, 0
            for j in range(n):
                value = -cost[i, j] - prices[j]
                if value > second:
                    if value > best:
                        second, best, jbest = best, value, j
                    else:
                        second = value
            # With a single column there is no second best: the bid is then just eps.
            margin = best - second if second > -np.inf else 0.0
            prices[jbest] += margin + eps
            previous = owner[jbest]
            owner[jbest] = i
            assign[i] = jbest
            if previous >= 0:
                assign[previous] = -1
                queue[(head + count) % n] = previous
                count += 1
        if eps <= eps_final:
            return assign
        eps = max(eps / factor, eps_final)


_auction = njit(cache=True, nogil=True)(_auction_py) if njit is not None else _auction_py
HAVE_NUMBA = njit is not None
