"""Can a run be judged without 3D or pose labels? Label-free scores on a split, per run, beside
the run's stored test Chamfer.

Self-supervised runs of one recipe differ by seed (plain chairs at 6,000 models: 3.90-5.37
Chamfer x1000 without a collapse). A user has no 3D ground truth to pick the best of several
seeds; these scores use only the images and masks, and compare runs that share the projection
settings (silhouette form, kernel, image size, affinity form). For every image of the split
(default val, which the evaluation already reads to fit its rotation):

- silhouette IoU: the predicted cloud projected at the predicted view against the input mask
  (thresholded at 0.5), and the training's mask BCE and affinity terms (forward: the projected
  silhouette outside the mask, weighted by its squared distance to it in the intended form;
  backward: the mask where no point reaches);
- image error: the training's colour term at that view;
- pose cycle: the cloud rendered at K random views, posed again by the pose net; the median
  angle between the view rendered from and the view predicted (the network's own frame);
- shape cycle: Chamfer x1000 between the cloud and the reconstruction of those renders.

Then, over the runs given, the Spearman rank correlation of each score with the test Chamfer
stored in each run's metrics.json (written by ``ssl3d evaluate``), and what picking the better of
two runs by each score would give, over every pair.

    python benchmarks/label_free_score.py DATA_DIR CATEGORY RUN_DIR [RUN_DIR ...] [--split val]
        [--views 3] [--batch-size 100]
"""

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch

from pose_vs_chamfer import spearman  # benchmarks/ is the script's own folder (ties: mean ranks)
from ssl3d import camera
from ssl3d.data.dataset import load_split
from ssl3d.evaluation.evaluate import find_checkpoint, silhouette_iou
from ssl3d.ops import chamfer_distance
from ssl3d.training.checkpoint import load_models
from ssl3d.training.losses import image_errors, project_views, silhouette_losses

# (name, lower is better?)
SCORES = [("iou", False), ("bce", True), ("aff_fwd", True), ("aff_bwd", True), ("image", True),
          ("pose_cycle_deg", True), ("shape_cycle", True)]


def angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angles between the viewing directions of viewpoints a, b: (P, 2) -> (P,) degrees."""
    return torch.rad2deg(camera.angle_between(camera.viewing_direction(a), camera.viewing_direction(b)))


@torch.no_grad()
def scores(run: str, data: str, category: str, split: str, views: int, batch: int) -> dict:
    recon, pose, cfg = load_models(find_checkpoint(run))
    recon.float().eval()
    pose.float().eval()
    vs = load_split(data, category, split, cfg.image_size, progress=False)
    g = torch.Generator().manual_seed(0)
    out = {k: [] for k, _ in SCORES}
    s = cfg.image_size
    for i in range(0, len(vs), batch):
        x, m = vs.images[i:i + batch], vs.masks[i:i + batch]
        b = len(x)
        xyz, rgb = recon(x)
        v = pose(x)  # (B, 2)
        imgs, sils = project_views(xyz, rgb, v.unsqueeze(1), cfg)  # (B, 1, 3, S, S), (B, 1, S, S)
        out["iou"].append(silhouette_iou(sils[:, 0], m))  # as ssl3d evaluate's label-free score
        bce, fwd, bwd = silhouette_losses(sils[:, 0], m, cfg)
        out["bce"].append(bce)
        out["aff_fwd"].append(fwd)
        out["aff_bwd"].append(bwd)
        out["image"].append(image_errors(x, imgs)[:, 0])
        rand = camera.sample_viewpoints(b * views, generator=g).view(b, views, 2)
        r_imgs, _ = project_views(xyz, rgb, rand, cfg)  # (B, K, 3, S, S)
        flat = r_imgs.reshape(-1, 3, s, s)  # (B K, 3, S, S)
        out["pose_cycle_deg"].append(angle_deg(pose(flat), rand.reshape(-1, 2)))
        r_xyz, _ = recon(flat)  # (B K, N, 3)
        own = xyz.unsqueeze(1).expand(b, views, *xyz.shape[1:]).reshape(r_xyz.shape)
        out["shape_cycle"].append(1000 * chamfer_distance(r_xyz, own, reduction="none"))
    res = {k: float(torch.cat(v).median() if k == "pose_cycle_deg" else torch.cat(v).mean())
           for k, v in out.items()}
    metrics = Path(find_checkpoint(run)).parent / "metrics.json"
    entry = json.loads(metrics.read_text()).get(category, {}).get("test") if metrics.is_file() else None
    res["test_chamfer"] = entry["chamfer_x1000"] if entry else float("nan")
    return res


def best_of_pairs(score: np.ndarray, chamfer: np.ndarray, lower_is_better: bool) -> tuple:
    """Over every pair of runs, the mean test Chamfer of the run the score picks, of a run picked
    at random and of the better one in hindsight. score, chamfer: (R,)."""
    picked, either, best = [], [], []
    for i, j in itertools.combinations(range(len(score)), 2):
        first = score[i] <= score[j] if lower_is_better else score[i] >= score[j]
        picked.append(chamfer[i] if first else chamfer[j])
        either.append((chamfer[i] + chamfer[j]) / 2)
        best.append(min(chamfer[i], chamfer[j]))
    return float(np.mean(picked)), float(np.mean(either)), float(np.mean(best))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--split", default="val")
    ap.add_argument("--views", type=int, default=3, help="random views rendered per image")
    ap.add_argument("--batch-size", type=int, default=100)
    args = ap.parse_args()
    rows = []
    print(f"label-free scores on {args.category} {args.split}; test Chamfer x1000 from metrics.json")
    print(f"{'run':28s} {'test CD':>8s} " + " ".join(f"{k:>14s}" for k, _ in SCORES))
    for run in args.runs:
        r = scores(run, args.data, args.category, args.split, args.views, args.batch_size)
        rows.append(r)
        print(f"{Path(run).name:28s} {r['test_chamfer']:8.2f} "
              + " ".join(f"{r[k]:14.4f}" for k, _ in SCORES), flush=True)
    y = np.array([r["test_chamfer"] for r in rows])
    if len(rows) >= 3 and np.isfinite(y).all():
        print("Spearman rank correlation with the test Chamfer (a good score: positive if lower "
              "is better, negative for IoU):")
        print(" ".join(f"{k} {spearman(np.array([r[k] for r in rows]), y):+.2f}" for k, _ in SCORES))
        print("Best of two runs, over every pair of them: mean test Chamfer of the run each "
              "score picks (a random pick / the better in hindsight: "
              f"{best_of_pairs(y, y, True)[1]:.3f} / {best_of_pairs(y, y, True)[2]:.3f}):")
        print(" ".join(f"{k} {best_of_pairs(np.array([r[k] for r in rows]), y, low)[0]:.3f}"
                       for k, low in SCORES))


if __name__ == "__main__":
    main()
