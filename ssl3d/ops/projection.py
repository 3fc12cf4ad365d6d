"""Differentiable projection of coloured point clouds to silhouettes and images (METHOD section 3).

Two forms of each projection:

* ``*_dense``: every point against every pixel, O(B * N * H * W) time and memory. It is the
  paper's formulation written out and serves as the reference.
* the default (local) form: each point touches only the pixels near it, written with a gather of
  pixel indices and one ``scatter_add``: O(B * N * K^2) for a K x K window.

The silhouette kernel is a Gaussian with variance ``sigma2`` (0.4 px^2); a window of radius 2
(5 x 5 pixels) misses only pixels whose centre is at least 2.5 px away along one axis, where the
kernel is below exp(-2.5^2 / 0.8) = 4e-4. ``radius`` trades that truncation against cost, and a
large radius reproduces the dense form to rounding.

Colour uses a "well": pixel p sees point i only if |u_i - p_u| <= well and |v_i - p_v| <= well;
within the well, weights are softmax_i(beta / depth_i), so nearer points dominate (optionally
also a Gaussian of the point's distance to the pixel: ``sigma2`` of :func:`splat_colour`); pixels
no point reaches are black.

All functions take pixel coordinates from :func:`ssl3d.camera.project`: ``uv`` (B, N, 2) as
(column, row), with pixel (i, j)'s centre at (j + 0.5, i + 0.5).
"""

from __future__ import annotations

import math

import torch

from ssl3d import camera
from ssl3d.ops._checks import check_same_batch, check_tensor

SIGMA2 = 0.4
"""Variance of the silhouette kernel in px^2 (the paper's value at 64 x 64)."""
SILHOUETTE_FORMS = ("tanh_sum", "max")
"""How point kernels combine into a pixel's silhouette value: ``tanh_sum`` (the paper's
tanh of the summed kernels) or ``max`` (the largest kernel). A sum grows with the number of
points near a pixel, so a dense cloud's silhouette spreads past its points by a margin that grows
with the density (a ground-truth airplane cloud of 1,024 points covers 1.8x the area of its own
masks at 64 px): thin parts then look fatter than they are, and fitting the mask shrinks and
thins them. The max does not depend on the
density: a pixel half a pixel outside the outermost point reads exp(-0.25 / (2 sigma2))."""
BETA = 100.0
"""Sharpness of the inverse-depth softmax of the colour projection."""
MIN_DEPTH = 1e-4
"""Depths are clamped to at least this before 1 / depth, so the colour weights stay finite."""


def _pixel_window(uv: torch.Tensor, image_size: int, radius: int):
    """Pixel indices of the (2r+1)^2 window around each point.

    uv: (B, N, 2). Returns centres ``cx`` (B, N, K) and ``cy`` (B, N, K) of the window's columns
    and rows (K = 2r + 1), ``flat`` (B, N, K, K) flattened pixel indices (clamped into range) and
    ``valid`` (B, N, K, K), True where the pixel lies inside the image.
    """
    offsets = torch.arange(-radius, radius + 1, device=uv.device)
    # floor() is only an index choice: the kernel weights below use the continuous uv.
    # Clamp first so that points far off-screen cannot overflow the integer conversion.
    base = uv.detach().clamp(-radius - 2.0, image_size + radius + 2.0).floor().long()  # (B, N, 2)
    cols = base[..., 0:1] + offsets  # (B, N, K)
    rows = base[..., 1:2] + offsets  # (B, N, K)
    valid_c = (cols >= 0) & (cols < image_size)
    valid_r = (rows >= 0) & (rows < image_size)
    valid = valid_r.unsqueeze(-1) & valid_c.unsqueeze(-2)  # (B, N, K, K): [row offset, col offset]
    flat = rows.clamp(0, image_size - 1).unsqueeze(-1) * image_size \
        + cols.clamp(0, image_size - 1).unsqueeze(-2)
    return cols.to(uv.dtype) + 0.5, rows.to(uv.dtype) + 0.5, flat, valid


