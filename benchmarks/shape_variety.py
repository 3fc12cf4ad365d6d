"""How much do a category's shapes vary, in the units of the results tables? Splits a set of
ground-truth clouds in half at random, fits the mean shape (the evaluation's baseline) to one half
and scores it on the other, beside a retrieval oracle: each held-out cloud's nearest cloud of the
fitting half. The mean shape's Chamfer is what a method that ignores its input gets; the oracle's
shows how far below it a method that recognises the shape could go with that many references.

    python benchmarks/shape_variety.py CATEGORY [--data DATA_DIR] [--meshes MESH_DIR] [--n 400]

--data reads DATA_DIR/CATEGORY/*/pcl_1024_fps_trimesh.npy (at most --n of them); --meshes samples
8,192 surface points from each mesh of MESH_DIR/CATEGORY (for example ../shared/meshes) and
reduces them to 1,024 by farthest-point sampling (``ssl3d render`` starts from 16,384); an
unreadable mesh is skipped with a message. Chamfer x1000 with METHOD section 9's normalisation.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from ssl3d.data.mesh_io import MeshLoadError, find_meshes, load_mesh
from ssl3d.data.render import CLOUD_GT_NAME, ground_truth_clouds
from ssl3d.evaluation.metrics import mean_shape
from ssl3d.ops import chamfer_distance, normalize_unit_box


def mesh_clouds(mesh_dir: Path, n: int) -> torch.Tensor:
    clouds = []
    for _, path in find_meshes(mesh_dir)[:n]:
        try:
            mesh = load_mesh(path)
        except MeshLoadError as err:
            print(f"skipped: {err}")
            continue
        clouds.append(ground_truth_clouds(mesh, np.random.default_rng(0), n_dense=8192)[1])
    if not clouds:
        raise SystemExit(f"no usable meshes under {mesh_dir}")
    return torch.from_numpy(np.stack(clouds))


def data_clouds(category_dir: Path, n: int) -> torch.Tensor:
    files = sorted(category_dir.glob(f"*/{CLOUD_GT_NAME}"))[:n]
    if not files:
        raise SystemExit(f"no {CLOUD_GT_NAME} under {category_dir}")
    return torch.from_numpy(np.stack([np.load(f) for f in files]))


def variety(clouds: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """(mean shape, nearest-reference oracle) Chamfer x1000 on a random half of clouds (M, P, 3)."""
    if len(clouds) < 4:
        raise SystemExit(f"need at least 4 shapes to split in half, got {len(clouds)}")
    order = torch.randperm(len(clouds), generator=torch.Generator().manual_seed(seed))
    fit, held = clouds[order[: len(clouds) // 2]], normalize_unit_box(clouds[order[len(clouds) // 2:]].float())
    mean = normalize_unit_box(mean_shape(fit, steps=150, seed=seed)[None])[0]
    refs = normalize_unit_box(fit.float())
    with torch.no_grad():
        to_mean = chamfer_distance(mean.expand(len(held), -1, -1), held, "none")
        oracle = torch.stack([chamfer_distance(c.expand(len(refs), -1, -1), refs, "none").min()
                              for c in held])
    return 1000 * float(to_mean.mean()), 1000 * float(oracle.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("category")
    ap.add_argument("--data", type=Path, help="an ssl3d dataset folder")
    ap.add_argument("--meshes", type=Path, help="a folder of per-category mesh folders")
    ap.add_argument("--n", type=int, default=400, help="at most this many shapes per source")
    args = ap.parse_args()
    if not (args.data or args.meshes):
        ap.error("give --data, --meshes or both")
    sources = []
    try:
        if args.data:
            sources.append((str(args.data), data_clouds(args.data / args.category, args.n)))
        if args.meshes:
            sources.append((str(args.meshes), mesh_clouds(args.meshes / args.category, args.n)))
    except FileNotFoundError as err:
        raise SystemExit(str(err))
    for name, clouds in sources:
        m, o = variety(clouds)
        print(f"{args.category} {name}: {len(clouds)} shapes; mean shape {m:.2f}, "
              f"nearest of {len(clouds) // 2} references {o:.2f} (Chamfer x1000)", flush=True)


if __name__ == "__main__":
    main()
