"""Procedural cars: a bevelled lower body, a glass cabin with a body-coloured roof and pillars,
four wheels, lights and a few type-specific extras.

Frame (before normalisation, metres): ground at y = 0, bonnet towards +z, the driver's right-hand
side towards -x. Bodies are side-view outlines (z, y) extruded across x, which is enough to get
sedans, hatchbacks, estates, SUVs, pick-ups and sports cars from one routine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .primitives import uniform as _u
from .primitives import (X, Part, box, chaikin, circle, cylinder, extrude_x, loft, pick, prism,
                         with_mirror)

PAINT = [(200, 25, 30), (25, 55, 140), (235, 235, 235), (185, 188, 192), (25, 25, 28),
         (240, 200, 30), (30, 110, 60), (230, 110, 20), (110, 20, 30), (90, 95, 100),
         (60, 130, 190), (200, 190, 160)]
GLASS = [(30, 40, 55), (20, 25, 32), (45, 60, 75)]
TYRE = [(22, 22, 24), (35, 35, 37)]
RIM = [(190, 190, 195), (120, 122, 128), (40, 40, 42), (215, 200, 140)]
TRIM = [(30, 30, 32), (60, 60, 64)]

TYPES = ("sedan", "hatchback", "wagon", "suv", "pickup", "sports")
TYPE_P = (0.27, 0.2, 0.08, 0.2, 0.12, 0.13)

# Per type: length, width, ground clearance, belt height, roof height, wheel radius,
# front / rear overhang (fractions of the length), bonnet length (fraction), windscreen angle
# from horizontal (deg), rear window angle (deg).
RANGES = {
    "sedan": ((4.4, 5.0), (1.72, 1.88), (0.14, 0.2), (0.82, 0.95), (1.38, 1.5), (0.3, 0.34),
              (0.17, 0.22), (0.2, 0.25), (0.2, 0.26), (24, 32), (22, 34)),
    "hatchback": ((3.7, 4.3), (1.65, 1.8), (0.14, 0.19), (0.84, 0.95), (1.42, 1.55),
                  (0.28, 0.32), (0.16, 0.21), (0.12, 0.17), (0.2, 0.27), (26, 36), (50, 72)),
    "wagon": ((4.5, 4.95), (1.75, 1.88), (0.14, 0.19), (0.84, 0.95), (1.42, 1.52), (0.3, 0.34),
              (0.17, 0.21), (0.18, 0.23), (0.24, 0.3), (26, 34), (68, 82)),
    "suv": ((4.3, 5.0), (1.82, 2.0), (0.22, 0.3), (1.0, 1.15), (1.65, 1.85), (0.36, 0.42),
            (0.16, 0.2), (0.14, 0.2), (0.2, 0.26), (32, 44), (65, 82)),
    "pickup": ((5.0, 5.8), (1.85, 2.0), (0.25, 0.32), (1.05, 1.2), (1.75, 1.9), (0.38, 0.44),
               (0.15, 0.19), (0.18, 0.23), (0.2, 0.25), (36, 46), (80, 88)),
    "sports": ((4.1, 4.6), (1.85, 1.98), (0.1, 0.13), (0.68, 0.8), (1.12, 1.28), (0.32, 0.35),
               (0.16, 0.2), (0.14, 0.19), (0.25, 0.32), (20, 26), (14, 24)),
}



@dataclass(frozen=True)
class Dims:
    """Sampled car dimensions in metres; z runs from -length/2 (rear) to +length/2 (front)."""

    kind: str
    length: float
    width: float
    clearance: float
    belt: float
    roof: float
    wheel_r: float
    axle_front: float  # z of the front axle
    axle_rear: float
    ws_base: float  # z where the windscreen meets the bonnet
    ws_top: float  # z where the windscreen meets the roof
    roof_end: float  # z where the roof ends
    rear_base: float  # z where the rear window / tailgate meets the body


def sample_dims(rng, kind: str) -> Dims:
    """Random dimensions of a car of type ``kind`` (one of TYPES)."""
    (length, width, clear, belt, roof, wr, ovf, ovr, bonnet, ws_ang, rw_ang) = (
        _u(rng, *r) for r in RANGES[kind])
    half = length / 2
    ws_base = half - bonnet * length
    cabin_h = roof - belt
    ws_top = ws_base - cabin_h / np.tan(np.radians(ws_ang))
    rw_run = cabin_h / np.tan(np.radians(rw_ang))
    if kind == "pickup":
        roof_end = ws_top - _u(rng, 1.0, 1.9)  # regular or crew cab
        rear_base = roof_end - rw_run
    elif kind in ("sedan", "sports"):
        roof_end = ws_top - (_u(rng, 0.9, 1.3) if kind == "sedan" else _u(rng, 0.5, 0.9))
        # A long rear window would eat the boot lid: steepen it instead.
        deck = _u(rng, 0.75, 1.05) if kind == "sedan" else _u(rng, 0.35, 0.6)
        rear_base = max(roof_end - rw_run, -half + deck)
    else:  # the roof runs (almost) to the back of the car
        rear_base = -half + _u(rng, 0.01, 0.05)
        roof_end = min(rear_base + rw_run, ws_top - 0.8)
    return Dims(kind, length, width, clear, belt, roof, wr, half - ovf * length,
                -half + ovr * length, ws_base, ws_top, roof_end, rear_base)


def body_outline(d: Dims, rng) -> np.ndarray:
    """Side-view outline (z, y) of the lower body, rounded by corner cutting: (N, 2)."""
    half = d.length / 2
    nose_y = d.clearance + (d.belt - d.clearance) * _u(rng, 0.45, 0.7)
    bonnet_front = d.belt - _u(rng, 0.03, 0.12)
    tail_y = d.belt + (_u(rng, 0.0, 0.06) if d.kind in ("sedan", "sports") else 0.0)
    bottom = d.clearance
    pts = [
        (half, bottom + 0.1),               # front bumper, bottom
        (half, nose_y),                     # nose
        (half - 0.12, bonnet_front),        # bonnet leading edge
        (d.ws_base, d.belt),                # windscreen base
        (-half + 0.1, tail_y),              # tail / deck end
        (-half, tail_y - 0.2),              # rear face
        (-half, bottom + 0.1),              # rear bumper, bottom
        (d.axle_rear, bottom),              # underbody
        (d.axle_front, bottom),
    ]
    return chaikin(np.array(pts), iterations=2)


def cabin_outline(d: Dims, inset: float = 0.0) -> np.ndarray:
    """Side-view outline (z, y) of the glass house: (N, 2), a gently rounded trapezoid.

    ``inset`` shrinks it (the roof panel and pillars use the unshrunk outline).
    """
    pts = np.array([(d.ws_base - inset, d.belt - 0.02),
                    (d.ws_top - inset * 0.5, d.roof - inset),
                    (d.roof_end + inset * 0.5, d.roof - inset),
                    (d.rear_base + inset, d.belt - 0.02)])
    return chaikin(pts, iterations=1, keep=np.array([True, False, False, True]))


def tumblehome(outline: np.ndarray, d: Dims, bottom_hw: float, top_hw: float) -> np.ndarray:
    """Per-point half width (N,) of a cabin outline: side windows lean inwards with height."""
    f = np.clip((outline[:, 1] - d.belt) / max(d.roof - d.belt, 1e-6), 0.0, 1.0)
    return bottom_hw + (top_hw - bottom_hw) * f


def wheel(center, radius: float, width: float, tyre, rim, m: int = 18) -> list[Part]:
    """Tyre (rounded cylinder along x) with a rim disc on its outer face (the -x side here)."""
    c = np.asarray(center, float)
    prof = circle(m)
    xs = np.array([-0.5, -0.45, 0.45, 0.5]) * width
    rs = radius * np.array([0.9, 1.0, 1.0, 0.9])
    rings = np.stack([np.stack([np.full(m, c[0] + x), c[1] + prof[:, 0] * r, c[2] + prof[:, 1] * r],
                               1) for x, r in zip(xs, rs)])
    out = c[0] - 0.5 * width
    hub = cylinder([out + 0.015, c[1], c[2]], [out - 0.008, c[1], c[2]], radius * 0.62,
                   radius * 0.55, rim, m=m)
    return [loft(rings, tyre), hub]


def profile_z_at(outline: np.ndarray, y: float) -> tuple[float, float]:
    """Rearmost and frontmost z where the closed outline (N, 2) crosses height ``y``."""
    a, b = outline, np.roll(outline, -1, axis=0)
    hit = (a[:, 1] - y) * (b[:, 1] - y) <= 0
    dy = np.where(np.abs(b[:, 1] - a[:, 1]) < 1e-12, 1e-12, b[:, 1] - a[:, 1])
    t = (y - a[:, 1]) / dy
    z = a[:, 0] + t * (b[:, 0] - a[:, 0])
    z = z[hit]
    return float(z.min()), float(z.max())


@dataclass(frozen=True)
class Colours:
    """RGBA (4,) uint8 colour of each kind of part."""

    paint: np.ndarray
    glass: np.ndarray
    tyre: np.ndarray
    rim: np.ndarray
    trim: np.ndarray  # grille, bumpers, bed liner


@dataclass(frozen=True)
class Cabin:
    """Half widths of the glass house at the belt line and at the roof (tumblehome)."""

    bottom_hw: float
    top_hw: float

    def side_point(self, d: Dims, z: float, y: float) -> np.ndarray:
        """Point (3,) on the right-hand (-x) cabin side at side-view position (z, y)."""
        hw = tumblehome(np.array([[z, y]]), d, self.bottom_hw, self.top_hw)[0]
        return np.array([-(hw + 0.008), y, z])


def sample_colours(rng) -> Colours:
    """Paint from a car palette; dark glass, tyres and trim; silver, dark or gold rims."""
    return Colours(pick(PAINT, rng, brightness=0.1, hue=8), pick(GLASS, rng, brightness=0.1, hue=4),
                   pick(TYRE, rng, hue=3), pick(RIM, rng), pick(TRIM, rng, hue=3))


def pillars(rng, d: Dims, cab: Cabin, colour) -> list[Part]:
    """Right-side A, B (not on sports cars), C and on estates/SUVs D pillars over the glass."""
    width = _u(rng, 0.035, 0.06)

    def bar(p, q, w):
        return prism(cab.side_point(d, *p), cab.side_point(d, *q), [w / 2, w / 2], colour, up=X)

    c_width = width * (2.5 if d.kind in ("sedan", "sports") else 1.5)
    parts = [bar((d.ws_base, d.belt), (d.ws_top, d.roof), width),
             bar((d.rear_base, d.belt), (d.roof_end, d.roof), c_width)]
    if d.kind != "sports":
        f = 0.5 if d.kind == "pickup" else _u(rng, 0.45, 0.6)
        zb = d.ws_top + (d.roof_end - d.ws_top) * f
        parts.append(bar((zb, d.belt), (zb, d.roof), width))
    if d.kind in ("wagon", "suv") or (d.kind == "hatchback" and rng.random() < 0.5):
        zc = d.roof_end + 0.25
        parts.append(bar((zc - 0.1, d.belt), (zc, d.roof), width * 1.2))
    return parts


def lights(rng, d: Dims, body: np.ndarray, bevel: float, colours: Colours
           ) -> tuple[list[Part], list[Part]]:
    """Head and tail lights (right side), grille and optional dark bumpers on the body's front
    and rear faces. Returns (centred parts, right-side parts to mirror)."""
    hw = d.width / 2
    y = d.clearance + (d.belt - d.clearance) * _u(rng, 0.55, 0.75)
    zr, zf = profile_z_at(body, y)
    lw, lh = _u(rng, 0.2, 0.35), _u(rng, 0.06, 0.12)
    x = -(hw - bevel - lw / 2 - 0.02)
    head = pick([(240, 240, 225), (250, 235, 170)], rng, hue=4)
    tail = pick([(190, 20, 25), (220, 40, 30)], rng, hue=6)
    right = [box([x, y, zf - 0.02], [lw, lh, 0.06], head),
             box([x, y, zr + 0.02], [lw, lh, 0.06], tail)]
    yg = y - lh * 0.8
    centre = [box([0.0, yg, profile_z_at(body, yg)[1] - 0.02],
                  [hw * _u(rng, 0.5, 0.9), lh * 1.4, 0.06], colours.trim)]
    if rng.random() < 0.6:
        yb = d.clearance + 0.12
        centre += [box([0.0, yb, z], [d.width - 2 * bevel, 0.14, 0.1], colours.trim)
                   for z in profile_z_at(body, yb)]
    return centre, right


def extras(rng, d: Dims, cab: Cabin, bevel: float, colours: Colours
           ) -> tuple[list[Part], list[Part]]:
    """Pick-up bed, sports-car rear wing, roof rails, door mirrors.

    Returns (centred parts, right-side parts to mirror).
    """
    centre, right = [], []
    hw = d.width / 2
    if d.kind == "pickup":  # open bed: a dark floor flush with the rear deck
        z0, z1 = -d.length / 2 + 0.08, d.roof_end - 0.08
        centre.append(box([0.0, d.belt + 0.004, (z0 + z1) / 2],
                          [d.width - 2 * bevel - 0.16, 0.01, z1 - z0], colours.trim))
    if d.kind == "sports" and rng.random() < 0.5:  # rear wing on two struts
        zs = -d.length / 2 + 0.2
        ys = d.belt + _u(rng, 0.12, 0.22)
        colour = colours.trim if rng.random() < 0.5 else colours.paint
        centre.append(box([0.0, ys, zs], [d.width * 0.85, 0.025, 0.25], colour))
        right.append(box([-hw * 0.55, (ys + d.belt) / 2, zs], [0.04, ys - d.belt + 0.04, 0.12],
                         colours.trim))
    if d.kind in ("suv", "wagon") and rng.random() < 0.5:  # roof rails
        right.append(box([-(cab.top_hw - 0.06), d.roof + 0.05, (d.ws_top + d.roof_end) / 2],
                         [0.04, 0.04, (d.ws_top - d.roof_end) * 0.85], colours.trim))
    # Door mirrors at the base of the A-pillars.
    right.append(box([-(cab.bottom_hw + 0.07), d.belt + 0.08, d.ws_base - 0.12],
                     [0.12, 0.09, 0.06], colours.paint if rng.random() < 0.6 else colours.trim))
    return centre, right


def generate_car(rng: np.random.Generator) -> list[Part]:
    """Parts of one random car, in metres."""
    kind = TYPES[int(rng.choice(len(TYPES), p=TYPE_P))]
    d = sample_dims(rng, kind)
    colours = sample_colours(rng)
    hw = d.width / 2
    bevel = _u(rng, 0.04, 0.09)
    body = body_outline(d, rng)
    parts = [extrude_x(body, hw - bevel, colours.paint, bevel=bevel)]

    # Glass house, then a body-coloured roof panel and pillars over it: dark windows in frames.
    cab = Cabin(hw - bevel * 0.8, hw * _u(rng, 0.72, 0.86))
    glass = cabin_outline(d)
    parts.append(extrude_x(glass, tumblehome(glass, d, cab.bottom_hw, cab.top_hw),
                           colours.glass))
    roof_t = _u(rng, 0.04, 0.07)
    roof = np.array([(d.ws_top - 0.02, d.roof - roof_t), (d.ws_top + 0.04, d.roof + 0.012),
                     (d.roof_end - 0.04, d.roof + 0.012), (d.roof_end + 0.02, d.roof - roof_t)])
    parts.append(extrude_x(roof, cab.top_hw + 0.012, colours.paint))
    right = pillars(rng, d, cab, colours.paint)

    width = _u(rng, 0.2, 0.3) * (1.15 if kind in ("suv", "pickup") else 1.0)
    for z in (d.axle_front, d.axle_rear):
        right += wheel([-(hw - width / 2 + 0.015), d.wheel_r, z], d.wheel_r, width,
                       colours.tyre, colours.rim)
    for centre, side in (lights(rng, d, body, bevel, colours),
                         extras(rng, d, cab, bevel, colours)):
        parts += centre
        right += side
    return parts + with_mirror(right)
