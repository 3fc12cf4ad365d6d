"""``ssl3d view INPUT [INPUT ...] [--out FILE.html] [--limit N] [--open]``: an offline interactive
viewer (one HTML file, no network fetches) of point clouds: ``ssl3d predict``'s .ply files, a run
folder's predictions (``predictions_*.npz`` from ``ssl3d evaluate``, turned by the rotation it
fitted into the data's frame, y up), or meshes (.obj, .glb, .gltf, .off, or a .ply with faces),
which are shown as points drawn on their surface.
"""

from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path

import numpy as np

MESH_POINTS = 4096
"""Points drawn on a mesh's surface for the viewer."""
MAX_POINTS = 20000
"""Larger clouds are shown as a seeded random subset of this many (the page redraws every point
on every drag)."""
GREY = 0.6
"""Colour of points that carry none."""


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help=".ply point clouds (ssl3d predict), predictions_*.npz files or run folders "
                             "(ssl3d evaluate), mesh files, or folders of any of these")
    parser.add_argument("--out", default=None,
                        help="the HTML file to write, or a folder for view.html (default: view.html "
                             "in the first input's folder, or in it when it is a folder)")
    parser.add_argument("--limit", type=int, default=50,
                        help="at most this many clouds from each predictions file, in its order "
                             "(default: %(default)s; each adds about 40 kB)")
    parser.add_argument("--open", action="store_true",
                        help="open the viewer in the default web browser")


