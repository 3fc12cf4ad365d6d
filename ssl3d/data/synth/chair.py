"""Procedural chairs: seat, base (legs / pedestal / sled / cantilever), back and optional arms.

Frame (before normalisation, metres): floor at y = 0, seat centred on the y axis, seat front
towards +z, the sitter's right-hand side towards -x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .primitives import choose as _choice, uniform as _u
from .primitives import (X, Part, circle, cylinder, ellipsoid, loft, pick, prism,
                         round_corners, superellipse, sweep, tube, unit, with_mirror)

WOOD = [(150, 100, 60), (115, 75, 45), (185, 145, 95), (85, 55, 35), (205, 175, 125),
        (160, 120, 80), (60, 40, 28)]
METAL = [(185, 185, 190), (70, 70, 75), (35, 35, 38), (215, 215, 220), (140, 140, 145)]
FABRIC = [(175, 40, 40), (40, 70, 150), (45, 115, 70), (35, 35, 38), (230, 228, 220),
          (200, 180, 140), (225, 135, 40), (120, 120, 125), (95, 60, 120), (60, 140, 160),
          (240, 200, 60), (150, 30, 50)]

BASES = ("four", "splayed", "pedestal", "sled", "cantilever")
BASE_P = (0.38, 0.16, 0.22, 0.10, 0.14)




def seat_outline(w: float, d: float, exponent: float, flare: float, m: int = 24) -> np.ndarray:
    """Seat outline in the (x, z) plane: (m, 2), a superellipse whose front (+z) is wider by
    ``flare`` (fraction of the width)."""
    p = superellipse(m, exponent)
    x = p[:, 0] * w / 2.0 * (1.0 + flare * p[:, 1])
    return np.stack([x, p[:, 1] * d / 2.0], axis=1)


def slab(outline_xz: np.ndarray, y0: float, y1: float, color, bevel: float = 0.04) -> Part:
    """Horizontal slab with outline (M, 2) from height y0 to y1; top and bottom edges are
    bevelled by ``bevel`` (fraction of the outline size) so cushions look soft."""
    hs = [y0, y0 + 0.3 * (y1 - y0), y0 + 0.7 * (y1 - y0), y1]
    ss = [1.0 - 0.5 * bevel, 1.0, 1.0, 1.0 - bevel]
    rings = [np.stack([outline_xz[:, 0] * s, np.full(len(outline_xz), h), outline_xz[:, 1] * s],
                      axis=1) for h, s in zip(hs, ss)]
    return loft(np.stack(rings), color)


def leg_corners(w: float, d: float, exponent: float, flare: float, inset: float
                ) -> np.ndarray:
    """Top positions (x, z) of the right-front and right-rear legs: (2, 2).

    Legs sit on the seat outline's diagonals, pulled in by ``inset``.
    """
    k = 2.0 ** (-1.0 / exponent)  # where |x|^n + |z|^n = 1 meets the diagonal
    zf, zr = d / 2 * k - inset, -(d / 2 * k - inset)
    xf = -(w / 2 * k * (1 + flare * k) - inset)
    xr = -(w / 2 * k * (1 - flare * k) - inset)
    return np.array([[xf, zf], [xr, zr]])


def legs(rng, corners: np.ndarray, top_y: float, splay: float, color, wooden: bool
         ) -> list[Part]:
    """Right front and rear legs (mirrored by the caller) from the seat underside to the floor,
    plus optional stretchers. corners: (2, 2) right-front / right-rear (x, z)."""
    r = _u(rng, 0.014, 0.028)
    taper = _u(rng, 0.5, 1.0) if rng.random() < 0.6 else 1.0
    square = wooden and rng.random() < 0.6
    prof = superellipse(4, 2.0) * np.sqrt(2.0) if square else circle(8)
    parts = []
    bottoms = []
    for (x, z) in corners:
        out = unit([x, 0.0, z]) * splay  # splay pushes feet away from the centre
        top = np.array([x, top_y, z])
        bottom = np.array([x + out[0], 0.0, z + out[2]])
        parts.append(sweep(np.stack([top, bottom]), prof, [r, r * taper], color, up=X))
        bottoms.append(bottom)
    if rng.random() < 0.4:  # stretchers: side rails, and a front or middle cross rail
        h = _u(rng, 0.1, 0.22)
        f = h / top_y
        pf = bottoms[0] + (np.array([corners[0][0], top_y, corners[0][1]]) - bottoms[0]) * f
        pr = bottoms[1] + (np.array([corners[1][0], top_y, corners[1][1]]) - bottoms[1]) * f
        rr = r * 0.55
        parts.append(cylinder(pf, pr, rr, rr, color, m=6))
        if rng.random() < 0.5:
            mid = (pf + pr) / 2.0
            parts.append(cylinder(mid, [0.0, mid[1], mid[2]], rr, rr, color, m=6))
        else:
            parts.append(cylinder(pf, [0.0, pf[1], pf[2]], rr, rr, color, m=6))
    return parts


def apron(corners: np.ndarray, y: float, height: float, color) -> list[Part]:
    """Rails under the seat edge joining the leg tops (right side and half of front/back)."""
    (xf, zf), (xr, zr) = corners
    t = 0.012
    c = y - height / 2
    return [prism([xf, c, zf], [xr, c, zr], [height / 2, t], color, up=[0, 1, 0]),
            prism([xf, c, zf], [0.0, c, zf], [height / 2, t], color, up=[0, 1, 0]),
            prism([xr, c, zr], [0.0, c, zr], [height / 2, t], color, up=[0, 1, 0])]


def pedestal(rng, top_y: float, color, column_color) -> list[Part]:
    """Central column on a star base with optional casters, or on a round disc (tulip)."""
    parts = []
    rc = _u(rng, 0.02, 0.035)
    if rng.random() < 0.72:  # office star base
        n = 5 if rng.random() < 0.85 else 4
        length = _u(rng, 0.24, 0.32)
        casters = rng.random() < 0.7
        hub_y = 0.11 if casters else 0.07
        end_y = 0.065 if casters else 0.015
        phase = _u(rng, 0, 2 * np.pi / n)
        parts.append(cylinder([0, 0.5 * hub_y, 0], [0, top_y, 0], rc, rc * 0.9, column_color))
        for k in range(n):
            a = phase + 2 * np.pi * k / n
            tip = np.array([np.cos(a) * length, end_y, np.sin(a) * length])
            parts.append(prism([0, hub_y, 0], tip, [0.02, 0.018], color, up=[0, 1, 0]))
            if casters:
                parts.append(ellipsoid(tip * [1, 0, 1] + [0, 0.03, 0], [0.022, 0.03, 0.03],
                                       (30, 30, 32), m=8, k=4))
    else:  # tulip: disc foot and a flaring column
        rb = _u(rng, 0.2, 0.27)
        disc = np.stack([circle(20) * s for s in (rb, rb, rb * 0.9, rb * 0.25)])
        ys = [0.0, 0.012, 0.03, 0.06]
        rings = np.stack([np.stack([c[:, 0], np.full(20, y), c[:, 1]], 1)
                          for c, y in zip(disc, ys)])
        parts.append(loft(rings, color))
        parts.append(cylinder([0, 0.05, 0], [0, top_y, 0], rc * 1.8, rc, column_color, m=12))
    return parts


def tube_frame(rng, kind: str, w: float, d: float, seat_bottom: float, color) -> list[Part]:
    """Bent-tube frame: a sled (closed runner loop per side) or a cantilever (front bend)."""
    r = _u(rng, 0.009, 0.014)
    x = -(w / 2 - _u(rng, 0.0, 0.03))
    if kind == "sled":
        pts = [[x, seat_bottom, d / 2 - 0.06], [x, r, d / 2 + _u(rng, 0.0, 0.04)],
               [x, r, -d / 2 - _u(rng, 0.0, 0.04)], [x, seat_bottom, -d / 2 + 0.06]]
        path = round_corners(pts, 0.05, 5)
        return with_mirror([tube(path, r, color)])
    z_end = -d / 2 + _u(rng, -0.02, 0.1)
    pts = [[x, seat_bottom, -d / 2 + 0.05], [x, seat_bottom, d / 2 - 0.02],
           [x, r, d / 2 + _u(rng, 0.0, 0.06)], [x, r, z_end]]
    path = round_corners(pts, 0.07, 6)
    parts = with_mirror([tube(path, r, color)])
    parts.append(cylinder([x, r, z_end], [-x, r, z_end], r, r, color, m=8))
    return parts


BACK_STYLES = {  # base -> (styles, probabilities)
    "four": (("solid", "slats", "ladder", "spindles"), (0.35, 0.2, 0.25, 0.2)),
    "splayed": (("solid", "slats", "ladder", "spindles"), (0.5, 0.15, 0.15, 0.2)),
    "pedestal": (("solid", "ladder"), (0.9, 0.1)),
    "sled": (("solid", "ladder"), (0.75, 0.25)),
    "cantilever": (("solid", "ladder"), (0.75, 0.25)),
}
BACK_HEIGHTS = {"short": (0.2, 0.32), "normal": (0.32, 0.5), "tall": (0.5, 0.75)}


@dataclass(frozen=True)
class BackFrame:
    """Where the backrest stands: ``origin`` (3,) at the seat's rear centre, unit vectors
    ``up`` (tilted backwards) and ``normal`` (towards the sitter), and its height, width and
    thickness."""

    origin: np.ndarray
    up: np.ndarray
    normal: np.ndarray
    height: float
    width: float
    thickness: float

    def at(self, h: float, x: float = 0.0, n: float = 0.0) -> np.ndarray:
        """Point (3,) at height ``h`` along the back, ``x`` sideways, ``n`` towards the sitter."""
        return self.origin + self.up * h + X * x + self.normal * n


def sample_back_frame(rng, base: str, w: float, d: float, seat_y: float) -> BackFrame:
    """Random tilt, height, width and thickness of the backrest."""
    tilt = np.radians(_u(rng, 2, 20) if base == "pedestal" else _u(rng, 0, 18))
    size = _choice(rng, ("short", "normal", "tall"), p=(0.2, 0.6, 0.2))
    thickness = _u(rng, 0.02, 0.05)
    origin = np.array([0.0, seat_y - 0.01, -d / 2 + thickness / 2 + _u(rng, 0.0, 0.02)])
    return BackFrame(origin, np.array([0.0, np.cos(tilt), -np.sin(tilt)]),
                     np.array([0.0, np.sin(tilt), np.cos(tilt)]), _u(rng, *BACK_HEIGHTS[size]),
                     w * _u(rng, 0.8, 1.0), thickness)


def solid_back(rng, b: BackFrame, base: str, seat_y: float, frame_color, back_color
               ) -> list[Part]:
    """One curved panel (shield, oval, rounded rectangle...), on the seat or raised on posts."""
    gap = 0.0 if rng.random() < 0.5 else min(_u(rng, 0.04, 0.15), 0.4 * b.height)
    top_k = _u(rng, 0.75, 1.15)  # top width relative to the bottom
    belly = _u(rng, 0.0, 0.15)  # wider in the middle: shield / oval backs
    curve = _u(rng, 0.0, 0.06)  # sides wrap forward around the sitter
    prof = superellipse(20, _choice(rng, (2.5, 4.0, 6.0, 12.0)))
    hs = np.array([0.0, 0.25, 0.5, 0.75, 0.93, 1.0])
    wk = 1.0 + (top_k - 1.0) * hs + belly * np.sin(np.pi * hs)
    wk[-1] *= 0.88  # rounded top edge
    rings = []
    for h, k in zip(hs, wk):
        px = prof[:, 0] * b.width / 2 * k
        pn = prof[:, 1] * b.thickness / 2 + curve * prof[:, 0] ** 2
        rings.append(b.at(gap + (b.height - gap) * h) + np.outer(px, X) + np.outer(pn, b.normal))
    parts = [loft(np.stack(rings), back_color)]
    if gap <= 0:
        return parts
    if base == "pedestal":  # office chair: one spine from under the seat
        path = round_corners([[0, seat_y - 0.06, -0.05], [0, seat_y - 0.06, b.origin[2] - 0.03],
                              b.at(gap + 0.3 * (b.height - gap), 0.0, -b.thickness / 2 - 0.01)],
                             0.04, 4)
        parts.append(sweep(path, superellipse(4, 2.0) * np.sqrt(2), [[0.03, 0.01]], frame_color,
                           up=X))
        return parts
    pr = _u(rng, 0.012, 0.022)
    for sx in (-1, 1):
        parts.append(prism(b.at(0.0, sx * b.width * 0.35, -0.01),
                           b.at(gap + 0.4 * (b.height - gap), sx * b.width * 0.35, -0.01),
                           [pr, pr * 0.8], frame_color, up=X))
    return parts


def framed_back(rng, b: BackFrame, style: str, frame_color, back_color, wooden: bool
                ) -> list[Part]:
    """Two posts with horizontal rails (ladder), or a top rail over slats or spindles."""
    pr = _u(rng, 0.012, 0.022)  # post half width
    post_prof = superellipse(4, 2.0) * np.sqrt(2.0) if wooden else circle(8)
    xs = b.width / 2 - pr
    parts = [sweep(np.stack([b.at(-0.01, sx * xs), b.at(b.height * 1.03, sx * xs)]), post_prof,
                   pr, frame_color, up=X) for sx in (-1, 1)]
    rail_t = min(b.thickness, 2 * pr) * 0.8

    def rail(h, half_h, color):
        return prism(b.at(h, -xs), b.at(h, xs), [half_h, rail_t / 2], color, up=b.up)

    if style == "ladder":
        rail_h = _u(rng, 0.025, 0.07)
        lo = _u(rng, 0.25, 0.55) * b.height
        n = int(rng.integers(2, 6))
        return parts + [rail(h, rail_h / 2, back_color)
                        for h in np.linspace(lo, b.height - rail_h / 2, n)]
    rail_h = _u(rng, 0.04, 0.11)
    parts.append(rail(b.height - rail_h / 2, rail_h / 2, back_color))
    bottom = _u(rng, 0.0, 0.12)
    if bottom > 0.05:  # lower rail; otherwise the slats stand on the seat
        parts.append(rail(bottom, 0.015, frame_color))
    n = int(rng.integers(3, 8)) if style == "slats" else int(rng.integers(4, 10))
    inner = 2 * (xs - pr)
    slat_w = inner / n * _u(rng, 0.35, 0.6)
    p0, p1 = b.at(bottom), b.at(b.height - rail_h)
    for x in (np.arange(n) + 0.5) / n * inner - inner / 2:
        if style == "slats":
            parts.append(prism(p0 + X * x, p1 + X * x, [slat_w / 2, rail_t * 0.35], back_color,
                               up=X))
        else:
            parts.append(cylinder(p0 + X * x, p1 + X * x, 0.008, 0.008, frame_color, m=6))
    return parts


def back(rng, base: str, w: float, d: float, seat_y: float, frame_color, back_color,
         wooden: bool) -> list[Part]:
    """Backrest rising from the rear of the seat, tilted backwards."""
    b = sample_back_frame(rng, base, w, d, seat_y)
    style = _choice(rng, *BACK_STYLES[base])
    if style == "solid":
        return solid_back(rng, b, base, seat_y, frame_color, back_color)
    return framed_back(rng, b, style, frame_color, back_color, wooden)


def arms(rng, base: str, w: float, d: float, seat_y: float, seat_t: float, frame_color,
         seat_color) -> list[Part]:
    """Armrests on both sides (built on the right, then mirrored)."""
    ah = seat_y + _u(rng, 0.17, 0.25)
    x = -(w / 2 + _u(rng, -0.01, 0.03))
    z0, z1 = -d / 2 + 0.02, d / 2 - _u(rng, 0.0, 0.08)
    if base in ("four", "splayed") and rng.random() < 0.3:  # upholstered side panels
        t = _u(rng, 0.05, 0.1)
        outline = np.array([[z1, seat_y - seat_t - 0.04], [z1, ah], [z0, ah],
                            [z0, seat_y - seat_t - 0.04]])
        rings = [np.stack([np.full(4, x - s * t / 2), outline[:, 1], outline[:, 0]], 1)
                 for s in (-1, 1)]
        return with_mirror([loft(np.stack(rings), seat_color)])
    if base == "pedestal":
        xs = -(w / 2 - 0.04)
        za, zb = -0.1, 0.1 + _u(rng, 0.0, 0.06)
        path = round_corners([[xs + 0.04, seat_y - seat_t - 0.03, 0.0],
                              [x, seat_y - seat_t - 0.03, 0.0], [x, ah - 0.02, 0.0]], 0.05, 4)
        parts = [sweep(path, superellipse(4, 2.0) * np.sqrt(2), [[0.02, 0.012]], frame_color,
                       up=[0, 0, 1]),
                 prism([x, ah, za], [x, ah, zb], [0.018, 0.035], seat_color, up=[0, 1, 0],
                       m=12, exponent=4.0)]
        return with_mirror(parts)
    r = _u(rng, 0.012, 0.02)
    pad_w = _u(rng, 0.025, 0.05)
    parts = [prism([x, ah, z0], [x, ah, z1], [r, pad_w], frame_color, up=[0, 1, 0], m=12,
                   exponent=4.0),
             cylinder([x, seat_y - seat_t, z1 - 0.03], [x, ah, z1 - 0.03], r * 0.8, r * 0.8,
                      frame_color, m=8)]
    return with_mirror(parts)


def generate_chair(rng: np.random.Generator) -> list[Part]:
    """Parts of one random chair (or occasionally a stool), in metres."""
    base = _choice(rng, BASES, p=BASE_P)
    stool = base in ("four", "splayed", "pedestal") and rng.random() < 0.12
    wooden = base in ("four", "splayed") and rng.random() < 0.7
    frame_color = pick(WOOD if wooden else METAL, rng, brightness=0.1)
    seat_wood = rng.random() < (0.6 if wooden else 0.15)
    seat_color = (pick(WOOD, rng, brightness=0.08) if seat_wood else pick(FABRIC, rng))
    back_color = seat_color if rng.random() < 0.8 else pick(FABRIC + WOOD, rng)

    if stool:
        seat_y = _u(rng, 0.6, 0.78) if rng.random() < 0.6 else _u(rng, 0.42, 0.5)
        w = d = _u(rng, 0.3, 0.42)
        exponent = _choice(rng, (2.0, 2.0, 4.0, 10.0))
        flare = 0.0
    else:
        seat_y = _u(rng, 0.41, 0.5)
        w, d = _u(rng, 0.4, 0.56), _u(rng, 0.38, 0.52)
        exponent = _choice(rng, (2.5, 4.0, 6.0, 10.0, 16.0) if base != "four" else
                           (4.0, 6.0, 10.0, 16.0))
        flare = _u(rng, 0.0, 0.15)
    t = _u(rng, 0.025, 0.07)
    outline = seat_outline(w, d, exponent, flare)
    parts = [slab(outline, seat_y - t, seat_y, seat_color, bevel=0.02 if seat_wood else 0.05)]
    if not seat_wood and rng.random() < 0.3:  # separate cushion on a thin shell
        ct = _u(rng, 0.03, 0.07)
        parts.append(slab(outline * 0.93, seat_y, seat_y + ct, pick(FABRIC, rng), bevel=0.08))
        seat_y += ct * 0.8

    seat_bottom = seat_y - t
    if base in ("four", "splayed"):
        splay = 0.0 if base == "four" else _u(rng, 0.03, 0.09)
        inset = _u(rng, 0.02, 0.05)
        corners = leg_corners(w, d, exponent, flare, inset)
        parts += with_mirror(legs(rng, corners, seat_bottom, splay, frame_color, wooden))
        if wooden and rng.random() < 0.5:
            parts += with_mirror(apron(corners, seat_bottom, _u(rng, 0.04, 0.09), frame_color))
    elif base == "pedestal":
        column = pick(METAL, rng) if rng.random() < 0.7 else frame_color
        parts += pedestal(rng, seat_bottom, frame_color, column)
        if rng.random() < 0.6:  # tilt mechanism under the seat
            parts.append(prism([0, seat_bottom - 0.03, -0.1], [0, seat_bottom - 0.03, 0.1],
                               [0.08, 0.025], (40, 40, 42), up=X))
    else:
        parts += tube_frame(rng, base, w, d, seat_bottom, frame_color)

    if not stool:
        parts += back(rng, base, w, d, seat_y, frame_color, back_color, wooden)
        if rng.random() < (0.4 if base == "pedestal" else 0.25):
            parts += arms(rng, base, w, d, seat_y, t, frame_color, seat_color)
    return parts
