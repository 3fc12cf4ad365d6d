"""The 2D affinity (silhouette Chamfer) loss, in both forms of METHOD section 8.

* ``released``: what the authors' code computes once its broadcasting is unrolled, a per-pixel
  penalty: fwd = mean(M_pred * (M_gt + 1e6 (1 - M_gt))), bwd = mean(M_gt * (M_pred + 1e6 (1 - M_pred))).
  With the paper's weight 1e-4 it acts as "no mass outside the silhouette / fill the silhouette".
* ``intended``: a 2D Chamfer between the silhouettes. For a soft mask M, define the distance map

      D_M(q) = min_p ( |p - q|^2 + lam * (1 - M(p)) )        (pixels, squared)

  i.e. the squared distance from q to the nearest pixel "in" M, where a pixel with mass m costs
  lam * (1 - m) extra; for a binary mask and lam larger than any squared image distance, D_M is
  exactly the squared distance to the nearest foreground pixel. Then

      fwd = mean_p M_pred(p) * D_{M_gt}(p)     (predicted mass far from the ground truth)
      bwd = mean_q M_gt(q)  * D_{M_pred}(q)    (ground-truth pixels far from predicted mass)

  Gradients reach M_pred through the weight in fwd and through the minimiser in bwd.

The distance map is a generalised squared-Euclidean distance transform. It separates into a pass
along rows and one along columns, each a min over one image line, so it costs O(H W (H + W))
instead of the O((H W)^2) of the pairwise form, and runs as two batched tensor reductions.
"""

from __future__ import annotations

import torch

from ssl3d.ops._checks import check_same_batch, check_tensor

RELEASED_PENALTY = 1e6
"""The released code's penalty for mass on empty pixels."""


def _check_masks(pred: torch.Tensor, gt: torch.Tensor) -> None:
    check_tensor(pred, "pred", (None, None, None))
    check_tensor(gt, "gt", (None, None, None))
    check_same_batch(("pred", pred), ("gt", gt))
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt masks must have the same shape, got {tuple(pred.shape)} "
                         f"and {tuple(gt.shape)}")


def affinity_released(pred: torch.Tensor, gt: torch.Tensor,
                      penalty: float = RELEASED_PENALTY) -> tuple[torch.Tensor, torch.Tensor]:
    """The released code's affinity loss (per-pixel form).

    pred, gt: (B, H, W) masks in [0, 1]. Returns (fwd, bwd), each (B,).
    """
    _check_masks(pred, gt)
    fwd = (pred * (gt + penalty * (1 - gt))).mean((1, 2))
    bwd = (gt * (pred + penalty * (1 - pred))).mean((1, 2))
    return fwd, bwd


def soft_distance_transform(cost: torch.Tensor) -> torch.Tensor:
    """Generalised squared distance transform: D(q) = min_p |p - q|^2 + cost(p).

    cost: (B, H, W). Returns (B, H, W). Differentiable in ``cost`` (the gradient goes to the
    minimising pixel). Cost O(B H W (H + W)).
    """
    check_tensor(cost, "cost", (None, None, None))
    _, h, w = cost.shape
    xs = torch.arange(w, device=cost.device, dtype=cost.dtype)
    ys = torch.arange(h, device=cost.device, dtype=cost.dtype)
    dx2 = (xs.unsqueeze(0) - xs.unsqueeze(1)) ** 2  # (W_q, W_p)
    dy2 = (ys.unsqueeze(0) - ys.unsqueeze(1)) ** 2  # (H_q, H_p)
    # Along rows: g[b, y, qx] = min_px (px - qx)^2 + cost[b, y, px]
    g = (cost.unsqueeze(2) + dx2).amin(-1)  # (B, H, W_q, W_p) -> (B, H, W)
    # Along columns: D[b, qy, qx] = min_py (py - qy)^2 + g[b, py, qx]
    d = (g.transpose(1, 2).unsqueeze(2) + dy2).amin(-1)  # (B, W, H_q, H_p) -> (B, W, H)
    return d.transpose(1, 2)


def default_empty_cost(height: int, width: int) -> float:
    """Default ``lam``: the largest squared distance in the image, so that any pixel with mass
    above 1/2 is preferred over any empty pixel."""
    return float((height - 1) ** 2 + (width - 1) ** 2)


def affinity_intended(pred: torch.Tensor, gt: torch.Tensor,
                      empty_cost: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The intended affinity loss: a soft 2D Chamfer between silhouettes (module docstring).

    pred, gt: (B, H, W) masks in [0, 1]. ``empty_cost`` is lam (px^2); default
    :func:`default_empty_cost`. Returns (fwd, bwd), each (B,), in px^2.
    """
    _check_masks(pred, gt)
    lam = default_empty_cost(*pred.shape[1:]) if empty_cost is None else float(empty_cost)
    fwd = (pred * soft_distance_transform(lam * (1 - gt))).mean((1, 2))
    bwd = (gt * soft_distance_transform(lam * (1 - pred))).mean((1, 2))
    return fwd, bwd


AFFINITY_FORMS = {"released": affinity_released, "intended": affinity_intended}
"""Affinity-loss form name -> function(pred, gt) -> (fwd, bwd)."""


def point_to_silhouette(uv: torch.Tensor, distance_map: torch.Tensor) -> torch.Tensor:
    """Squared pixel distance from every projected point to a silhouette, averaged per cloud.

    The pixel forms above give no gradient to a point whose splat misses every pixel (for
    example a point projected outside the image), so such stray points never come back and
    spoil the bounding box that evaluation normalises by. Sampling a distance map at each point
    pulls every point towards the silhouette.

    uv: (B, N, 2) pixel coordinates; distance_map: (B, H, W) squared distances in px^2 at pixel
    centres (e.g. ``soft_distance_transform(lam * (1 - mask))``). The map is interpolated
    bilinearly, and a point outside the image adds its squared distance to the image.
    Returns (B,) means in px^2.
    """
    check_tensor(uv, "uv", (None, None, 2))
    check_tensor(distance_map, "distance_map", (None, None, None))
    check_same_batch(("uv", uv), ("distance_map", distance_map))
    b, h, w = distance_map.shape
    # Python-number bounds only: no host-to-device copy, so a CUDA graph can capture this.
    u, v = uv[..., 0].clamp(0.5, w - 0.5), uv[..., 1].clamp(0.5, h - 0.5)
    outside = (uv[..., 0] - u) ** 2 + (uv[..., 1] - v) ** 2  # (B, N): 0 for points on the image
    grid = torch.stack([2 * u / w - 1, 2 * v / h - 1], -1).unsqueeze(1)  # (B, 1, N, 2), align_corners=False
    sampled = torch.nn.functional.grid_sample(distance_map.unsqueeze(1).to(uv.dtype), grid,
                                              mode="bilinear", align_corners=False)  # (B,1,1,N)
    return (sampled[:, 0, 0] + outside).mean(1)
