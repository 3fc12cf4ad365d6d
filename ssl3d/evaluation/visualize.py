"""Pictures of point clouds: z-buffered disc splats, grids, turntables, PLY files and an offline
interactive HTML viewer.

Everything here runs on NumPy and Pillow and goes through :mod:`ssl3d.camera`, so a cloud drawn
at a viewpoint looks as the network's projection would see it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ssl3d import camera

BACKGROUND = (255, 255, 255)


def render_points(xyz: np.ndarray, rgb: np.ndarray, viewpoint, size: int = 256,
                  radius: float | None = None, shade: bool = True) -> np.ndarray:
    """Draw a coloured cloud as depth-tested discs.

    xyz: (N, 3); rgb: (N, 3) in [0, 1]; viewpoint: (azimuth, elevation) radians.
    Returns (size, size, 3) uint8 on a white background. ``radius`` in pixels defaults to
    size / 90; ``shade`` darkens far points slightly so depth reads.
    """
    xyz = np.asarray(xyz, dtype=np.float32)
    rgb = np.asarray(rgb, dtype=np.float32)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or rgb.shape != xyz.shape:
        raise ValueError(f"xyz and rgb must both be (N, 3), got {xyz.shape} and {rgb.shape}")
    r = radius if radius is not None else max(1.0, size / 90)
    uv, depth = camera.project(torch.from_numpy(xyz)[None], torch.tensor([viewpoint],
                               dtype=torch.float32), size)
    uv, depth = uv[0].numpy(), depth[0].numpy()
    k = int(math.ceil(r))
    oy, ox = np.mgrid[-k:k + 1, -k:k + 1]
    disc = (ox ** 2 + oy ** 2) <= r * r + 0.5
    ox, oy = ox[disc], oy[disc]  # (D,)
    cols = (np.floor(uv[:, 0])[:, None] + ox).astype(np.int64).ravel()  # (N * D,)
    rows = (np.floor(uv[:, 1])[:, None] + oy).astype(np.int64).ravel()
    d = np.repeat(depth, len(ox))
    colour = rgb
    if shade and len(depth) > 1:
        span = max(float(depth.max() - depth.min()), 1e-6)
        colour = rgb * (1.0 - 0.35 * ((depth - depth.min()) / span))[:, None]
    c = np.repeat(colour, len(ox), axis=0)
    ok = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size) & (d > 0)
    cols, rows, d, c = cols[ok], rows[ok], d[ok], c[ok]
    pix = rows * size + cols
    order = np.lexsort((d, pix))  # by pixel, nearest first
    pix, c = pix[order], c[order]
    first = np.ones(len(pix), dtype=bool)
    first[1:] = pix[1:] != pix[:-1]
    img = np.empty((size * size, 3), dtype=np.float32)
    img[:] = np.asarray(BACKGROUND, dtype=np.float32) / 255
    img[pix[first]] = c[first]
    return (img.reshape(size, size, 3).clip(0, 1) * 255).round().astype(np.uint8)


def to_image(array: np.ndarray, size: int) -> Image.Image:
    """(H, W, 3) float in [0, 1] or uint8, or (3, H, W) float -> a square RGB image of ``size``."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype != np.uint8:
        a = (a.clip(0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(a).convert("RGB").resize((size, size), Image.NEAREST)


def grid(rows: list[list[np.ndarray | Image.Image]], cell: int = 160, titles: list[str] | None = None,
         pad: int = 4) -> Image.Image:
    """Lay images out in a grid with optional column titles."""
    n_cols = max(len(r) for r in rows)
    top = 18 if titles else 0
    sheet = Image.new("RGB", (n_cols * (cell + pad) + pad, len(rows) * (cell + pad) + pad + top),
                      (235, 235, 235))
    draw = ImageDraw.Draw(sheet)
    for j, t in enumerate(titles or []):
        draw.text((pad + j * (cell + pad) + 4, 3), t, fill=(0, 0, 0))
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            im = im if isinstance(im, Image.Image) else to_image(im, cell)
            sheet.paste(im.resize((cell, cell)), (pad + j * (cell + pad), top + pad + i * (cell + pad)))
    return sheet


def reconstruction_grid(images, pred_xyz, pred_rgb, pred_views, gt_xyz, path, cell: int = 160,
                        gt_views=None) -> Path:
    """Input / prediction from the input view and two others / ground truth, one row each.

    images: (M, 3, S, S); pred_xyz, pred_rgb: (M, N, 3); pred_views: (M, 2) in the predictions'
    frame; gt_xyz: (M, P, 3) drawn from ``gt_views`` (M, 2) (default: ``pred_views``, for ground
    truth already in the predictions' frame). Writes a PNG and returns its path.
    """
    gt_views = pred_views if gt_views is None else gt_views
    rows = []
    for i in range(len(images)):
        v = [float(x) for x in pred_views[i]]
        others = [(v[0] + 2.0, 0.35), (v[0] - 2.0, 0.35)]
        grey = np.full_like(np.asarray(gt_xyz[i]), 0.45)
        rows.append([np.asarray(images[i])]
                    + [render_points(pred_xyz[i], pred_rgb[i], vp, cell) for vp in [v] + others]
                    + [render_points(gt_xyz[i], grey, [float(x) for x in gt_views[i]], cell)])
    titles = ["input", "predicted, input view", "predicted, view 2", "predicted, view 3",
              "ground truth"]
    out = Path(path)
    grid(rows, cell, titles).save(out)
    return out


def turntable(xyz, rgb, path, frames: int = 36, size: int = 256, elevation: float = 0.35) -> Path:
    """An animated GIF of the cloud turning once around the vertical axis."""
    imgs = [Image.fromarray(render_points(xyz, rgb, (2 * math.pi * f / frames - math.pi, elevation),
                                          size)) for f in range(frames)]
    out = Path(path)
    imgs[0].save(out, save_all=True, append_images=imgs[1:], duration=80, loop=0)
    return out


def write_ply(path, xyz, rgb=None) -> Path:
    """ASCII PLY with float xyz and uchar colours. xyz: (N, 3); rgb: (N, 3) in [0, 1] or None."""
    xyz = np.asarray(xyz, dtype=np.float32)
    lines = ["ply", "format ascii 1.0", f"element vertex {len(xyz)}",
             "property float x", "property float y", "property float z"]
    if rgb is not None:
        lines += ["property uchar red", "property uchar green", "property uchar blue"]
    lines.append("end_header")
    if rgb is not None:
        c = (np.asarray(rgb).clip(0, 1) * 255).round().astype(int)
        body = [f"{p[0]:.6f} {p[1]:.6f} {p[2]:.6f} {q[0]} {q[1]} {q[2]}" for p, q in zip(xyz, c)]
    else:
        body = [f"{p[0]:.6f} {p[1]:.6f} {p[2]:.6f}" for p in xyz]
    out = Path(path)
    out.write_text("\n".join(lines + body) + "\n")
    return out


_VIEWER = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>ssl3d point clouds</title>
<style>body{font-family:sans-serif;margin:0;background:#f4f4f4}#bar{padding:8px}
canvas{background:#fff;display:block;margin:0 8px;border:1px solid #ccc;cursor:grab}</style>
</head><body><div id="bar"><select id="pick"></select>
drag to rotate, wheel to zoom, <span id="count"></span></div>
<canvas id="c" width="640" height="640"></canvas>
<script>
const CLOUDS = __DATA__;
const canvas = document.getElementById('c'), ctx = canvas.getContext('2d');
const pick = document.getElementById('pick');
CLOUDS.forEach((c, i) => { const o = document.createElement('option'); o.value = i; o.textContent = c.name; pick.appendChild(o); });
let yaw = 0.6, pitch = 0.35, zoom = 1.0, drag = null;
function draw() {
  const c = CLOUDS[+pick.value], n = c.xyz.length / 3;
  document.getElementById('count').textContent = n + ' points';
  const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
  const pts = [];
  for (let i = 0; i < n; i++) {
    const x = c.xyz[3*i], y = c.xyz[3*i+1], z = c.xyz[3*i+2];
    const x1 = cy*x + sy*z, z1 = -sy*x + cy*z;
    const y2 = cp*y - sp*z1, z2 = sp*y + cp*z1;
    const s = 420 * zoom / (2.2 - z2);
    pts.push([320 + s*x1, 320 - s*y2, z2, i]);
  }
  pts.sort((a, b) => a[2] - b[2]);
  ctx.clearRect(0, 0, 640, 640);
  for (const p of pts) {
    const i = p[3];
    ctx.fillStyle = 'rgb(' + c.rgb[3*i] + ',' + c.rgb[3*i+1] + ',' + c.rgb[3*i+2] + ')';
    ctx.beginPath(); ctx.arc(p[0], p[1], 2.6 * zoom, 0, 6.2832); ctx.fill();
  }
}
canvas.onmousedown = e => { drag = [e.clientX, e.clientY]; };
window.onmouseup = () => { drag = null; };
window.onmousemove = e => { if (!drag) return; yaw += (e.clientX - drag[0]) * 0.01;
  pitch = Math.max(-1.5, Math.min(1.5, pitch + (e.clientY - drag[1]) * 0.01)); drag = [e.clientX, e.clientY]; draw(); };
canvas.onwheel = e => { e.preventDefault(); zoom *= e.deltaY < 0 ? 1.1 : 1 / 1.1; draw(); };
pick.onchange = draw; draw();
</script></body></html>
"""


def write_viewer(path, clouds: list[tuple[str, np.ndarray, np.ndarray]]) -> Path:
    """A self-contained HTML viewer (no network fetches): pick a cloud, drag to rotate, wheel to
    zoom. clouds: (name, xyz (N, 3), rgb (N, 3) in [0, 1]) each."""
    data = [{"name": name, "xyz": [round(float(v), 4) for v in np.asarray(x).ravel()],
             "rgb": [int(v) for v in (np.asarray(c).clip(0, 1) * 255).round().ravel()]}
            for name, x, c in clouds]
    out = Path(path)
    # "<" escaped: a name holding "</script>" or "<!--" must not end or confuse the script
    text = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    out.write_text(_VIEWER.replace("__DATA__", text))
    return out
