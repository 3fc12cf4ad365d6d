"""Batched Chamfer distance between point clouds.

Chamfer(x, y) = mean_i min_j |x_i - y_j|^2 + mean_j min_i |x_i - y_j|^2 (squared distances,
both directions summed), the definition of METHOD sections 5 and 9.

The nearest-neighbour search runs without autograd, in float32 or better, and in chunks so that
the (B, n, M) distance block stays bounded; the distances are then recomputed exactly from the
gathered neighbours, which gives the same gradient as differentiating the full matrix (the min
routes the gradient to the argmin) without storing it for backward.
"""

from __future__ import annotations

import torch

from ssl3d.ops._checks import check_same_batch, check_tensor

_CHUNK_ELEMENTS = 1 << 24  # distance-block budget per chunk (64 MiB in float32)


def _search_blocks(x: torch.Tensor, y: torch.Tensor):
    """Yield (start, block) over row chunks of ``x``: block (B, rows, M) holds |y_j|^2 - 2 x_i.y_j,
    the squared distance less |x_i|^2, which is constant along the search axis and so changes no
    ordering. Float32 or better, autocast off, and chunks sized so that a block stays bounded.
    x: (B, N, D); y: (B, M, D)."""
    b, n, _ = x.shape
    m = y.shape[1]
    compute = torch.promote_types(x.dtype, torch.float32)
    xc, yc = x.to(compute), y.to(compute)
    # One batched product of augmented vectors [x, 1] . [-2y, |y|^2].
    ya = torch.cat([-2 * yc, (yc * yc).sum(-1, keepdim=True)], -1).transpose(1, 2)  # (B, D+1, M)
    xa = torch.cat([xc, torch.ones_like(xc[..., :1])], -1)  # (B, N, D+1)
    rows = max(1, _CHUNK_ELEMENTS // max(1, b * m))
    with torch.autocast(device_type=x.device.type, enabled=False):
        for start in range(0, n, rows):
            yield start, torch.bmm(xa[:, start:start + rows], ya)


@torch.no_grad()
def nearest_neighbour_index(x: torch.Tensor, y: torch.Tensor, exclude_partner: bool = False
                            ) -> torch.Tensor:
    """Index of the nearest point of ``y`` for every point of ``x``; with ``exclude_partner``,
    x_i's nearest among the y_j with j != i (its partner y_i never counts; needs M = N > 1).

    x: (B, N, D); y: (B, M, D). Returns (B, N) int64 indices into the M axis.
    """
    if exclude_partner:
        _check_partners(x, y)
    out = []
    for start, block in _search_blocks(x, y):
        if exclude_partner:  # a diagonal fill, capturable in a CUDA graph
            block.diagonal(offset=start, dim1=1, dim2=2).fill_(float("inf"))
        out.append(block.argmin(-1))
    return torch.cat(out, dim=1)


@torch.no_grad()
def kth_neighbour_index(points: torch.Tensor, k: int) -> torch.Tensor:
    """Index of the k-th nearest OTHER point of the same cloud (k = 1: the nearest).

    points: (B, N, D) with N > k. Returns (B, N) int64. Ties are broken by the sort, and a
    point's own index never counts (an exact duplicate of it does)."""
    out = []
    for start, d in _search_blocks(points, points):
        # Not itself: entries (i, start + i) of the block. A diagonal fill, not an index_put
        # with a host scalar, so that a CUDA graph can capture it.
        d.diagonal(offset=start, dim1=1, dim2=2).fill_(float("inf"))
        out.append(d.topk(k, dim=-1, largest=False).indices[..., k - 1])  # (B, rows)
    return torch.cat(out, dim=1)


def kth_neighbour_sq_dist(points: torch.Tensor, k: int) -> torch.Tensor:
    """Squared distance from every point to its k-th nearest other point of the same cloud,
    differentiable in the points: large for a stray point far from the rest of its cloud.

    points: (B, N, 3) with N > k >= 1. Returns (B, N)."""
    check_tensor(points, "points", (None, None, 3))
    if not 1 <= k < points.shape[1]:
        raise ValueError(f"k must be in [1, N - 1] = [1, {points.shape[1] - 1}], got {k}")
    idx = kth_neighbour_index(points, k)
    other = points.gather(1, idx.unsqueeze(-1).expand(-1, -1, 3))  # (B, N, 3)
    return ((points - other) ** 2).sum(-1)


def nearest_sq_dist(x: torch.Tensor, y: torch.Tensor, exclude_partner: bool = False
                    ) -> torch.Tensor:
    """Squared distance from every point of ``x`` to its nearest point of ``y`` (other than its
    partner y_i with ``exclude_partner``), differentiable in both. x: (B, N, D); y: (B, M, D).
    Returns (B, N)."""
    idx = nearest_neighbour_index(x, y, exclude_partner)
    nearest = y.gather(1, idx.unsqueeze(-1).expand(-1, -1, y.shape[-1]))  # (B, N, D)
    return ((x - nearest) ** 2).sum(-1)


def chamfer_distance(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean",
                     exclude_partner: bool = False) -> torch.Tensor:
    """Symmetric squared Chamfer distance.

    x: (B, N, 3); y: (B, M, 3). ``reduction``: "none" returns (B,) per-sample distances, "mean"
    their mean (a scalar). ``exclude_partner``: x_i and y_i are partners that never count as each
    other's nearest point (needs M = N > 1). For a cloud and its own mirror image this removes the
    free match of a point on the mirror plane with itself.
    """
    _check_pair(x, y, exclude_partner)
    per_sample = (nearest_sq_dist(x, y, exclude_partner).mean(1)
                  + nearest_sq_dist(y, x, exclude_partner).mean(1))
    return _reduce(per_sample, reduction)


def chamfer_distance_dense(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean",
                           exclude_partner: bool = False) -> torch.Tensor:
    """Chamfer distance through the full (B, N, M) matrix kept for backward: the plain form, for
    comparisons. Same arguments and result as :func:`chamfer_distance`."""
    _check_pair(x, y, exclude_partner)
    d = ((x.unsqueeze(2) - y.unsqueeze(1)) ** 2).sum(-1)  # (B, N, M)
    if exclude_partner:
        d = d.masked_fill(torch.eye(d.shape[1], dtype=torch.bool, device=d.device), float("inf"))
    per_sample = d.min(2).values.mean(1) + d.min(1).values.mean(1)
    return _reduce(per_sample, reduction)


def _check_pair(x: torch.Tensor, y: torch.Tensor, exclude_partner: bool) -> None:
    check_tensor(x, "x", (None, None, 3))
    check_tensor(y, "y", (None, None, 3))
    check_same_batch(("x", x), ("y", y))
    if exclude_partner:
        _check_partners(x, y)


def _check_partners(x: torch.Tensor, y: torch.Tensor) -> None:
    if not (x.shape[1] == y.shape[1] > 1):  # static shapes: no host sync in a captured step
        raise ValueError(f"exclude_partner needs x and y of one size N > 1 (point i of one is "
                         f"the partner of point i of the other), got {x.shape[1]} and {y.shape[1]}")


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return per_sample
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"reduction must be 'none' or 'mean', got {reduction!r}")
