import math

import pytest
import torch

from ssl3d import camera
from ssl3d.evaluation.colour import colours_from_image


def colours_reference(points, rgb, viewpoint, image, mask, tol=0.05, r=0):
    """Loop reference. Per point: the four pixels around its projection (centres at +0.5) with
    bilinear weights, outside the image counting as 0; sampled colour = sum(w c) / sum(w m) for
    an image composited on black (c = colour times mask). A point is seen when it projects into
    the image, sum(w m) >= 0.5, and its depth is within ``tol`` of the smallest depth among the
    points projecting into the image within ``r`` pixels (rows and columns) of its pixel. Every
    point takes the sampled colour of its nearest seen point (itself when seen)."""
    b, n, _ = points.shape
    s = image.shape[-1]
    uv, depth = camera.project(points, viewpoint, s)
    out = rgb.clone()
    for i in range(b):
        sampled, seen_cover, pixel = [], [], []
        for j in range(n):
            x, y = float(uv[i, j, 0]) - 0.5, float(uv[i, j, 1]) - 0.5
            x0, y0 = math.floor(x), math.floor(y)
            num, den = torch.zeros(3, dtype=image.dtype), 0.0
            for dy in (0, 1):
                for dx in (0, 1):
                    col, row = x0 + dx, y0 + dy
                    w = (1 - abs(x - col)) * (1 - abs(y - row))
                    if 0 <= col < s and 0 <= row < s:
                        num = num + w * image[i, :, row, col]
                        den = den + w * float(mask[i, row, col])
            sampled.append((num / max(den, 1e-6)).clamp(0, 1))
            seen_cover.append(den >= 0.5)
            pixel.append((math.floor(float(uv[i, j, 1])), math.floor(float(uv[i, j, 0]))))
        inside = [0 <= pixel[j][0] < s and 0 <= pixel[j][1] < s for j in range(n)]
        seen = [j for j in range(n) if inside[j] and seen_cover[j] and float(depth[i, j]) <= min(
            float(depth[i, k]) for k in range(n) if inside[k]
            and abs(pixel[k][0] - pixel[j][0]) <= r and abs(pixel[k][1] - pixel[j][1]) <= r) + tol]
        if not seen:
            continue
        for j in range(n):
            best = min(seen, key=lambda k: float(((points[i, j] - points[i, k]) ** 2).sum()))
            out[i, j] = sampled[best]
    return out


def random_case(seed, b=2, n=40, s=8):
    g = torch.Generator().manual_seed(seed)
    points = (torch.rand(b, n, 3, generator=g, dtype=torch.float64) - 0.5) * 0.9
    rgb = torch.rand(b, n, 3, generator=g, dtype=torch.float64)
    spread = torch.tensor([6.0, 1.0], dtype=torch.float64)  # azimuth, elevation
    viewpoint = (torch.rand(b, 2, generator=g, dtype=torch.float64) - 0.5) * spread
    image = torch.rand(b, 3, s, s, generator=g, dtype=torch.float64)
    mask = torch.rand(b, s, s, generator=g, dtype=torch.float64)
    mask = torch.where(mask > 0.3, (mask * 2).clamp(max=1), 0)  # soft edges included
    return points, rgb, viewpoint, image * mask.unsqueeze(1), mask  # composited on black


@pytest.mark.parametrize("seed,r", [(0, 0), (1, 0), (2, 0), (3, 1)])
def test_colours_from_image_match_loop_reference(seed, r):
    points, rgb, viewpoint, image, mask = random_case(seed)
    points[:, :3] *= 3  # a few points far out, some of them off the image
    got = colours_from_image(points, rgb, viewpoint, image, mask, neighbourhood=r)
    torch.testing.assert_close(got, colours_reference(points, rgb, viewpoint, image, mask, r=r))
    # Points hidden behind others or off the silhouette take another point's colour.
    sampled_at_own = colours_reference(points, rgb, viewpoint, image, mask, tol=float("inf"))
    assert (got != sampled_at_own).any()


def test_a_flat_patch_paints_every_point_and_an_empty_mask_none():
    """A point seen on a uniformly coloured square takes its colour, and so does a point off
    the silhouette (through its nearest seen point); with an empty mask no point is seen and the
    colours stay."""
    s = 16
    image = torch.zeros(1, 3, s, s)
    image[0, :, :, :] = torch.tensor([0.2, 0.6, 0.9]).view(3, 1, 1)
    mask = torch.zeros(1, s, s)
    mask[0, 4:12, 4:12] = 1
    viewpoint = torch.zeros(1, 2)
    points = torch.zeros(1, 2, 3)
    uv, _ = camera.project(points, viewpoint, s)
    assert torch.allclose(uv[0, 0], torch.full((2,), s / 2.0))  # the origin lands in the middle
    points[0, 1] = torch.tensor([0.45, 0.45, 0.45])  # far off to the side: outside the square
    assert (camera.project(points, viewpoint, s)[0][0, 1] - s / 2).abs().max() > 4
    rgb = torch.tensor([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    out = colours_from_image(points, rgb, viewpoint, image, mask)
    torch.testing.assert_close(out[0], torch.tensor([[0.2, 0.6, 0.9]] * 2))
    torch.testing.assert_close(colours_from_image(points, rgb, viewpoint, image, mask * 0), rgb)


def test_colours_from_image_reject_bad_shapes():
    points, rgb, viewpoint, image, mask = random_case(0)
    with pytest.raises(ValueError, match="mask"):
        colours_from_image(points, rgb, viewpoint, image, mask[:, :4, :4])
    with pytest.raises(ValueError, match="batch sizes differ"):
        colours_from_image(points, rgb, viewpoint[:1], image, mask)
    with pytest.raises(ValueError, match="image"):
        colours_from_image(points, rgb, viewpoint, image[:, :2], mask)
    with pytest.raises(ValueError, match="depth_tolerance"):
        colours_from_image(points, rgb, viewpoint, image, mask, depth_tolerance=-1.0)
    with pytest.raises(ValueError, match="neighbourhood"):
        colours_from_image(points, rgb, viewpoint, image, mask, neighbourhood=-1)
