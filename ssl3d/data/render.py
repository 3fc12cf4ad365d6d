"""CPU ray-cast renderer (embree through trimesh) and the dataset writer behind ``ssl3d render``.

On-disk layout
--------------
::

    DATA_DIR/<category>/<model_id>/render_{0..V-1}.png      RGBA uint8, H x W
    DATA_DIR/<category>/<model_id>/view.txt                 V lines "azimuth elevation 0 distance"
    DATA_DIR/<category>/<model_id>/pcl_1024_fps_trimesh.npy (1024, 3) float32 ground truth
    DATA_DIR/<category>/<model_id>/pcl_16384.npy            (16384, 3) float32 dense samples
    DATA_DIR/<category>/<model_id>/source.json              the mesh file it came from: path, SHA-1, size, mtime
    DATA_DIR/splits/<category>_{train,val,test}.txt         "<model_id>_<view index>" per line
    DATA_DIR/<category>/render_report.json                  what this run did, and its settings

* ``render_i.png``: alpha is the anti-aliased silhouette (fraction of the s x s sub-pixel rays
  that hit the object). RGB is the shaded colour composited over black, i.e. premultiplied by
  alpha: black where there is no object, darkened at anti-aliased edges (divide by alpha for the
  straight colour). Shading is Lambertian, two-sided (a normal is flipped to face the camera, so
  the inside of thin open surfaces is lit), ``AMBIENT + DIFFUSE * max(0, n . l)`` with a
  directional light from the upper left behind the camera (:data:`LIGHT_DIRECTION_CAMERA`),
  applied to the mesh's stored (sRGB) colours.
* ``view.txt``: azimuth, elevation, tilt (always 0), distance, degrees, in the ShapeNet
  renderings' convention (see :mod:`ssl3d.camera`); line i is the view of ``render_i.png``.
  Viewpoints are drawn with :func:`ssl3d.camera.sample_viewpoints` from a seed derived from
  (seed, model_id), and images are rendered at exactly the rounded values written to the file.
* Clouds: 16384 area-weighted surface samples (``pcl_16384.npy``), and 1024 of them chosen by
  farthest-point sampling (``pcl_1024_fps_trimesh.npy``), both in the normalised mesh frame (the
  frame the camera looks at: y up, bounding-box centre at the origin, unit bounding-box diagonal).
* Splits: over every complete model in the category folder (this run's and earlier runs'),
  shuffled with ``seed``, cut by ``split_fractions``; each model gets one seeded view index.

This matches the paper's ShapeNet data (``ShapeNet_rendered/<synset>/<model>/render_i.png`` +
``view.txt``, ``ShapeNet_v1/<synset>/<model>/pcl_1024_fps_trimesh.npy``), so one reader serves both.

Each model is written into a hidden temporary folder (``<category>/.tmp-<model_id>-<pid>``) and
renamed into place, so an interrupted run never leaves half a model; stale temporary folders are
removed at the next run, and models already complete are skipped (resuming). The report records
the settings before the first model is rendered (so a rerun after an interruption is checked
against them too). Each model keeps the SHA-1 of the mesh file it came from (``source.json``,
written with the model): a complete model whose file has changed since is rendered again (the
mesh file itself: an .obj's .mtl and textures are not checked). Do not run two renders into the
same category folder at once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch
import trimesh
from PIL import Image

from ssl3d import camera
from ssl3d.data.mesh_io import UP_AXES, ColoredMesh, MeshLoadError, find_meshes, load_mesh
from ssl3d.data.sampling import farthest_point_sampling, sample_surface

DEFAULT_SUPERSAMPLE = 3
"""Sub-pixel rays per side: 3 x 3 rays per pixel for the anti-aliased alpha and colour."""
AMBIENT = 0.35
"""Ambient share of the shading."""
DIFFUSE = 0.65
"""Lambertian share of the shading."""
LIGHT_DIRECTION_CAMERA = tuple(np.array([-0.4, -0.6, -1.0]) / np.linalg.norm([-0.4, -0.6, -1.0]))
"""Unit vector towards the light in the camera frame (x right, y down, z forward): left, up and
behind the camera, so faces turned to the camera are lit and the shape reads in 3D."""
N_DENSE = 16384
"""Dense surface samples per model."""
N_GT = 1024
"""Farthest-point-sampled ground-truth points per model."""
MAX_RAYS_PER_CALL = 1 << 21
"""Views are traced in groups of at most this many rays, bounding memory at large sizes."""
CLOUD_GT_NAME = "pcl_1024_fps_trimesh.npy"
CLOUD_DENSE_NAME = "pcl_16384.npy"
VIEW_FILE = "view.txt"
REPORT_NAME = "render_report.json"
SOURCE_NAME = "source.json"
SPLITS = ("train", "val", "test")
_TMP_PREFIX = ".tmp-"


# ---------------------------------------------------------------------------------------------
# Rendering


def ray_backend() -> str:
    """Name of the ray tracer trimesh will use here: 'embree' or 'triangle' (pure numpy, slow)."""
    return "embree" if trimesh.ray.has_embree else "triangle"


def _intersector(mesh: trimesh.Trimesh):
    """An embree ray intersector for ``mesh``; falls back to trimesh's numpy one with a warning."""
    if trimesh.ray.has_embree:
        from trimesh.ray.ray_pyembree import RayMeshIntersector
        return RayMeshIntersector(mesh)
    warnings.warn("embree (embreex) is not available: rendering with trimesh's pure-numpy ray "
                  "tracer, which is orders of magnitude slower", RuntimeWarning, stacklevel=3)
    from trimesh.ray.ray_triangle import RayMeshIntersector
    return RayMeshIntersector(mesh)


