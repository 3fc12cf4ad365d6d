import pytest
import torch

from ssl3d.ops import chamfer as C


def chamfer_loop(x, y):
    out = []
    for xb, yb in zip(x, y):
        fwd = sum(min(float(((p - q) ** 2).sum()) for q in yb) for p in xb) / len(xb)
        bwd = sum(min(float(((p - q) ** 2).sum()) for p in xb) for q in yb) / len(yb)
        out.append(fwd + bwd)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("b,n,m,seed", [(1, 1, 1, 0), (2, 7, 11, 1), (3, 30, 20, 2)])
def test_matches_loop(b, n, m, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, 3, generator=g, dtype=torch.float64)
    y = torch.randn(b, m, 3, generator=g, dtype=torch.float64)
    ref = chamfer_loop(x, y)
    torch.testing.assert_close(C.chamfer_distance(x, y, "none"), ref, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(C.chamfer_distance_dense(x, y, "none"), ref, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(C.chamfer_distance(x, y), ref.mean(), rtol=1e-5, atol=1e-12)


def test_chunked_search_and_gradients_match_dense(monkeypatch):
    monkeypatch.setattr(C, "_CHUNK_ELEMENTS", 50)  # force many chunks
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 40, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 33, 3, generator=g, dtype=torch.float64, requires_grad=True)
    gx1, gy1 = torch.autograd.grad(C.chamfer_distance(x, y), (x, y))
    gx2, gy2 = torch.autograd.grad(C.chamfer_distance_dense(x, y), (x, y))
    torch.testing.assert_close(gx1, gx2, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(gy1, gy2, rtol=1e-5, atol=1e-12)


def test_gradcheck():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: C.chamfer_distance(a, b, "none"), (x, y))


def test_zero_for_permuted_copy_and_symmetric():
    x = torch.randn(2, 50, 3, dtype=torch.float64)
    perm = torch.randperm(50)
    assert C.chamfer_distance(x, x[:, perm]).item() == pytest.approx(0.0, abs=1e-12)
    y = torch.randn(2, 40, 3, dtype=torch.float64)
    torch.testing.assert_close(C.chamfer_distance(x, y), C.chamfer_distance(y, x))


def test_bad_input():
    with pytest.raises(ValueError, match="x"):
        C.chamfer_distance(torch.zeros(2, 5, 2), torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="empty"):
        C.chamfer_distance(torch.zeros(2, 0, 3), torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="batch"):
        C.chamfer_distance(torch.zeros(2, 5, 3), torch.zeros(3, 5, 3))
    with pytest.raises(ValueError, match="NaN"):
        C.chamfer_distance(torch.full((1, 5, 3), float("nan")), torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match="reduction"):
        C.chamfer_distance(torch.zeros(1, 5, 3), torch.ones(1, 5, 3), "sum")
