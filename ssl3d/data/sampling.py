"""Ground-truth point clouds: area-weighted surface sampling and farthest-point sampling
(METHOD section 9: 1024 points per shape, surface samples reduced by FPS)."""

from __future__ import annotations

import numpy as np

from ssl3d.data.mesh_io import face_areas


def sample_surface(mesh, n: int, rng: np.random.Generator,
                   return_faces: bool = False):
    """Draw ``n`` points uniformly over a mesh's surface (area-weighted).

    mesh: anything with ``vertices`` (V, 3) and ``faces`` (F, 3) (a trimesh or a
    :class:`~ssl3d.data.mesh_io.ColoredMesh`); rng: numpy Generator, so the draw is reproducible.
    Returns (n, 3) float64 points, plus the (n,) face index of each point if ``return_faces``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    areas = face_areas(mesh)
    total = areas.sum()
    if not np.isfinite(total) or total <= 0.0:
        raise ValueError("cannot sample a surface with zero (or non-finite) area")
    cdf = np.cumsum(areas)
    # searchsorted on the cumulative area is an O(n log F) weighted choice; the clip guards the
    # last bin against rounding in the cumulative sum.
    faces = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(cdf) - 1)
    tri = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)[faces]]  # (n, 3, 3)
    r1, r2 = rng.random(n), rng.random(n)
    # Reflecting (r1, r2) with r1 + r2 > 1 back into the triangle keeps the density uniform.
    flip = r1 + r2 > 1.0
    r1[flip], r2[flip] = 1.0 - r1[flip], 1.0 - r2[flip]
    points = (tri[:, 0] + r1[:, None] * (tri[:, 1] - tri[:, 0])
              + r2[:, None] * (tri[:, 2] - tri[:, 0]))
    return (points, faces) if return_faces else points


def farthest_point_sampling(points: np.ndarray, k: int, start: int = 0) -> np.ndarray:
    """Greedy farthest-point sampling.

    points: (N, 3) array; k: number to keep (1 <= k <= N); start: index of the first pick.
    Returns (k,) int64 indices into ``points`` (take ``points[idx]`` for the reduced cloud), in
    pick order. O(N * k) time, O(N) memory: one distance update per pick.
    """
    pts = np.asarray(points)
    # float32 input stays float32 (half the memory traffic per pass); anything else is float64.
    pts = pts.astype(np.float32 if pts.dtype == np.float32 else np.float64, copy=False)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {pts.shape}")
    n = len(pts)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if not 0 <= start < n:
        raise ValueError(f"start must be in [0, {n}), got {start}")
    # Per-coordinate contiguous columns and preallocated buffers: each pick is a handful of
    # in-place passes over N floats, ~10x faster than broadcasting (N, 3) temporaries.
    cols = [np.ascontiguousarray(pts[:, j]) for j in range(3)]
    nearest = np.full(n, np.inf, dtype=pts.dtype)  # squared distance to the nearest pick so far
    dist = np.empty(n, dtype=pts.dtype)
    tmp = np.empty(n, dtype=pts.dtype)
    idx = np.empty(k, dtype=np.int64)
    cur = idx[0] = start
    for i in range(k):
        if i:
            cur = idx[i] = int(np.argmax(nearest))
        np.subtract(cols[0], cols[0][cur], out=dist)
        np.multiply(dist, dist, out=dist)
        for c in cols[1:]:
            np.subtract(c, c[cur], out=tmp)
            np.multiply(tmp, tmp, out=tmp)
            np.add(dist, tmp, out=dist)
        np.minimum(nearest, dist, out=nearest)
    return idx
