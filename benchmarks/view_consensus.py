"""Do independently trained self-supervised runs pose the same training images wrong?
If their errors are independent, the views on which most runs agree could correct the first
run's wrongly posed images without any label, which session 22 found hold the shapes back most
(``--true-views-for wrong``). On the training split of DATA_DIR, each run's frame is taken into
the first run's by a rotation fitted between their clouds of the validation images (label-free,
as ``ssl3d evaluate`` fits one to the ground truth); then, per image, the largest group of runs
whose viewing directions lie within 30 deg of one member's gives the consensus view (their mean
direction). Printed with the ground truth (first run's rotation into its frame, fitted on the
validation split): each run's pose accuracy, how often two runs are wrong on the same image,
and for each group size the share of images, the consensus's accuracy and how many of the first
run's wrong / right views it would change to right / wrong. With --out PREFIX it writes pose
labels for ``--pose-labels FILE`` (self-training; all in the first run's frame):

- PREFIX_agree.pt: the images on which every run agrees, labelled with the consensus (no ground
  truth used);
- PREFIX_all.pt: every image, labelled with the first run's view, or with the consensus where a
  group of at least MIN_AGREE runs (default a majority) disagrees with it (no ground truth used);
- controls on the images of PREFIX_agree.pt, which read the ground truth (taken into the first
  run's frame): PREFIX_agree_true.pt their true viewpoints; _agree_first.pt the first run's own
  views; _agree_imprecise.pt the consensus where it is right, the truth where it is wrong (the
  consensus's imprecision alone); _agree_wrongonly.pt the truth where the consensus is right,
  the consensus where it is wrong (its wrong labels alone); _agree_elev.pt the truth with its
  elevation moved onto the least-squares line of the consensus's elevation against it (the
  consensus's systematic elevation bias alone).

With --reference RUN (a pose-supervised run, trained on the true viewpoints of the same images)
it also prints how often that run's pose net poses each group's images right: can a pose net
learn the views the self-supervised runs get wrong, given labels? And, for the images the first
run poses wrong, whether training's selection score (the first run's settings) prefers the
first run's wrong view to the true one even for the reference's cloud, drawn to fit the true
view: is the wrong view a better fit of the loss itself, or only of the cloud drawn for it?

    python benchmarks/view_consensus.py DATA_DIR CATEGORY RUN0 RUN1 [RUN...] [--out PREFIX]
        [--min-agree K] [--reference RUN]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from ssl3d import camera
from ssl3d.data.dataset import load_split
from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import alignment_settings, find_checkpoint, predict
from ssl3d.training.checkpoint import load_checkpoint, models_from_checkpoint, save_pose_labels

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import view_in_frame  # noqa: E402
from view_candidates import scores  # noqa: E402

AGREE_DEG = 30.0  # runs agree on an image when their views lie this close
RIGHT_DEG = 30.0  # the protocol's pose accuracy threshold


def in_frame(views: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Viewpoints (M, 2) with their viewing directions turned by ``rot`` (3, 3), as (M, 2)."""
    return torch.stack(view_in_frame(views, rot), -1)


def run_name(path: Path) -> str:
    """A run's name for the printout: its folder's for a run's own nn.pt / cc.pt."""
    return path.parent.name if path.name in ("nn.pt", "cc.pt") else path.stem


def consensus(dirs: torch.Tensor, agree_deg: float = AGREE_DEG) -> tuple[torch.Tensor, torch.Tensor]:
    """dirs: (M, R, 3) unit viewing directions of R runs in one frame. For each image, the member
    with the most runs within agree_deg of it (ties: the lower run index) and those runs' mean
    direction. Returns the mean directions (M, 3) and the group sizes (M,)."""
    close = torch.rad2deg(camera.angle_between(dirs[:, :, None], dirs[:, None, :])) <= agree_deg
    size, centre = close.sum(-1).max(-1)  # (M,): argmax takes the first maximum
    members = close[torch.arange(len(dirs)), centre]  # (M, R)
    mean = (dirs * members[..., None]).sum(1)
    return mean / mean.norm(dim=-1, keepdim=True), size


