"""How fast ``ssl3d render`` is on this machine.

Runs ``python benchmarks/render_speed.py [--size 64] [--views 10] [--supersample 3]`` and prints:

1. per mesh (a procedural chair from ``ssl3d.data.synth`` or, without it, a small primitive
   assembly; the largest mesh in /work/shared/meshes when present): views per second of the ray
   caster alone, and seconds per model for the whole per-model job (load, render V views, 16384
   surface samples, FPS to 1024, write files), single process;
2. a real ``render_dataset`` run with 2 workers over a folder of synthetic models, and the
   projected time for 5,000 models x 10 views from it (target: under an hour on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from ssl3d.data.mesh_io import load_mesh  # noqa: E402
from ssl3d.data.render import (DEFAULT_SUPERSAMPLE, model_viewpoints, ray_backend,  # noqa: E402
                               render_dataset, render_model, render_views)

REAL_MESHES = Path("/work/shared/meshes")
TARGET_MODELS = 5000


def synthetic_mesh(rng: np.random.Generator):
    """A procedural chair when ssl3d.data.synth is installed, else a table-like box assembly."""
    try:
        from ssl3d.data.synth import generate
        return generate("chair", rng), "synth chair"
    except ImportError:
        import trimesh
        parts = [trimesh.creation.box((1.0, 0.08, 1.0)).apply_translation((0, 0.5, 0))]
        for x in (-0.45, 0.45):
            for z in (-0.45, 0.45):
                leg = trimesh.creation.cylinder(0.04, 1.0, sections=16).apply_translation((x, 0, z))
                parts.append(leg)
        mesh = trimesh.util.concatenate(parts)
        mesh.visual.face_colors = (rng.random(3) * 255).astype(np.uint8).tolist() + [255]
        return mesh, "primitive table"


def largest_real_mesh() -> Path | None:
    files = sorted(REAL_MESHES.glob("*/*.glb")) if REAL_MESHES.is_dir() else []
    return max(files, key=lambda f: f.stat().st_size) if files else None


def time_mesh(path: Path, views: int, size: int, supersample: int, repeats: int = 3) -> dict:
    """Best-of-``repeats`` timings for one mesh file, single process."""
    mesh = load_mesh(path)
    vps, _ = model_viewpoints(0, path.stem, views)
    render_best = min(_timed(lambda: render_views(mesh, vps, size, supersample))
                      for _ in range(repeats))
    with tempfile.TemporaryDirectory() as tmp:
        model_best = min(_timed(lambda: render_model(path, Path(tmp) / "m", path.stem, views,
                                                     size, supersample))
                         for _ in range(repeats))
    return {"faces": len(mesh.faces), "views_per_s": views / render_best,
            "model_s": model_best}


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--supersample", type=int, default=DEFAULT_SUPERSAMPLE)
    parser.add_argument("--models", type=int, default=24,
                        help="synthetic models for the 2-worker dataset run")
    args = parser.parse_args()

    print(f"ray backend: {ray_backend()}; {os.cpu_count()} CPU cores; size {args.size}, "
          f"{args.views} views, supersample {args.supersample}")
    work = Path(tempfile.mkdtemp(prefix="ssl3d_render_bench_"))
    try:
        rng = np.random.default_rng(0)
        mesh_dir = work / "meshes"
        mesh_dir.mkdir()
        label = None
        for i in range(args.models):
            tm, label = synthetic_mesh(rng)
            tm.export(mesh_dir / f"synth_{i:03d}.glb")

        rows = [(label, time_mesh(mesh_dir / "synth_000.glb", args.views, args.size,
                                  args.supersample))]
        big = largest_real_mesh()
        if big is not None:
            rows.append((f"largest real: {big.stem}", time_mesh(big, args.views, args.size,
                                                                args.supersample)))
        print()
        print(f"{'mesh':<50} {'faces':>7} {'views/s (ray cast)':>19} {'s/model (all)':>14} "
              f"{'views/s (all)':>14}")
        for name, r in rows:
            print(f"{name:<50} {r['faces']:>7d} {r['views_per_s']:>19.1f} {r['model_s']:>14.3f} "
                  f"{args.views / r['model_s']:>14.1f}")

        print()
        for workers in (1, 2):
            out = work / f"data{workers}"
            report = render_dataset(mesh_dir, out, "bench", views=args.views,
                                    image_size=args.size, supersample=args.supersample,
                                    workers=workers, progress=False)
            n = report["counts"]["rendered"]
            secs = report["seconds"]
            # Steady state: each worker's own wall time per model (so CPU contention counts),
            # without the one-off pool start-up (spawned interpreters importing torch).
            per_model = float(np.mean([r["seconds"] for r in report["rendered"]]))
            steady = per_model * TARGET_MODELS / workers
            print(f"render_dataset, {workers} worker(s), {n} {label}s: {secs:.1f} s wall "
                  f"({n * args.views / secs:.1f} views/s incl. start-up); {per_model:.3f} s/model "
                  f"per worker -> {TARGET_MODELS} models x {args.views} views: "
                  f"{steady / 60:.1f} min (+ start-up)")
        if big is not None:
            per_model = rows[-1][1]["model_s"]
            print(f"worst case, every model like the largest real mesh, 2 workers: "
                  f"{per_model * TARGET_MODELS / 2 / 60:.1f} min for {TARGET_MODELS} models")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
