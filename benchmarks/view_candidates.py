"""Could a label-free rule give a self-supervised run's wrongly posed training images a right view?
Session 22 found that those images (pose more than 30 deg off, about 14% of the chairs) hold
the shapes back far more than the few degrees by which the rightly posed ones are off
(``--true-views-for``). On the first N training images of RUN_DIR (rotation into the ground-truth
frame fitted on the validation split, as ``ssl3d evaluate``), this prints, for the view training
chooses (the hypothesis whose projection of the image's own cloud best explains image and mask):

- how many are wrong, and for how many of those some hypothesis is right (best in hindsight);
- the runner-up: the best hypothesis 45 deg or more of azimuth from the chosen one, by doubt gap
  (what ``--doubt-gap`` weighs by): is it right where the chosen one is in doubt?
- the hypothesis chosen by mask BCE alone: with the image's own cloud (the control), with the
  mean over the clouds of its K nearest neighbours (mined as stage NN mines them, from this
  network's embedding), with the mean over its K nearest clouds in 3D (Chamfer on every 4th
  point, among the same 256 random training clouds the medoid comes from: the clouds a prior
  pulling each cloud towards its most alike others would pull it to) and with the run's medoid
  cloud (of those 256): does a cloud not drawn to fit this image's view pick a better one?
- the image flipped left to right (the network's frame is symmetric about x = 0, so its views
  mirrored back are views of the input): is the mirrored flipped-image hypothesis nearest the
  chosen view right where the chosen one is wrong, and is any of them? Where both are right,
  how far the chosen view and the two's mean (what the removed --flip-average-views trained at)
  are from the truth;
- the elevation: the least-squares line of the predicted against the true elevation over the
  rightly posed images (a slope below 1: elevations pulled towards the line's fixed point).

    python benchmarks/view_candidates.py DATA_DIR CATEGORY RUN_DIR [N] [K]
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from ssl3d import camera
from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import predict
from ssl3d.training.losses import doubt_gaps, reprojection_scores
from ssl3d.training.neighbours import embed_images, nearest_neighbours

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import view_in_frame  # noqa: E402
from pose_label_check import chamfer_to_each, medoid, rotation_angle_deg, run_on_training_split  # noqa: E402


def scores(xyz, rgb, views, images, masks, cfg, chunk: int = 100) -> torch.Tensor:
    """:func:`reprojection_scores` (training's selection score under ``cfg``) of clouds (n, P, 3)
    seen from each of views (n, M, 2) against images (n, 3, S, S) and masks (n, S, S), in chunks.
    Returns (n, M)."""
    return torch.cat([reprojection_scores(xyz[i:i + chunk], rgb[i:i + chunk], views[i:i + chunk],
                                          images[i:i + chunk], masks[i:i + chunk], cfg)
                      for i in range(0, len(views), chunk)])


def errors_per_view(views: torch.Tensor, truth: torch.Tensor, rot: torch.Tensor) -> np.ndarray:
    """Pose error (deg) of each of views (n, M, 2) against truth (n, 2). Returns (n, M)."""
    return np.stack([M.pose_errors(views[:, j], truth, rot) for j in range(views.shape[1])], 1)


def main(data: str, category: str, run: str, n: int = 1200, k: int = 5) -> None:
    path, recon, pose, cfg, rot, train = run_on_training_split(data, category, run)
    images, masks, truth = train.images[:n], train.masks[:n], train.viewpoints[:n]
    with torch.no_grad():
        xyz, rgb, _ = predict(recon, pose, train.images)  # every image: the neighbours' clouds
        neighbours = nearest_neighbours(embed_images(recon, train.images), k)[:n]  # (n, K)
        hyp = torch.cat([pose(images[i:i + 256], all_hypotheses=True)[0] for i in range(0, n, 256)])
        flip = torch.cat([pose(images[i:i + 256].flip(-1), all_hypotheses=True)[0] for i in range(0, n, 256)])
        own = scores(xyz[:n], rgb[:n], hyp, images, masks, cfg)  # (n, M)
        bce = dataclasses.replace(cfg, w_pose_image=0.0, w_pose_mask=1.0)  # the mask term alone
        by_neighbours = torch.stack([scores(xyz[neighbours[:, j]], rgb[neighbours[:, j]], hyp, images, masks, bce)
                                     for j in range(k)]).mean(0)
        by_own_mask = scores(xyz[:n], rgb[:n], hyp, images, masks, bce)
        sample = torch.randperm(len(xyz), generator=torch.Generator().manual_seed(0))[:256]
        template = medoid(xyz[sample]).expand(n, -1, -1)
        by_medoid = scores(template, torch.full_like(template, 0.5), hyp, images, masks, bce)
        dist = chamfer_to_each(xyz[:n, ::4], xyz[sample, ::4])  # (n, 256), every 4th point
        own_cloud = sample[None, :] == torch.arange(n)[:, None]  # (n, 256): the image's own cloud
        dist = dist.masked_fill(own_cloud, float("nan"))  # left out of the nearest and the mean
        near3d = sample[dist.nan_to_num(float("inf")).topk(k, 1, largest=False).indices]
        by_near3d = torch.stack([scores(xyz[near3d[:, j]], rgb[near3d[:, j]], hyp, images, masks, bce)
                                 for j in range(k)]).mean(0)
    pick = torch.arange(n)
    best = own.argmin(1)
    chosen = hyp[pick, best]
    err = M.pose_errors(chosen, truth, rot)
    wrong = err > 30
    each = errors_per_view(hyp, truth, rot)  # (n, M)
    angle = rotation_angle_deg(torch.eye(3), rot)
    print(f"{path}: rotation into the ground-truth frame {angle:.2f} deg from the identity")
    print(f"{n} training images: chosen view within 30 deg {np.mean(~wrong):.1%}; of the "
          f"{wrong.sum()} wrong ones some hypothesis is right for {np.mean(each[wrong].min(1) <= 30):.1%}")

    gap = doubt_gaps(own, hyp, best).numpy()
    far = camera.wrap_angle(hyp[..., 0] - chosen[:, :1]).abs() >= np.radians(45)
    runner = own.masked_fill(~far, float("inf")).argmin(1)
    runner_err = M.pose_errors(hyp[pick, runner], truth, rot)
    print("runner-up (45 deg or more away) by doubt gap: " + "; ".join(
        f"under {g}: {np.mean(gap < g):.1%} of images, chosen right {np.mean(~wrong[gap < g]):.1%}, "
        f"runner-up right {np.mean(runner_err[gap < g] <= 30):.1%}" for g in (0.1, 0.2, 0.5)))

    for name, ranked in (("the image's own cloud", by_own_mask),
                         (f"the {k} nearest neighbours' clouds (mean)", by_neighbours),
                         (f"its {k} nearest clouds in 3D (mean)", by_near3d),
                         ("the medoid cloud", by_medoid)):
        e = M.pose_errors(hyp[pick, ranked.argmin(1)], truth, rot)
        print(f"chosen by mask BCE alone with {name}: right {np.mean(e <= 30):.1%}; of the wrong ones "
              f"now right {np.mean(e[wrong] <= 30):.1%}, of the right ones kept {np.mean(e[~wrong] <= 30):.1%}")
    typical = dist.nanmean(1)  # (n,) mean Chamfer to the 256 (less its own cloud)
    odd = (typical >= typical.quantile(0.8)).numpy()  # the fifth least like the others
    for name, ranked in ((f"its {k} nearest clouds in 3D", by_near3d), ("the medoid cloud", by_medoid)):
        e = M.pose_errors(hyp[pick, ranked.argmin(1)], truth, rot)
        print(f"  on the 20% of images whose clouds are least like the others (mean Chamfer to the "
              f"256; {np.mean(wrong[odd]):.1%} of them wrong), with {name}: right "
              f"{np.mean(e[odd] <= 30):.1%} against {np.mean(~wrong[odd]):.1%} as chosen")

    mirrored = camera.mirror_viewpoint(flip)  # (n, M, 2): the flipped image's views, mirrored back
    nearest = camera.angular_error(mirrored, chosen.unsqueeze(1)).argmin(1)
    other = mirrored[pick, nearest]
    other_err = M.pose_errors(other, truth, rot)
    mean = torch.stack([camera.wrap_angle(chosen[:, 0] + camera.wrap_angle(other[:, 0] - chosen[:, 0]) / 2),
                        (chosen[:, 1] + other[:, 1]) / 2], -1)
    both = ~wrong & (other_err <= 30)
    print(f"flipped image, mirrored back: its hypothesis nearest the chosen view right for "
          f"{np.mean(other_err[wrong] <= 30):.1%} of the wrong ones (some hypothesis of it right: "
          f"{np.mean(errors_per_view(mirrored, truth, rot)[wrong].min(1) <= 30):.1%}); where both are right "
          f"({both.mean():.1%}) median error chosen {np.median(err[both]):.2f} deg, mean of the two "
          f"{np.median(M.pose_errors(mean, truth, rot)[both]):.2f}")

    el_pred = np.degrees(view_in_frame(chosen, rot)[1].numpy())  # in the ground-truth frame
    el_true = np.degrees(truth[:, 1].numpy())
    slope, offset = np.polyfit(el_true[~wrong], el_pred[~wrong], 1)
    bands = [(-20, 0), (0, 20), (20, 40)]
    print(f"elevation over the rightly posed: predicted = {slope:.3f} x true + {offset:.2f} deg; mean "
          f"error by true elevation " + " / ".join(
              f"{lo}-{hi}: {np.mean((el_pred - el_true)[~wrong & (el_true >= lo) & (el_true < hi)]):+.2f}"
              for lo, hi in bands) + f"; median |error| {np.median(np.abs(el_pred - el_true)[~wrong]):.2f} deg")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], *(int(a) for a in sys.argv[4:6]))
