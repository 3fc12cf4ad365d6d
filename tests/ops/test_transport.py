import math

import pytest
import torch

from ssl3d.ops import sliced_silhouette_distance


def sliced_reference(uv, mask, directions):
    """Loop reference: per image and line, the pixel centres sorted along the line with their
    mask weights, the quantile at level q the first centre whose running weight share reaches q,
    against the sorted point coordinates."""
    b, n, _ = uv.shape
    h, w = mask.shape[1:]
    out = []
    for i in range(b):
        total = 0.0
        for k in range(directions):
            c, s = math.cos(math.pi * k / directions), math.sin(math.pi * k / directions)
            pixels = sorted(((col + 0.5) * c + (row + 0.5) * s, float(mask[i, row, col]))
                            for row in range(h) for col in range(w))
            weight = sum(p[1] for p in pixels)
            points = sorted(uv[i, :, 0] * c + uv[i, :, 1] * s)
            for j in range(n):
                level, run = (j + 0.5) / n, 0.0
                for coord, m in pixels:
                    run += m
                    if run / weight >= level:
                        break
                total = total + (points[j] - coord) ** 2
        out.append(total / (directions * n))
    return torch.stack(out)


def masks_and_points(b, size, n, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(b, size, size, generator=g, dtype=dtype) > 0.6).to(dtype)
    mask[:, size // 2, size // 2] = 1  # never empty
    mask = mask * torch.rand(b, size, size, generator=g, dtype=dtype).clamp_min(0.2)  # soft weights
    uv = torch.rand(b, n, 2, generator=g, dtype=dtype) * size
    return uv, mask


@pytest.mark.parametrize("b,size,n,directions,seed", [(1, 5, 7, 1, 0), (2, 6, 10, 3, 1), (2, 8, 16, 4, 2)])
def test_sliced_distance_matches_loop_reference(b, size, n, directions, seed):
    uv, mask = masks_and_points(b, size, n, seed)
    torch.testing.assert_close(sliced_silhouette_distance(uv, mask, directions),
                               sliced_reference(uv, mask, directions))


@pytest.mark.parametrize("n", [2, 4, 8])
def test_sliced_distance_on_binary_masks_where_levels_meet_the_cumulative_mass(n):
    """Four equal pixels: the levels (i + 0.5) / n fall exactly on cumulative shares 1/4, 2/4, ...
    for n = 2, 4, 8, where the quantile must be the first pixel that reaches the level."""
    mask = torch.zeros(2, 6, 6, dtype=torch.float64)
    mask[0, 1, 1] = mask[0, 1, 4] = mask[0, 3, 2] = mask[0, 4, 4] = 1
    mask[1, 0, 0] = mask[1, 2, 3] = mask[1, 5, 1] = mask[1, 5, 5] = 1
    g = torch.Generator().manual_seed(n)
    uv = torch.rand(2, n, 2, generator=g, dtype=torch.float64) * 6
    torch.testing.assert_close(sliced_silhouette_distance(uv, mask, 4), sliced_reference(uv, mask, 4))


def test_sliced_distance_prefers_points_spread_over_the_silhouette():
    mask = torch.zeros(1, 32, 32)
    mask[0, 14:18, 2:30] = 1  # a long thin bar, like a wing seen from above
    g = torch.Generator().manual_seed(0)
    spread = torch.rand(1, 512, 2, generator=g) * torch.tensor([28.0, 4.0]) + torch.tensor([2.0, 14.0])
    bunched = torch.rand(1, 512, 2, generator=g) * torch.tensor([6.0, 4.0]) + torch.tensor([13.0, 14.0])
    # Both clouds lie inside the silhouette, so coverage-blind losses of where points are
    # outside it see no difference; the transport distance does.
    assert float(sliced_silhouette_distance(spread, mask)) < 0.5
    assert float(sliced_silhouette_distance(bunched, mask)) > 20 * float(sliced_silhouette_distance(spread, mask))


def test_sliced_distance_gradcheck_and_mask_gets_no_gradient():
    uv, mask = masks_and_points(2, 6, 9, 3)
    uv.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: sliced_silhouette_distance(p, mask, 3), (uv,))
    mask.requires_grad_(True)
    sliced_silhouette_distance(uv, mask, 3).sum().backward()
    assert mask.grad is None


def test_sliced_distance_checks_its_arguments():
    uv, mask = masks_and_points(2, 6, 9, 4)
    with pytest.raises(ValueError, match="uv"):
        sliced_silhouette_distance(uv[..., :1], mask)
    with pytest.raises(ValueError, match="mask"):
        sliced_silhouette_distance(uv, mask[0])
    with pytest.raises(ValueError, match="directions"):
        sliced_silhouette_distance(uv, mask, 0)
    with pytest.raises(ValueError):
        sliced_silhouette_distance(uv[:1], mask)
    uv[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="uv"):
        sliced_silhouette_distance(uv, mask)