def _check_form(form: str) -> None:
    if form not in SILHOUETTE_FORMS:
        raise ValueError(f"silhouette form must be one of {SILHOUETTE_FORMS}, got {form!r}")


def splat_silhouette(uv: torch.Tensor, image_size: int, sigma2: float = SIGMA2,
                     radius: int = 2, form: str = "tanh_sum") -> torch.Tensor:
    """Soft silhouette from projected points, local form.

    With k_i(p) = exp(-(u_i - p_u)^2 / (2 sigma2)) * exp(-(v_i - p_v)^2 / (2 sigma2)):
    M(p) = tanh( sum_i k_i(p) ) (``form="tanh_sum"``, the paper's) or max_i k_i(p) (``"max"``,
    see :data:`SILHOUETTE_FORMS`), over the points within ``radius`` pixels (a (2r+1)^2 window)
    of p.

    uv: (B, N, 2) pixel coordinates. Returns (B, H, W) with H = W = image_size, values in [0, 1].
    """
    check_tensor(uv, "uv", (None, None, 2))
    _check_form(form)
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    b = uv.shape[0]
    cx, cy, flat, valid = _pixel_window(uv, image_size, radius)
    gx = torch.exp(-(uv[..., 0:1] - cx) ** 2 / (2 * sigma2))  # (B, N, K)
    gy = torch.exp(-(uv[..., 1:2] - cy) ** 2 / (2 * sigma2))  # (B, N, K)
    w = (gy.unsqueeze(-1) * gx.unsqueeze(-2)) * valid  # (B, N, K, K)
    acc = uv.new_zeros(b, image_size * image_size)
    if form == "max":  # kernels are >= 0, so the zero start changes nothing where a point reaches
        acc = acc.scatter_reduce(1, flat.reshape(b, -1), w.reshape(b, -1), "amax")
        return acc.reshape(b, image_size, image_size)
    acc = acc.scatter_add(1, flat.reshape(b, -1), w.reshape(b, -1))
    return torch.tanh(acc).reshape(b, image_size, image_size)


def splat_silhouette_dense(uv: torch.Tensor, image_size: int,
                           sigma2: float = SIGMA2, form: str = "tanh_sum") -> torch.Tensor:
    """Soft silhouette, dense reference form: every point against every pixel.

    uv: (B, N, 2). Returns (B, H, W). Memory O(B * N * H * W).
    """
    check_tensor(uv, "uv", (None, None, 2))
    _check_form(form)
    centres = torch.arange(image_size, device=uv.device, dtype=uv.dtype) + 0.5
    py, px = torch.meshgrid(centres, centres, indexing="ij")  # (H, W) each
    du = uv[..., 0, None, None] - px  # (B, N, H, W)
    dv = uv[..., 1, None, None] - py
    kernel = torch.exp(-du ** 2 / (2 * sigma2)) * torch.exp(-dv ** 2 / (2 * sigma2))
    if form == "max":
        return kernel.amax(1)
    return torch.tanh(kernel.sum(1))


def colour_logits(uv: torch.Tensor, depth: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor,
                  beta: float, sigma2: float) -> torch.Tensor:
    """The colour softmax's logit of each point at each pixel of a grid: beta / depth, less
    ((u - c_x)^2 + (v - c_y)^2) / (2 sigma2) when ``sigma2`` > 0.
    uv: (B, N, 2); depth: (B, N); cx: (B, N, W') and cy: (B, N, H') pixel centres (or any shapes
    that broadcast so). Returns (B, N, H', W')."""
    score = (beta / depth.clamp_min(MIN_DEPTH))[..., None, None]  # (B, N, 1, 1)
    if sigma2 <= 0:
        return score.expand(*depth.shape, cy.shape[-1], cx.shape[-1])
    du2 = (uv[..., 0:1] - cx) ** 2  # (B, N, W')
    dv2 = (uv[..., 1:2] - cy) ** 2  # (B, N, H')
    return score - (dv2.unsqueeze(-1) + du2.unsqueeze(-2)) / (2 * sigma2)


