"""How good would a self-supervised run's poses be as training labels (``--pose-labels``)? On the
training split: the share of images whose predicted view is within 30 deg of the true one, a
histogram of the errors, and the Chamfer of the clouds of rightly and wrongly labelled images
(rotation fitted on the validation split, as ``ssl3d evaluate``). Then a check that needs no
ground truth: is each cloud nearer a medoid cloud of the run (its own frame) as it is or turned
half a turn about the vertical? Turned clouds there would be frame flips that relabelling could
undo; their share is printed beside the share nearer the ground truth turned. Last, the
``view_distribution`` training logs (the azimuth moments of the predicted views) per batch of 64
training images, which the trainer's pose-collapse warning reads. And two signals that could pick
out the wrong labels without ground truth, with the label accuracy among the images each keeps:
the selector's confidence (softmax of its logits) and the side gap (how much worse the cloud
explains the image seen from the view turned half a turn: the training selection score there
over the predicted view's, minus 1; what --pose-label-keep ranks by), and the doubt gap (the best
hypothesis 45 deg or more of azimuth from the one that explains the image best, against that
one; what --doubt-gap weighs by); for the side gap's top 60%
and 40%, the share kept per true azimuth and elevation, and the run's Chamfer on the kept images.

    python benchmarks/pose_label_check.py DATA_DIR CATEGORY RUN_DIR [IMAGES]
"""

import sys
from pathlib import Path

import numpy as np
import torch

from ssl3d.data.dataset import load_split
from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import alignment_settings, find_checkpoint, predict
from ssl3d.ops import chamfer_distance
from ssl3d.training.checkpoint import load_checkpoint, models_from_checkpoint
from ssl3d.training.losses import azimuth_moments_term, doubt_gaps, reprojection_scores, side_gap

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import half_turn  # noqa: E402


def chamfer_to_each(clouds: torch.Tensor, others: torch.Tensor, chunk: int = 200) -> torch.Tensor:
    """Chamfer from each of clouds (n, P, 3) to each of others (k, P, 3), chunked over clouds.
    Returns (n, k)."""
    rows = []
    for i in range(0, len(clouds), chunk):
        c = clouds[i:i + chunk]
        rows.append(torch.stack([chamfer_distance(c, o.expand_as(c), "none") for o in others], 1))
    return torch.cat(rows)


def rotation_angle_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle of the rotation a^T b between two rotations (3, 3), in degrees."""
    cos = (float(torch.trace(a.T @ b)) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def medoid(clouds: torch.Tensor) -> torch.Tensor:
    """The cloud of (M, N, 3) with the least summed Chamfer to the others. Returns (N, 3)."""
    cost = chamfer_to_each(clouds, clouds).sum(0)  # (M,): cloud c's summed Chamfer to the others
    return clouds[cost.argmin()]


def fitted_run(data: str, category: str, run: str, splits: dict | None = None):
    """A run's checkpoint path, networks and config, and the rotation (3, 3) into the
    ground-truth frame fitted on the validation split (as ``ssl3d evaluate``, CPU settings).
    ``splits``: a dict (split, image size) -> split that keeps the loaded splits for the next
    run (filled here); the caller may read other splits through :func:`cached_split`."""
    splits = {} if splits is None else splits
    path = find_checkpoint(run)
    recon, pose, cfg = models_from_checkpoint(load_checkpoint(path), path)
    val = cached_split(splits, data, category, "val", cfg.image_size)
    val_xyz, _, _ = predict(recon, pose, val.images)
    rot = M.fit_global_rotation(val_xyz, val.clouds, **alignment_settings(torch.device("cpu"))).matrix()
    return path, recon, pose, cfg, rot


def cached_split(splits: dict, data: str, category: str, split: str, image_size: int):
    """``load_split`` once per (split, image size) for scripts that score several runs."""
    if (split, image_size) not in splits:
        splits[split, image_size] = load_split(data, category, split, image_size, progress=False)
    return splits[split, image_size]


def run_on_training_split(data: str, category: str, run: str):
    """:func:`fitted_run`'s path, networks, config and rotation, and the training split."""
    path, recon, pose, cfg, rot = fitted_run(data, category, run)
    return path, recon, pose, cfg, rot, load_split(data, category, "train", cfg.image_size, progress=False)


