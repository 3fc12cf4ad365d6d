"""Mesh primitives shared by the procedural generators.

A generator builds a list of :class:`Part` objects in natural units (metres, roughly), each with one
colour, and :func:`assemble` concatenates them into a single coloured ``trimesh.Trimesh``,
centred at its bounding-box centre and scaled to a bounding-box diagonal of 1.

Almost every primitive is a *loft*: a stack of closed cross-section rings ``(K, M, 3)`` skinned
with quads and closed with triangle fans. Boxes, cylinders, tubes, ellipsoids, fuselages, wings
and car bodies are all rings computed differently. Watertightness is not a goal, but lofts are
closed and oriented outwards so face normals are meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

X = np.array([1.0, 0.0, 0.0])
Y = np.array([0.0, 1.0, 0.0])
Z = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class Part:
    """One single-coloured piece: vertices (V, 3) float64, faces (F, 3) int64, colour (4,) uint8."""

    vertices: np.ndarray
    faces: np.ndarray
    color: np.ndarray


# --------------------------------------------------------------------------------------------
# colours


def rgba(rgb) -> np.ndarray:
    """(3,) or (4,) values in 0..255 -> (4,) uint8 RGBA, opaque unless alpha is given."""
    c = np.asarray(rgb, dtype=np.float64)
    if c.shape[0] == 3:
        c = np.append(c, 255.0)
    return np.clip(np.round(c), 0, 255).astype(np.uint8)


def jitter(rgb, rng: np.random.Generator, brightness: float = 0.12, hue: float = 10.0
           ) -> np.ndarray:
    """A palette colour with small random changes in brightness and per-channel tint.

    rgb: (3,) in 0..255. Returns (4,) uint8. Brightness is multiplicative so dark colours stay
    dark (tyres, glass); the tint is additive so near-greys pick up a little colour too.
    """
    c = np.asarray(rgb, dtype=np.float64) * rng.uniform(1.0 - brightness, 1.0 + brightness)
    c = c + rng.uniform(-hue, hue, size=3)
    return rgba(c)


def pick(palette, rng: np.random.Generator, **jitter_kw) -> np.ndarray:
    """A jittered random entry of ``palette`` (a sequence of RGB triples). Returns (4,) uint8."""
    return jitter(palette[int(rng.integers(len(palette)))], rng, **jitter_kw)


# --------------------------------------------------------------------------------------------
# geometry helpers


def unit(v) -> np.ndarray:
    """``v`` (..., 3) scaled to unit length along the last axis."""
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def rotation(axis, angle: float) -> np.ndarray:
    """(3, 3) right-handed rotation by ``angle`` radians about ``axis`` (3,) (Rodrigues)."""
    a = unit(axis)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def transformed(part: Part, matrix: np.ndarray | None = None, offset=(0.0, 0.0, 0.0),
                origin=(0.0, 0.0, 0.0)) -> Part:
    """``part`` rotated by ``matrix`` (3, 3) about ``origin`` (3,) and then moved by ``offset``."""
    v = part.vertices - np.asarray(origin, dtype=np.float64)
    if matrix is not None:
        v = v @ np.asarray(matrix).T
    v = v + np.asarray(origin, dtype=np.float64) + np.asarray(offset, dtype=np.float64)
    return Part(v, part.faces, part.color)


def mirror_x(part: Part) -> Part:
    """Mirror image of ``part`` across the x = 0 plane (left <-> right).

    The face winding is reversed because a reflection flips orientation.
    """
    v = part.vertices * np.array([-1.0, 1.0, 1.0])
    return Part(v, part.faces[:, ::-1].copy(), part.color)


def with_mirror(parts: list[Part]) -> list[Part]:
    """``parts`` followed by their mirror images across x = 0."""
    return list(parts) + [mirror_x(p) for p in parts]


def round_corners(points, radius: float, n: int = 4) -> np.ndarray:
    """Replace each interior corner of an open polyline (K, 3) by an ``n``-point curve.

    Each corner is cut at ``radius`` along both neighbouring segments (at most 45% of a segment)
    and bridged by a quadratic Bezier arc, so bent tubes (sled frames) do not pinch. Returns
    (K', 3).
    """
    pts = np.asarray(points, dtype=np.float64)
    out = [pts[0]]
    for prev, corner, nxt in zip(pts[:-2], pts[1:-1], pts[2:]):
        a = corner + unit(prev - corner) * min(radius, 0.45 * np.linalg.norm(prev - corner))
        b = corner + unit(nxt - corner) * min(radius, 0.45 * np.linalg.norm(nxt - corner))
        for t in np.linspace(0.0, 1.0, n):
            out.append((1 - t) ** 2 * a + 2 * (1 - t) * t * corner + t ** 2 * b)
    out.append(pts[-1])
    return np.array(out)


def chaikin(polygon: np.ndarray, iterations: int = 2, keep: np.ndarray | None = None
            ) -> np.ndarray:
    """Corner-cut a closed 2-D polygon ``iterations`` times (Chaikin) to round its corners.

    polygon: (N, 2). keep: optional (N,) bool marking corners to leave sharp. Returns (N', 2).
    """
    pts = np.asarray(polygon, dtype=np.float64)
    sharp = np.zeros(len(pts), bool) if keep is None else np.asarray(keep, bool)
    for _ in range(iterations):
        nxt = np.roll(pts, -1, axis=0)
        nsharp = np.roll(sharp, -1)
        out, flags = [], []
        for p, q, sp, sq in zip(pts, nxt, sharp, nsharp):
            # A sharp vertex is kept as is; the cut points next to it are pulled onto it.
            out.append(p if sp else 0.75 * p + 0.25 * q)
            flags.append(bool(sp))
            out.append(q if sq else 0.25 * p + 0.75 * q)
            flags.append(bool(sq))
        pts, sharp = np.array(out), np.array(flags)
        # Consecutive duplicates (around sharp vertices) would make zero-area faces.
        d = np.linalg.norm(pts - np.roll(pts, -1, axis=0), axis=1) > 1e-12
        pts, sharp = pts[d], sharp[d]
    return pts


# --------------------------------------------------------------------------------------------
# 2-D cross-section profiles, counter-clockwise


def circle(m: int) -> np.ndarray:
    """(m, 2) points of the unit circle, counter-clockwise, starting at (1, 0)."""
    t = np.linspace(0.0, 2.0 * np.pi, m, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def superellipse(m: int, exponent: float) -> np.ndarray:
    """(m, 2) points of |x|^n + |y|^n = 1: a circle for n = 2, a rounded square for n >> 2.

    The angle is offset by half a step so that an m = 4 superellipse is a square's corners.
    """
    t = np.linspace(0.0, 2.0 * np.pi, m, endpoint=False) + np.pi / m
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / exponent
    return np.stack([np.sign(c) * np.abs(c) ** e, np.sign(s) * np.abs(s) ** e], axis=1)


def airfoil(m: int, thickness: float) -> np.ndarray:
    """(m, 2) closed symmetric airfoil, chord along x from 0 (leading edge) to 1 (trailing edge).

    ``thickness`` is the maximum thickness as a fraction of the chord. Uses the classic
    four-digit thickness law with a closed trailing edge and cosine spacing (dense at the nose).
    """
    half = m // 2
    beta = np.linspace(0.0, np.pi, half + 1)
    x = 0.5 * (1.0 - np.cos(beta))  # 0..1
    yt = 5.0 * thickness * (0.2969 * np.sqrt(x) - 0.1260 * x - 0.3516 * x ** 2
                            + 0.2843 * x ** 3 - 0.1036 * x ** 4)
    upper = np.stack([x, yt], axis=1)              # LE -> TE along the top
    lower = np.stack([x[::-1], -yt[::-1]], axis=1)  # TE -> LE along the bottom
    return np.concatenate([upper[:-1], lower[:-1]], axis=0)


# --------------------------------------------------------------------------------------------
# lofts and their special cases


def loft(rings: np.ndarray, color, cap_start: bool = True, cap_end: bool = True,
         start_apex=None, end_apex=None) -> Part:
    """Skin consecutive closed rings and close the ends with triangle fans.

    rings: (K, M, 3), K >= 2, M >= 3. A cap fans from ``start_apex`` / ``end_apex`` (3,) when
    given (a nose or a pole), otherwise from the ring's centroid. The faces are flipped if needed
    so that the (closed) part has positive signed volume, i.e. normals point outwards.
    """
    rings = np.asarray(rings, dtype=np.float64)
    k, m, _ = rings.shape
    idx = np.arange(k * m).reshape(k, m)
    a, d = idx[:-1], idx[1:]
    b, c = np.roll(a, -1, axis=1), np.roll(d, -1, axis=1)
    faces = [np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)]
    verts = [rings.reshape(-1, 3)]
    n = k * m
    for cap, ring, apex, flip in ((cap_start, idx[0], start_apex, True),
                                  (cap_end, idx[-1], end_apex, False)):
        if not cap:
            continue
        centre = rings[0 if flip else -1].mean(axis=0) if apex is None else np.asarray(apex, float)
        verts.append(centre[None])
        nxt = np.roll(ring, -1)
        fan = np.stack([np.full(m, n), nxt, ring] if flip else [np.full(m, n), ring, nxt], -1)
        faces.append(fan)
        n += 1
    v = np.concatenate(verts, axis=0)
    f = np.concatenate(faces, axis=0).astype(np.int64)
    if signed_volume(v, f) < 0:
        f = f[:, ::-1].copy()
    return Part(v, f, rgba(color))


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume enclosed by triangles (V, 3) / (F, 3): positive when normals point out."""
    t = vertices[faces]
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


def frames(path: np.ndarray, up=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotation-minimising frames along a polyline.

    path: (K, 3). up: (3,) hint for the first normal (any vector not parallel to the first
    segment; chosen automatically when None). Returns tangents, normals, binormals, each (K, 3),
    with binormal = tangent x normal; a profile point (p, q) maps to p * normal + q * binormal.
    """
    path = np.asarray(path, dtype=np.float64)
    seg = unit(np.diff(path, axis=0))
    tan = np.concatenate([seg[:1], seg[:-1] + seg[1:], seg[-1:]], axis=0)
    tan = unit(tan)
    if up is None:
        up = [X, Y, Z][int(np.argmin(np.abs(tan[0])))]
    nrm = np.empty_like(tan)
    u = np.asarray(up, dtype=np.float64)
    for i, t in enumerate(tan):
        # Project the previous normal onto the new normal plane: a cheap parallel transport.
        u = unit(u - np.dot(u, t) * t)
        nrm[i] = u
    return tan, nrm, np.cross(tan, nrm)


def sweep(path, profile: np.ndarray, scale, color, up=None, caps: bool = True) -> Part:
    """Sweep a 2-D ``profile`` (M, 2) along ``path`` (K, 3).

    scale: scalar, (K,) or (K, 2) / (1, 2) stretching the profile's two axes at each station (a
    radius for circles). ``up`` fixes the profile's first axis (see :func:`frames`).
    """
    path = np.asarray(path, dtype=np.float64)
    _, nrm, bin_ = frames(path, up)
    s = np.asarray(scale, dtype=np.float64)
    # A 1-D scale is per station (a radius); per-axis constants must be passed as (1, 2).
    s = np.broadcast_to(s.reshape(-1, 1) if s.ndim < 2 else s, (len(path), 2))
    p = profile[None, :, 0:1] * s[:, None, 0:1]  # (K, M, 1)
    q = profile[None, :, 1:2] * s[:, None, 1:2]
    rings = path[:, None, :] + p * nrm[:, None, :] + q * bin_[:, None, :]
    return loft(rings, color, cap_start=caps, cap_end=caps)


def cylinder(p0, p1, r0: float, r1: float | None, color, m: int = 10, up=None) -> Part:
    """Closed (tapered) cylinder from ``p0`` to ``p1`` (3,) with end radii ``r0`` and ``r1``."""
    r1 = r0 if r1 is None else r1
    return sweep(np.stack([p0, p1]).astype(float), circle(m), [r0, r1], color, up=up)


def prism(p0, p1, half_widths, color, up=None, m: int = 4, exponent: float = 16.0) -> Part:
    """Square-ish bar from ``p0`` to ``p1``: a swept superellipse with ``half_widths`` (2,).

    m = 4 gives a plain square section; larger m with a moderate exponent rounds the edges.
    """
    prof = superellipse(m, exponent) if m > 4 else superellipse(4, 2.0) * np.sqrt(2.0)
    return sweep(np.stack([p0, p1]).astype(float), prof, np.asarray(half_widths, float)[None],
                 color, up=up)


def tube(path, radius, color, m: int = 8, up=None) -> Part:
    """Round tube of ``radius`` (scalar or (K,)) along ``path`` (K, 3)."""
    return sweep(path, circle(m), radius, color, up=up)


def box(center, size, color, matrix: np.ndarray | None = None) -> Part:
    """Axis-aligned box of ``size`` (3,) centred at ``center`` (3,), optionally rotated by
    ``matrix`` (3, 3) about its centre."""
    h = np.asarray(size, dtype=np.float64) / 2.0
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * h
    # Faces wound counter-clockwise seen from outside.
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    if matrix is not None:
        corners = corners @ np.asarray(matrix).T
    return Part(corners + np.asarray(center, dtype=np.float64), faces, rgba(color))


def ellipsoid(center, radii, color, m: int = 12, k: int = 7) -> Part:
    """Ellipsoid with semi-axes ``radii`` (3,) (x, y, z) centred at ``center`` (3,).

    Built as ``k`` latitude rings of ``m`` points capped at the poles.
    """
    lat = np.linspace(-0.5 * np.pi, 0.5 * np.pi, k + 2)[1:-1]
    ring = circle(m)
    r = np.asarray(radii, dtype=np.float64)
    rings = np.stack([np.stack([ring[:, 0] * np.cos(a) * r[0], np.full(m, np.sin(a) * r[1]),
                                ring[:, 1] * np.cos(a) * r[2]], axis=1) for a in lat])
    c = np.asarray(center, dtype=np.float64)
    return loft(rings + c, color, start_apex=c - [0, r[1], 0], end_apex=c + [0, r[1], 0])


def extrude_x(polygon_zy: np.ndarray, half_width, color, bevel: float = 0.0) -> Part:
    """Extrude a side-view polygon across x, optionally bevelling its outline.

    polygon_zy: (N, 2) closed outline as (z, y). half_width: scalar or (N,) per outline point
    (narrower roof points give a car's tumblehome). bevel > 0 adds outer rings whose outline is
    pulled in by ``bevel`` in z and y and which lie ``bevel`` further out in x, rounding every
    edge of the slab.
    """
    poly = np.asarray(polygon_zy, dtype=np.float64)
    hw = np.broadcast_to(np.asarray(half_width, dtype=np.float64), (len(poly),))

    def ring(outline, x):
        return np.stack([x, outline[:, 1], outline[:, 0]], axis=1)

    rings = [ring(poly, -hw), ring(poly, hw)]
    if bevel > 0:
        lo, hi = poly.min(axis=0), poly.max(axis=0)
        mid, span = (lo + hi) / 2.0, np.maximum(hi - lo, 1e-9)
        inner = mid + (poly - mid) * np.maximum(1.0 - 2.0 * bevel / span, 0.1)
        rings = [ring(inner, -hw - bevel)] + rings + [ring(inner, hw + bevel)]
    return loft(np.stack(rings), color)


# --------------------------------------------------------------------------------------------
# assembly


def normalise(vertices: np.ndarray) -> np.ndarray:
    """Centre (V, 3) at the bounding-box centre and scale the bounding-box diagonal to 1."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    diag = float(np.linalg.norm(hi - lo))
    if not np.isfinite(diag) or diag <= 0:
        raise ValueError("cannot normalise a degenerate mesh")
    return (vertices - (lo + hi) / 2.0) / diag


def assemble(parts: list[Part]) -> trimesh.Trimesh:
    """Concatenate ``parts`` into one normalised ``Trimesh`` with per-face RGBA colours."""
    verts, faces, colors = [], [], []
    offset = 0
    for p in parts:
        verts.append(p.vertices)
        faces.append(p.faces + offset)
        colors.append(np.broadcast_to(p.color, (len(p.faces), 4)))
        offset += len(p.vertices)
    v = normalise(np.concatenate(verts, axis=0))
    # process=False: merging vertices here would only cost time and blend part boundaries.
    mesh = trimesh.Trimesh(vertices=v, faces=np.concatenate(faces, axis=0), process=False)
    mesh.visual.face_colors = np.concatenate(colors, axis=0)
    return mesh


def uniform(rng, lo, hi) -> float:
    """One float drawn uniformly from [lo, hi)."""
    return float(rng.uniform(lo, hi))


def choose(rng, options, p=None):
    """One element of ``options`` (optionally weighted by ``p``)."""
    return options[int(rng.choice(len(options), p=p))]
