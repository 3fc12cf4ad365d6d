import math

import pytest
import torch

from ssl3d.ops import gaussian_blur, gaussian_taps


def blur_reference(images, sigma):
    """Loop reference: each output pixel the Gaussian-weighted sum of the input pixels within
    ceil(3 sigma) in both directions, the weights normalised over that whole square window
    (pixels outside the image count as 0)."""
    b, c, h, w = images.shape
    r = math.ceil(3 * sigma)
    total = sum(math.exp(-(dy * dy + dx * dx) / (2 * sigma * sigma))
                for dy in range(-r, r + 1) for dx in range(-r, r + 1))
    out = torch.zeros_like(images)
    for i in range(b):
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    acc = 0.0
                    for dy in range(-r, r + 1):
                        for dx in range(-r, r + 1):
                            if 0 <= y + dy < h and 0 <= x + dx < w:
                                wt = math.exp(-(dy * dy + dx * dx) / (2 * sigma * sigma)) / total
                                acc = acc + wt * images[i, ch, y + dy, x + dx]
                    out[i, ch, y, x] = acc
    return out


@pytest.mark.parametrize("sigma,shape,seed", [(0.5, (1, 1, 5, 6), 0), (1.0, (2, 3, 8, 8), 1),
                                              (1.3, (1, 2, 7, 9), 2)])
def test_blur_matches_loop_reference(sigma, shape, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(*shape, generator=g, dtype=torch.float64)
    got = gaussian_blur(images, gaussian_taps(sigma, torch.float64))
    torch.testing.assert_close(got, blur_reference(images, sigma))


def test_blur_keeps_a_flat_interior_and_spreads_a_point():
    images = torch.zeros(1, 1, 15, 15, dtype=torch.float64)
    images[0, 0, 7, 7] = 1
    out = gaussian_blur(images, gaussian_taps(1.0, torch.float64))
    assert out.sum().item() == pytest.approx(1.0)  # nothing lost away from the border
    assert out[0, 0, 7, 7] < 0.2 and out[0, 0, 7, 8] > 0.05  # the point spread to its neighbours
    flat = gaussian_blur(torch.ones(1, 1, 15, 15, dtype=torch.float64), gaussian_taps(1.0, torch.float64))
    torch.testing.assert_close(flat[0, 0, 7, 7], torch.tensor(1.0, dtype=torch.float64))
    assert flat[0, 0, 0, 0] < 0.5  # the black surround darkens the corner


def test_blur_gradcheck():
    g = torch.Generator().manual_seed(3)
    images = torch.rand(2, 2, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    taps = gaussian_taps(0.8, torch.float64)
    assert torch.autograd.gradcheck(lambda x: gaussian_blur(x, taps), (images,))


def test_blur_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sigma"):
        gaussian_taps(0.0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_taps(float("nan"))
    with pytest.raises(ValueError, match="at most 100"):
        gaussian_taps(1e5)
    with pytest.raises(ValueError, match="images"):
        gaussian_blur(torch.rand(3, 8, 8), gaussian_taps(1.0))
    with pytest.raises(ValueError, match="odd length"):
        gaussian_blur(torch.rand(1, 3, 8, 8), torch.ones(4) / 4)
    with pytest.raises(ValueError, match="NaN"):
        gaussian_blur(torch.full((1, 1, 4, 4), float("nan")), gaussian_taps(1.0))
