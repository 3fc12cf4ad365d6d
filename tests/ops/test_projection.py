"""Projection ops against loop-based references, in float64, plus gradcheck and bad input."""

import math

import pytest
import torch

from ssl3d import camera
from ssl3d.ops import projection as P


def silhouette_loop(uv, size, sigma2=P.SIGMA2, form="tanh_sum"):
    """Obviously correct: a Python loop over pixels and points."""
    b, n, _ = uv.shape
    out = torch.zeros(b, size, size, dtype=uv.dtype)
    for bi in range(b):
        for i in range(size):
            for j in range(size):
                kernels = []
                for k in range(n):
                    du = uv[bi, k, 0] - (j + 0.5)
                    dv = uv[bi, k, 1] - (i + 0.5)
                    kernels.append(torch.exp(-du * du / (2 * sigma2)) * torch.exp(-dv * dv / (2 * sigma2)))
                out[bi, i, j] = torch.tanh(sum(kernels)) if form == "tanh_sum" else max(kernels)
    return out


def colour_loop(uv, depth, rgb, size, beta=P.BETA, well=1.0, sigma2=0.0):
    b, n, _ = uv.shape
    out = torch.zeros(b, 3, size, size, dtype=uv.dtype)
    for bi in range(b):
        for i in range(size):
            for j in range(size):
                ks = [k for k in range(n) if abs(float(uv[bi, k, 0]) - (j + 0.5)) <= well
                      and abs(float(uv[bi, k, 1]) - (i + 0.5)) <= well]
                if not ks:
                    continue
                scores = []
                for k in ks:
                    s_k = beta / depth[bi, k]
                    if sigma2 > 0:  # a Gaussian of the point's distance to the pixel centre
                        d2 = (uv[bi, k, 0] - (j + 0.5)) ** 2 + (uv[bi, k, 1] - (i + 0.5)) ** 2
                        s_k = s_k - d2 / (2 * sigma2)
                    scores.append(s_k)
                w = torch.softmax(torch.stack(scores), 0)
                out[bi, :, i, j] = sum(w[t] * rgb[bi, k] for t, k in enumerate(ks))
    return out


