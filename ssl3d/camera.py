"""The one camera model of ssl3d (METHOD section 2).

Every piece that projects (the dataset renderer, the differentiable projection, pose supervision
and pose evaluation) goes through this module, so a cloud projected at a stored viewpoint lands
on the stored silhouette.

Conventions
-----------
* World frame = the mesh / ground-truth-cloud frame, y up (ShapeNet's OBJ frame).
* A viewpoint is ``(azimuth, elevation)`` in radians plus a distance (default 2). The camera sits
  at ``d * (cos az cos el, sin el, -sin az cos el)`` looking at the origin with no roll. This is
  exactly the ShapeNet renderings' ``view.txt`` convention expressed in the OBJ frame (METHOD
  section 11), so converting a ``view.txt`` row is only degrees -> radians.
* Camera frame is OpenCV-like: x right, y down, z forward (depth > 0 in front of the camera).
* Pixel ``(row i, column j)`` covers ``[j, j+1) x [i, i+1)`` in continuous image coordinates, so its
  centre is ``(j + 0.5, i + 0.5)``; the principal point is ``(W/2, H/2)``; the focal length is
  120 px at 64 px and scales linearly with the image size.
"""

from __future__ import annotations

import math

import torch

FOCAL_AT_64 = 120.0
"""Focal length in pixels for a 64-pixel-wide image (METHOD section 2)."""
DEFAULT_DISTANCE = 2.0
"""Camera distance from the origin."""
AZIMUTH_RANGE = (-math.pi, math.pi)
"""Training azimuths are drawn uniformly from this range (radians)."""
ELEVATION_RANGE = (math.radians(-20.0), math.radians(40.0))
"""Training elevations are drawn uniformly from this range (radians)."""


def focal_length(image_size: int) -> float:
    """Focal length in pixels for a square image of ``image_size`` pixels."""
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    return FOCAL_AT_64 * image_size / 64.0


def camera_position(azimuth: torch.Tensor, elevation: torch.Tensor,
                    distance: float | torch.Tensor = DEFAULT_DISTANCE) -> torch.Tensor:
    """World position of the camera.

    azimuth, elevation: (...) radians. Returns (..., 3).
    """
    ca, sa = torch.cos(azimuth), torch.sin(azimuth)
    ce, se = torch.cos(elevation), torch.sin(elevation)
    position = torch.stack([ca * ce, se, -sa * ce], dim=-1)
    # A float scales as a Python number: a tensor made from it would sit on the CPU (and making
    # one on the GPU is a host copy, which a CUDA graph being captured refuses).
    if isinstance(distance, torch.Tensor):
        return position * distance.unsqueeze(-1)
    return position * distance


def world_to_camera_rotation(azimuth: torch.Tensor, elevation: torch.Tensor) -> torch.Tensor:
    """Rotation R taking world directions to camera directions (rows: right, down, forward).

    Closed form of a look-at camera with world up +y, so it is smooth in (azimuth, elevation) and
    the pose network receives exact gradients. azimuth, elevation: (...). Returns (..., 3, 3).
    """
    ca, sa = torch.cos(azimuth), torch.sin(azimuth)
    ce, se = torch.cos(elevation), torch.sin(elevation)
    zero = torch.zeros_like(ca)
    right = torch.stack([-sa, zero, -ca], dim=-1)
    down = torch.stack([ca * se, -ce, -sa * se], dim=-1)
    forward = torch.stack([-ca * ce, -se, sa * ce], dim=-1)
    return torch.stack([right, down, forward], dim=-2)


