"""Turning a user's photo into the network's input: silhouette, crop, resize.

The silhouette comes from, in order: an explicit mask file, the image's alpha channel, or an
estimate from a plain background (the border colour). An image already framed as the training
renderings are (square, the object well inside, its longest side 50-95% of the frame) is used as
it is; any other is cropped to a square around the object, whose longest side then fills
``fill`` of it (0.78, the procedural chair renderings' median). Then it is resized to the
training size and composited on black. Why keep a framed image: the renderings look at the
object's 3D centre from a fixed distance, so where its silhouette lies in the frame, and how
large it is, carry the view: the shipped chair model puts the azimuths of 81.8% of the 600
procedural test renderings within 30 deg of the truth as they are, 72.2% once cropped, and
cropping moves 19.0% of them by more than 30 deg (benchmarks/predict_framing.py; session 37).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


def _grey_levels(im: Image.Image, path, what: str) -> np.ndarray:
    """A single-channel image of more than 8 bits (16-bit or 32-bit integer, or float) -> (H, W)
    float32 in [0, 1]. Pillow's convert("RGBA") would clip such values to 255 (a 16-bit photo
    turns white, a float one black), so they are scaled here."""
    a = np.asarray(im, dtype=np.float32)
    if im.mode == "F":
        if not np.isfinite(a).all():
            raise ValueError(f"{what} {path} holds NaN or infinite values")
        top = 1.0 if a.max() <= 1.0 else 255.0 if a.max() <= 255.0 else None
        expected = "a float image in [0, 1] or [0, 255]"
    else:  # "I;16*" (16-bit PNG or TIFF) or "I" (32-bit integers)
        top = 65535.0 if im.mode.startswith("I;16") or 255 < a.max() <= 65535 else 255.0 if a.max() <= 255 else None
        expected = "an 8-bit or 16-bit image"
    if top is None or a.min() < 0:
        raise ValueError(f"{what} {path}: values {a.min():g} to {a.max():g} are outside the range of "
                         f"{expected}")
    return a / top


def read_rgba(path, what: str = "image") -> np.ndarray:
    """Any image Pillow reads -> (H, W, 4) float32 in [0, 1] (alpha 1 where there is none).
    ``what`` names the file's role in errors ("image", "mask")."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        with Image.open(path) as opened:
            im = ImageOps.exif_transpose(opened)  # a phone photo stored sideways, shown upright
            if im.mode in ("F", "I") or im.mode.startswith("I;16"):
                grey = _grey_levels(im, path, what)
                alpha = np.ones_like(grey)
                if "transparency" in im.info:  # one grey level marked transparent (PNG tRNS)
                    alpha = (np.asarray(im) != im.info["transparency"]).astype(np.float32)
                return np.concatenate([np.repeat(grey[..., None], 3, -1), alpha[..., None]], -1)
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read {what} {path}: {exc}") from exc
    if not has_alpha:
        rgba[..., 3] = 1.0
    return rgba


def border_pixels(a: np.ndarray) -> np.ndarray:
    """The values along an image's four edges. a: (H, W, ...) -> (2H + 2W, ...)."""
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def estimate_background_mask(rgb: np.ndarray, path="image", threshold: float = 0.12,
                             hole_share: float = 0.02) -> np.ndarray:
    """Foreground of a photo on a plain background: pixels far from the median border colour,
    cleaned up. rgb: (H, W, 3). Returns (H, W) bool.

    The object is the largest piece left after an opening (which removes specks and one-pixel
    bridges), with the thin pieces the opening removed that touch it and not the image's edge
    added back: chair legs and wing tips stay, a seam or a table edge running out of the picture
    does not. Holes up to ``hole_share`` of the object's area are filled (object pixels near the
    background's colour); larger ones are background seen through the object (between a chair's
    back rails) and stay open."""
    border = border_pixels(rgb)
    bg = np.median(border, axis=0)
    if np.median(np.abs(border - bg).max(1)) > threshold:
        raise ValueError(f"{path}: the background is not plain enough to find the object; "
                         f"pass --mask or use an image with an alpha channel")
    fg = np.abs(rgb - bg).max(-1) > threshold
    opened = ndimage.binary_opening(fg, iterations=1)
    core = opened if opened.any() else fg  # an object thinner than the opening: keep it whole
    labels, n = ndimage.label(core)
    if n == 0:
        raise ValueError(f"{path}: no object found in front of the background; pass --mask")
    sizes = ndimage.sum(core, labels, range(1, n + 1))
    main = labels == (1 + int(np.argmax(sizes)))
    thin, _ = ndimage.label(fg & ~opened, structure=np.ones((3, 3)))
    touching = np.unique(thin[ndimage.binary_dilation(main, structure=np.ones((3, 3)))])
    edge = np.unique(border_pixels(thin))
    obj = main | np.isin(thin, np.setdiff1d(touching[touching > 0], edge))
    holes, k = ndimage.label(ndimage.binary_fill_holes(obj) & ~obj)
    if k:
        areas = ndimage.sum(holes > 0, holes, range(1, k + 1))
        obj |= np.isin(holes, 1 + np.nonzero(areas <= hole_share * obj.sum())[0])
    return obj


