"""Does the silhouette loss keep the truth? Start a free cloud AT a model's ground-truth cloud and
fit it to that model's own true masks, from all its rendered views at their true viewpoints, with
the training losses of a config (mask BCE, affinity, point-to-silhouette, stray-point and symmetry
terms). A loss whose optimum is the true shape leaves the cloud where it is; one that is biased
moves it. Prints, per silhouette form, the Chamfer x1000 to the truth (METHOD section 9
normalisation) and the cloud's bounding-box extents as the fit goes.

    python benchmarks/silhouette_fit.py MODEL_DIR [--steps 300] [--forms tanh_sum max] [--sigma2 0.4]

MODEL_DIR is one model of an ssl3d dataset (for example DATA/airplane/airplane_00000 after
``bash benchmarks/make_procedural.sh DATA 12 2 24 airplane``: 24 views per model).
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from ssl3d.data.dataset import load_cloud, load_view, read_views
from ssl3d.ops import chamfer_distance, normalize_unit_box
from ssl3d.training import losses as L
from ssl3d.training.config import PRESETS, TrainConfig


def extents(xyz: torch.Tensor) -> list[float]:
    return [round(float(e), 3) for e in xyz.max(0).values - xyz.min(0).values]


def fit(model_dir: Path, cfg: TrainConfig, steps: int, lr: float) -> None:
    views = torch.from_numpy(read_views(model_dir))  # (V, 2)
    masks = torch.from_numpy(np.stack([load_view(model_dir, i, cfg.image_size)[1]
                                       for i in range(len(views))]))  # (V, S, S)
    gt = torch.from_numpy(load_cloud(model_dir))  # (N, 3)
    xyz = gt.clone().requires_grad_(True)
    rgb = torch.zeros(1, *gt.shape)
    opt = torch.optim.Adam([xyz], lr=lr)
    start = time.time()
    for step in range(steps + 1):
        _, sils = L.project_views(xyz.unsqueeze(0), rgb, views.unsqueeze(0), cfg)  # (1, V, S, S)
        bce, fwd, bwd = L.silhouette_terms(sils[0], masks, cfg)
        clouds = xyz.unsqueeze(0).expand(len(views), -1, -1)
        loss = (cfg.w_mask * bce + cfg.w_affinity * (fwd + bwd)
                + cfg.w_point_silhouette * L.point_silhouette_term(clouds, views, masks, cfg.image_size))
        if cfg.w_outlier > 0:
            loss = loss + cfg.w_outlier * L.stray_point_term(xyz.unsqueeze(0), cfg.outlier_k,
                                                             cfg.outlier_threshold)
        if cfg.w_symmetry > 0:
            loss = loss + cfg.w_symmetry * L.symmetry_term(xyz[None], cfg.symmetry_axis)
        if step % max(1, steps // 4) == 0 or step == steps:
            with torch.no_grad():
                cd = 1000 * chamfer_distance(normalize_unit_box(xyz[None]), normalize_unit_box(gt[None]))
                area = float((sils[0] > 0.5).float().sum() / (masks > 0.5).float().sum())
            print(f"  step {step:4d}: Chamfer x1000 to the truth {float(cd):.2f}, mask BCE "
                  f"{float(bce):.4f}, silhouette area / mask area {area:.2f}, extents "
                  f"{extents(xyz.detach())} (truth {extents(gt)}), {time.time() - start:.0f} s",
                  flush=True)
        if step < steps:
            opt.zero_grad()
            loss.backward()
            opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--forms", nargs="+", default=["tanh_sum", "max"])
    parser.add_argument("--sigma2", type=float, default=None, help="kernel variance (default: the preset's)")
    args = parser.parse_args()
    torch.manual_seed(0)
    for form in args.forms:
        over = {"silhouette_form": form}
        if args.sigma2 is not None:
            over["sigma2"] = args.sigma2
        print(f"{args.model_dir} silhouette_form={form} (preset ssl3d):", flush=True)
        fit(args.model_dir, TrainConfig(**{**PRESETS["ssl3d"], **over}), args.steps, args.lr)


if __name__ == "__main__":
    main()
