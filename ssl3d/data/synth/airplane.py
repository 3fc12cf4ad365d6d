"""Procedural aircraft: fuselage, wings, tail surfaces, engines or propellers.

Frame (before normalisation, fuselage length 1): nose towards +z, up +y, the pilot's right-hand
side (the right wing) towards -x. Right-side parts are built and then mirrored.

A *style* (airliner, regional turboprop, business jet, fighter, light aircraft) picks ranges for
the continuous parameters, so samples stay plausible while still varying widely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .primitives import choose as _choice, uniform as _u
from .primitives import (Y, Z, Part, airfoil, box, circle, cylinder, ellipsoid, jitter, loft,
                         pick, rotation, transformed, unit, with_mirror)

WHITE_GREY = [(235, 235, 238), (245, 245, 245), (200, 202, 208), (170, 172, 178)]
LIVERY = [(200, 30, 40), (25, 60, 140), (15, 35, 90), (230, 120, 20), (30, 120, 70),
          (240, 200, 40), (120, 30, 110), (40, 150, 200)]
MILITARY = [(120, 128, 135), (95, 105, 90), (150, 155, 160), (80, 88, 96)]
DARK = [(30, 30, 35), (55, 55, 60)]
GLASS = [(40, 55, 75), (25, 30, 40)]

STYLES = ("airliner", "regional", "bizjet", "fighter", "light")
STYLE_P = (0.38, 0.17, 0.12, 0.15, 0.18)




@dataclass(frozen=True)
class Fuselage:
    """Sampled fuselage: stations ``z`` (K,) tail -> nose, radius (K,), centre height (K,)."""

    z: np.ndarray
    radius: np.ndarray
    centre_y: np.ndarray
    squash: float  # height / width of the cross-section
    nose_start: float  # z where the nose taper begins

    def at(self, z: float) -> tuple[float, float]:
        """(radius, centre y) at longitudinal position ``z``."""
        return (float(np.interp(z, self.z, self.radius)),
                float(np.interp(z, self.z, self.centre_y)))


def fuselage_shape(rng, r: float, nose_len: float, tail_len: float, nose_pointy: float,
                   tail_radius: float, upsweep: float, k: int = 28) -> Fuselage:
    """Radius and centreline along a unit-length body from z = -0.5 (tail) to +0.5 (nose).

    nose_len, tail_len: fractions of the length that taper. nose_pointy in [0, 1]: 0 gives an
    elliptic (blunt) nose, 1 a cone. upsweep in [0, 1]: how much the tail cone rises so that its
    top stays level (airliners) instead of tapering symmetrically (fighters).
    """
    t = np.concatenate([np.linspace(0.0, tail_len, k // 3, endpoint=False),
                        np.linspace(tail_len, 1.0 - nose_len, 4, endpoint=False),
                        np.linspace(1.0 - nose_len, 0.995, k - k // 3 - 4)])
    radius = np.full_like(t, r)
    tail = t < tail_len
    s = t[tail] / tail_len  # 0 at the tail end, 1 where the cylinder starts
    radius[tail] = tail_radius + (r - tail_radius) * (1.0 - (1.0 - s) ** 1.8)
    nose = t > 1.0 - nose_len
    s = (t[nose] - (1.0 - nose_len)) / nose_len  # 0 where the nose starts, 1 at the tip
    ellip = np.sqrt(np.clip(1.0 - s ** 2, 0.0, 1.0))
    cone = 1.0 - s
    radius[nose] = r * ((1.0 - nose_pointy) * ellip + nose_pointy * cone ** 0.8)
    centre = np.zeros_like(t)
    centre[tail] = upsweep * (r - radius[tail])
    centre[nose] = -0.25 * (r - radius[nose]) * (1.0 - nose_pointy)  # slight nose droop
    return Fuselage(t - 0.5, radius, centre, _u(rng, 1.0, 1.12), 0.5 - nose_len)


def fuselage_part(f: Fuselage, color, m: int = 16) -> Part:
    """Loft of elliptic sections along z, closed by a point at the nose tip."""
    c = circle(m)
    rings = np.stack([np.stack([c[:, 0] * r, y + c[:, 1] * r * f.squash, np.full(m, z)], 1)
                      for z, r, y in zip(f.z, f.radius, f.centre_y)])
    return loft(rings, color, end_apex=[0.0, f.centre_y[-1], 0.5])


def skin_strip(f: Fuselage, z0: float, z1: float, a0: float, a1: float, color, k: int = 4,
               m: int = 8) -> Part:
    """A thin band lying on the fuselage skin between z0 < z1 and angles a0 < a1 (radians,
    0 = +x, pi/2 = top): windscreens and cabin window rows. Its section is a closed crescent
    (outer arc just above the skin, inner arc just below) so it is a proper closed loft."""
    ang = np.linspace(a0, a1, m)
    rings = []
    for z in np.linspace(z0, z1, k):
        r, y = f.at(z)
        outer = np.stack([np.cos(ang) * r * 1.015, y + np.sin(ang) * r * f.squash * 1.015], 1)
        inner = np.stack([np.cos(ang) * r * 0.97, y + np.sin(ang) * r * f.squash * 0.97], 1)[::-1]
        sec = np.concatenate([outer, inner])
        rings.append(np.stack([sec[:, 0], sec[:, 1], np.full(len(sec), z)], 1))
    return loft(np.stack(rings), color)


def surface(root_le, tip_le, root_chord: float, tip_chord: float, thickness: float, color,
            m: int = 14) -> Part:
    """A lifting surface (wing, stabiliser, fin) with chord along -z from its leading edge.

    root_le, tip_le: (3,) leading-edge points; the thickness direction is perpendicular to the
    span (in the x-y plane) and to the chord, so the same routine builds wings, V-tails, fins.
    """
    root_le, tip_le = np.asarray(root_le, float), np.asarray(tip_le, float)
    span = tip_le - root_le
    span[2] = 0.0
    normal = unit(np.cross(unit(span), Z))
    af = airfoil(m, thickness)
    rings = [le - np.outer(af[:, 0] * c, Z) + np.outer(af[:, 1] * c, normal)
             for le, c in ((root_le, root_chord), (tip_le, tip_chord))]
    return loft(np.stack(rings), color)


def nacelle(front, length: float, radius: float, color, m: int = 14) -> list[Part]:
    """Engine pod whose intake is at ``front`` (3,), pointing +z: a barrel and a dark intake."""
    front = np.asarray(front, float)
    ts = np.array([0.0, 0.06, 0.3, 0.7, 1.0])
    rs = radius * np.array([0.88, 1.0, 1.0, 0.85, 0.6])
    c = circle(m)
    rings = np.stack([np.stack([front[0] + c[:, 0] * r, front[1] + c[:, 1] * r,
                                np.full(m, front[2] - t * length)], 1) for t, r in zip(ts, rs)])
    intake = cylinder(front + [0, 0, 0.002], front - [0, 0, 0.02], radius * 0.8, radius * 0.8,
                      (40, 40, 45), m=m)
    return [loft(rings, color), intake]


def propeller(hub, radius: float, blades: int, phase: float, color, spinner_color) -> list[Part]:
    """Spinner cone plus thin blades in the x-y plane at ``hub`` (3,), facing +z."""
    hub = np.asarray(hub, float)
    rs = radius * 0.16
    c = circle(12)
    rings = np.stack([np.stack([hub[0] + c[:, 0] * r, hub[1] + c[:, 1] * r,
                                np.full(12, hub[2] + dz)], 1)
                      for r, dz in ((rs, -rs * 0.5), (rs * 0.9, rs * 0.4))])
    parts = [loft(rings, spinner_color, end_apex=hub + [0, 0, rs * 1.6])]
    for k in range(blades):
        a = phase + 2 * np.pi * k / blades
        rot = rotation(Z, a)
        blade = box([0.0, radius * 0.55, 0.0], [radius * 0.11, radius * 0.9, radius * 0.02], color,
                    matrix=rotation(Y, 0.5))
        parts.append(transformed(blade, rot, offset=hub))
    return parts


# Per style: fuselage radius, nose length, tail-cone length, nose pointiness, tail-end radius
# (fraction of the radius), tail upsweep; then wing half-span, root chord, taper ratio, leading-
# edge sweep (deg), root leading-edge z. All lengths are fractions of the fuselage length.
FUSELAGE_RANGES = {
    "airliner": ((0.04, 0.065), (0.08, 0.15), (0.22, 0.35), (0.0, 0.35), (0.1, 0.3), (0.7, 1.0)),
    "regional": ((0.045, 0.065), (0.08, 0.15), (0.22, 0.35), (0.0, 0.35), (0.1, 0.3), (0.7, 1.0)),
    "bizjet": ((0.05, 0.07), (0.08, 0.15), (0.22, 0.35), (0.0, 0.35), (0.1, 0.3), (0.7, 1.0)),
    "fighter": ((0.04, 0.06), (0.2, 0.3), (0.12, 0.2), (0.6, 1.0), (0.55, 0.8), (0.0, 0.3)),
    "light": ((0.055, 0.08), (0.1, 0.16), (0.4, 0.55), (0.0, 0.3), (0.15, 0.3), (0.6, 1.0)),
}
WING_RANGES = {
    "airliner": ((0.42, 0.55), (0.15, 0.22), (0.22, 0.4), (24, 36), (0.02, 0.14)),
    "regional": ((0.42, 0.55), (0.09, 0.13), (0.45, 0.8), (0, 6), (0.05, 0.18)),
    "bizjet": ((0.35, 0.5), (0.14, 0.2), (0.3, 0.5), (15, 32), (-0.02, 0.1)),
    "fighter": ((0.2, 0.32), (0.32, 0.5), (0.08, 0.3), (35, 60), (0.05, 0.2)),
    "light": ((0.45, 0.62), (0.11, 0.15), (0.55, 1.0), (0, 5), (0.12, 0.24)),
}
WING_POSITIONS = {  # (options, probabilities) of the wing's vertical position
    "airliner": (("low", "mid", "high"), (0.8, 0.05, 0.15)),
    "regional": (("high", "low"), (0.65, 0.35)),
    "bizjet": (("low", "mid", "high"), (0.8, 0.05, 0.15)),
    "fighter": (("mid", "high", "low"), (0.5, 0.2, 0.3)),
    "light": (("high", "low"), (0.65, 0.35)),
}
DIHEDRAL = {"low": (2, 7), "mid": (-2, 4), "high": (-3, 2)}  # degrees
TAILS = {
    "airliner": (("conventional", "t"), (0.8, 0.2)),
    "regional": (("conventional", "t"), (0.55, 0.45)),
    "bizjet": (("t", "conventional"), (0.75, 0.25)),
    "fighter": (("twin", "single"), (0.55, 0.45)),
    "light": (("conventional", "t", "v", "twin"), (0.6, 0.15, 0.12, 0.13)),
}
ENGINES = {
    "airliner": (("under_wing",), (1.0,)),
    "regional": (("prop_wing", "rear"), (0.8, 0.2)),
    "bizjet": (("rear",), (1.0,)),
    "fighter": (("jet_tail",), (1.0,)),
    "light": (("prop_nose", "prop_wing", "none"), (0.7, 0.2, 0.1)),
}


@dataclass(frozen=True)
class Colours:
    """RGBA (4,) uint8 colour of each kind of part."""

    body: np.ndarray
    wing: np.ndarray
    accent: np.ndarray
    fin: np.ndarray
    engine: np.ndarray
    glass: np.ndarray
    prop: np.ndarray


@dataclass(frozen=True)
class Wing:
    """Right main wing: leading-edge points (3,) at root and tip, chords, vertical position."""

    root_le: np.ndarray
    tip_le: np.ndarray
    root_chord: float
    tip_chord: float
    position: str  # "low", "mid" or "high"

    def at(self, s: float) -> tuple[np.ndarray, float]:
        """Leading-edge point (3,) and chord at span fraction ``s`` in [0, 1]."""
        return (self.root_le + (self.tip_le - self.root_le) * s,
                self.root_chord + (self.tip_chord - self.root_chord) * s)


def sample_fuselage(rng, style: str) -> Fuselage:
    """Random fuselage for ``style`` (unit length along z)."""
    radius, nose, tail, pointy, tail_r, upsweep = (_u(rng, *r) for r in FUSELAGE_RANGES[style])
    return fuselage_shape(rng, radius, nose, tail, pointy, radius * tail_r, upsweep)


def sample_colours(rng, style: str) -> Colours:
    """Livery: military greys for fighters, white/grey with a coloured fin for airliners,
    anything goes for light aircraft."""
    accent = pick(LIVERY, rng)
    if style == "fighter":
        body = pick(MILITARY, rng, brightness=0.08)
        wing = jitter(body[:3], rng, brightness=0.05, hue=4)
        accent, fin, engine = wing, body, pick(DARK, rng)
    elif style == "light":
        body = pick(WHITE_GREY + LIVERY, rng)
        wing = body if rng.random() < 0.7 else accent
        fin = body if rng.random() < 0.6 else accent
        engine = pick(WHITE_GREY + LIVERY[:3], rng)
    else:
        body = pick(WHITE_GREY, rng, brightness=0.05) if rng.random() < 0.8 else pick(LIVERY, rng)
        wing = pick(WHITE_GREY[2:], rng, brightness=0.06) if rng.random() < 0.7 else body
        fin = accent if rng.random() < 0.7 else body
        engine = pick(WHITE_GREY + LIVERY[:3], rng)
    return Colours(body, wing, accent, fin, engine, pick(GLASS, rng, brightness=0.1, hue=4),
                   pick(DARK, rng))


def glazing(rng, style: str, f: Fuselage, colours: Colours) -> tuple[list[Part], list[Part]]:
    """Canopy blister (fighters, light aircraft) or windscreen band plus optional passenger
    window rows. Returns (centred parts, right-side parts to mirror)."""
    if style in ("fighter", "light"):
        zc = 0.5 - _u(rng, 0.2, 0.32)
        rz, yz = f.at(zc)
        return [ellipsoid([0.0, yz + rz * 0.75, zc], [rz * 0.6, rz * 0.55, _u(rng, 0.06, 0.1)],
                          colours.glass)], []
    nose = 0.5 - f.nose_start
    z0 = f.nose_start + nose * _u(rng, 0.15, 0.3)
    centre = [skin_strip(f, z0, z0 + nose * _u(rng, 0.18, 0.3), np.radians(_u(rng, 15, 30)),
                         np.radians(_u(rng, 150, 165)), colours.glass)]
    right = []
    if rng.random() < 0.6:
        a = np.radians(_u(rng, 8, 22))  # a narrow band on the left flank, mirrored
        right.append(skin_strip(f, -0.5 + _u(rng, 0.25, 0.32), f.nose_start - 0.02, a,
                                a + np.radians(5), colours.glass, k=2, m=3))
    return centre, right


def sample_wing(rng, style: str, f: Fuselage) -> Wing:
    """Planform, vertical position and dihedral of the right main wing."""
    half, c_root, taper, sweep_deg, z_le = (_u(rng, *r) for r in WING_RANGES[style])
    pos = _choice(rng, *WING_POSITIONS[style])
    r_w, yc_w = f.at(z_le - c_root / 2)
    y_root = yc_w + {"low": -0.6, "mid": 0.0, "high": 0.75}[pos] * r_w
    dihedral = np.radians(_u(rng, -4, 1) if style == "fighter" else _u(rng, *DIHEDRAL[pos]))
    root_le = np.array([0.0, y_root, z_le])
    tip_le = root_le + [-half, half * np.tan(dihedral), -half * np.tan(np.radians(sweep_deg))]
    return Wing(root_le, tip_le, c_root, c_root * taper, pos)


def wing_parts(rng, style: str, w: Wing, colours: Colours) -> list[Part]:
    """Right wing surface and an optional winglet."""
    thick = _u(rng, 0.04, 0.07) if style == "fighter" else _u(rng, 0.09, 0.14)
    parts = [surface(w.root_le, w.tip_le, w.root_chord, w.tip_chord, thick, colours.wing)]
    if style in ("airliner", "bizjet") and rng.random() < 0.55:
        h = abs(w.tip_le[0]) * _u(rng, 0.08, 0.14)
        top = w.tip_le + [0.0, h, -h * _u(rng, 0.5, 1.0)]
        colour = colours.accent if rng.random() < 0.5 else colours.wing
        parts.append(surface(w.tip_le - [0, 0, w.tip_chord * 0.1], top, w.tip_chord * 0.85,
                             w.tip_chord * 0.4, 0.08, colour))
    return parts


def tail_parts(rng, style: str, tail: str, f: Fuselage, half_span: float, colours: Colours
               ) -> tuple[list[Part], list[Part]]:
    """Fin(s) and stabilisers for ``tail`` in conventional / t / v / twin / single.

    Returns (centred parts, right-side parts to mirror).
    """
    centre, right = [], []
    c_fin = _u(rng, 0.14, 0.2) if style == "fighter" else _u(rng, 0.12, 0.2)
    h_fin = _u(rng, 0.1, 0.15) if style == "light" else _u(rng, 0.12, 0.2)
    fin_sweep = np.radians(_u(rng, 15, 40) if style == "light" else _u(rng, 30, 50))
    z_fin = -0.5 + 0.02 + c_fin  # root leading edge, so the trailing edge meets the tail end
    r_t, yc_t = f.at(z_fin - c_fin / 2)
    fin_root = np.array([0.0, yc_t + 0.5 * r_t, z_fin])
    fin_tip = fin_root + [0.0, h_fin, -h_fin * np.tan(fin_sweep)]
    c_fin_tip = c_fin * _u(rng, 0.35, 0.7)
    if tail in ("single", "conventional", "t"):
        centre.append(surface(fin_root, fin_tip, c_fin, c_fin_tip, 0.11, colours.fin))

    half_h = half_span * (_u(rng, 0.45, 0.7) if style == "fighter" else _u(rng, 0.3, 0.42))
    c_h = _u(rng, 0.1, 0.16) if style == "fighter" else _u(rng, 0.07, 0.12)
    swept = style in ("airliner", "bizjet", "fighter")
    h_sweep = np.radians(_u(rng, 20, 38) if swept else _u(rng, 0, 15))
    z_h = -0.5 + 0.01 + c_h
    r_h, yc_h = f.at(z_h - c_h / 2)
    h_root = np.array([0.0, yc_h + _u(rng, -0.3, 0.3) * r_h, z_h])
    h_dihedral = np.radians(_u(rng, 0, 8))
    if tail == "t":  # stabiliser on top of the fin
        c_h = max(c_fin_tip * 1.1, c_h * 0.8)
        h_root = fin_tip + [0.0, -0.004, (c_h - c_fin_tip) * 0.1]
        h_dihedral = np.radians(_u(rng, -3, 2))
    if tail == "v":  # two canted surfaces replace fin and stabiliser
        vd = np.radians(_u(rng, 30, 45))
        hv = half_h * _u(rng, 0.9, 1.2)
        tip = h_root + [-hv * np.cos(vd), hv * np.sin(vd), -hv * np.tan(h_sweep)]
        right.append(surface(h_root, tip, c_h * 1.2, c_h * 0.6, 0.1, colours.fin))
        return centre, right
    tip = h_root + [-half_h, half_h * np.tan(h_dihedral), -half_h * np.tan(h_sweep)]
    right.append(surface(h_root, tip, c_h, c_h * _u(rng, 0.4, 0.7), 0.09, colours.wing))
    if tail == "twin" and style == "light":  # end-plate fins at the stabiliser tips
        top = tip + [0.0, h_fin * 0.7, -h_fin * 0.7 * np.tan(fin_sweep)]
        right.append(surface(tip - [0, 0.3 * h_fin, 0], top, c_h * 0.9, c_h * 0.5, 0.1,
                             colours.fin))
    elif tail == "twin":  # fighter: canted fins on the rear fuselage
        cant = np.radians(_u(rng, 10, 25))
        base = np.array([-r_t * 0.7, yc_t + 0.6 * r_t, z_fin])
        top = base + [-h_fin * np.sin(cant), h_fin * np.cos(cant), -h_fin * np.tan(fin_sweep)]
        right.append(surface(base, top, c_fin, c_fin_tip, 0.08, colours.fin))
    return centre, right


def propulsion(rng, engines: str, f: Fuselage, w: Wing, colours: Colours
               ) -> tuple[list[Part], list[Part]]:
    """Engines for ``engines`` in under_wing / rear / prop_wing / prop_nose / jet_tail / none.

    Returns (centred parts, right-side parts to mirror).
    """
    centre, right = [], []
    r = float(f.radius.max())
    if engines == "under_wing":  # turbofans on pylons, 1 or 2 per side
        two = rng.random() < 0.35
        stations = [_u(rng, 0.25, 0.33), _u(rng, 0.55, 0.7)] if two else [_u(rng, 0.28, 0.4)]
        rn = r * _u(rng, 0.45, 0.75) / (1.25 if two else 1.0)
        ln = rn * _u(rng, 3.2, 4.8)
        for s in stations:
            le, _ = w.at(s)
            front = le + [0.0, -rn * _u(rng, 1.0, 1.4), ln * _u(rng, 0.3, 0.6)]
            right += nacelle(front, ln, rn, colours.engine)
            # Pylon: a thin blade from the nacelle top to the wing's lower surface.
            right.append(box([front[0], (front[1] + le[1]) / 2, front[2] - ln * 0.55],
                             [rn * 0.15, abs(le[1] - front[1]), ln * 0.7], colours.engine))
    elif engines == "rear":  # two pods on the rear fuselage with stub pylons
        rn = r * _u(rng, 0.4, 0.6)
        ln = rn * _u(rng, 3.5, 5.0)
        zf = -0.5 + _u(rng, 0.25, 0.35)
        rf, yf = f.at(zf - ln / 2)
        front = np.array([-(rf + rn * 1.3), yf + rf * _u(rng, 0.1, 0.45), zf])
        right += nacelle(front, ln, rn, colours.engine)
        right.append(box([front[0] / 2 - rf * 0.3, front[1], front[2] - ln * 0.5],
                         [abs(front[0]) - rf * 0.4, rn * 0.25, ln * 0.5], colours.engine))
    elif engines == "prop_wing":  # turboprops on the wing's leading edge
        two = rng.random() < 0.25
        stations = [_u(rng, 0.2, 0.3), _u(rng, 0.5, 0.65)] if two else [_u(rng, 0.25, 0.38)]
        rn = r * _u(rng, 0.35, 0.5)
        for s in stations:
            le, chord = w.at(s)
            ln = chord * _u(rng, 1.3, 1.8)
            front = le + [0.0, -rn * 0.2 if w.position == "high" else rn * 0.3, ln * 0.45]
            right += nacelle(front, ln, rn, colours.engine)
            right += propeller(front + [0, 0, 0.005], _u(rng, 0.09, 0.14),
                               int(rng.integers(2, 5)), _u(rng, 0, np.pi), colours.prop,
                               colours.engine)
    elif engines == "prop_nose":
        _, yn = f.at(0.5)
        centre += propeller([0.0, yn, 0.5], _u(rng, 0.1, 0.15), int(rng.integers(2, 4)),
                            _u(rng, 0, np.pi), colours.prop, pick(WHITE_GREY + LIVERY, rng))
    elif engines == "jet_tail":  # fighter: exhaust nozzle and optional side intakes
        _, yt = f.at(-0.5)
        centre.append(cylinder([0.0, yt, -0.5 + 0.01], [0.0, yt, -0.5 - 0.03],
                               f.radius[0] * 0.95, f.radius[0] * 0.8, colours.engine, m=14))
        if rng.random() < 0.7:
            zi = 0.5 - _u(rng, 0.3, 0.4)
            ri, yi = f.at(zi)
            right.append(box([-ri * 0.95, yi - ri * 0.2, zi - 0.1], [ri * 0.6, ri * 0.9, 0.22],
                             colours.body))
    return centre, right


def generate_airplane(rng: np.random.Generator) -> list[Part]:
    """Parts of one random aircraft (fuselage length 1)."""
    style = _choice(rng, STYLES, p=STYLE_P)
    f = sample_fuselage(rng, style)
    colours = sample_colours(rng, style)
    parts, right = glazing(rng, style, f, colours)
    parts.insert(0, fuselage_part(f, colours.body))

    wing = sample_wing(rng, style, f)
    right += wing_parts(rng, style, wing, colours)

    engines = _choice(rng, *ENGINES[style])
    tail = _choice(rng, *TAILS[style])
    if engines == "rear" and tail == "conventional" and rng.random() < 0.7:
        tail = "t"  # rear engines are usually paired with a T-tail
    for centre, side in (tail_parts(rng, style, tail, f, abs(wing.tip_le[0]), colours),
                         propulsion(rng, engines, f, wing, colours)):
        parts += centre
        right += side

    if style in ("airliner", "regional", "bizjet") and rng.random() < 0.4:
        # Wing-to-body fairing: a flattened pod under the wing root.
        r_w, yc_w = f.at(wing.root_le[2] - wing.root_chord / 2)
        parts.append(ellipsoid([0.0, yc_w - r_w * 0.75, wing.root_le[2] - wing.root_chord * 0.4],
                               [r_w * 0.8, r_w * 0.35, wing.root_chord * 0.9], colours.body))
    return parts + with_mirror(right)
