"""Metric normalisation of clouds (METHOD section 9)."""

from __future__ import annotations

import torch

from ssl3d.ops._checks import check_tensor


def normalize_unit_box(points: torch.Tensor) -> torch.Tensor:
    """Scale and shift each cloud so the longest side of its axis-aligned bounding box is 1 and
    the box is centred at the origin (so the cloud lies in [-0.5, 0.5]^3).

    points: (B, N, 3). Returns (B, N, 3). A cloud whose points all coincide raises ValueError,
    since it has no extent to scale.
    """
    check_tensor(points, "points", (None, None, 3))
    lo = points.amin(1, keepdim=True)
    hi = points.amax(1, keepdim=True)
    side = (hi - lo).amax(-1, keepdim=True)  # (B, 1, 1)
    if points.device.type == "cpu" and bool((side <= 0).any()):
        bad = torch.nonzero(side.flatten() <= 0).flatten().tolist()
        raise ValueError(f"clouds {bad} have zero extent and cannot be normalised")
    return (points - (lo + hi) / 2) / side
