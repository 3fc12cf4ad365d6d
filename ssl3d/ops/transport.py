"""Sliced transport from projected points to a silhouette: a loss on where the points lie inside
the silhouette, not only whether they cover it.

The silhouette losses (mask cross-entropy, affinity, point-to-silhouette) are met by any point
density: one point per pixel covers a wing as well as a hundred do, so a cloud trained on them
can bunch its points where every input's silhouette lies (an airplane's fuselage centre) and
leave thin wide parts a few scattered points, which the evenly sampled ground truth counts as
error. This term compares the distribution of the projected points with the uniform
distribution over the silhouette's area, along ``directions`` evenly spaced lines through the
image (the sliced 2-Wasserstein distance): along each line the sorted point coordinates are
matched with the silhouette's quantiles at the levels (i + 0.5) / N.

The silhouette is taken as mass at pixel centres weighted by the mask, so its quantiles along a
direction come from one fixed order of the pixel centres (the same for every image): a gather,
a cumulative sum and a sorted search per image, with no randomness (CUDA-graph capturable).
"""

from __future__ import annotations

import math

import torch

from ssl3d.ops._checks import check_same_batch, check_tensor


def slice_directions(directions: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """``directions`` unit vectors at angles pi k / directions, k = 0..directions-1: (L, 2).
    Built on ``device`` from Python numbers: no host-to-device copy, so a CUDA graph can capture it."""
    angle = torch.arange(directions, dtype=dtype, device=device) * (math.pi / directions)
    return torch.stack([angle.cos(), angle.sin()], -1)


def silhouette_quantiles(mask: torch.Tensor, levels: torch.Tensor, directions: torch.Tensor
                         ) -> torch.Tensor:
    """Quantiles of masks seen as mass at pixel centres, along each direction.

    mask: (B, H, W) non-negative weights, each with positive sum; levels: (Q,) in (0, 1);
    directions: (L, 2) as (column, row) vectors. Returns (B, L, Q): for level q the coordinate
    (pixel centre . direction) of the first pixel, in that direction's order, at which the
    normalised cumulative mass reaches q.
    """
    b, h, w = mask.shape
    rows, cols = torch.meshgrid(torch.arange(h, dtype=directions.dtype, device=mask.device) + 0.5,
                                torch.arange(w, dtype=directions.dtype, device=mask.device) + 0.5,
                                indexing="ij")
    centres = torch.stack([cols.flatten(), rows.flatten()], -1)  # (H*W, 2) as (u, v)
    coord = directions @ centres.T  # (L, H*W)
    coord, order = coord.sort(1)  # one order per direction, shared by all images
    weight = mask.reshape(b, 1, h * w).expand(-1, len(directions), -1)
    weight = weight.gather(2, order.expand(b, -1, -1))  # (B, L, H*W) in the direction's order
    cdf = weight.cumsum(2)
    cdf = cdf / cdf[..., -1:].clamp_min(1e-12)  # (B, L, H*W), ends at 1
    idx = torch.searchsorted(cdf, levels.to(cdf.dtype).expand(b, len(directions), -1).contiguous())
    # An empty mask (cdf all 0) would index past the end: it gets the last pixel instead, a
    # meaningless target; checking for it here would cost a host sync (the datasets reject them).
    idx = idx.clamp(max=h * w - 1)
    return coord.expand(b, -1, -1).gather(2, idx)  # (B, L, Q)


def sliced_silhouette_distance(uv: torch.Tensor, mask: torch.Tensor, directions: int = 16
                               ) -> torch.Tensor:
    """Sliced 2-Wasserstein distance between projected points and silhouettes.

    uv: (B, N, 2) pixel coordinates as (column, row), pixel centres at +0.5 (as
    :func:`ssl3d.camera.project` gives); mask: (B, H, W) in [0, 1], no mask empty;
    directions: the number of lines (angles pi k / directions). Returns (B,) mean squared
    distances in px^2 between each line's sorted point coordinates and the mask's quantiles at
    the levels (i + 0.5) / N. Gradients reach ``uv`` only (the mask is data).
    """
    check_tensor(uv, "uv", (None, None, 2))
    check_tensor(mask, "mask", (None, None, None))
    check_same_batch(("uv", uv), ("mask", mask))
    if directions < 1:
        raise ValueError(f"directions must be >= 1, got {directions}")
    n = uv.shape[1]
    dirs = slice_directions(directions, uv.dtype, uv.device)
    levels = (torch.arange(n, dtype=uv.dtype, device=uv.device) + 0.5) / n
    with torch.no_grad():
        target = silhouette_quantiles(mask.to(uv.dtype), levels, dirs)  # (B, L, N)
    proj = (uv @ dirs.T).transpose(1, 2).sort(2).values  # (B, L, N)
    return ((proj - target) ** 2).mean((1, 2))