FRAMINGS = ("auto", "keep", "crop")


def framed_like_renderings(mask: np.ndarray) -> bool:
    """Whether a silhouette (H, W) is framed as the training renderings are: a square image,
    the object's longest side 50-95% of it, its box at least 2% of the side from every edge and
    centred within 15% of the side (the procedural chairs: 58-91%, within 10%)."""
    h, w = mask.shape
    if h != w:
        return False
    ys, xs = np.nonzero(mask >= 0.5)
    top, bottom, left, right = ys.min(), h - 1 - ys.max(), xs.min(), w - 1 - xs.max()
    longest = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) / w
    off = max(abs(top - bottom), abs(left - right)) / 2 / w
    return 0.5 <= longest <= 0.95 and min(top, bottom, left, right) >= 0.02 * w and off <= 0.15


def load_user_image(path, mask_path=None, image_size: int = 64, fill: float = 0.78,
                    framing: str = "auto"):
    """Prepare one user image. Returns image (3, S, S) and mask (S, S) float tensors.
    framing: "keep" uses the image as framed (a non-square one padded to a square about its
    centre), "crop" crops a square around the object whose longest side fills ``fill`` of it,
    "auto" keeps an image framed as the renderings are (``framed_like_renderings``) and crops
    any other."""
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
    rgba = read_rgba(path)
    rgb = rgba[..., :3]
    if mask_path is not None:
        m = read_rgba(mask_path, "mask")
        if m.shape[:2] != rgb.shape[:2]:
            raise ValueError(f"mask {mask_path} is {m.shape[1]} x {m.shape[0]} but image {path} is "
                             f"{rgb.shape[1]} x {rgb.shape[0]}")
        mask = m[..., :3].mean(-1) if m[..., 3].min() == 1.0 else m[..., 3]
        if 0 < mask.max() <= 1.5 / 255:  # saved as 0 / 1 in 8 bits: read 1 as foreground
            mask = mask / mask.max()
    elif rgba[..., 3].min() < 1.0:
        mask = rgba[..., 3]
    else:
        mask = estimate_background_mask(rgb, path).astype(np.float32)
        warnings.warn(f"{path}: no mask given and no alpha channel, so the silhouette was estimated "
                      f"from the plain background; pass --mask if the preview looks wrong",
                      stacklevel=2)
    if (mask >= 0.5).sum() < 4:
        raise ValueError(f"{mask_path or path}: the silhouette is empty or nearly so "
                         f"({int((mask >= 0.5).sum())} foreground pixels; at least 4 are needed)")
    fg = mask >= 0.5
    border = border_pixels(fg).mean()
    if border > 0.5:  # a cut-out cropped to its object touches the edges, but at a few points
        warnings.warn(f"{mask_path or path}: the silhouette covers {100 * border:.0f}% of the "
                      f"image's border; is the mask inverted? The object must be white (or "
                      f"opaque), the background black (or transparent)", stacklevel=2)
    ys, xs = np.nonzero(fg)
    layers = np.concatenate([rgb * mask[..., None], mask[..., None]], -1)  # black background
    t = torch.from_numpy(np.ascontiguousarray(layers)).permute(2, 0, 1)[None]
    if framing == "keep" or (framing == "auto" and framed_like_renderings(mask)):
        h, w = rgb.shape[:2]
        side = max(h, w)  # pad to a square about the centre, then resize by area (box) averages
        t = F.pad(t, ((side - w) // 2, side - w - (side - w) // 2,
                      (side - h) // 2, side - h - (side - h) // 2))
        if side != image_size:
            t = F.interpolate(t, size=(image_size, image_size),
                              mode="area" if side > image_size else "bilinear")
        return t[0, :3].clamp(0, 1), t[0, 3].clamp(0, 1)
    # Crop a square window around the object (zero padding outside the photo), then resize.
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    side = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) / fill
    theta = torch.tensor([[[side / rgb.shape[1], 0, (2 * cx / rgb.shape[1]) - 1],
                           [0, side / rgb.shape[0], (2 * cy / rgb.shape[0]) - 1]]], dtype=torch.float32)
    grid = F.affine_grid(theta, (1, 4, image_size * 4, image_size * 4), align_corners=False)
    big = F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    small = F.avg_pool2d(big, 4)[0]  # supersampled resize: anti-aliased like the renderings
    return small[:3].clamp(0, 1), small[3].clamp(0, 1)


def collect_images(inputs: list[str]) -> list[Path]:
    """Expand folders into their image files (sorted); keep files as given."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"folder {p} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"image {p} does not exist")
    return out
