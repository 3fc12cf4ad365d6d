"""Gaussian blur of image batches (the pose net's optional input filter)."""

from __future__ import annotations

import math

import torch

from ssl3d.ops._checks import check_tensor


def gaussian_taps(sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The normalised 1D Gaussian of standard deviation ``sigma`` pixels, cut at ceil(3 sigma)
    on each side. Returns (2 r + 1,) taps summing to 1."""
    if not (math.isfinite(sigma) and 0 < sigma <= 100):
        raise ValueError(f"sigma must be a positive number of pixels (at most 100), got {sigma}")
    r = math.ceil(3 * sigma)
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    taps = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return (taps / taps.sum()).to(dtype)


def gaussian_blur(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable blur: each channel convolved with ``taps`` along rows, then along columns,
    outside the image counted as 0 (the data's black background).

    images: (B, C, H, W); taps: (T,) with T odd (e.g. :func:`gaussian_taps`). Returns (B, C, H, W).
    """
    check_tensor(images, "images", ("B", "C", "H", "W"))
    check_tensor(taps, "taps", ("T",))
    if taps.shape[0] % 2 == 0:
        raise ValueError(f"taps must have an odd length, got {taps.shape[0]}")
    b, c, h, w = images.shape
    r = taps.shape[0] // 2
    flat = images.reshape(b * c, 1, h, w)  # every channel alone: one filter for all
    k = taps.to(images)  # the images' dtype and device
    flat = torch.nn.functional.conv2d(flat, k.view(1, 1, 1, -1), padding=(0, r))  # along rows
    flat = torch.nn.functional.conv2d(flat, k.view(1, 1, -1, 1), padding=(r, 0))  # along columns
    return flat.view(b, c, h, w)