def main(data: str, category: str, run: str, n: int | None = None) -> None:
    path, recon, pose, cfg, rot, train = run_on_training_split(data, category, run)
    n = n or len(train)
    images, masks = train.images[:n], train.masks[:n]
    xyz, rgb, views = predict(recon, pose, images)
    err = M.pose_errors(views, train.viewpoints[:n], rot)
    right = err <= 30
    cd = 1000 * M.cloud_metrics(xyz, train.clouds[:n], rot, emd=False)["chamfer"]
    print(f"{path}, {n} training images: labels within 30 deg {right.mean():.1%}, median error "
          f"{np.median(err):.1f} deg; errors in 0-30 / 30-60 / 60-120 / 120-150 / 150-180 deg: "
          f"{np.histogram(err, [0, 30, 60, 120, 150, 181])[0].tolist()}")
    print(f"  Chamfer x1000 (evaluation protocol): rightly labelled "
          f"{cd[right].mean():.2f}, wrongly {cd[~right].mean():.2f}")
    gt_turn = 1000 * M.cloud_metrics(xyz, half_turn(train.clouds[:n]), rot, emd=False)["chamfer"]
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:128]
    template = medoid(xyz[pick]).expand_as(xyz)
    turned = chamfer_distance(half_turn(xyz), template, "none") < chamfer_distance(xyz, template, "none")
    print(f"  nearer the ground truth turned by pi: {(gt_turn < cd).mean():.1%}; nearer the run's "
          f"medoid cloud turned (no ground truth): {turned.float().mean():.1%}")
    moments = np.array([float(azimuth_moments_term(views[i:i + 64])) for i in range(0, max(n - 63, 1), 64)])
    print(f"  view_distribution per batch of 64 training images: mean {moments.mean():.3f}, max "
          f"{moments.max():.3f} (uniform azimuths about {2 / 64:.3f}, one azimuth 2)")
    confidence, gap, doubt = [], [], []
    with torch.no_grad():
        for i in range(0, n, 128):
            sl = slice(i, i + 128)
            hyp, logits = pose(images[sl], all_hypotheses=True)
            confidence.append(logits.softmax(1).amax(1))
            gap.append(side_gap(xyz[sl], rgb[sl], views[sl], images[sl], masks[sl], cfg))
            # what --doubt-gap weighs by: the best hypothesis 45 deg or more away
            sc = reprojection_scores(xyz[sl], rgb[sl], hyp, images[sl], masks[sl], cfg)
            doubt.append(doubt_gaps(sc, hyp, sc.argmin(1)))
    confidence, gap, doubt = (torch.cat(v).numpy() for v in (confidence, gap, doubt))
    # "rightly posed": the selector's view within 30 deg; the doubt gap is taken, as in training,
    # around the hypothesis that best explains the image.
    print(f"  doubt gap (--doubt-gap): median {np.median(doubt[right]):.2f} over the rightly posed "
          f"images, {np.median(doubt[~right]):.2f} over the others; share under 1 (weight below 1 "
          f"at --doubt-gap 1): {(doubt[right] < 1).mean():.1%} and {(doubt[~right] < 1).mean():.1%}")
    for name, signal in (("selector confidence", confidence), ("side gap", gap), ("doubt gap", doubt)):
        cells = []
        for keep in (1.0, 0.8, 0.6, 0.4):
            kept = signal >= np.quantile(signal, 1 - keep)
            cells.append(f"top {keep:.0%}: {right[kept].mean():.1%}")
        print(f"  labels within 30 deg among the images with the highest {name}: " + ", ".join(cells))
    # What a kept share teaches: which true views and which shapes it leaves out.
    azimuth = np.degrees(train.viewpoints[:n, 0].numpy()) % 360
    elevation = np.degrees(train.viewpoints[:n, 1].numpy())
    for keep in (0.6, 0.4):
        kept = gap >= np.quantile(gap, 1 - keep)
        rate = lambda values, edges: [f"{kept[(values >= a) & (values < b)].mean():.0%}"  # noqa: E731
                                      for a, b in zip(edges[:-1], edges[1:])]
        print(f"  side gap top {keep:.0%}: share kept per true azimuth 0-45, ..., 315-360 deg: "
              f"{' '.join(rate(azimuth, range(0, 361, 45)))}; per elevation -20-0 / 0-20 / 20-40 deg: "
              f"{' '.join(rate(elevation, [-20, 0, 20, 40.01]))}; the run's Chamfer x1000 on the "
              f"kept images {cd[kept].mean():.2f}, on the others {cd[~kept].mean():.2f}")


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    main(*sys.argv[1:4], *(int(a) for a in sys.argv[4:]))