def world_to_camera(points: torch.Tensor, viewpoint: torch.Tensor,
                    distance: float | torch.Tensor = DEFAULT_DISTANCE) -> torch.Tensor:
    """Transform world points into the camera frame of each viewpoint.

    points: (B, N, 3); viewpoint: (B, 2) = (azimuth, elevation) in radians.
    Returns (B, N, 3) camera coordinates (x right, y down, z = depth).
    """
    _check_points_viewpoint(points, viewpoint)
    rot = world_to_camera_rotation(viewpoint[:, 0], viewpoint[:, 1])  # (B, 3, 3)
    cam = points @ rot.transpose(1, 2)  # (B, N, 3): R X
    # R (X - C) = R X + (0, 0, d) because the camera looks at the origin along its z axis.
    if isinstance(distance, torch.Tensor):  # (B,) or scalar tensor
        d = distance.to(points).reshape(-1, 1, 1)
    else:  # a Python number: no host-to-device copy (keeps CUDA-graph capture possible)
        d = float(distance)
    return torch.cat([cam[..., :2], cam[..., 2:] + d], dim=-1)


def project(points: torch.Tensor, viewpoint: torch.Tensor, image_size: int,
            distance: float | torch.Tensor = DEFAULT_DISTANCE) -> tuple[torch.Tensor, torch.Tensor]:
    """Perspective projection of world points to continuous pixel coordinates.

    points: (B, N, 3); viewpoint: (B, 2) radians; image_size: H = W in pixels.
    Returns ``uv`` (B, N, 2) as (column, row) in pixels, pixel centres at +0.5, and ``depth`` (B, N).
    """
    cam = world_to_camera(points, viewpoint, distance)
    depth = cam[..., 2]
    f = focal_length(image_size)
    c = image_size / 2.0
    uv = cam[..., :2] / depth.unsqueeze(-1) * f + c
    return uv, depth


