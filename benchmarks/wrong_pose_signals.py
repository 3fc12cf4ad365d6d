"""Which label-free signals single out a self-supervised run's wrongly posed training images?
Session 23 found that a wrong view and the cloud drawn for it fit the image nearly as well as a
right pair, so the reprojection score hardly tells them apart; a shape prior would have to. For
each signal below, computed on the first N training images of RUN_DIR with no label, this
prints the probability that a wrongly posed image (view more than 30 deg off, judged with the
ground truth and the rotation fitted on the validation split, as ``ssl3d evaluate``) scores
higher than a rightly posed one (AUC; 0.5: no signal, below 0.5: lower for the wrong ones), and
the two groups' medians:

- the cloud's asymmetry: Chamfer between it and its mirror across x = 0 of the network's frame
  (the plane the preset's symmetry term mirrors across);
- its distance to other clouds: Chamfer (every 4th point) to the nearest and the mean of K
  random other training clouds;
- its spread (standard deviation) along each axis of the network's frame;
- the reprojection score training selects views by, from the run's own view;
- a control that reads the truth: the ground-truth cloud's asymmetry about its x = 0 (are the
  wrongly posed chairs asymmetric ones?).

    python benchmarks/wrong_pose_signals.py DATA_DIR CATEGORY RUN_DIR [N] [K]
"""

import sys
from pathlib import Path

import torch

from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import predict
from ssl3d.ops import chamfer_distance

sys.path.insert(0, str(Path(__file__).parent))
from pose_label_check import run_on_training_split  # noqa: E402
from view_candidates import scores  # noqa: E402


def auc(signal: torch.Tensor, wrong: torch.Tensor) -> float:
    """P(signal of a wrong item > signal of a right one), ties counted half. signal: (M,);
    wrong: (M,) bool."""
    b, g = signal[wrong], signal[~wrong]
    return ((b[:, None] > g[None, :]).float().mean() + 0.5 * (b[:, None] == g[None, :]).float().mean()).item()


def main(data: str, category: str, run: str, n: int = 4800, k: int = 32) -> None:
    _, recon, pose, cfg, rot, train = run_on_training_split(data, category, run)
    n = min(n, len(train))
    images, masks = train.images[:n], train.masks[:n]
    xyz, rgb, views = predict(recon, pose, images)
    wrong = torch.from_numpy(M.pose_errors(views, train.viewpoints[:n], rot) > 30)
    mirror = torch.tensor([-1.0, 1.0, 1.0])
    others = xyz[torch.randperm(n, generator=torch.Generator().manual_seed(0))[:k], ::4]
    near, mean = [], []
    for i in range(0, n, 200):
        c = xyz[i:i + 200, ::4]
        d = torch.stack([chamfer_distance(c, o.expand_as(c), "none") for o in others], 1)  # (b, k)
        # an image's own cloud may be among the k: its distance 0 is skipped for the nearest
        near.append(torch.where(d > 0, d, torch.inf).min(1).values)
        mean.append(d.mean(1))
    signals = {
        "asymmetry about x = 0": chamfer_distance(xyz, xyz * mirror, "none"),
        f"Chamfer to the nearest of {k} other clouds": torch.cat(near),
        f"mean Chamfer to {k} other clouds": torch.cat(mean),
        **{f"spread along {a}": xyz.std(1)[:, i] for i, a in enumerate("xyz")},
        "reprojection score from its own view": scores(xyz, rgb, views[:, None], images, masks, cfg)[:, 0],
        "control: the ground truth's asymmetry": chamfer_distance(train.clouds[:n], train.clouds[:n] * mirror,
                                                                  "none"),
    }
    print(f"{run}: {n} training images, {100 * wrong.float().mean():.1f}% posed wrong (> 30 deg)")
    for name, s in signals.items():
        print(f"  {name}: AUC {auc(s, wrong):.3f}; median wrong {s[wrong].median():.5f}, "
              f"right {s[~wrong].median():.5f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:]))
