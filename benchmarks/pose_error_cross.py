"""Is a test cloud worse because its own pose is off, or because its image is a hard one? Two
evaluated runs on the same test split (``ssl3d evaluate`` wrote RUN/predictions_test.npz), e.g. a
self-supervised run and the pose-supervised baseline: each run's per-image Chamfer, over the
images both pose within 30 deg, by its own pose error and by the other run's, with the Spearman
correlations. If a run's clouds worsen with its own pose error while the other run's clouds of
the same images do not, the clouds were learnt to fit those views; if both runs' clouds worsen
with it, that error marks hard images.

    python benchmarks/pose_error_cross.py DATA_DIR CATEGORY RUN_A RUN_B
"""

import sys

import numpy as np
from scipy.stats import spearmanr

from diagnose_run import POSE_BINS, by_pose_error, chamfer_turned, load_run


def main(data: str, category: str, run_a: str, run_b: str) -> None:
    runs = {}
    for run in (run_a, run_b):
        pred, _, _, xyz, gt = load_run(data, category, run)
        runs[run] = (chamfer_turned(xyz, gt)[0], pred["pose_error_deg"], pred["models"])
    if not np.array_equal(runs[run_a][2], runs[run_b][2]):
        raise ValueError(f"{run_a} and {run_b} were evaluated on different test models")
    both = (runs[run_a][1] <= 30) & (runs[run_b][1] <= 30)
    if both.sum() < 3:
        raise ValueError(f"only {both.sum()} test images posed within 30 deg by both runs")
    print(f"{both.sum()} of {len(both)} test images posed within 30 deg by both runs; Chamfer x1000 "
          f"by pose error {' / '.join(f'{lo + 1 if lo < 0 else lo}-{hi}' for lo, hi in POSE_BINS)} deg "
          "(share of those images)")
    for run, other in ((run_a, run_b), (run_b, run_a)):
        cd = runs[run][0][both]
        own, theirs = runs[run][1][both], runs[other][1][both]
        print(f"{run}: Chamfer {cd.mean():.2f}; by its own pose error {by_pose_error(cd, own)} "
              f"(Spearman {spearmanr(cd, own)[0]:+.2f}); by the other run's {by_pose_error(cd, theirs)} "
              f"(Spearman {spearmanr(cd, theirs)[0]:+.2f})")
    err_a, err_b = runs[run_a][1][both], runs[run_b][1][both]
    print(f"the two runs' pose errors: Spearman {spearmanr(err_a, err_b)[0]:+.2f}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