def main(data: str, category: str, runs: list[str], out: str | None, min_agree: int | None,
         reference: str | None = None) -> None:
    if len(runs) < 2:
        raise SystemExit("view_consensus: give at least two runs")
    min_agree = min_agree or len(runs) // 2 + 1
    if not 1 <= min_agree <= len(runs):
        raise SystemExit(f"view_consensus: --min-agree must be in [1, {len(runs)}], got {min_agree}")
    val = train = None
    names, val_xyz, views, gt_rot = [], [], [], []
    for run in runs:
        path = find_checkpoint(run)
        ckpt = load_checkpoint(path)
        recon, pose, cfg = models_from_checkpoint(ckpt, path)
        if ckpt.get("category") not in (None, "", category):
            raise SystemExit(f"view_consensus: {path} was trained on {ckpt['category']!r}, not {category!r}")
        if val is None:
            image_size = cfg.image_size
            val = load_split(data, category, "val", image_size, progress=False)
            train = load_split(data, category, "train", image_size, progress=False)
        elif cfg.image_size != image_size:
            raise SystemExit(f"view_consensus: {path} works at {cfg.image_size} px, the first run "
                             f"at {image_size}")
        names.append(run_name(path))
        xyz, _, _ = predict(recon, pose, val.images)
        val_xyz.append(xyz)
        pred = predict(recon, pose, train.images)  # xyz, rgb, views
        views.append(pred[2])
        if len(names) == 1:  # the first run's clouds and settings, for --reference
            first_xyz, first_rgb, first_cfg = pred[0], pred[1], cfg
        gt_rot.append(M.fit_global_rotation(xyz, val.clouds,
                                            **alignment_settings(torch.device("cpu"))).matrix())
    truth = train.viewpoints
    wrong = np.stack([M.pose_errors(v, truth, r) > RIGHT_DEG for v, r in zip(views, gt_rot)])
    print(f"{len(train)} training images, {len(runs)} runs: " + "; ".join(
        f"{n} {100 * (1 - w.mean()):.1f}% right" for n, w in zip(names, wrong)))
    both = [(wrong[i] & wrong[j]).mean() / max(wrong[i].mean() * wrong[j].mean(), 1e-9)
            for i in range(len(runs)) for j in range(i + 1, len(runs))]
    print(f"two runs both wrong on an image: {np.mean(both):.1f}x as often as if their errors "
          f"were independent (mean over pairs, range {min(both):.1f}-{max(both):.1f})")
    shared = [(wrong[i] & wrong[j]).sum() / max(wrong[i].sum(), 1)
              for i in range(len(runs)) for j in range(len(runs)) if i != j]
    print(f"of one run's wrong views, {100 * np.mean(shared):.1f}% are wrong in another run too "
          f"(mean over ordered pairs, range {100 * min(shared):.1f}-{100 * max(shared):.1f}%)")

    # Every run's views in the first run's frame: its rotation onto the first run's clouds.
    dirs = [camera.viewing_direction(views[0].float())]
    for k in range(1, len(runs)):
        rot = M.fit_global_rotation(val_xyz[k], val_xyz[0],
                                    **alignment_settings(torch.device("cpu"))).matrix()
        dirs.append(camera.viewing_direction(views[k].float()) @ rot.T)
    dirs = torch.stack(dirs, 1)  # (M, R, 3)
    mean, size = consensus(dirs)
    view = camera.viewpoint_from_direction(mean)
    right = M.pose_errors(view, truth, gt_rot[0]) <= RIGHT_DEG
    true0 = in_frame(truth, gt_rot[0].T)  # the true views in the first run's frame
    first_off = torch.rad2deg(camera.angle_between(mean, dirs[:, 0])).numpy() > AGREE_DEG
    size = size.numpy()
    print(f"consensus group of K runs within {AGREE_DEG:.0f} deg of one member: share of images, "
          f"consensus right, and where it disagrees with the first run's view: first run wrong "
          f"-> consensus right / first run right -> consensus wrong (images)")
    for k in range(1, len(runs) + 1):
        at = size == k
        if not at.any():
            continue
        moved = at & first_off
        print(f"  K = {k}: {100 * at.mean():5.1f}% of images, consensus right {100 * right[at].mean():5.1f}%; "
              f"disagrees with the first run on {moved.sum()}: fixes {(moved & wrong[0] & right).sum()}, "
              f"breaks {(moved & ~wrong[0] & ~right).sum()}, "
              f"wrong either way {(moved & wrong[0] & ~right).sum()}")
    change = (size >= min_agree) & first_off
    fixed = (change & wrong[0] & right).sum()
    print(f"changing the first run's view where >= {min_agree} runs agree elsewhere: {change.sum()} "
          f"images; of its {wrong[0].sum()} wrong views {fixed} made right, "
          f"{(change & ~wrong[0] & ~right).sum()} right views made wrong")
    agree = size == len(runs)
    print(f"all {len(runs)} agree on {100 * agree.mean():.1f}%: consensus right {100 * right[agree].mean():.1f}%, "
          f"median error of the consensus / the first run there "
          f"{np.median(M.pose_errors(view[agree], truth[agree], gt_rot[0])):.2f} / "
          f"{np.median(M.pose_errors(views[0][agree], truth[agree], gt_rot[0])):.2f} deg")
    if reference:
        path = find_checkpoint(reference)
        ckpt = load_checkpoint(path)
        recon, pose, cfg = models_from_checkpoint(ckpt, path)
        if (cfg.image_size != image_size or cfg.supervision != "pose"
                or ckpt.get("category") not in (None, "", category)):
            raise SystemExit(f"view_consensus: --reference {path} must be a pose-supervised "
                             f"{category} run at {image_size} px")
        xyz, _, _ = predict(recon, pose, val.images)
        rot = M.fit_global_rotation(xyz, val.clouds, **alignment_settings(torch.device("cpu"))).matrix()
        ref_xyz, ref_rgb, ref_views = predict(recon, pose, train.images)
        ref_right = M.pose_errors(ref_views, truth, rot) <= RIGHT_DEG
        print(f"the pose-supervised {run_name(path)} poses {100 * ref_right.mean():.1f}% of these "
              f"training images right; by group: " + "; ".join(
                  f"{label} ({m.sum()}) {100 * ref_right[m].mean():.1f}%" for label, m in (
                      ("all agree, consensus right", agree & right),
                      ("all agree, consensus wrong", agree & ~right),
                      ("not all agree", ~agree), ("the first run poses wrong", wrong[0]))))
        # Training's selection score (the first run's settings) of each answer on every image:
        # the first run's cloud from its view, the reference's from the true view (in its frame:
        # the data's, as it trained at the true views, up to its fitted rotation rot).
        imgs, msks = train.images, train.masks
        own = scores(first_xyz, first_rgb, views[0].float()[:, None], imgs, msks, first_cfg)[:, 0]
        ref = scores(ref_xyz, ref_rgb, in_frame(truth, rot.T)[:, None], imgs, msks, first_cfg)[:, 0]
        # And, where the first run poses wrong, each cloud from the other view.
        w = torch.from_numpy(wrong[0])
        ref_at_v0 = scores(ref_xyz[w], ref_rgb[w], in_frame(views[0][w], rot.T @ gt_rot[0])[:, None],
                           imgs[w], msks[w], first_cfg)[:, 0]
        own_at_true = scores(first_xyz[w], first_rgb[w], true0[w][:, None], imgs[w], msks[w],
                             first_cfg)[:, 0]
        for label, at_true, at_v0 in (("the reference's cloud", ref[w], ref_at_v0),
                                      ("its own cloud", own_at_true, own[w])):
            print(f"on the {int(w.sum())} images the first run poses wrong, {label} explains the "
                  f"image better from the first run's view than from the true one for "
                  f"{100 * (at_v0 < at_true).float().mean():.1f}% (training's selection score; "
                  f"median ratio wrong / true {(at_v0 / at_true).median():.2f})")
        print(f"  the first run's own answer (its cloud from its view) scores {own[w].median():.4f}, "
              f"the reference's (its cloud from the true view) {ref[w].median():.4f} (medians); "
              f"the first run's is the better fit for {100 * (own[w] < ref[w]).float().mean():.1f}%")
        # Does its own fit flag the wrong ones, and is the reference ahead on them by more than
        # on the rightly posed ones (a better model anyway)?
        bad, good = own[w], own[~w]
        auc = (bad[:, None] > good[None, :]).float().mean()  # P(a wrong one scores worse)
        print(f"  on the images it poses right the two score {good.median():.4f} and "
              f"{ref[~w].median():.4f}: the reference is ahead by a median factor "
              f"{(own / ref)[~w].median():.2f} there, {(own / ref)[w].median():.2f} on the wrong ones; "
              f"a wrongly posed image scores worse than a rightly posed one under the first run "
              f"with probability {auc:.3f} (0.5: its score does not tell them apart)")
    if out:
        runs_info = ",".join(str(find_checkpoint(r).resolve()) for r in runs)
        keep_agree = torch.from_numpy(agree).nonzero()[:, 0]
        chosen = torch.where(torch.from_numpy(change)[:, None], view, views[0].float())
        right_t = torch.from_numpy(right)[:, None]
        slope, icept = np.polyfit(true0[agree & right, 1].numpy(), view[agree & right, 1].numpy(), 1)
        print(f"consensus elevation against the true one (all agree, right): slope {slope:.3f}, "
              f"intercept {np.degrees(icept):.2f} deg")
        elev = torch.stack([true0[:, 0], slope * true0[:, 1] + icept], 1)
        for suffix, labels, keep in (("agree", view, keep_agree),
                                     ("all", chosen, torch.arange(len(train))),
                                     ("agree_true", true0, keep_agree),
                                     ("agree_first", views[0].float(), keep_agree),
                                     ("agree_imprecise", torch.where(right_t, view, true0), keep_agree),
                                     ("agree_wrongonly", torch.where(right_t, true0, view), keep_agree),
                                     ("agree_elev", elev, keep_agree)):
            save_pose_labels(f"{out}_{suffix}.pt", train.models, train.views, labels, keep,
                             source=f"benchmarks/view_consensus.py {suffix}", runs=runs_info,
                             min_agree=min_agree)
            print(f"wrote {out}_{suffix}.pt: {len(keep)} images")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("runs", nargs="+", help="run folders or checkpoints; the first sets the frame")
    ap.add_argument("--out", help="write the labels files PREFIX_*.pt")
    ap.add_argument("--min-agree", type=int, help="group size that overrules the first run "
                    "(default: a majority)")
    ap.add_argument("--reference", help="a pose-supervised run: how often it poses each group right")
    a = ap.parse_args()
    main(a.data, a.category, a.runs, a.out, a.min_agree, a.reference)