def splat_colour(uv: torch.Tensor, depth: torch.Tensor, rgb: torch.Tensor, image_size: int,
                 beta: float = BETA, well: float = 1.0, sigma2: float = 0.0) -> torch.Tensor:
    """Colour image from projected coloured points, local form.

    Pixel p's colour is sum_i w_i rgb_i over the points with |u_i - p_u| <= well and
    |v_i - p_v| <= well, where w = softmax_i(beta / depth_i) over those points; 0 where none.
    With ``sigma2`` > 0 (px^2) the softmax's logits also lose |uv_i - p|^2 / (2 sigma2): within
    the well a point weighs as a Gaussian of its distance to the pixel (times its depth weight),
    so moving a point, or the camera, moves the colour edges between points of one surface. In
    the paper's form (0) the weights depend on depth alone and the well is a hard box, so the
    image reaches the points' image positions and the viewpoint only through the depth
    differences of the points sharing a well, which a turn of the camera hardly changes
    (benchmarks/pose_gradients.py). The distance term competes with the depth term: at
    sigma2 = 0.4 a point at the well's corner loses as much weight as one 0.1 farther away at
    depth 2, so nearer surfaces occlude less sharply.

    uv: (B, N, 2); depth: (B, N); rgb: (B, N, 3). Returns (B, 3, H, W).
    """
    check_tensor(uv, "uv", (None, None, 2))
    check_tensor(depth, "depth", (None, None))
    check_tensor(rgb, "rgb", (None, None, 3))
    check_same_batch(("uv", uv), ("depth", depth), ("rgb", rgb))
    if not (uv.shape[1] == depth.shape[1] == rgb.shape[1]):
        raise ValueError(f"uv, depth and rgb must have the same number of points, got "
                         f"{uv.shape[1]}, {depth.shape[1]}, {rgb.shape[1]}")
    b, n = depth.shape
    hw = image_size * image_size
    # u - floor(u) is in [0, 1), so a pixel centre floor(u) + 0.5 + o within `well` of u needs
    # |o| <= well + 0.5.
    radius = math.floor(well + 0.5)
    cx, cy, flat, valid = _pixel_window(uv, image_size, radius)
    in_well_x = (uv[..., 0:1] - cx).abs() <= well  # (B, N, K)
    in_well_y = (uv[..., 1:2] - cy).abs() <= well
    valid = valid & in_well_y.unsqueeze(-1) & in_well_x.unsqueeze(-2)  # (B, N, K, K)
    k2 = valid.shape[-1] * valid.shape[-2]
    score = colour_logits(uv, depth, cx, cy, beta, sigma2).reshape(b, n, k2)  # (B, N, K*K)
    valid = valid.reshape(b, n, k2)
    flat = flat.reshape(b, n * k2)
    # Per-pixel max of the scores, for a stable softmax. Softmax is shift invariant, so the max
    # is detached without changing the gradient.
    masked = torch.where(valid, score, torch.full_like(score, float("-inf"))).detach()
    peak = score.new_full((b, hw), float("-inf")).scatter_reduce(
        1, flat, masked.reshape(b, -1), reduce="amax", include_self=True)
    peak_at = peak.gather(1, flat).reshape(b, n, k2)
    # Keep exp() finite on invalid entries (their peak may be -inf), then zero them.
    e = torch.exp(torch.where(valid, score - peak_at, torch.zeros_like(score))) * valid
    den = score.new_zeros(b, hw).scatter_add(1, flat, e.reshape(b, -1))  # (B, HW)
    weighted = (e.unsqueeze(-1) * rgb.unsqueeze(2)).reshape(b, n * k2, 3)
    num = score.new_zeros(b, hw, 3).scatter_add(
        1, flat.unsqueeze(-1).expand(b, n * k2, 3), weighted)  # (B, HW, 3)
    # den >= 1 wherever a point reaches (its own peak contributes exp(0)); elsewhere num = 0.
    image = num / den.clamp_min(1.0).unsqueeze(-1)
    return image.transpose(1, 2).reshape(b, 3, image_size, image_size)


