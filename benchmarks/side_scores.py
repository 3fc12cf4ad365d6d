"""Could the loss tell a reversed airplane's right side from its wrong one? For each test image,
the run's cloud is seen from the predicted view and from that view turned half a turn about the
vertical (azimuth + pi); each term that could pick a pose hypothesis scores both, and the script
prints, per group of clouds (as ``flip_analysis.py``: kept; reversed with the view more than 90 deg
off; reversed with the view right), how often the turned view scores better, and the quantiles of
the selection score's relative gap between the two sides (turned / predicted - 1), which is what
a hypothesis temperature (``--hypothesis-temperature``) has to span.

For a kept cloud the predicted view is right, so a useful term rarely prefers the turned one; for
a reversed cloud seen from the wrong side, the turned view is the right one. The selection score
training uses is ``hypothesis_scores`` (image and mask); the affinity terms and the point-to-
silhouette term are candidates to add to it. Reads RUN/predictions_test.npz (``ssl3d evaluate``:
the clouds, colours and views the run predicted) and the run's config from its checkpoint.

    python benchmarks/side_scores.py DATA_DIR CATEGORY RUN_DIR
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from ssl3d.evaluation.evaluate import find_checkpoint
from ssl3d.training.checkpoint import load_checkpoint
from ssl3d.training.config import TrainConfig
from ssl3d.training.losses import (hypothesis_scores, point_silhouette_losses, project_views,
                                   silhouette_losses)

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import chamfer_turned, load_run, reversal_groups  # noqa: E402


@torch.no_grad()
def side_terms(cfg: TrainConfig, xyz: torch.Tensor, rgb: torch.Tensor, view: torch.Tensor,
               images: torch.Tensor, masks: torch.Tensor) -> dict:
    """Each term for the predicted view and the turned one. xyz, rgb: (M, N, 3) the predicted
    clouds in the network's frame; view: (M, 2) the predicted (azimuth, elevation) in radians;
    images: (M, 3, S, S); masks: (M, S, S). Returns {term: (M, 2) array}, column 0 the predicted
    view, column 1 the turned one."""
    turned = torch.stack([view[:, 0] + torch.pi, view[:, 1]], 1)
    views = torch.stack([view, turned], 1)  # (M, 2, 2)
    imgs, sils = project_views(xyz, rgb, views, cfg)  # (M, 2, 3, S, S), (M, 2, S, S)
    m, s = masks.shape[0], masks.shape[-1]
    bce, fwd, bwd = silhouette_losses(sils.reshape(2 * m, s, s), masks.repeat_interleave(2, 0), cfg)
    image_only = dataclasses.replace(cfg, w_pose_image=1.0, w_pose_mask=0.0)
    pts = torch.stack([point_silhouette_losses(xyz, views[:, j], masks, s) for j in range(2)], 1)
    out = {"selection (image + mask)": hypothesis_scores(images, masks, imgs, sils, cfg),
           "image": hypothesis_scores(images, masks, imgs, sils, image_only),
           "mask BCE": bce.view(m, 2), "affinity, points to mask": fwd.view(m, 2),
           "affinity, mask to points": bwd.view(m, 2), "point to silhouette": pts}
    return {k: v.numpy() for k, v in out.items()}


def main(data: str, category: str, run: str) -> None:
    pred, test, raw, xyz, gt = load_run(data, category, run)
    _, _, flipped = chamfer_turned(xyz, gt)
    cfg = TrainConfig.from_dict(load_checkpoint(find_checkpoint(run))["config"])
    terms = side_terms(cfg, raw, torch.from_numpy(pred["rgb"]).float(),
                       torch.from_numpy(pred["viewpoints"]).float(), test.images, test.masks)
    groups = reversal_groups(flipped, pred["pose_error_deg"])
    print(f"{run}: share of clouds whose turned view (azimuth + pi) scores better")
    print("  term: " + "; ".join(f"{name} ({int(sel.sum())})" for name, sel in groups))
    for term, v in terms.items():
        better = v[:, 1] < v[:, 0]
        print(f"  {term}: " + "; ".join(f"{better[sel].mean():.0%}" if sel.any() else "-"
                                        for _, sel in groups))
    # How far apart the two sides score: what a hypothesis temperature (config) must span.
    sel_score = terms["selection (image + mask)"]
    gap = sel_score[:, 1] / sel_score[:, 0] - 1
    print("  selection score of the turned view over the predicted one, minus 1, p10/p50/p90: "
          + "; ".join(" ".join(f"{x:+.0%}" for x in np.quantile(gap[sel], [0.1, 0.5, 0.9]))
                      if sel.any() else "-" for _, sel in groups))


if __name__ == "__main__":
    main(*sys.argv[1:])
