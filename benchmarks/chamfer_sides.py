"""Which side of the Chamfer distance does a run lose on? For each evaluated run, over its test
clouds (rotated by the run's fitted rotation, both clouds scaled to the unit box, as ``ssl3d
evaluate`` scores them):
- precision: the mean squared distance from each predicted point to the nearest true point;
- recall: the same from each true point to the nearest predicted point (the two sum to Chamfer);
- both again over the images posed within 30 deg;
- the share of predicted points farther than 0.05 and 0.1 (of the unit box) from every true
  point, and the share of precision those far points carry: stray or misplaced parts;
- the spread ratio: the mean distance of a cloud's points to its centroid over the ground truth's
  (below 1: points bunched inwards).

    python benchmarks/chamfer_sides.py DATA_DIR CATEGORY RUN... (each run after ssl3d evaluate)
"""

import argparse
import sys
from pathlib import Path

import torch

from ssl3d.ops import normalize_unit_box
from ssl3d.ops.chamfer import nearest_sq_dist

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import load_run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    for run in args.runs:
        pred, _, _, xyz, gt = load_run(args.data, args.category, run)
        p, t = normalize_unit_box(xyz), normalize_unit_box(gt)
        to_gt, to_pred = nearest_sq_dist(p, t), nearest_sq_dist(t, p)  # (M, N), (M, P)
        prec, rec = to_gt.mean(1), to_pred.mean(1)  # (M,) each
        right = torch.from_numpy(pred["pose_error_deg"] < 30)
        posed = (f"{1000 * prec[right].mean():.2f} + {1000 * rec[right].mean():.2f}" if right.any()
                 else "- (none)")
        far = [(to_gt > r * r).float().mean().item() for r in (0.05, 0.1)]
        carried = [(to_gt * (to_gt > r * r)).sum().item() / to_gt.sum().item() for r in (0.05, 0.1)]
        spread = lambda c: (c - c.mean(1, keepdim=True)).norm(dim=-1).mean(1)  # noqa: E731
        print(f"{Path(run).name}: Chamfer x1000 {1000 * (prec + rec).mean():.2f} = precision "
              f"{1000 * prec.mean():.2f} + recall {1000 * rec.mean():.2f}; posed right "
              f"({right.float().mean():.1%}) {posed}; "
              f"predicted points beyond 0.05 / 0.1: {far[0]:.1%} / {far[1]:.1%}, carrying "
              f"{carried[0]:.0%} / {carried[1]:.0%} of precision; spread ratio "
              f"{(spread(p) / spread(t)).mean():.3f}")


if __name__ == "__main__":
    main()
