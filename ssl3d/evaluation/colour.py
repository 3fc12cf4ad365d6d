"""Point colours read from the input image (an inference-time option, not in the paper).

The colour branch learns a point's colour only where the point is seen in its training image;
points hidden there keep colours no loss ever checked. Reading the seen points' colours off the
input image where they project, at the predicted viewpoint, and giving every other point the
colour of its nearest seen point, paints the whole cloud with the photo's own colours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssl3d import camera
from ssl3d.ops._checks import check_same_batch, check_tensor


def colours_from_image(points: torch.Tensor, rgb: torch.Tensor, viewpoint: torch.Tensor,
                       image: torch.Tensor, mask: torch.Tensor, depth_tolerance: float = 0.05,
                       neighbourhood: int = 0,
                       distance: float = camera.DEFAULT_DISTANCE) -> torch.Tensor:
    """Point colours from the input image. A point is *seen* when it projects (at
    ``viewpoint``) into the image, mostly onto the silhouette (the bilinearly sampled mask at
    least 0.5), and within ``depth_tolerance`` of the nearest point projecting into its pixel
    (with ``neighbourhood`` r > 0, into the (2r + 1)^2 pixels around it; points off the image
    hide nothing). A sparse cloud leaves single pixels with one point, so r = 0 lets some
    back-surface points count as seen, yet it gave the nearest colours at the model's other
    views on the demo's data (benchmarks/colour_transfer.py; r = 1 and 2 were worse); a seen
    point takes the image's colour there
    (sampled bilinearly over the silhouette only, so that edge points do not take in the black
    background). Every other point, hidden behind the
    surface or off the silhouette, takes the colour of its nearest seen point in 3D: the back of
    a chair's back-rest the front's, not the seat's in front of it. With no seen point the
    colours stay ``rgb``.

    points, rgb: (B, N, 3); viewpoint: (B, 2) radians; image: (B, 3, S, S) in [0, 1], composited
    on black (colour times mask, as the data sets and ``load_user_image`` give it); mask:
    (B, S, S) in [0, 1]. Returns (B, N, 3).
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
    if not depth_tolerance >= 0 or neighbourhood < 0:
        raise ValueError(f"depth_tolerance and neighbourhood must be >= 0, got {depth_tolerance} "
                         f"and {neighbourhood}")
    b, n, s = points.shape[0], points.shape[1], image.shape[-1]
    uv, depth = camera.project(points, viewpoint, s, distance)  # (B, N, 2) pixels, centres at +0.5
    grid = (uv / s * 2 - 1).unsqueeze(1)  # (B, 1, N, 2) in grid_sample's [-1, 1], x first
    m = mask.unsqueeze(1)  # (B, 1, S, S)
    # The images are composited on black (colour times mask), so sampling them and dividing by
    # the sampled mask averages the colour over the silhouette alone.
    weighted = F.grid_sample(image, grid, align_corners=False)[:, :, 0]  # (B, 3, N)
    cover = F.grid_sample(m, grid, align_corners=False)[:, :, 0]  # (B, 1, N); 0 off the image
    sampled = (weighted / cover.clamp_min(1e-6)).transpose(1, 2).clamp(0, 1)  # (B, N, 3)
    # A z-buffer at the image's resolution (then its minimum over each pixel's neighbourhood).
    pixel = uv.detach().floor().long()
    inside = ((pixel >= 0) & (pixel < s)).all(-1)  # (B, N); points off the image hide nothing
    flat = (pixel[..., 1].clamp(0, s - 1) * s + pixel[..., 0].clamp(0, s - 1))  # (B, N)
    front = depth.detach().masked_fill(~inside, float("inf"))
    zbuf = depth.new_full((b, s * s), float("inf")).scatter_reduce(1, flat, front, "amin")
    if neighbourhood > 0:
        r = neighbourhood
        zbuf = -F.max_pool2d(-zbuf.view(b, 1, s, s), 2 * r + 1, stride=1, padding=r).view(b, s * s)
    seen = inside & (cover[:, 0] >= 0.5) & (depth <= zbuf.gather(1, flat) + depth_tolerance)
    out = rgb.clone()
    for i in range(b):  # per cloud: the seen points differ in number
        src = seen[i].nonzero()[:, 0]
        if len(src):
            out[i] = sampled[i, src][torch.cdist(points[i], points[i, src]).argmin(1)]
            out[i, src] = sampled[i, src]  # exactly their own (cdist's rounding aside)
    return out