def random_inputs(b, n, size, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    # Some points fall off the image on purpose.
    uv = torch.rand(b, n, 2, generator=g, dtype=dtype) * (size + 4) - 2
    depth = torch.rand(b, n, generator=g, dtype=dtype) + 1.5
    rgb = torch.rand(b, n, 3, generator=g, dtype=dtype)
    return uv, depth, rgb


@pytest.mark.parametrize("form", P.SILHOUETTE_FORMS)
@pytest.mark.parametrize("b,n,size,seed", [(1, 5, 6, 0), (2, 12, 8, 1), (3, 20, 10, 2)])
def test_silhouette_forms_match_loop(b, n, size, seed, form):
    uv, _, _ = random_inputs(b, n, size, seed)
    ref = silhouette_loop(uv, size, form=form)
    torch.testing.assert_close(P.splat_silhouette_dense(uv, size, form=form), ref, rtol=1e-5,
                               atol=1e-12)
    # A window wide enough to hold the whole kernel reproduces the reference to rounding.
    torch.testing.assert_close(P.splat_silhouette(uv, size, radius=8, form=form), ref, rtol=1e-5,
                               atol=1e-12)
    # The default 5 x 5 window truncates the kernel below exp(-2.5^2 / 0.8) per point.
    trunc = n * math.exp(-2.5 ** 2 / (2 * P.SIGMA2))
    assert (P.splat_silhouette(uv, size, form=form) - ref).abs().max() <= trunc


def test_max_silhouette_does_not_grow_with_density():
    """Many points stacked on one spot widen the summed silhouette but not the max one."""
    one = torch.tensor([[[8.0, 8.0]]], dtype=torch.float64)
    many = one.expand(1, 20, 2)
    for form, widens in (("tanh_sum", True), ("max", False)):
        a, b = (P.splat_silhouette(u, 16, form=form) for u in (one, many))
        assert bool(((b > 0.5).sum() > (a > 0.5).sum()) == widens)
    torch.testing.assert_close(P.splat_silhouette(many, 16, form="max"),
                               P.splat_silhouette(one, 16, form="max"))


@pytest.mark.parametrize("sigma2", [0.0, 0.4])
@pytest.mark.parametrize("b,n,size,seed", [(1, 6, 6, 3), (2, 25, 8, 4), (2, 40, 10, 5)])
def test_colour_forms_match_loop(b, n, size, seed, sigma2):
    uv, depth, rgb = random_inputs(b, n, size, seed)
    if sigma2 > 0:  # depths close enough that the distance term decides among the points
        depth = 1.9 + 0.02 * depth
    ref = colour_loop(uv, depth, rgb, size, sigma2=sigma2)
    torch.testing.assert_close(P.splat_colour_dense(uv, depth, rgb, size, sigma2=sigma2), ref,
                               rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(P.splat_colour(uv, depth, rgb, size, sigma2=sigma2), ref,
                               rtol=1e-5, atol=1e-12)


def test_soft_colour_weighs_the_nearer_point_in_the_image():
    """At one depth, the point nearer the pixel's centre colours it more, and moving the points
    moves the colour (in the paper's form both points weigh the same wherever they are)."""
    uv = torch.tensor([[[4.4, 4.5], [5.3, 4.5]]], dtype=torch.float64, requires_grad=True)
    depth = torch.full((1, 2), 2.0, dtype=torch.float64)
    rgb = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    flat = P.splat_colour(uv, depth, rgb, 10)[0, :, 4, 4]
    torch.testing.assert_close(flat[:2], torch.tensor([0.5, 0.5], dtype=torch.float64))
    soft = P.splat_colour(uv, depth, rgb, 10, sigma2=0.4)[0, :, 4, 4]
    # Red lies 0.1 px from the pixel's centre (4.5, 4.5), green 0.8 px.
    expect = torch.softmax(torch.tensor([-0.01, -0.64], dtype=torch.float64) / 0.8, 0)
    torch.testing.assert_close(soft[:2], expect)
    (grad,) = torch.autograd.grad(soft[0], uv)
    # More red as red (left of the centre) moves right, nearer it, and as green moves right, away.
    assert grad[0, 0, 0] > 0 and grad[0, 1, 0] > 0


def test_soft_colour_occludes_less_sharply():
    """The price of the distance term: a nearer point at the well's corner against a farther one
    at the pixel's centre. Its weight is the softmax of beta / depth less d^2 / (2 sigma2)."""
    uv = torch.tensor([[[5.5, 5.5], [4.5, 4.5]]], dtype=torch.float64)  # corner, centre of (4, 4)
    depth = torch.tensor([[1.9, 2.0]], dtype=torch.float64)
    rgb = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    for sigma2, dist in ((0.0, 0.0), (0.4, 2.0 / 0.8)):
        red = P.splat_colour(uv, depth, rgb, 10, sigma2=sigma2)[0, 0, 4, 4]
        logits = torch.tensor([100 / 1.9 - dist, 100 / 2.0], dtype=torch.float64)
        torch.testing.assert_close(red, torch.softmax(logits, 0)[0])
    assert P.splat_colour(uv, depth, rgb, 10)[0, 0, 4, 4] > 0.9
    assert P.splat_colour(uv, depth, rgb, 10, sigma2=0.4)[0, 0, 4, 4] < 0.6


def test_soft_colour_image_term_turns_the_camera_towards_the_target():
    """A two-coloured sheet seen from azimuth 0.4 against its own image from 0.45 or 0.35: the
    image term's azimuth gradient points towards the target's view."""
    g = torch.Generator().manual_seed(4)
    side = torch.rand(1, 400, 2, generator=g, dtype=torch.float64) - 0.5
    pts = torch.stack([side[..., 0] * 0.8, side[..., 1] * 0.8, torch.zeros_like(side[..., 0])], -1)
    rgb = (side[..., :1] > 0).to(torch.float64).expand(1, 400, 3).clone()
    for target_az in (0.45, 0.35):
        target, _ = P.project_cloud(pts, rgb, torch.tensor([[target_az, 0.3]], dtype=torch.float64),
                                    32, colour_sigma2=0.4)
        vp = torch.tensor([[0.4, 0.3]], dtype=torch.float64, requires_grad=True)
        img, _ = P.project_cloud(pts, rgb, vp, 32, colour_sigma2=0.4)
        (grad,) = torch.autograd.grad(((img - target) ** 2).mean(), vp)
        assert grad[0, 0] * (target_az - 0.4) < 0  # descent moves the azimuth towards the target


def test_colour_nearest_point_wins_and_empty_is_black():
    uv = torch.tensor([[[4.5, 4.5], [4.6, 4.4]]], dtype=torch.float64)
    depth = torch.tensor([[1.8, 2.2]], dtype=torch.float64)
    rgb = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    img = P.splat_colour(uv, depth, rgb, 10)
    assert img[0, 0, 4, 4] > 0.99 and img[0, 1, 4, 4] < 0.01  # nearer (red) dominates
    assert img[0, :, 0, 0].abs().max() == 0  # nothing reaches the corner


@pytest.mark.parametrize("seed", [0, 1])
def test_local_gradients_match_dense(seed):
    uv, depth, rgb = random_inputs(2, 30, 12, seed)
    for fn_local, fn_dense in [
        (lambda u: P.splat_silhouette(u, 12, radius=8), lambda u: P.splat_silhouette_dense(u, 12)),
        (lambda u: P.splat_silhouette(u, 12, radius=8, form="max"),
         lambda u: P.splat_silhouette_dense(u, 12, form="max")),
    ]:
        u1 = uv.clone().requires_grad_()
        u2 = uv.clone().requires_grad_()
        w = torch.randn(2, 12, 12, dtype=torch.float64)
        (fn_local(u1) * w).sum().backward()
        (fn_dense(u2) * w).sum().backward()
        torch.testing.assert_close(u1.grad, u2.grad, rtol=1e-5, atol=1e-10)
    for sigma2 in (0.0, 0.4):
        # Depths close enough that the distance term decides among the points when it is on.
        near = depth if sigma2 == 0 else 1.9 + 0.02 * depth
        grads = []
        for fn in (P.splat_colour, P.splat_colour_dense):
            u = uv.clone().requires_grad_()
            d = near.clone().requires_grad_()
            c = rgb.clone().requires_grad_()
            w = torch.randn(2, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
            (fn(u, d, c, 12, sigma2=sigma2) * w).sum().backward()
            grads.append((u.grad, d.grad, c.grad))
        if sigma2 == 0:  # the paper's colour weights do not depend on the image positions
            assert grads[0][0] is None and grads[1][0] is None
            grads = [g[1:] for g in grads]
        for local, dense in zip(*grads):
            torch.testing.assert_close(local, dense, rtol=1e-5, atol=1e-10)


def test_gradcheck_projections():
    uv, depth, rgb = random_inputs(1, 6, 6, 7)
    uv.requires_grad_()
    assert torch.autograd.gradcheck(lambda u: P.splat_silhouette(u, 6), (uv,))
    assert torch.autograd.gradcheck(lambda u: P.splat_silhouette_dense(u, 6), (uv,))
    assert torch.autograd.gradcheck(lambda u: P.splat_silhouette(u, 6, form="max"), (uv,))
    assert torch.autograd.gradcheck(lambda u: P.splat_silhouette_dense(u, 6, form="max"), (uv,))
    d = depth.clone().requires_grad_()
    c = rgb.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda d_, c_: P.splat_colour(uv.detach(), d_, c_, 6), (d, c))
    near = (1.9 + 0.02 * depth).requires_grad_()  # so that the distance term matters
    assert torch.autograd.gradcheck(lambda u, d_, c_: P.splat_colour(u, d_, c_, 6, sigma2=0.4),
                                    (uv, near, c))
    assert torch.autograd.gradcheck(
        lambda u, d_, c_: P.splat_colour_dense(u, d_, c_, 6, sigma2=0.4), (uv, near, c))
    # Through the camera: gradients reach the 3D points and the viewpoint.
    g = torch.Generator().manual_seed(3)
    pts = (torch.rand(1, 8, 3, generator=g, dtype=torch.float64) - 0.5).requires_grad_()
    vp = torch.tensor([[0.4, 0.3]], dtype=torch.float64, requires_grad=True)
    cols = torch.rand(1, 8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, v: P.project_silhouette(p, v, 16), (pts, vp))
    assert torch.autograd.gradcheck(lambda p, v: P.project_silhouette(p, v, 16, form="max"),
                                    (pts, vp))
    assert torch.autograd.gradcheck(lambda p, c_, v: P.project_cloud(p, c_, v, 16)[0], (pts, cols, vp))
    assert torch.autograd.gradcheck(
        lambda p, c_, v: P.project_cloud(p, c_, v, 16, colour_sigma2=0.4)[0], (pts, cols, vp))


def test_project_cloud_local_matches_dense():
    g = torch.Generator().manual_seed(0)
    pts = (torch.rand(2, 200, 3, generator=g, dtype=torch.float64) - 0.5) * 0.8
    rgb = torch.rand(2, 200, 3, generator=g, dtype=torch.float64)
    vp = camera.sample_viewpoints(2, generator=g, dtype=torch.float64)
    img_l, sil_l = P.project_cloud(pts, rgb, vp, 32)
    img_d, sil_d = P.project_cloud(pts, rgb, vp, 32, dense=True)
    torch.testing.assert_close(img_l, img_d, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(P.project_cloud(pts, rgb, vp, 32, colour_sigma2=0.4)[0],
                               P.project_cloud(pts, rgb, vp, 32, dense=True, colour_sigma2=0.4)[0],
                               rtol=1e-5, atol=1e-12)
    assert (sil_l - sil_d).abs().max() < 200 * 4e-4
    assert sil_l.shape == (2, 32, 32) and img_l.shape == (2, 3, 32, 32)


def test_silhouette_lands_where_camera_projects():
    pts = torch.zeros(1, 1, 3)
    sil = P.project_silhouette(pts, torch.tensor([[0.3, 0.1]]), 64)
    # The origin projects to the image centre (32, 32), the corner shared by 4 pixels.
    assert torch.allclose(sil[0, 31:33, 31:33], sil[0, 31, 31].expand(2, 2))
    assert sil[0, 31, 31] == sil.max()


@pytest.mark.parametrize("bad,match", [
    (torch.zeros(2, 5, 3), "uv"),
    (torch.zeros(2, 0, 2), "empty"),
    (torch.full((1, 3, 2), float("nan")), "NaN"),
    (torch.zeros(1, 3, 2, dtype=torch.long), "floating"),
])
def test_bad_input_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        P.splat_silhouette(bad, 8)


def test_unknown_silhouette_form_is_named():
    with pytest.raises(ValueError, match="silhouette form.*'sum'"):
        P.splat_silhouette(torch.zeros(1, 2, 2), 8, form="sum")


def test_bad_colour_inputs():
    uv, depth, rgb = random_inputs(2, 5, 8, 0)
    with pytest.raises(ValueError, match="number of points"):
        P.splat_colour(uv, depth[:, :4], rgb, 8)
    with pytest.raises(ValueError, match="batch"):
        P.splat_colour(uv, depth[:1], rgb, 8)
    with pytest.raises(ValueError, match="points"):
        P.project_silhouette(torch.zeros(2, 5), torch.zeros(2, 2), 8)
