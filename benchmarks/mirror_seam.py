"""Do a run's points pile up on the symmetry term's mirror plane, and does that cost Chamfer?
A sheet on the plane x = 0 of the network's frame is its own mirror image, so a mirror-Chamfer
prior cannot penalise it. For each run (a checkpoint file or run folder), on the test split:

- the seam: the share of predicted points within EPS of x = 0 in the network's own frame, and
  the ground truth's share within EPS of its own x = 0;
- the Chamfer's prediction -> truth half for the seam's points and for the others (is the seam
  on the surface, such as a chair's seat and back along its midline, or off it?);
- the truth -> prediction half for ground-truth points by their distance |x| from the plane
  (is the surface away from the plane left bare?);
- the run's Chamfer (evaluation protocol: rotation fitted on the validation split, unit box;
  with the CPU's alignment settings, so it can differ from a GPU summary in the second decimal);
- the clouds' asymmetry: mean Chamfer x1000 between each cloud and its mirror image across
  x = 0 of the network's frame (unnormalised, all points);
- the seam and the Chamfer of the images posed right (within 30 deg) and wrong (is the seam
  where the wrong views are?).

    python benchmarks/mirror_seam.py DATA_DIR CATEGORY RUN [RUN ...] [--eps 0.003]
"""

import argparse
import sys
from pathlib import Path

import torch

from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import predict
from ssl3d.ops import normalize_unit_box
from ssl3d.ops.chamfer import nearest_sq_dist
from ssl3d.training.losses import symmetry_term

sys.path.insert(0, str(Path(__file__).parent))
from pose_label_check import cached_split, fitted_run  # noqa: E402

BANDS = (0.0, 0.05, 0.15, 0.3, 0.5)  # |x| bands of the unit-box ground truth (|x| <= 0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--eps", type=float, default=0.003)
    a = ap.parse_args()
    splits = {}  # (split, image size) -> split, loaded once for all runs
    for run in a.runs:
        path, recon, pose, cfg, rot = fitted_run(a.data, a.category, run, splits)
        first_at_size = ("test", cfg.image_size) not in splits
        test = cached_split(splits, a.data, a.category, "test", cfg.image_size)
        if first_at_size:
            gt_seam = (test.clouds[..., 0].abs() < a.eps).float().mean()
            print(f"{a.category}, {len(test)} test clouds: ground truth within {a.eps} of its "
                  f"x = 0: {gt_seam:.1%}")
        xyz, _, views = predict(recon, pose, test.images)
        seam = xyz[..., 0].abs() < a.eps  # (M, N), the network's own frame
        p = normalize_unit_box(M.rotate(xyz.float(), rot))
        t = normalize_unit_box(test.clouds.float())
        fwd, bwd = nearest_sq_dist(p, t), nearest_sq_dist(t, p)  # (M, N), (M, P); chunked inside
        gx = t[..., 0].abs()
        bands = "; ".join(
            f"[{lo}, {hi}) {1000 * bwd[(gx >= lo) & (gx < hi)].mean():.2f}"
            for lo, hi in zip(BANDS[:-1], BANDS[1:]))
        asym = symmetry_term(xyz, "x")  # the mean over the clouds
        print(f"{path} (w_symmetry {cfg.w_symmetry:g}, self-match {cfg.symmetry_self_match}): "
              f"Chamfer x1000 {1000 * (fwd.mean(1) + bwd.mean(1)).mean():.2f}; seam "
              f"{seam.float().mean():.1%}; asymmetry x1000 {1000 * asym:.3f}")
        print(f"  prediction -> truth: seam points {1000 * fwd[seam].mean():.2f}, others "
              f"{1000 * fwd[~seam].mean():.2f}; truth -> prediction by the truth's |x|: {bands}")
        right = torch.from_numpy(M.pose_errors(views, test.viewpoints, rot) <= 30)
        cd = fwd.mean(1) + bwd.mean(1)
        print("  " + "; ".join(
            f"posed {name} ({sel.float().mean():.1%}): seam {seam[sel].float().mean():.1%}, "
            f"Chamfer x1000 {1000 * cd[sel].mean():.2f}"
            for name, sel in (("right", right), ("wrong", ~right)) if sel.any()))


if __name__ == "__main__":
    main()
