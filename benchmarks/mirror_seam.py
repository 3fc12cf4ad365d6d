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
  x = 0 of the network's frame (unnormalised, all points).

    python benchmarks/mirror_seam.py DATA_DIR CATEGORY RUN [RUN ...] [--eps 0.003]
"""

import argparse

import torch

from ssl3d.data.dataset import load_split
from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import alignment_settings, find_checkpoint, predict
from ssl3d.ops import chamfer_distance, normalize_unit_box
from ssl3d.ops.chamfer import nearest_sq_dist
from ssl3d.training.checkpoint import load_checkpoint, models_from_checkpoint

BANDS = (0.0, 0.05, 0.15, 0.3, 0.5)  # |x| bands of the unit-box ground truth (|x| <= 0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--eps", type=float, default=0.003)
    a = ap.parse_args()
    cpu = torch.device("cpu")
    tests = {}  # image size -> test split
    for run in a.runs:
        path = find_checkpoint(run)
        recon, pose, cfg = models_from_checkpoint(load_checkpoint(path), path)
        val = load_split(a.data, a.category, "val", cfg.image_size, progress=False)
        val_xyz, _, _ = predict(recon, pose, val.images)
        rot = M.fit_global_rotation(val_xyz, val.clouds, **alignment_settings(cpu)).matrix()
        if cfg.image_size not in tests:
            tests[cfg.image_size] = load_split(a.data, a.category, "test", cfg.image_size, progress=False)
            gt_seam = (tests[cfg.image_size].clouds[..., 0].abs() < a.eps).float().mean()
            print(f"{a.category}, {len(tests[cfg.image_size])} test clouds: ground truth within "
                  f"{a.eps} of its x = 0: {gt_seam:.1%}")
        test = tests[cfg.image_size]
        xyz, _, _ = predict(recon, pose, test.images)
        seam = xyz[..., 0].abs() < a.eps  # (M, N), the network's own frame
        p = normalize_unit_box(M.rotate(xyz.float(), rot))
        t = normalize_unit_box(test.clouds.float())
        fwd = torch.cat([nearest_sq_dist(p[i:i + 100], t[i:i + 100]) for i in range(0, len(p), 100)])
        bwd = torch.cat([nearest_sq_dist(t[i:i + 100], p[i:i + 100]) for i in range(0, len(p), 100)])
        gx = t[..., 0].abs()
        bands = "; ".join(
            f"[{lo}, {hi}) {1000 * bwd[(gx >= lo) & (gx < hi)].mean():.2f}"
            for lo, hi in zip(BANDS[:-1], BANDS[1:]))
        asym = chamfer_distance(xyz, xyz * torch.tensor([-1.0, 1.0, 1.0]), "none").mean()
        print(f"{path} (w_symmetry {cfg.w_symmetry:g}, self-match {cfg.symmetry_self_match}): "
              f"Chamfer x1000 {1000 * (fwd.mean(1) + bwd.mean(1)).mean():.2f}; seam "
              f"{seam.float().mean():.1%}; asymmetry x1000 {1000 * asym:.3f}")
        print(f"  prediction -> truth: seam points {1000 * fwd[seam].mean():.2f}, others "
              f"{1000 * fwd[~seam].mean():.2f}; truth -> prediction by the truth's |x|: {bands}")


if __name__ == "__main__":
    main()