def _barycentric(tri: np.ndarray, origins: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Barycentric weights of ray hits on their triangles (Moller-Trumbore).

    tri: (n, 3, 3) hit triangles; origins, dirs: (n, 3) rays. Returns (n, 3) weights >= 0 summing
    to 1 (clipped, since embree's float32 hit can sit a hair outside the float64 triangle).
    """
    e1 = tri[:, 1] - tri[:, 0]
    e2 = tri[:, 2] - tri[:, 0]
    p = np.cross(dirs, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > 1e-300
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = origins - tri[:, 0]
    b1 = np.einsum("ij,ij->i", s, p) * inv
    b2 = np.einsum("ij,ij->i", dirs, np.cross(s, e1)) * inv
    w = np.stack([1.0 - b1 - b2, b1, b2], axis=1)
    w = np.where(ok[:, None], np.clip(w, 0.0, None), 1.0 / 3.0)  # grazing hit: use the centroid
    return w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)


def _sample_texture(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Nearest-texel lookup with wrap-around. image: (h, w, 3) uint8, row 0 at v = 1;
    uv: (n, 2). Returns (n, 3) float32 in [0, 1]."""
    h, w = image.shape[:2]
    col = np.floor(np.mod(uv[:, 0], 1.0) * w).astype(np.int64).clip(0, w - 1)
    row = np.floor(np.mod(1.0 - uv[:, 1], 1.0) * h).astype(np.int64).clip(0, h - 1)
    return image[row, col].astype(np.float32) / 255.0


def _hit_colors(mesh: ColoredMesh, tri_idx: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Surface colour at ray hits. tri_idx: (n,) face indices; bary: (n, 3). Returns (n, 3)."""
    color = np.einsum("nk,nkc->nc", bary.astype(np.float32), mesh.corner_colors[tri_idx])
    tex = mesh.face_texture[tri_idx]
    for t in np.unique(tex[tex >= 0]):
        sel = np.flatnonzero(tex == t)
        uv = np.einsum("nk,nkc->nc", bary[sel].astype(np.float32), mesh.corner_uv[tri_idx[sel]])
        color[sel] *= _sample_texture(mesh.textures[t], uv)
    return color


@functools.lru_cache(maxsize=8)
def _camera_frame_rays(image_size: int, supersample: int) -> np.ndarray:
    """Unit ray directions of :func:`ssl3d.camera.unproject_rays` expressed in the camera frame,
    (H*s * W*s, 3) float64, read-only. They do not depend on the viewpoint, so they are computed
    once (from one unproject_rays call) and only rotated per view."""
    ref = torch.zeros(2, dtype=torch.float64)
    _, dirs = camera.unproject_rays(image_size, ref, camera.DEFAULT_DISTANCE, supersample)
    rot = camera.world_to_camera_rotation(ref[0], ref[1]).numpy()
    out = dirs.reshape(-1, 3).numpy() @ rot.T  # world -> camera is R d (row vectors: d @ R^T)
    out.setflags(write=False)
    return out


def view_rays(image_size: int, viewpoints, supersample: int = 1,
              distance: float = camera.DEFAULT_DISTANCE) -> tuple[np.ndarray, np.ndarray]:
    """The rays of :func:`ssl3d.camera.unproject_rays` for several views at once.

    viewpoints: (V, 2) radians. Returns origins (V, 3) and unit directions (V, H*s * W*s, 3),
    float64, rows in unproject_rays' (row-major) pixel order. Equal to calling unproject_rays per
    view (tested), at the cost of one 3 x 3 rotation per view.
    """
    vps = torch.as_tensor(np.asarray(viewpoints, dtype=np.float64)).reshape(-1, 2)
    rot = camera.world_to_camera_rotation(vps[:, 0], vps[:, 1]).numpy()  # (V, 3, 3)
    dirs = _camera_frame_rays(image_size, supersample) @ rot  # camera -> world: d @ R
    origins = camera.camera_position(vps[:, 0], vps[:, 1], distance).numpy()
    return origins, dirs


def render_views(mesh: ColoredMesh, viewpoints, image_size: int = 64,
                 supersample: int = DEFAULT_SUPERSAMPLE,
                 distance: float = camera.DEFAULT_DISTANCE) -> np.ndarray:
    """Ray-cast RGBA images of a mesh from several viewpoints.

    mesh: a :class:`ColoredMesh` in the world frame; viewpoints: (V, 2) (azimuth, elevation)
    radians (array or tensor); image_size: H = W; supersample: s, rays per pixel side.
    Returns (V, H, W, 4) uint8: RGB premultiplied by alpha (black background), alpha = coverage.
    All views' rays go to embree together (in groups of at most :data:`MAX_RAYS_PER_CALL`).
    """
    if image_size < 1 or supersample < 1:
        raise ValueError(f"image_size and supersample must be >= 1, "
                         f"got {image_size}, {supersample}")
    vps = np.asarray(viewpoints, dtype=np.float64).reshape(-1, 2)
    n_views = len(vps)
    per_view = (image_size * supersample) ** 2
    intersector = _intersector(mesh.to_trimesh())
    triangles = mesh.triangles  # (F, 3, 3)
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    # Light direction of each view in the world frame: camera-to-world is R^T (rows of R are the
    # camera axes), so l_world = l_cam @ R.
    t = torch.as_tensor(vps)
    rot = camera.world_to_camera_rotation(t[:, 0], t[:, 1]).numpy()  # (V, 3, 3)
    lights = np.einsum("c,vcw->vw", np.asarray(LIGHT_DIRECTION_CAMERA), rot)  # (V, 3)

    out = np.zeros((n_views, image_size, image_size, 4), dtype=np.uint8)
    group = max(1, MAX_RAYS_PER_CALL // per_view)
    for v0 in range(0, n_views, group):
        v1 = min(n_views, v0 + group)
        cam_origins, dirs = view_rays(image_size, vps[v0:v1], supersample, distance)
        dirs = dirs.reshape(-1, 3)
        view_of_ray = np.repeat(np.arange(v1 - v0), per_view)
        origins = cam_origins[view_of_ray]
        # One embree query for all rays of the group: index of the first triangle hit, -1 = miss.
        first = intersector.intersects_first(origins, dirs)
        ray_idx = np.flatnonzero(first >= 0)
        tri_idx = first[ray_idx]

        d_hit = dirs[ray_idx]
        bary = _barycentric(triangles[tri_idx], origins[ray_idx], d_hit)
        color = _hit_colors(mesh, tri_idx, bary)
        n = normals[tri_idx]
        # Two-sided: turn each normal towards the camera before the Lambert term.
        n = np.where((np.einsum("ij,ij->i", n, d_hit) > 0.0)[:, None], -n, n)
        cos = np.einsum("ij,ij->i", n, lights[v0 + view_of_ray[ray_idx]]).clip(0.0, None)
        shade = (AMBIENT + DIFFUSE * cos).astype(np.float32)

        buf = np.zeros(((v1 - v0) * per_view, 4), dtype=np.float32)
        buf[ray_idx, :3] = color * shade[:, None]
        buf[ray_idx, 3] = 1.0
        # Box filter of the s x s sub-pixels: premultiplied colour and coverage alpha.
        buf = buf.reshape(v1 - v0, image_size, supersample, image_size, supersample, 4)
        img = buf.mean(axis=(2, 4))
        out[v0:v1] = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return out


# ---------------------------------------------------------------------------------------------
# One model


def model_seed(seed: int, model_id: str, stream: str) -> int:
    """A 63-bit seed from (seed, model_id, stream), stable across processes and runs (unlike
    ``hash``), so a resumed or parallel run draws exactly the same views and samples."""
    digest = hashlib.sha256(f"{int(seed)}\0{model_id}\0{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def model_viewpoints(seed: int, model_id: str, views: int,
                     distance: float = camera.DEFAULT_DISTANCE) -> tuple[np.ndarray, list[str]]:
    """The seeded viewpoints of one model: (V, 2) radians and the V ``view.txt`` lines.

    The radians are read back from the written lines, so images match ``view.txt`` exactly.
    """
    gen = torch.Generator().manual_seed(model_seed(seed, model_id, "views"))
    vps = camera.sample_viewpoints(views, gen, dtype=torch.float64)
    lines = [camera.viewpoint_to_view_txt(float(a), float(e), distance) for a, e in vps]
    back = np.array([camera.viewpoint_from_view_txt(line.split())[:2] for line in lines])
    return back.reshape(views, 2), lines


def is_complete(model_dir: str | os.PathLike, views: int, image_size: int | None = None) -> bool:
    """Whether ``model_dir`` holds all V renders, a V-line view.txt and both clouds (and, if
    ``image_size`` is given, render_0.png has that size)."""
    d = Path(model_dir)
    names = [f"render_{i}.png" for i in range(views)] + [VIEW_FILE, CLOUD_GT_NAME, CLOUD_DENSE_NAME]
    if not all((d / name).is_file() for name in names):
        return False
    try:
        lines = [ln for ln in (d / VIEW_FILE).read_text().splitlines() if ln.strip()]
        if len(lines) != views:
            return False
        if image_size is not None:
            with Image.open(d / "render_0.png") as im:  # reads the header only
                if im.size != (image_size, image_size):
                    return False
    except (OSError, ValueError):
        return False
    return True


def ground_truth_clouds(mesh, rng: np.random.Generator, n_dense: int = N_DENSE
                        ) -> tuple[np.ndarray, np.ndarray]:
    """A mesh's dense surface samples (n_dense, 3) and their farthest-point reduction to the
    ground-truth cloud (N_GT, 3), both float32 (METHOD section 9)."""
    dense = sample_surface(mesh, n_dense, rng).astype(np.float32)
    return dense, dense[farthest_point_sampling(dense, N_GT, start=0)]


def render_model(mesh_path: str | os.PathLike, model_dir: str | os.PathLike, model_id: str,
                 views: int = 10, image_size: int = 64, supersample: int = DEFAULT_SUPERSAMPLE,
                 seed: int = 0, normalize: bool = True, up_axis: str = "y") -> None:
    """Render one mesh file into ``model_dir`` (the layout in this module's docstring).

    Writes into a temporary sibling folder and renames it into place, replacing an incomplete
    ``model_dir``. Raises :class:`~ssl3d.data.mesh_io.MeshLoadError` for unusable meshes.
    """
    model_dir = Path(model_dir)
    source = file_record(mesh_path)  # before reading it: what the render is made from
    mesh = load_mesh(mesh_path, normalize=normalize, up_axis=up_axis)
    vps, lines = model_viewpoints(seed, model_id, views)
    images = render_views(mesh, vps, image_size, supersample)
    dense, gt = ground_truth_clouds(mesh, np.random.default_rng(model_seed(seed, model_id, "surface")))

    tmp = model_dir.parent / f"{_TMP_PREFIX}{model_id}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(img, "RGBA").save(tmp / f"render_{i}.png")
    (tmp / VIEW_FILE).write_text("\n".join(lines) + "\n")
    np.save(tmp / CLOUD_DENSE_NAME, dense)
    np.save(tmp / CLOUD_GT_NAME, gt)
    (tmp / SOURCE_NAME).write_text(json.dumps(source) + "\n")
    if model_dir.exists():  # an incomplete leftover (e.g. other settings) or a changed mesh's: replace it whole
        shutil.rmtree(model_dir)
    os.replace(tmp, model_dir)
    return source


def file_digest(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes: whether a mesh changed since its model was rendered."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_record(path: str | os.PathLike) -> dict:
    """What a model's ``source.json`` keeps of its mesh file: absolute path, SHA-1, size and
    modification time (which spare the hash when they are unchanged)."""
    path = Path(path).resolve()
    st = path.stat()
    return {"file": str(path), "sha1": file_digest(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_source(model_dir: Path) -> dict | None:
    """A model's ``source.json``, or None (a model rendered before it was kept, or unreadable)."""
    try:
        rec = json.loads((model_dir / SOURCE_NAME).read_text())
        return rec if {"file", "sha1", "size", "mtime_ns"} <= set(rec) else None
    except (OSError, ValueError, TypeError):
        return None


def file_unchanged(path: Path, rec: dict) -> bool:
    """Whether ``path`` holds what ``rec`` (a :func:`file_record`) recorded: the same size and
    modification time, or else the same SHA-1 (a copy, or a file touched but not changed)."""
    st = path.stat()
    return st.st_size == rec["size"] and (st.st_mtime_ns == rec["mtime_ns"]
                                          or file_digest(path) == rec["sha1"])


def _render_task(task: dict) -> dict:
    """Pool worker: render one model and report; never raises."""
    start = time.perf_counter()
    result = {"model_id": task["model_id"], "file": task["file"], "replaces": task.get("replaces", False)}
    try:
        source = render_model(task["file"], task["model_dir"], task["model_id"], **task["settings"])
    except MeshLoadError as exc:
        return {**result, "status": "skipped", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one bad model must not stop the dataset
        tb = traceback.format_exc(limit=3)
        return {**result, "status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                "traceback": tb}
    return {**result, "status": "rendered", "sha1": source["sha1"],
            "seconds": round(time.perf_counter() - start, 3)}


def _worker_init() -> None:
    # The workers already split the cores between them; torch threads would oversubscribe.
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the parent reports skips; trimesh chatter is noise here


# ---------------------------------------------------------------------------------------------
# Dataset


def write_splits(category_dir: str | os.PathLike, splits_dir: str | os.PathLike, category: str,
                 views: int, image_size: int | None = None, seed: int = 0,
                 split_fractions=(0.8, 0.1, 0.1)) -> dict[str, int]:
    """Write ``<category>_{train,val,test}.txt`` over every complete model in ``category_dir``.

    Models are sorted, shuffled with ``seed`` and cut by ``split_fractions`` (train and val sizes
    rounded, test takes the rest); each model gets one view index in [0, views) from the same rng.
    Returns the number of models per split.
    """
    category_dir = Path(category_dir)
    models = sorted(p.name for p in category_dir.iterdir()
                    if p.is_dir() and not p.name.startswith(".")
                    and is_complete(p, views, image_size))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(models))
    view_idx = rng.integers(0, views, size=len(models))
    n_train = int(round(split_fractions[0] * len(models)))
    n_val = min(len(models) - n_train, int(round(split_fractions[1] * len(models))))
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val),
              "test": (n_train + n_val, len(models))}
    splits_dir = Path(splits_dir)
    splits_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, (a, b) in bounds.items():
        rows = sorted(f"{models[i]}_{view_idx[i]}" for i in order[a:b])
        text = "".join(r + "\n" for r in rows)
        path = splits_dir / f"{category}_{name}.txt"
        if not path.is_file() or path.read_text() != text:  # leave unchanged files untouched
            path.write_text(text)
        counts[name] = b - a
    return counts


def _check_settings(category, views, image_size, supersample, workers, split_fractions, up_axis):
    if not category or category in (".", "..", "splits") or any(c in category for c in "/\\\0") \
            or category.startswith("."):
        raise ValueError(f"invalid category name {category!r}: use a plain folder name")
    for name, value in (("views", views), ("image_size", image_size),
                        ("supersample", supersample), ("workers", workers)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if up_axis not in UP_AXES:
        raise ValueError(f"up_axis must be one of {UP_AXES}, got {up_axis!r}")
    fr = tuple(float(f) for f in split_fractions)
    if len(fr) != 3 or min(fr) < 0 or not math.isclose(sum(fr), 1.0, abs_tol=1e-6):
        raise ValueError(f"split_fractions must be 3 non-negative numbers summing to 1, got {fr}")


# Settings a finished model's files do not show (its view count and image size they do): a
# model made with other ones would be kept as if it were this run's.
_UNSEEN_SETTINGS = ("seed", "normalize", "up_axis", "supersample")


def _check_earlier_settings(category_dir: Path, settings: dict) -> dict[str, str] | None:
    """Refuse to add to a category folder rendered with other unseen settings (its report says).
    Returns the mesh file each model of the earlier report came from, or None when there is no
    readable report."""
    report = category_dir / REPORT_NAME
    if not report.is_file():
        return None
    try:
        earlier = json.loads(report.read_text())
        before = earlier["settings"]
        made_from = {r["model_id"]: r["file"] for r in earlier["rendered"] + earlier["skipped"]
                     if r.get("reason", "already rendered") == "already rendered"}
    except (ValueError, KeyError, TypeError):
        return None  # an unreadable report is replaced
    changed = [f"{k} {before[k]} -> {settings[k]}"
               for k in _UNSEEN_SETTINGS if k in before and before[k] != settings[k]]
    if changed:
        raise ValueError(f"{category_dir} was rendered with other settings ({'; '.join(changed)}), "
                         f"which its finished models would keep; render into another folder, or "
                         f"delete {category_dir}")
    return made_from


def render_dataset(mesh_dir: str | os.PathLike, data_dir: str | os.PathLike, category: str,
                   views: int = 10, image_size: int = 64,
                   supersample: int = DEFAULT_SUPERSAMPLE, workers: int = 1, seed: int = 0,
                   split_fractions=(0.8, 0.1, 0.1), normalize: bool = True,
                   up_axis: str = "y", progress: bool = True) -> dict:
    """Render every mesh under ``mesh_dir`` into ``data_dir`` (layout: module docstring).

    Models are rendered in parallel over ``workers`` processes; models already complete are
    skipped, unusable meshes are skipped with a warning naming the file, unexpected errors are
    recorded as failures, so one model never stops the run. Splits are written at the end over
    all complete models of the category. Returns the report, also written to
    ``DATA_DIR/<category>/render_report.json``.

    Raises FileNotFoundError / ValueError when ``mesh_dir`` is missing or holds no meshes, and
    ValueError for invalid settings.
    """
    _check_settings(category, views, image_size, supersample, workers, split_fractions, up_axis)
    start = time.perf_counter()
    models = find_meshes(mesh_dir)
    category_dir = Path(data_dir) / category
    category_dir.mkdir(parents=True, exist_ok=True)
    for stale in category_dir.glob(_TMP_PREFIX + "*"):  # left by an interrupted run
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)

    settings = {"views": views, "image_size": image_size, "supersample": supersample,
                "seed": seed, "normalize": normalize, "up_axis": up_axis}
    made_from = _check_earlier_settings(category_dir, settings)
    report_path = category_dir / REPORT_NAME
    if made_from is None:  # the settings on record before any model is: an interrupted first
        # run is checked on its rerun too (the full report replaces this one at the end)
        _write_report(report_path, {"category": category, "mesh_dir": str(mesh_dir),
                                    "data_dir": str(data_dir), "settings": settings,
                                    "unfinished": True, "rendered": [], "skipped": [], "failed": []})
        made_from = {}
    skipped: list[dict] = []
    rendered: list[dict] = []
    failed: list[dict] = []
    candidates: dict[str, list[Path]] = {}  # model id -> its files, in the order found
    for model_id, path in models:
        candidates.setdefault(model_id, []).append(Path(path))
    tasks, tried = [], set()  # tried: the files a task has been made for
    spare: dict[str, list[Path]] = {}  # a model id's other files, tried if its file is unusable
    kept: dict[str, str] = {}  # model id -> the file a kept model came from

    def task(model_id: str, file: Path, replaces: bool = False) -> dict:
        tried.add(str(file))
        return {"model_id": model_id, "file": str(file), "model_dir": str(category_dir / model_id),
                "settings": settings, "replaces": replaces}

    for model_id, files in candidates.items():
        model_dir = category_dir / model_id
        if not is_complete(model_dir, views, image_size):
            tasks.append(task(model_id, files[0]))
            spare[model_id] = files[1:]
            continue
        source = read_source(model_dir)
        if source is None:  # made before sources were kept: named by the earlier report's file
            kept[model_id] = made_from.get(model_id, str(files[0]))
            skipped.append({"model_id": model_id, "file": kept[model_id], "reason": "already rendered"})
            continue
        # The file it came from, if this run found it (the mesh folder may have moved: then the
        # first file of its id, kept if it holds the same bytes).
        same = [f for f in files if f.resolve() == Path(source["file"])]
        file = same[0] if same else files[0]
        if file_unchanged(file, source):
            kept[model_id] = str(file)
            skipped.append({"model_id": model_id, "file": str(file), "sha1": source["sha1"],
                            "reason": "already rendered"})
            continue
        warnings.warn(f"{file} changed since model {model_id} was rendered from it: rendering "
                      f"it again", RuntimeWarning, stacklevel=2)
        tasks.append(task(model_id, file, replaces=True))
        spare[model_id] = [f for f in files if f != file]

    retry: list[dict] = []  # the next file of a model id whose file could not be rendered

    def collect(result: dict) -> None:
        status, replaces = result.pop("status"), result.pop("replaces")
        model_id = result["model_id"]
        if status == "rendered":
            rendered.append(result)
            return
        (skipped if status == "skipped" else failed).append(result)
        warnings.warn(f"{status} {result['file']}: {result['reason']}", RuntimeWarning,
                      stacklevel=3)
        if replaces:  # the model's render is of a mesh that is no longer there
            shutil.rmtree(category_dir / model_id, ignore_errors=True)
            warnings.warn(f"removed model {model_id}: it was rendered from an earlier {result['file']}",
                          RuntimeWarning, stacklevel=3)
        if spare.get(model_id):
            retry.append(task(model_id, spare[model_id].pop(0), replaces=False))

    from tqdm.auto import tqdm
    bar = tqdm(total=len(tasks), unit="model", desc=f"render {category}", disable=not progress)
    try:
        if workers == 1 or len(tasks) <= 1:
            for t in tasks:
                collect(_render_task(t))
                bar.update()
        else:
            # spawn: a fresh interpreter per worker, safe whatever threads torch / embree started
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(min(workers, len(tasks)), initializer=_worker_init) as pool:
                for result in pool.imap_unordered(_render_task, tasks, chunksize=1):
                    collect(result)
                    bar.update()
        while retry:  # rare: a model id whose file was unusable, tried with its next one
            collect(_render_task(retry.pop(0)))
    finally:
        bar.close()
    used = {**kept, **{r["model_id"]: r["file"] for r in rendered}}
    for model_id, files in candidates.items():  # the files neither used nor tried: duplicates
        taken = used.get(model_id)
        for file in (str(f) for f in files):
            if file == taken or file in tried or taken is None:
                continue
            reason = f"duplicate model id (already taken by {taken})"
            skipped.append({"model_id": model_id, "file": file, "reason": reason})
            warnings.warn(f"skipped {file}: {reason}; rename one of them to keep both",
                          RuntimeWarning, stacklevel=2)

    split_counts = write_splits(category_dir, Path(data_dir) / "splits", category, views,
                                image_size, seed, split_fractions)
    elapsed = time.perf_counter() - start
    rendered.sort(key=lambda r: r["model_id"])
    report = {
        "category": category,
        "mesh_dir": str(mesh_dir),
        "data_dir": str(data_dir),
        "settings": {**settings, "workers": workers, "split_fractions": list(split_fractions),
                     "distance": camera.DEFAULT_DISTANCE, "ambient": AMBIENT, "diffuse": DIFFUSE,
                     "points_dense": N_DENSE, "points_gt": N_GT, "ray_backend": ray_backend()},
        "counts": {"rendered": len(rendered), "skipped": len(skipped), "failed": len(failed),
                   "models_in_dataset": sum(split_counts.values())},
        "splits": split_counts,
        "seconds": round(elapsed, 2),
        "rendered": rendered,
        "skipped": skipped,
        "failed": failed,
    }
    _write_report(report_path, report)
    return report


def _write_report(path: Path, report: dict) -> None:
    """The report, written whole or not at all (a temporary file renamed into place)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, path)