def unproject_rays(image_size: int, viewpoint: torch.Tensor,
                   distance: float = DEFAULT_DISTANCE, supersample: int = 1
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays through pixel (sub-)centres, for ray-casting renderers.

    viewpoint: (2,) radians. Returns ``origins`` (3,) and ``directions`` (H*s, W*s, 3), unit length,
    for an image of ``image_size * supersample`` pixels per side (row-major).
    """
    n = image_size * supersample
    coords = (torch.arange(n, dtype=torch.float64) + 0.5) / supersample  # pixel units at image_size
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    f = focal_length(image_size)
    c = image_size / 2.0
    dirs_cam = torch.stack([(u - c) / f, (v - c) / f, torch.ones_like(u)], dim=-1)
    vp = viewpoint.to(torch.float64)
    rot = world_to_camera_rotation(vp[0], vp[1])
    dirs = dirs_cam @ rot  # camera -> world is R^T, applied to row vectors as d @ R
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    return camera_position(vp[0], vp[1], distance), dirs


def sample_viewpoints(n: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Draw ``n`` viewpoints uniformly in the paper's ranges. Returns (n, 2) radians."""
    r = torch.rand(n, 2, generator=generator, device=device, dtype=dtype)
    lo = torch.tensor([AZIMUTH_RANGE[0], ELEVATION_RANGE[0]], device=device, dtype=dtype)
    hi = torch.tensor([AZIMUTH_RANGE[1], ELEVATION_RANGE[1]], device=device, dtype=dtype)
    return lo + r * (hi - lo)


def viewpoint_from_view_txt(row) -> tuple[float, float, float]:
    """Convert one ``view.txt`` row (azimuth, elevation, tilt, distance in degrees / units) to
    ``(azimuth_rad, elevation_rad, distance)`` in this module's convention.

    The renderings' convention, once moved from Blender's z-up world to the OBJ frame, is the one
    used here, so only the units change. A non-zero tilt is not supported and raises.
    """
    values = [float(x) for x in row]
    if len(values) < 2:
        raise ValueError(f"a view.txt row needs at least azimuth and elevation, got {row!r}")
    tilt = values[2] if len(values) > 2 else 0.0
    if abs(tilt) > 1e-6:
        raise ValueError(f"view.txt tilt must be 0 (cameras have no roll), got {tilt}")
    distance = values[3] if len(values) > 3 else DEFAULT_DISTANCE
    return math.radians(values[0]), math.radians(values[1]), distance


def viewpoint_to_view_txt(azimuth: float, elevation: float,
                          distance: float = DEFAULT_DISTANCE) -> str:
    """One ``view.txt`` line (degrees) for a viewpoint in radians; inverse of
    :func:`viewpoint_from_view_txt`. Azimuth is wrapped to [-180, 180)."""
    az = (math.degrees(azimuth) + 180.0) % 360.0 - 180.0
    return f"{az:.6f} {math.degrees(elevation):.6f} 0 {distance:.6f}"


def wrap_angle(angle: torch.Tensor) -> torch.Tensor:
    """Wrap radians to [-pi, pi)."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def mirror_viewpoint(viewpoint: torch.Tensor) -> torch.Tensor:
    """The viewpoint from which the scene mirrored across the plane x = 0 looks like the
    horizontally flipped image of the original scene seen from ``viewpoint``: (pi - azimuth,
    elevation), azimuth wrapped to [-pi, pi). viewpoint: (..., 2). Returns (..., 2)."""
    return torch.stack([wrap_angle(math.pi - viewpoint[..., 0]), viewpoint[..., 1]], -1)


def viewing_direction(viewpoint: torch.Tensor) -> torch.Tensor:
    """Unit vector from the origin to the camera. viewpoint: (..., 2). Returns (..., 3)."""
    return camera_position(viewpoint[..., 0], viewpoint[..., 1], 1.0)


def viewpoint_from_direction(direction: torch.Tensor) -> torch.Tensor:
    """The (azimuth, elevation) in radians whose :func:`viewing_direction` is ``direction``
    (..., 3), which need not be unit length but must not be zero; azimuth in [-pi, pi],
    elevation in [-pi/2, pi/2]. Returns (..., 2)."""
    if direction.shape[-1] != 3:
        raise ValueError(f"direction must be (..., 3), got {tuple(direction.shape)}")
    d = direction / direction.norm(dim=-1, keepdim=True)
    # camera_position: (cos az cos el, sin el, -sin az cos el)
    return torch.stack([torch.atan2(-d[..., 2], d[..., 0]), torch.asin(d[..., 1].clamp(-1, 1))], -1)


def angular_error(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Angle in radians between two viewpoints' viewing directions (the cameras have no roll, so
    this is the geodesic distance between the camera rotations). pred, true: (..., 2)."""
    return angle_between(viewing_direction(pred), viewing_direction(true))


def angle_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle in radians between 3D vectors (..., 3); atan2 stays accurate near 0 and pi, where
    arccos of a rounded cosine does not."""
    return torch.atan2(torch.linalg.cross(a, b).norm(dim=-1), (a * b).sum(-1))


def rotation_from_euler(azimuth: torch.Tensor, elevation: torch.Tensor,
                        tilt: torch.Tensor) -> torch.Tensor:
    """A general rotation of the world (used to align a learned canonical frame with the ground
    truth): rotate about y by azimuth, then about z by elevation, then about x by tilt.
    Each argument (...). Returns (..., 3, 3) applied as ``points @ R.transpose(-1, -2)``."""
    def axis_rot(angle: torch.Tensor, i: int, j: int) -> torch.Tensor:
        c, s = torch.cos(angle), torch.sin(angle)
        eye = torch.eye(3, dtype=angle.dtype, device=angle.device).expand(*angle.shape, 3, 3)
        r = eye.clone()
        r[..., i, i] = c
        r[..., j, j] = c
        r[..., i, j] = -s
        r[..., j, i] = s
        return r
    return axis_rot(tilt, 1, 2) @ axis_rot(elevation, 0, 1) @ axis_rot(azimuth, 2, 0)


def _check_points_viewpoint(points: torch.Tensor, viewpoint: torch.Tensor) -> None:
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must have shape (B, N, 3), got {tuple(points.shape)}")
    if viewpoint.ndim != 2 or viewpoint.shape[-1] != 2 or viewpoint.shape[0] != points.shape[0]:
        raise ValueError(f"viewpoint must have shape (B, 2) with B = {points.shape[0]}, "
                         f"got {tuple(viewpoint.shape)}")
