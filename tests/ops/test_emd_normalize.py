import itertools

import numpy as np
import pytest
import torch

from ssl3d.ops import emd_exact, emd_sinkhorn, normalize_unit_box


def emd_brute_force(x, y):
    n = len(x)
    best = min(sum(float(((x[i] - y[p[i]]) ** 2).sum()) for i in range(n))
               for p in itertools.permutations(range(n)))
    return best / n


@pytest.mark.parametrize("n,seed", [(1, 0), (3, 1), (5, 2), (6, 3)])
def test_emd_equals_brute_force(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, n, 3, generator=g, dtype=torch.float64)
    y = torch.randn(2, n, 3, generator=g, dtype=torch.float64)
    got = emd_exact(x, y)
    for i in range(2):
        assert got[i] == pytest.approx(emd_brute_force(x[i], y[i]), rel=1e-9)


def test_emd_zero_for_permuted_copy_symmetric_and_parallel():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 64, 3, generator=g, dtype=torch.float64)
    y = torch.randn(3, 64, 3, generator=g, dtype=torch.float64)
    perm = torch.randperm(64, generator=g)
    assert np.allclose(emd_exact(x, x[:, perm]), 0.0)
    assert np.allclose(emd_exact(x, y), emd_exact(y, x))
    assert np.allclose(emd_exact(x, y, workers=2), emd_exact(x, y))


def test_sinkhorn_approaches_exact_from_above():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 20, 3, generator=g, dtype=torch.float64)
    y = torch.rand(2, 20, 3, generator=g, dtype=torch.float64)
    exact = emd_exact(x, y)
    coarse = emd_sinkhorn(x, y, epsilon=1e-2, iters=300).numpy()
    fine = emd_sinkhorn(x, y, epsilon=3e-3, iters=3000).numpy()
    # A converged regularised plan is feasible, so its cost is an upper bound that tightens.
    assert np.all(coarse >= fine) and np.all(fine >= exact - 1e-6)
    assert np.allclose(fine, exact, rtol=0.01)
    xr = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: emd_sinkhorn(a, y, epsilon=0.05, iters=30), (xr,))


@pytest.mark.parametrize("kind", ["clouds", "ties", "one"])
def test_auction_is_eps_optimal_and_compiled_equals_python(kind):
    """The auction's matching is a permutation within N * eps_final of the optimum, and the
    numba-compiled bidding makes exactly the bids of the plain Python loop it is compiled from."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    from ssl3d.ops import _auction

    rng = np.random.default_rng(0)
    if kind == "clouds":
        cost = cdist(rng.random((40, 3)), rng.random((40, 3)), "sqeuclidean")
    elif kind == "ties":  # duplicated points: equal costs everywhere
        cost = cdist(np.repeat(rng.random((5, 3)), 6, 0), np.repeat(rng.random((10, 3)), 3, 0))
    else:
        cost = np.array([[2.5]])
    n, eps = len(cost), 1e-6
    prices, assign = _auction.auction_prices(cost, eps_start=0.1, eps_final=eps)
    assert sorted(assign) == list(range(n))
    rows, cols = linear_sum_assignment(cost)
    best = cost[rows, cols].sum()
    assert best - 1e-12 <= cost[np.arange(n), assign].sum() <= best + n * eps
    p_py = np.zeros(n)
    a_py = _auction._auction_py(cost.copy(), p_py, 0.1, eps, 8.0)
    assert np.array_equal(a_py, assign) and np.array_equal(p_py, prices)
    with pytest.raises(ValueError, match="square"):
        _auction.auction_prices(cost[:, :0], 0.1, eps)


@pytest.mark.parametrize("seed", range(3))
def test_warm_started_assignment_is_the_exact_optimum(seed):
    """With the auction's pruning or without, the matching is the optimum SciPy finds from cold,
    on clouds far apart (the slow case: a poor prediction), on nearly equal ones and on clouds
    of duplicated points."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    from ssl3d.ops import _auction
    from ssl3d.ops.emd import optimal_assignment

    rng = np.random.default_rng(seed)
    y = rng.random((300, 3))
    dup = np.repeat(rng.random((30, 3)), 10, 0)  # ties: many equal reduced costs stay unpruned
    for x in (0.3 * rng.random((300, 3)) + 0.5, y + 0.01 * rng.standard_normal(y.shape), dup):
        cost = cdist(x, y, "sqeuclidean")
        rows, cols = linear_sum_assignment(cost)
        best = cost[rows, cols].sum()
        for warm in (True, False) if _auction.HAVE_NUMBA else (False,):
            got = optimal_assignment(cost, warm_start=warm)
            assert sorted(got) == list(range(300))
            assert abs(cost[np.arange(300), got].sum() - best) < 1e-9 * best
    assert np.array_equal(optimal_assignment(np.zeros((3, 3))), np.arange(3))


def test_emd_bad_input():
    with pytest.raises(ValueError, match="equal size"):
        emd_exact(torch.zeros(1, 4, 3), torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match="NaN"):
        emd_exact(torch.full((1, 4, 3), float("nan")), torch.zeros(1, 4, 3))


def test_normalize_unit_box():
    g = torch.Generator().manual_seed(2)
    pts = torch.randn(3, 100, 3, generator=g, dtype=torch.float64) * torch.tensor([5.0, 1.0, 2.0]) + 7
    out = normalize_unit_box(pts)
    side = out.amax(1) - out.amin(1)
    assert torch.allclose(side.amax(-1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(out.amax(1) + out.amin(1), torch.zeros(3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="zero extent"):
        normalize_unit_box(torch.ones(1, 10, 3))
