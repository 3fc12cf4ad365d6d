"""Point colours read from the input image (an inference-time option, not in the paper).

The colour branch learns a point's colour only where the point is seen in its training image;
points hidden there keep colours no loss ever checked. Reading each point's colour off the input
image where it projects, at the predicted viewpoint, gives the visible points the photo's own
colours and the hidden ones the colour of the surface in front of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssl3d import camera
from ssl3d.ops._checks import check_same_batch, check_tensor


def colours_from_image(points: torch.Tensor, rgb: torch.Tensor, viewpoint: torch.Tensor,
                       image: torch.Tensor, mask: torch.Tensor,
                       distance: float = camera.DEFAULT_DISTANCE) -> torch.Tensor:
    """Each point's colour sampled (bilinearly) from ``image`` where the point projects at
    ``viewpoint``, averaged over the silhouette only (so that edge points do not take in the
    black background); a point whose projection lies mostly off the silhouette (the sampled mask
    below 0.5, or outside the image) keeps its ``rgb``.

    points, rgb: (B, N, 3); viewpoint: (B, 2) radians; image: (B, 3, S, S) in [0, 1];
    mask: (B, S, S) in [0, 1]. Returns (B, N, 3).
    """
    check_tensor(points, "points", ("B", "N", 3))
    check_tensor(rgb, "rgb", ("B", "N", 3))
    check_tensor(viewpoint, "viewpoint", ("B", 2))
    check_tensor(image, "image", ("B", 3, "S", "S"))
    check_tensor(mask, "mask", ("B", "S", "S"))
    check_same_batch(("points", points), ("rgb", rgb), ("viewpoint", viewpoint), ("image", image),
                     ("mask", mask))
    if rgb.shape[1] != points.shape[1] or mask.shape[1:] != image.shape[2:]:
        raise ValueError(f"rgb must match points {tuple(points.shape)} and mask the image's size "
                         f"{tuple(image.shape[2:])}; got {tuple(rgb.shape)} and {tuple(mask.shape)}")
    s = image.shape[-1]
    uv, _ = camera.project(points, viewpoint, s, distance)  # (B, N, 2) pixels, centres at +0.5
    grid = (uv / s * 2 - 1).unsqueeze(1)  # (B, 1, N, 2) in grid_sample's [-1, 1], x first
    m = mask.unsqueeze(1)  # (B, 1, S, S)
    weighted = F.grid_sample(image * m, grid, align_corners=False)[:, :, 0]  # (B, 3, N)
    cover = F.grid_sample(m, grid, align_corners=False)[:, :, 0]  # (B, 1, N); 0 off the image
    sampled = (weighted / cover.clamp_min(1e-6)).transpose(1, 2)  # (B, N, 3)
    inside = (cover >= 0.5).transpose(1, 2)  # (B, N, 1)
    return torch.where(inside, sampled.clamp(0, 1), rgb)
