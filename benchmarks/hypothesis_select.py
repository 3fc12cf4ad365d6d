"""Which pose hypothesis should a self-supervised chair take? For a run with several pose
hypotheses, on its test split, prints the pose accuracy at 30 deg of:

- the selector (what ``ssl3d evaluate`` reports; the rotation into the ground-truth frame is the
  one it saved in RUN_DIR/predictions_test.npz, else fitted here on the validation split), and
  the best hypothesis in hindsight (an oracle: how often one of them is right at all);
- how the hypotheses cover the circle: each one's mean azimuth over the images, the median
  largest gap between one image's hypotheses, and by true view (along z: a procedural chair's
  front or back; along x: a side) the selector's accuracy and the best hypothesis's;
- with --grid A, the best of A evenly spaced azimuths (at the selector's elevation) by the
  training's reprojection score: would a candidate in every direction be picked right?
- the hypothesis chosen by the reprojection score ``w_image * image error + w_mask * mask BCE``
  (``losses.hypothesis_scores``, the criterion training picks its hypothesis by) for several
  weightings, from the silhouette alone to colour alone.

The silhouettes of a left-right symmetric object seen from the front and from the back are the
same, so only the colour term can tell those two views apart; a higher colour weight tests
whether it does.

    python benchmarks/hypothesis_select.py DATA_DIR CATEGORY RUN_DIR_OR_CKPT [--weights 1,1 10,1 ...]
        [--grid A]
"""

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from diagnose_run import azimuth_in_frame, view_groups
from ssl3d.data.dataset import load_split
from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import find_checkpoint
from ssl3d.training.checkpoint import load_checkpoint, models_from_checkpoint
from ssl3d.training.losses import hypothesis_scores, project_views, reprojection_scores


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("run")
    ap.add_argument("--weights", nargs="+", default=["0,1", "1,1", "3,1", "10,1", "30,1", "1,0"],
                    help="w_image,w_mask pairs")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--grid", type=int, default=0,
                    help="also score A evenly spaced azimuths at the selector's elevation and report "
                         "the pose accuracy of the best-scoring one (a search with a candidate "
                         "everywhere)")
    a = ap.parse_args()
    path = find_checkpoint(a.run)
    ckpt = load_checkpoint(path)
    recon, pose, cfg = models_from_checkpoint(ckpt, path)
    recon.float().eval()
    pose.float().eval()
    if cfg.pose_hypotheses < 2:
        raise SystemExit(f"{path}: one pose hypothesis, nothing to choose from")
    test = load_split(a.data, a.category, "test", cfg.image_size, progress=False)
    pairs = [tuple(float(x) for x in w.split(",")) for w in a.weights]

    def run(views):
        """Per image: the selector's view (M, 2), every hypothesis (M, H, 2), each weighting's
        choice (W, M, 2), and the clouds (M, N, 3)."""
        sel, hyps, chosen, clouds, searched = [], [], [], [], []
        with torch.no_grad():
            for i in range(0, len(views), a.batch_size):
                x, m = views.images[i:i + a.batch_size], views.masks[i:i + a.batch_size]
                xyz, rgb = recon(x)
                h, logits = pose(x, all_hypotheses=True)  # (B, H, 2), (B, H)
                sel.append(h[torch.arange(len(x)), logits.argmax(1)])  # what pose(x) returns
                if a.grid:  # (B, A, 2): every grid azimuth at the selector's elevation
                    az = torch.arange(a.grid, dtype=x.dtype) * (2 * torch.pi / a.grid) - torch.pi
                    grid = torch.stack([az.expand(len(x), -1), sel[-1][:, 1:].expand(-1, a.grid)], -1)
                    best = reprojection_scores(xyz, rgb, grid, x, m, cfg).argmin(1)
                    searched.append(grid[torch.arange(len(x)), best])
                hyps.append(h)
                clouds.append(xyz)
                # Project once, score each term once (weights 1, 0 and 0, 1): any weighting is a sum.
                imgs, sils = project_views(xyz, rgb, h, cfg)
                img, bce = (hypothesis_scores(x, m, imgs, sils, dataclasses.replace(
                    cfg, w_pose_image=wi, w_pose_mask=1.0 - wi)) for wi in (1.0, 0.0))
                pick = torch.stack([(wi * img + wm * bce).argmin(1) for wi, wm in pairs])  # (W, B)
                chosen.append(torch.gather(h.unsqueeze(0).expand(len(pairs), -1, -1, -1), 2,
                                           pick[..., None, None].expand(-1, -1, 1, 2)).squeeze(2))
        return (torch.cat(sel), torch.cat(hyps), torch.cat(chosen, 1), torch.cat(clouds),
                torch.cat(searched) if searched else None)

    saved = Path(a.run) / "predictions_test.npz"
    if saved.is_file():  # the rotation ssl3d evaluate fitted for this run
        rot = torch.from_numpy(np.load(saved)["rotation"]).float()
    else:  # fitted as evaluate does, with fewer steps
        val = load_split(a.data, a.category, "val", cfg.image_size, progress=False)
        xyz_v = run(val)[3]
        rot = M.fit_global_rotation(xyz_v, val.clouds.float(), steps=300).matrix()
    sel, hyps, chosen, _, searched = run(test)
    right = lambda v: M.pose_errors(v, test.viewpoints, rot) <= 30  # noqa: E731
    err_all = np.stack([M.pose_errors(hyps[:, j], test.viewpoints, rot) for j in range(hyps.shape[1])], 1)
    print(f"{a.run}: {len(test)} test images, {hyps.shape[1]} hypotheses")
    sel_ok = right(sel)
    print(f"  selector {sel_ok.mean():.1%}; best hypothesis in hindsight {(err_all.min(1) <= 30).mean():.1%}")
    az = np.degrees(np.stack([azimuth_in_frame(hyps[:, j], rot).numpy() for j in range(hyps.shape[1])], 1))
    circ = np.degrees(np.angle(np.exp(1j * np.radians(az)).mean(0)))  # each hypothesis's mean azimuth
    srt = np.sort(az, 1)
    gap = np.diff(np.concatenate([srt, srt[:, :1] + 360], 1), axis=1).max(1)
    print("  hypotheses' mean azimuths (ground-truth frame, deg): " + " ".join(f"{v:.0f}" for v in circ)
          + f"; largest gap between one image's hypotheses, median {np.median(gap):.0f} deg")
    taz = test.viewpoints[:, 0].numpy()
    if searched is not None:
        grid_right = right(searched)
        print(f"  best of the {a.grid}-azimuth grid by the training score: {grid_right.mean():.1%}")
    for name, g in list(view_groups(taz).items())[:2]:
        grid_ok = (f", best of the {a.grid}-azimuth grid by the training score "
                   f"{grid_right[g].mean():.1%}") if searched is not None else ""
        print(f"  true view {name} ({g.sum()} images): selector {sel_ok[g].mean():.1%}, best "
              f"hypothesis in hindsight {(err_all[g].min(1) <= 30).mean():.1%}{grid_ok}")
    for (wi, wm), v in zip(pairs, chosen):
        print(f"  reprojection score, image x {wi:g} + mask x {wm:g}: {right(v).mean():.1%}")


if __name__ == "__main__":
    main()