def splat_colour_dense(uv: torch.Tensor, depth: torch.Tensor, rgb: torch.Tensor,
                       image_size: int, beta: float = BETA, well: float = 1.0,
                       sigma2: float = 0.0) -> torch.Tensor:
    """Colour image, dense reference form (every point against every pixel); arguments as
    :func:`splat_colour`.

    uv: (B, N, 2); depth: (B, N); rgb: (B, N, 3). Returns (B, 3, H, W). Memory O(B * N * H * W).
    """
    check_tensor(uv, "uv", (None, None, 2))
    check_tensor(depth, "depth", (None, None))
    check_tensor(rgb, "rgb", (None, None, 3))
    centres = torch.arange(image_size, device=uv.device, dtype=uv.dtype) + 0.5
    py, px = torch.meshgrid(centres, centres, indexing="ij")
    inside = ((uv[..., 0, None, None] - px).abs() <= well) & \
             ((uv[..., 1, None, None] - py).abs() <= well)  # (B, N, H, W)
    score = colour_logits(uv, depth, centres.expand(*depth.shape, image_size),
                          centres.expand(*depth.shape, image_size), beta, sigma2)  # (B, N, H, W)
    logits = torch.where(inside, score, torch.full_like(score, float("-inf")))
    weights = torch.softmax(logits, dim=1)  # NaN where no point reaches a pixel
    weights = torch.where(inside, weights, torch.zeros_like(weights))
    return torch.einsum("bnhw,bnc->bchw", weights, rgb)


def project_silhouette(points: torch.Tensor, viewpoint: torch.Tensor, image_size: int,
                       sigma2: float = SIGMA2, radius: int = 2,
                       distance: float = camera.DEFAULT_DISTANCE,
                       form: str = "tanh_sum") -> torch.Tensor:
    """Silhouette of a cloud seen from a viewpoint (local splat).

    points: (B, N, 3) world coordinates; viewpoint: (B, 2) (azimuth, elevation) radians.
    Returns (B, H, W). ``sigma2`` is in pixels^2 at ``image_size``.
    """
    check_tensor(points, "points", (None, None, 3))
    check_tensor(viewpoint, "viewpoint", (None, 2))
    uv, _ = camera.project(points, viewpoint, image_size, distance)
    return splat_silhouette(uv, image_size, sigma2, radius, form)


def project_cloud(points: torch.Tensor, rgb: torch.Tensor, viewpoint: torch.Tensor,
                  image_size: int, sigma2: float = SIGMA2, beta: float = BETA,
                  radius: int = 2, dense: bool = False,
                  distance: float = camera.DEFAULT_DISTANCE,
                  silhouette_form: str = "tanh_sum",
                  colour_sigma2: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Project a coloured cloud: one camera transform feeds both the silhouette and the image.

    points: (B, N, 3); rgb: (B, N, 3) in [0, 1]; viewpoint: (B, 2) radians.
    Returns ``image`` (B, 3, H, W) and ``silhouette`` (B, H, W). ``dense=True`` uses the reference
    O(N * H * W) forms. ``silhouette_form``: see :data:`SILHOUETTE_FORMS`; ``colour_sigma2``:
    :func:`splat_colour`'s ``sigma2`` (0, the paper's colour weights).
    """
    check_tensor(points, "points", (None, None, 3))
    check_tensor(viewpoint, "viewpoint", (None, 2))
    uv, depth = camera.project(points, viewpoint, image_size, distance)
    if dense:
        return (splat_colour_dense(uv, depth, rgb, image_size, beta, sigma2=colour_sigma2),
                splat_silhouette_dense(uv, image_size, sigma2, silhouette_form))
    return (splat_colour(uv, depth, rgb, image_size, beta, sigma2=colour_sigma2),
            splat_silhouette(uv, image_size, sigma2, radius, silhouette_form))
