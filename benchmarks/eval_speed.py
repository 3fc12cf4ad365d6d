"""How long does scoring take? Times the global-rotation fit (on VAL clouds) and Chamfer + exact
EMD of M test predictions, as ``ssl3d evaluate`` runs them on this machine's CPU.

Predictions are ground-truth clouds of a data set, rotated by a fixed rotation and jittered
(2% of the box), so the timings reflect a model that is roughly right; a poor model makes the
exact assignment slower. With ``--run RUN_DIR`` the test clouds are instead that run's own
predictions (``predictions_test.npz`` from ``ssl3d evaluate``) against their ground truth,
repeated to ``--test`` pairs.

    python benchmarks/eval_speed.py DATA_DIR CATEGORY [--test 1500] [--val 200] [--workers 2] [--run RUN_DIR]
"""

import argparse
import time

import numpy as np
import torch

from ssl3d import camera
from ssl3d.data.dataset import load_split
from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import alignment_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("--test", type=int, default=1500)
    ap.add_argument("--val", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--run", help="time this run's test predictions instead of jittered ground truth")
    args = ap.parse_args()
    clouds = load_split(args.data, args.category, "train", progress=False).clouds
    g = torch.Generator().manual_seed(0)
    rot = camera.rotation_from_euler(torch.tensor(0.7), torch.tensor(0.2), torch.tensor(-0.1))

    def fake(n):  # (n, 1024, 3) ground truth and its rotated, jittered "prediction"
        gt = clouds[torch.randint(len(clouds), (n,), generator=g)]
        return gt @ rot + 0.02 * torch.randn(gt.shape, generator=g), gt

    val_pred, val_gt = fake(args.val)
    if args.run:  # the run's own test predictions, repeated to --test pairs
        pred = torch.as_tensor(np.load(f"{args.run}/predictions_test.npz")["xyz"]).float()
        gt = load_split(args.data, args.category, "test", progress=False).clouds
        reps = -(-args.test // len(pred))
        test_pred, test_gt = pred.repeat(reps, 1, 1)[:args.test], gt.repeat(reps, 1, 1)[:args.test]
    else:
        test_pred, test_gt = fake(args.test)
    start = time.time()
    align = M.fit_global_rotation(val_pred, val_gt, **alignment_settings(torch.device("cpu")))
    fit = time.time() - start
    start = time.time()
    rot = torch.eye(3) if args.run else align.matrix()  # a run's predictions: its frame as is
    scores = M.cloud_metrics(test_pred, test_gt, rot, emd=True, workers=args.workers)
    score = time.time() - start
    print(f"rotation fit on {args.val} val clouds: {fit:.1f} s; Chamfer + exact EMD of "
          f"{args.test} test clouds with {args.workers} workers: {score:.1f} s; "
          f"total {fit + score:.1f} s (Chamfer x1000 {1000 * scores['chamfer'].mean():.2f}, "
          f"EMD x1000 {1000 * scores['emd'].mean():.2f})")


if __name__ == "__main__":
    main()
