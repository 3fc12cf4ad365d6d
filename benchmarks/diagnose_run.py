"""Why is an evaluated run's Chamfer what it is? Reads RUN/predictions_test.npz (written by
``ssl3d evaluate``) and the test split's ground truth, and prints:

- per-cloud Chamfer quantiles (a few bad clouds, or all of them?);
- stray points: the share of predicted points farther than 2x the ground truth's largest radius
  from the cloud's median, and how much the unit-box rescaling shrinks the cloud because of them
  (the longest box side over that of the central 98 % of its points);
- the Chamfer again after dropping each cloud's 2 % of points farthest from its median (a
  diagnostic only: the protocol keeps every point);
- the Chamfer's two halves (prediction -> truth, truth -> prediction) and each axis's point spread,
  against the ground truth's (bunched points);
- where the surface is left bare: the truth -> prediction half by height third of the ground
  truth (legs, seat, back on a chair), with each third's share of the points;
- pose error quantiles, and where the pose is right its median azimuth and elevation error and
  the Chamfer by pose error (0-5 / 5-10 / 10-20 / 20-30 deg);
- colour: the clouds' mean RGB and spread within an object, against the inputs' pixels inside
  their masks (is the colour learnt at all?);
- the vertical plane the predictions are most symmetric about, in the network's own frame
  (where the symmetry term's fixed plane x = 0 lies relative to the shapes);
- front/back flips: the share of clouds that match the ground truth better once turned half a
  turn about the vertical axis, and the Chamfer if they were turned;
- wrong poses: pose accuracy by predicted azimuth, and the share of views more than 30 deg off
  whose azimuth is within 20 deg of minus the true one (seen mirrored front to back); by the
  true view (along z, along x, between), the pose accuracy, the Chamfer where the pose is right
  and where it is wrong, how far the wrong azimuths are off (a quarter turn or a half), and,
  where the pose is right, the point spread along the true horizontal viewing direction and
  across it, each over the ground truth's (a cloud flattened towards the camera has the first
  lower);
- with --turns, an oracle: each cloud turned about the network's vertical axis by the angle (5 deg
  steps) that brings it nearest its ground truth, scored on whole clouds as the evaluation scores
  (slow: a few minutes for 600 clouds on 2 CPU cores). If that barely lowers the Chamfer, the clouds
  are wrong in shape, not right shapes turned, and no per-image re-orientation can help. Then,
  from there, a tilt of up to 15 deg about both horizontal axes (a cloud leaning by the pose's
  elevation error).

With --picture PATH it also writes a grid of the 4 best and 4 worst test clouds.

    python benchmarks/diagnose_run.py DATA_DIR CATEGORY RUN_DIR [--picture PATH] [--turns]
"""

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from ssl3d import camera
from ssl3d.data.dataset import load_split
from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import find_checkpoint
from ssl3d.evaluation.visualize import reconstruction_grid
from ssl3d.ops import chamfer_distance, normalize_unit_box
from ssl3d.ops.chamfer import nearest_sq_dist
from ssl3d.training.checkpoint import load_checkpoint
from ssl3d.training.losses import best_vertical_plane, vertical_mirror


def trimmed(xyz: torch.Tensor, keep: float) -> torch.Tensor:
    """Each cloud's ``keep`` share of points nearest its median. xyz: (M, N, 3)."""
    dist = (xyz - xyz.median(1, keepdim=True).values).norm(dim=-1)  # (M, N)
    idx = dist.argsort(1)[:, : int(keep * xyz.shape[1])]
    return torch.gather(xyz, 1, idx.unsqueeze(-1).expand(-1, -1, 3))


def half_turn(xyz: torch.Tensor) -> torch.Tensor:
    """Clouds turned by pi about the vertical (y) axis. xyz: (..., 3)."""
    return torch.stack([-xyz[..., 0], xyz[..., 1], -xyz[..., 2]], -1)


