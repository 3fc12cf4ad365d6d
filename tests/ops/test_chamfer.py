import pytest
import torch

from ssl3d.ops import chamfer as C


def chamfer_loop(x, y, exclude_partner=False):
    """Loop reference; with exclude_partner, x_i and y_i never match each other."""
    out = []
    for xb, yb in zip(x, y):
        d = [[float(((p - q) ** 2).sum()) for q in yb] for p in xb]
        ok = lambda i, j: not (exclude_partner and i == j)  # noqa: E731
        fwd = sum(min(d[i][j] for j in range(len(yb)) if ok(i, j)) for i in range(len(xb)))
        bwd = sum(min(d[i][j] for i in range(len(xb)) if ok(i, j)) for j in range(len(yb)))
        out.append(fwd / len(xb) + bwd / len(yb))
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


def kth_reference(points: torch.Tensor, k: int) -> torch.Tensor:
    """Loop reference: sort every other point of the cloud by distance, take the k-th."""
    out = torch.empty(points.shape[:2], dtype=points.dtype)
    for b in range(points.shape[0]):
        for i in range(points.shape[1]):
            d = sorted(float(((points[b, i] - points[b, j]) ** 2).sum())
                       for j in range(points.shape[1]) if j != i)
            out[b, i] = d[k - 1]
    return out


@pytest.mark.parametrize("k", [1, 3])
def test_kth_neighbour_matches_loop_and_chunks(k, monkeypatch):
    g = torch.Generator().manual_seed(k)
    pts = torch.rand(2, 30, 3, generator=g, dtype=torch.float64)
    want = kth_reference(pts, k)
    torch.testing.assert_close(C.kth_neighbour_sq_dist(pts, k), want)
    monkeypatch.setattr(C, "_CHUNK_ELEMENTS", 100)  # several query chunks
    torch.testing.assert_close(C.kth_neighbour_sq_dist(pts, k), want)


def test_kth_neighbour_flags_a_stray_point_and_pulls_it_back():
    g = torch.Generator().manual_seed(0)
    pts = (0.05 * torch.rand(1, 50, 3, generator=g)).requires_grad_(True)
    with torch.no_grad():
        pts[0, 7] += torch.tensor([1.0, 0.0, 0.0])
    d = C.kth_neighbour_sq_dist(pts, 4)
    assert int(d[0].argmax()) == 7 and d[0, 7] > 0.8
    d.sum().backward()
    assert pts.grad[0, 7, 0] > 0  # descending moves it back towards the cloud (-x)


def test_kth_neighbour_gradcheck():
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(2, 12, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: C.kth_neighbour_sq_dist(p, 2), (pts,))


def test_kth_neighbour_bad_input():
    with pytest.raises(ValueError, match="k must be in"):
        C.kth_neighbour_sq_dist(torch.rand(1, 5, 3), 5)
    with pytest.raises(ValueError, match="points must have shape"):
        C.kth_neighbour_sq_dist(torch.rand(5, 3), 1)


def test_exclude_partner_matches_loop_chunks_and_dense(monkeypatch):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3, 17, 3, generator=g, dtype=torch.float64)
    y = x + 0.01 * torch.randn(3, 17, 3, generator=g, dtype=torch.float64)  # partners nearest
    ref = chamfer_loop(x, y, exclude_partner=True)
    assert (ref > 10 * chamfer_loop(x, y)).all()  # the exclusion matters here
    torch.testing.assert_close(C.chamfer_distance(x, y, "none", exclude_partner=True), ref)
    torch.testing.assert_close(C.chamfer_distance_dense(x, y, "none", exclude_partner=True), ref)
    for budget in (20, 3 * 17 * 5):  # one row per chunk; five rows, the last chunk partial
        monkeypatch.setattr(C, "_CHUNK_ELEMENTS", budget)  # chunks start off the first row
        torch.testing.assert_close(C.chamfer_distance(x, y, "none", exclude_partner=True), ref)
    xg, yg = x.clone().requires_grad_(), y.clone().requires_grad_()
    grads = torch.autograd.grad(C.chamfer_distance(xg, yg, exclude_partner=True), (xg, yg))
    grads_dense = torch.autograd.grad(C.chamfer_distance_dense(xg, yg, exclude_partner=True), (xg, yg))
    for a, b in zip(grads, grads_dense):
        torch.testing.assert_close(a, b)


def test_exclude_partner_gradcheck():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: C.chamfer_distance(a, b, "none", exclude_partner=True), (x, y))


def test_exclude_partner_needs_partners():
    with pytest.raises(ValueError, match="exclude_partner"):
        C.nearest_sq_dist(torch.zeros(1, 5, 3), torch.zeros(1, 4, 3), exclude_partner=True)
    with pytest.raises(ValueError, match="exclude_partner"):
        C.nearest_neighbour_index(torch.zeros(1, 1, 3), torch.zeros(1, 1, 3), exclude_partner=True)
    with pytest.raises(ValueError, match="exclude_partner"):
        C.chamfer_distance(torch.zeros(1, 5, 3), torch.zeros(1, 4, 3), exclude_partner=True)
    with pytest.raises(ValueError, match="exclude_partner"):
        C.chamfer_distance_dense(torch.zeros(1, 1, 3), torch.zeros(1, 1, 3), exclude_partner=True)
