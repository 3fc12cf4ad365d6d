import pytest
import torch

from ssl3d.ops import affinity as A
from ssl3d.ops import bce as B


def distance_transform_pairwise(cost):
    """O((HW)^2) reference: every pixel against every pixel."""
    b, h, w = cost.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()], 1).to(cost.dtype)  # (HW, 2)
    d2 = ((coords[:, None] - coords[None]) ** 2).sum(-1)  # (HW_q, HW_p)
    return (d2.unsqueeze(0) + cost.reshape(b, 1, h * w)).amin(-1).reshape(b, h, w)


def affinity_pairwise(pred, gt, lam):
    fwd = (pred * distance_transform_pairwise(lam * (1 - gt))).mean((1, 2))
    bwd = (gt * distance_transform_pairwise(lam * (1 - pred))).mean((1, 2))
    return fwd, bwd


def random_masks(b, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(b, h, w, generator=g, dtype=torch.float64)
    gt = (torch.rand(b, h, w, generator=g, dtype=torch.float64) > 0.7).double()
    return pred, gt


@pytest.mark.parametrize("b,h,w,seed", [(1, 4, 4, 0), (2, 7, 5, 1), (2, 12, 12, 2)])
def test_distance_transform_matches_pairwise(b, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    cost = torch.rand(b, h, w, generator=g, dtype=torch.float64) * 50
    torch.testing.assert_close(A.soft_distance_transform(cost), distance_transform_pairwise(cost),
                               rtol=1e-5, atol=1e-12)


def test_distance_transform_of_binary_mask_is_squared_distance_to_foreground():
    mask = torch.zeros(1, 9, 9, dtype=torch.float64)
    mask[0, 2, 3] = 1
    d = A.soft_distance_transform(A.default_empty_cost(9, 9) * (1 - mask))
    assert d[0, 2, 3] == 0
    assert d[0, 5, 7] == 3 ** 2 + 4 ** 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intended_matches_pairwise_values_and_gradients(seed):
    pred, gt = random_masks(2, 8, 9, seed)
    lam = 30.0
    p1 = pred.clone().requires_grad_()
    p2 = pred.clone().requires_grad_()
    f1, b1 = A.affinity_intended(p1, gt, empty_cost=lam)
    f2, b2 = affinity_pairwise(p2, gt, lam)
    torch.testing.assert_close(f1, f2, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(b1, b2, rtol=1e-5, atol=1e-12)
    (f1.sum() + 2 * b1.sum()).backward()
    (f2.sum() + 2 * b2.sum()).backward()
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-5, atol=1e-12)


def test_gradcheck_affinity_and_bce():
    pred, gt = random_masks(1, 5, 6, 3)
    pred = (pred * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(lambda p: A.affinity_intended(p, gt, 20.0), (pred,))
    assert torch.autograd.gradcheck(lambda p: A.affinity_released(p, gt), (pred,))
    assert torch.autograd.gradcheck(lambda p: B.bce_intended(p, gt), (pred,))
    assert torch.autograd.gradcheck(lambda p: B.bce_released(p, gt), (pred,))


def test_released_form_matches_its_formula_loop():
    pred, gt = random_masks(2, 5, 5, 4)
    fwd, bwd = A.affinity_released(pred, gt)
    for i in range(2):
        f = sum(float(pred[i, y, x] * (gt[i, y, x] + 1e6 * (1 - gt[i, y, x])))
                for y in range(5) for x in range(5)) / 25
        b = sum(float(gt[i, y, x] * (pred[i, y, x] + 1e6 * (1 - pred[i, y, x])))
                for y in range(5) for x in range(5)) / 25
        assert fwd[i].item() == pytest.approx(f, rel=1e-9)
        assert bwd[i].item() == pytest.approx(b, rel=1e-9)


def test_intended_is_zero_for_identical_binary_masks_and_grows_with_offset():
    gt = torch.zeros(1, 16, 16, dtype=torch.float64)
    gt[0, 4:9, 4:9] = 1
    f, b = A.affinity_intended(gt, gt)
    assert f.item() == 0 and b.item() == 0
    shifted = torch.roll(gt, 3, dims=2)
    f3, b3 = A.affinity_intended(shifted, gt)
    shifted = torch.roll(gt, 5, dims=2)
    f5, b5 = A.affinity_intended(shifted, gt)
    assert 0 < f3 < f5 and 0 < b3 < b5


def test_bce_forms():
    pred, gt = random_masks(2, 4, 4, 5)
    ref = -(gt * torch.log(pred) + (1 - gt) * torch.log(1 - pred)).mean((1, 2))
    torch.testing.assert_close(B.bce_intended(pred, gt), ref)
    sig = torch.sigmoid(pred)
    ref_rel = -(gt * torch.log(sig) + (1 - gt) * torch.log(1 - sig)).mean((1, 2))
    torch.testing.assert_close(B.bce_released(pred, gt), ref_rel)


def test_bad_masks():
    with pytest.raises(ValueError, match="same shape"):
        A.affinity_intended(torch.zeros(1, 4, 4), torch.zeros(1, 4, 5))
    with pytest.raises(ValueError, match="pred"):
        A.affinity_released(torch.zeros(4, 4), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="NaN"):
        B.bce_intended(torch.full((1, 4, 4), float("nan")), torch.zeros(1, 4, 4))


def point_to_silhouette_loop(uv, dmap):
    """Reference: clamp each point to the pixel-centre box, interpolate bilinearly by hand."""
    b, h, w = dmap.shape
    out = []
    for bi in range(b):
        total = 0.0
        for u, v in uv[bi]:
            cu, cv = min(max(u, 0.5), w - 0.5), min(max(v, 0.5), h - 0.5)
            extra = (u - cu) ** 2 + (v - cv) ** 2
            x, y = cu - 0.5, cv - 0.5  # index space
            x0, y0 = int(x // 1), int(y // 1)
            x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
            fx, fy = x - x0, y - y0
            val = ((1 - fx) * (1 - fy) * dmap[bi, y0, x0] + fx * (1 - fy) * dmap[bi, y0, x1]
                   + (1 - fx) * fy * dmap[bi, y1, x0] + fx * fy * dmap[bi, y1, x1])
            total = total + val + extra
        out.append(total / uv.shape[1])
    return torch.stack(out)


def test_point_to_silhouette_matches_loop_and_gradcheck():
    g = torch.Generator().manual_seed(6)
    dmap = torch.rand(2, 7, 9, generator=g, dtype=torch.float64) * 20
    uv = torch.rand(2, 11, 2, generator=g, dtype=torch.float64) * torch.tensor([13.0, 11.0]) - 2
    torch.testing.assert_close(A.point_to_silhouette(uv, dmap), point_to_silhouette_loop(uv, dmap),
                               rtol=1e-5, atol=1e-10)
    u = uv.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: A.point_to_silhouette(x, dmap), (u,))


def test_point_to_silhouette_pulls_stray_points_back():
    mask = torch.zeros(1, 16, 16, dtype=torch.float64)
    mask[0, 6:10, 6:10] = 1
    dmap = A.soft_distance_transform(A.default_empty_cost(16, 16) * (1 - mask))
    near = torch.tensor([[[8.0, 8.0]]], dtype=torch.float64)
    far = torch.tensor([[[40.0, 8.0]]], dtype=torch.float64, requires_grad=True)
    assert A.point_to_silhouette(near, dmap).item() == 0
    loss = A.point_to_silhouette(far, dmap)
    loss.backward()
    assert loss.item() == pytest.approx((40 - 15.5) ** 2 + 6 ** 2)  # off-image + to the mask
    assert far.grad[0, 0, 0] > 0  # descent moves it back towards the mask