def load_run(data: str, category: str, run: str):
    """A run's test predictions and their ground truth: (predictions file, test views, clouds in
    the network's frame (M, N, 3), the same rotated into the ground truth's frame, ground truth)."""
    pred = np.load(Path(run) / "predictions_test.npz")
    size = load_checkpoint(find_checkpoint(run))["config"]["image_size"]  # the run's cached size
    test = load_split(data, category, "test", size, progress=False)
    raw = torch.from_numpy(pred["xyz"]).float()
    xyz = M.rotate(raw, torch.from_numpy(pred["rotation"]).float())
    return pred, test, raw, xyz, test.clouds.float()


def chamfer_turned(xyz: torch.Tensor, gt: torch.Tensor):
    """Per-cloud Chamfer x1000 to the ground truth as predicted and turned half a turn, and which
    clouds are reversed (at least 10% nearer turned). xyz, gt: (M, N, 3) in one frame."""
    score = lambda p: 1000 * chamfer_distance(normalize_unit_box(p), normalize_unit_box(gt),  # noqa: E731
                                              "none").numpy()
    cd, cd_turn = score(xyz), score(half_turn(xyz))
    return cd, cd_turn, cd_turn < 0.9 * cd


def view_in_frame(views: torch.Tensor, rot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Azimuths and elevations (radians, each (M,)) of predicted viewpoints (M, 2) once their
    viewing directions are taken into the ground-truth frame by ``rot`` (3, 3), in the camera
    module's convention."""
    return camera.viewpoint_from_direction(camera.viewing_direction(views.float()) @ rot.T).unbind(-1)


def azimuth_in_frame(views: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """The azimuths (M,) of :func:`view_in_frame`."""
    return view_in_frame(views, rot)[0]


POSE_BINS = ((-1, 5), (5, 10), (10, 20), (20, 30))  # pose error (deg) bins within "right", (lo, hi]


def by_pose_error(cd: np.ndarray, err: np.ndarray, sep: str = " / ") -> str:
    """Mean Chamfer per POSE_BINS bin of ``err`` (deg), with the bin's share of the images."""
    cells = []
    for lo, hi in POSE_BINS:
        sel = (err > lo) & (err <= hi)
        cells.append(f"{cd[sel].mean():.2f} ({sel.mean():.0%})" if sel.any() else "- (0%)")
    return sep.join(cells)


def view_groups(az_true: np.ndarray) -> dict[str, np.ndarray]:
    """Test images by their true azimuth (radians): within 30 deg of the z axis (a procedural
    chair, which faces +z, seen from the front or back), of the x axis (a side), or between."""
    along_z = np.abs(np.sin(az_true)) > math.sin(math.radians(60))
    along_x = np.abs(np.cos(az_true)) > math.cos(math.radians(30))
    return {"along z +-30 deg": along_z, "along x +-30 deg": along_x, "between": ~along_z & ~along_x}


def turn_y(deg: float) -> torch.Tensor:
    """Rotation (3, 3) by ``deg`` degrees about the y (vertical) axis."""
    zero = torch.tensor(0.0)
    return camera.rotation_from_euler(torch.tensor(math.radians(deg)), zero, zero)


def best_rotations(clouds: torch.Tensor, gt: torch.Tensor, rotations: torch.Tensor,
                   chunk: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Oracle: per cloud, which of ``rotations`` brings it nearest its ground truth, scored as the
    evaluation scores (Chamfer x1000 of the whole clouds, each scaled to the unit box after the
    rotation). clouds: (M, N, 3) and gt: (M, P, 3) in one frame; rotations: (R, 3, 3). Returns
    the best index (M,) and its Chamfer x1000 (M,); include the identity to never do worse."""
    target = normalize_unit_box(gt)
    score = torch.empty(len(rotations), len(clouds))
    for i, r in enumerate(rotations):
        for j in range(0, len(clouds), chunk):  # chunks keep the pairwise distances small
            turned = normalize_unit_box(M.rotate(clouds[j:j + chunk], r))
            score[i, j:j + chunk] = 1000 * chamfer_distance(turned, target[j:j + chunk], "none")
    best, idx = score.min(0)
    return idx, best


def reversal_groups(flipped: np.ndarray, pose_error_deg: np.ndarray) -> tuple:
    """(name, boolean mask) of the kept clouds, the reversed ones seen from more than 90 deg off
    (the wrong side) and the reversed ones seen from the right view (a wrong shape)."""
    off = pose_error_deg > 90
    return (("kept", ~flipped), ("reversed, view > 90 deg off", flipped & off),
            ("reversed, view right", flipped & ~off))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("run")
    ap.add_argument("--picture", default="")
    ap.add_argument("--turns", action="store_true", help="also the oracle best-turn Chamfer (slow)")
    a = ap.parse_args()
    pred, test, raw, xyz, gt = load_run(a.data, a.category, a.run)
    q = lambda v: " ".join(f"{x:.2f}" for x in np.quantile(v, [0.1, 0.5, 0.9, 1.0]))  # noqa: E731

    cd, cd_turn, flipped = chamfer_turned(xyz, gt)
    print(f"{a.run}: Chamfer x1000 mean {cd.mean():.2f}, p10/p50/p90/max {q(cd)}")
    centre = xyz.median(1, keepdim=True).values
    r_gt = (gt - gt.median(1, keepdim=True).values).norm(dim=-1).amax(1)  # (M,)
    far = ((xyz - centre).norm(dim=-1) > 2 * r_gt[:, None]).float().mean(1)
    side = lambda p: (p.amax(1) - p.amin(1)).amax(-1)  # noqa: E731
    shrink = (side(xyz) / side(trimmed(xyz, 0.98))).numpy()
    print(f"  stray points (>2x gt radius): mean {far.mean():.2%}, clouds with any "
          f"{(far > 0).float().mean():.1%}; box side / central-98% side p10/p50/p90/max {q(shrink)}")
    ext_p = (xyz.amax(1) - xyz.amin(1)).mean(0).tolist()
    ext_g = (gt.amax(1) - gt.amin(1)).mean(0).tolist()
    print("  mean box extents x/y/z: predicted " + " ".join(f"{v:.3f}" for v in ext_p)
          + ", ground truth " + " ".join(f"{v:.3f}" for v in ext_g))
    t = trimmed(xyz, 0.98)
    cd_t = 1000 * chamfer_distance(normalize_unit_box(t), normalize_unit_box(gt), "none").numpy()
    print(f"  Chamfer x1000 with 2% farthest points dropped: mean {cd_t.mean():.2f}, "
          f"p10/p50/p90/max {q(cd_t)}")
    # The two halves of the Chamfer: points off the surface (prediction -> truth) and surface left
    # bare (truth -> prediction); with each axis's point spread, they show bunched points.
    pn, gn = normalize_unit_box(xyz), normalize_unit_box(gt)
    to_gt, to_pred = (1000 * nearest_sq_dist(a_, b_).mean() for a_, b_ in ((pn, gn), (gn, pn)))
    sd = lambda c: " ".join(f"{v:.3f}" for v in c.std(1).mean(0).tolist())  # noqa: E731
    print(f"  Chamfer x1000 halves: prediction -> truth {to_gt:.2f}, truth -> prediction "
          f"{to_pred:.2f}; point spread (sd, unit box) x/y/z predicted {sd(pn)}, ground truth {sd(gn)}")
    # Where the bare surface lies: the truth -> prediction half by the ground truth point's height
    # (thirds of each cloud's vertical extent: legs, seat, back on a chair), and each third's
    # share of the predicted points against its share of the true ones.
    bare = 1000 * nearest_sq_dist(gn, pn)  # (M, P)
    lo, hi = gn[..., 1].amin(1, keepdim=True), gn[..., 1].amax(1, keepdim=True)
    band_g = ((gn[..., 1] - lo) / (hi - lo) * 3).clamp(0, 2.999).long()  # (M, P) in 0..2
    band_p = ((pn[..., 1] - lo) / (hi - lo) * 3).clamp(0, 2.999).long()  # (M, N), the truth's thirds
    print("  truth -> prediction x1000 by height third (bottom / middle / top), with the share of "
          "predicted / true points there: " + "; ".join(
              f"{bare[band_g == k].mean():.2f} ({(band_p == k).float().mean():.0%} / "
              f"{(band_g == k).float().mean():.0%})" for k in range(3)))
    right = pred["pose_error_deg"] <= 30  # does the shape lag even where the pose is right?
    print(f"  pose error deg p10/p50/p90/max {q(pred['pose_error_deg'])}; Chamfer x1000 with the "
          f"pose within 30 deg {cd[right].mean():.2f} ({right.mean():.1%}), the others "
          f"{cd[~right].mean() if (~right).any() else float('nan'):.2f}")
    rot = torch.from_numpy(pred["rotation"]).float()
    az_p, el_p = (v.numpy() for v in view_in_frame(torch.from_numpy(pred["viewpoints"]), rot))
    az_t = test.viewpoints[:, 0].numpy()
    wrap = lambda v: camera.wrap_angle(torch.from_numpy(v)).numpy()  # noqa: E731
    mirrored = np.abs(wrap(az_p + az_t)) < math.radians(20)
    deg = np.degrees(az_p)
    bins = [(deg >= lo) & (deg < lo + 60) for lo in range(-180, 180, 60)]
    by_bin = " ".join(f"{right[b].mean():.0%}" if b.any() else "-" for b in bins)
    print(f"  views > 30 deg off seen mirrored front to back (azimuth within 20 deg of minus the "
          f"true one): {mirrored[~right].mean() if (~right).any() else 0:.1%}; pose accuracy by "
          f"predicted azimuth (ground-truth frame, 60 deg bins from -180): {by_bin}")
    # By the true view, with how far the wrong ones' azimuths are off.
    off = np.degrees(np.abs(wrap(az_p - az_t)))
    # Pose precision where the pose is right: which angle is off, and does the cloud worsen with
    # the error? (A model trained on its own views learns its shapes at them; the pose-supervised
    # baseline, trained at the true views, is the control.)
    el_off = np.degrees(np.abs(el_p - test.viewpoints[:, 1].numpy()))
    e = pred["pose_error_deg"]
    print(f"  pose right: median error {np.median(e[right]):.1f} deg, median |azimuth difference| "
          f"{np.median(off[right]):.1f}, |elevation difference| {np.median(el_off[right]):.1f}; Chamfer "
          "x1000 by pose error 0-5 / 5-10 / 10-20 / 20-30 deg (share of all images): "
          + by_pose_error(cd, e, sep=" "))
    # Point spread along the true viewing direction's horizontal part (depth, which the outline
    # leaves free) and across it, each against the ground truth's: a cloud flattened towards the
    # camera, as the view prior's sheets were, has the first ratio well below the second.
    u = camera.camera_position(torch.from_numpy(az_t).float(), torch.zeros(len(az_t)), 1.0)
    v = torch.linalg.cross(u, torch.tensor([0.0, 1.0, 0.0]).expand_as(u))  # horizontal, across
    along = lambda c, w: torch.einsum("mnk,mk->mn", c, w).std(1).numpy()  # noqa: E731
    depth_ratio, side_ratio = along(pn, u) / along(gn, u), along(pn, v) / along(gn, v)
    mean_of = lambda x, sel: f"{x[sel].mean():.2f}" if sel.any() else "-"  # noqa: E731
    mean = lambda sel: mean_of(cd, sel)  # noqa: E731
    for name, g in view_groups(az_t).items():
        w = g & ~right
        print(f"  true view {name} ({g.sum()} images): pose accuracy {right[g].mean():.1%}, "
              f"Chamfer x1000 pose right {mean(g & right)}, wrong {mean(w)}; the wrong ones' azimuth "
              f"off by 60-120 deg {(np.abs(off[w] - 90) <= 30).mean() if w.any() else 0:.0%}, "
              f"by over 150 deg {(off[w] > 150).mean() if w.any() else 0:.0%}; pose right: point "
              f"spread / true along the view {mean_of(depth_ratio, g & right)}, across it "
              f"{mean_of(side_ratio, g & right)}")
    if a.turns:
        # Turns about the network's vertical axis (5 deg steps), then from the best one a tilt of
        # up to 15 deg about both horizontal axes of the ground truth (a cloud leaning by the
        # pose's elevation error would straighten). Both grids hold the identity.
        degs = torch.arange(-180, 180, 5)
        turns = torch.stack([rot @ turn_y(float(d)) for d in degs])
        idx, cd_best = best_rotations(raw, gt, turns)
        upright = torch.einsum("mij,mnj->mni", turns[idx], raw)
        steps = [math.radians(d) for d in range(-15, 16, 5)]
        tilts = torch.stack([camera.rotation_from_euler(torch.tensor(0.0), torch.tensor(e),
                                                        torch.tensor(k))
                             for e in steps for k in steps])
        t_idx, cd_tilt = best_rotations(upright, gt, tilts)
        turn, lean = degs[idx].abs().float(), torch.rad2deg(torch.acos(tilts[t_idx][:, 1, 1].clamp(-1, 1)))
        cd_best, cd_tilt = cd_best.numpy(), cd_tilt.numpy()
        print(f"  oracle best turn about the vertical: Chamfer x1000 {cd.mean():.2f} -> "
              f"{cd_best.mean():.2f} (pose within 30 deg {cd[right].mean():.2f} -> "
              f"{cd_best[right].mean():.2f}, the others {cd[~right].mean() if (~right).any() else 0:.2f} -> "
              f"{cd_best[~right].mean() if (~right).any() else 0:.2f}); clouds turned more than 30 deg "
              f"{(turn > 30).float().mean():.1%}, median |turn| {float(turn.median()):.0f} deg")
        print(f"  oracle turn and tilt (+-15 deg about both horizontal axes): Chamfer x1000 "
              f"{cd_tilt.mean():.2f} (pose within 30 deg {cd_tilt[right].mean():.2f}); median tilt of "
              f"the vertical {float(lean.median()):.1f} deg")
    inside = (test.masks > 0.5).unsqueeze(1).float()  # (M, 1, S, S)
    area = inside.sum((2, 3)).clamp(min=1)
    px_mean = (test.images * inside).sum((2, 3)) / area  # (M, 3)
    px_std = (((test.images - px_mean[..., None, None]) ** 2 * inside).sum((2, 3)) / area).sqrt()
    rgb = torch.from_numpy(pred["rgb"]).float()  # (M, N, 3)
    f3 = lambda v: " / ".join(f"{x:.2f}" for x in v.mean(0).tolist())  # noqa: E731
    print(f"  colour: mean RGB of the clouds {f3(rgb.mean(1))}, of the inputs' masked pixels "
          f"{f3(px_mean)}; spread within an object {f3(rgb.std(1))} against {f3(px_std)}")
    few = raw[:64]  # the network's frame
    plane = best_vertical_plane(few, clouds=len(few), points=few.shape[1])
    asym = lambda a: 1000 * float(chamfer_distance(few, vertical_mirror(few, a)))  # noqa: E731
    print(f"  predictions' best vertical symmetry plane (network frame) {float(plane.rad2deg()):.0f} "
          f"deg: asymmetry x1000 there {asym(plane):.3f}, at x = 0 {asym(torch.tensor(0.0)):.3f}")
    print(f"  half-turned clouds (nearer the ground truth turned by pi about y): "
          f"{flipped.mean():.1%}, their Chamfer {cd[flipped].mean() if flipped.any() else 0:.2f} "
          f"-> {cd_turn[flipped].mean() if flipped.any() else 0:.2f}; all clouds with them turned "
          f"{np.where(flipped, cd_turn, cd).mean():.2f}")
    # Which half-turned clouds come with a view more than 90 deg off (seen from the wrong side)
    # and which with the right view (a wrong shape; reversal_groups); flip_analysis.py --parts
    # looks closer.
    off = pred["pose_error_deg"] > 90
    share = lambda sel: f"{off[sel].mean():.1%}" if sel.any() else "-"  # noqa: E731
    print(f"  pose error > 90 deg: half-turned clouds {share(flipped)}, the others {share(~flipped)}")
    if a.picture:
        order = np.argsort(cd)
        pick = np.concatenate([order[:4], order[-4:]])
        views = torch.from_numpy(pred["viewpoints"]).float()
        reconstruction_grid(test.images[pick].permute(0, 2, 3, 1).numpy(), xyz[pick].numpy(),
                            pred["rgb"][pick], test.viewpoints[pick].numpy(), gt[pick].numpy(),
                            a.picture, cell=128)
        print(f"  picture (4 best, 4 worst; clouds in the ground-truth frame): {a.picture}; "
              f"predicted views of those rows {views[pick].numpy().round(2).tolist()}")


if __name__ == "__main__":
    main()
