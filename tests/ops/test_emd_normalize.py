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