def cloud_from_ply(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(xyz (N, 3), rgb (N, 3) in [0, 1]) of a .ply point cloud, or None when it holds faces (a
    mesh). Raises ValueError naming the file when it cannot be read."""
    import trimesh

    try:
        loaded = trimesh.load(str(path), process=False)
    except Exception as exc:  # noqa: BLE001 - any loader failure means "unreadable"
        raise ValueError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(loaded, trimesh.PointCloud):
        return None
    xyz = np.asarray(loaded.vertices, dtype=np.float32)
    colors = np.asarray(loaded.colors)
    rgb = colors[:, :3] / 255.0 if len(colors) == len(xyz) else np.full_like(xyz, GREY)
    return xyz, rgb


def cloud_from_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Points drawn on a mesh's surface (seeded), each with its face's mean corner colour
    (textures are not read), in the frame ``ssl3d render`` uses (y up, unit diagonal)."""
    from ssl3d.data.mesh_io import load_mesh
    from ssl3d.data.sampling import sample_surface

    mesh = load_mesh(path)
    xyz, faces = sample_surface(mesh, MESH_POINTS, np.random.default_rng(0), return_faces=True)
    return xyz.astype(np.float32), mesh.corner_colors[faces].mean(1)


def clouds_from_predictions(path: Path, limit: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The first ``limit`` clouds of an ``ssl3d evaluate`` predictions file, each named by its
    model id, with its pose error where the file has one, turned by the file's rotation (the
    one evaluate fitted) into the data's frame when it has one."""
    try:
        with np.load(path) as d:
            missing = {"xyz", "rgb", "models"} - set(d.files)
            if missing:
                raise ValueError(f"not an ssl3d predictions file (no {', '.join(sorted(missing))})")
            xyz, rgb, models = d["xyz"][:limit], d["rgb"][:limit], d["models"][:limit]
            err = d["pose_error_deg"][:limit] if "pose_error_deg" in d.files else None
            rot = d["rotation"] if "rotation" in d.files else None
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: say which
        raise ValueError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
    n = len(xyz)
    if xyz.ndim != 3 or xyz.shape[-1] != 3 or xyz.shape[1] == 0 or rgb.shape != xyz.shape \
            or len(models) != n or (err is not None and len(err) != n) \
            or (rot is not None and rot.shape != (3, 3)):
        raise ValueError(f"{path}: not an ssl3d predictions file (xyz {xyz.shape}, rgb {rgb.shape}, "
                         f"{len(models)} model ids)")
    if n == 0:
        raise ValueError(f"{path}: holds no clouds")
    if not np.isfinite(xyz).all():
        raise ValueError(f"{path}: holds non-finite coordinates (NaN or inf)")
    if rot is not None:  # into the data's frame, as evaluate scores them
        import torch

        from ssl3d.evaluation.metrics import rotate
        as_tensor = lambda a: torch.from_numpy(np.asarray(a, np.float32))  # noqa: E731
        xyz = rotate(as_tensor(xyz), as_tensor(rot)).numpy()
    key = path.stem.removeprefix("predictions_")
    return [(f"{key}: {m}" + (f" (pose error {err[i]:.0f} deg)" if err is not None else ""),
             xyz[i], rgb[i]) for i, m in enumerate(models)]


def collect(inputs: list[str], limit: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, xyz, rgb) of every cloud the inputs name; a folder gives its predictions files,
    .ply files and meshes, in name order."""
    from ssl3d.data.mesh_io import MESH_EXTENSIONS

    clouds = []
    for given in inputs:
        path = Path(given)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        files = [path]
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and (
                (p.suffix.lower() == ".npz" and p.name.startswith("predictions_"))
                or p.suffix.lower() in MESH_EXTENSIONS))
            if not files:
                raise ValueError(f"{path}: no predictions_*.npz, .ply or mesh files in this folder")
        # With several inputs each name says which it came from (two seeds' folders hold the same ids).
        several = len(inputs) > 1
        label = f"{given}: " if several else ""
        for f in files:
            suffix = f.suffix.lower()
            if suffix == ".npz":
                clouds += [(label + name, x, c) for name, x, c in clouds_from_predictions(f, limit)]
                continue
            if suffix not in MESH_EXTENSIONS:
                raise ValueError(f"{f}: not a .ply, mesh or predictions .npz file")
            cloud = cloud_from_ply(f) if suffix == ".ply" else None
            xyz, rgb = cloud if cloud is not None else cloud_from_mesh(f)
            if len(xyz) == 0:
                raise ValueError(f"{f}: holds no points")
            if not np.isfinite(xyz).all():
                raise ValueError(f"{f}: holds non-finite coordinates (NaN or inf)")
            clouds.append(((f"{given}: {f.name}" if path.is_dir() else given) if several else f.name,
                           xyz, rgb))
    out = []
    for name, xyz, rgb in clouds:
        if len(xyz) > MAX_POINTS:
            keep = np.sort(np.random.default_rng(0).choice(len(xyz), MAX_POINTS, replace=False))
            name, xyz, rgb = f"{name} ({MAX_POINTS} of {len(xyz)} points)", xyz[keep], rgb[keep]
        out.append((name, fit_to_view(np.asarray(xyz, dtype=np.float32)), rgb))
    return out


def fit_to_view(xyz: np.ndarray) -> np.ndarray:
    """A cloud (N, 3) centred on its bounding box and scaled to a unit box diagonal, the size the
    viewer's camera frames (a cloud from another tool may be in millimetres)."""
    lo, hi = xyz.min(0), xyz.max(0)
    diagonal = float(np.linalg.norm(hi - lo))
    return (xyz - (lo + hi) / 2) / (diagonal if diagonal > 0 else 1.0)


def default_out(first: Path) -> Path:
    """view.html in the first input's folder (in it, when it is a folder)."""
    return (first if first.is_dir() else first.parent) / "view.html"


def run(args: argparse.Namespace) -> int:
    from ssl3d.evaluation.visualize import write_viewer

    if args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    clouds = collect(args.inputs, args.limit)
    out = Path(args.out) if args.out else default_out(Path(args.inputs[0]))
    if out.is_dir():
        out = out / "view.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_viewer(out, clouds)
    print(f"{out}: {len(clouds)} cloud{'s' * (len(clouds) != 1)} (open it in a web browser; "
          f"it needs no network)")
    if args.open:
        webbrowser.open(out.resolve().as_uri())
    return 0
