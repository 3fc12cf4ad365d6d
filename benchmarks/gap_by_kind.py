"""Where does a chair run's Chamfer gap to a reference run lie: on stools, armchairs or plain
chairs? The procedural generator (``ssl3d.data.synth.chair``) makes some chairs stools (no back:
a stool repeats after a quarter turn on four legs, a fifth or a quarter on a star base, any turn
on a disc foot, so its azimuth is ambiguous up to that turn) and gives some armrests. Shape i of ``ssl3d synth --seed S`` depends only on (S, i), so each test model's kind is
read back by generating it again and noting which parts the generator built.

For each evaluated run (the reference first) it prints the share of stools among its wrongly
posed test images and, per kind:
- the share of test models and the pose accuracy at 30 deg;
- the mean silhouette IoU of each cloud seen from its predicted view against the input mask
  (does the cloud explain its image?);
- the predicted elevation's error in the ground truth's frame: its median size, and its mean
  (positive when the camera is put too high);
- the mean Chamfer x1000, and with --turns the mean Chamfer x1000 of each cloud turned about the
  vertical by the angle (5 deg steps) that brings it nearest its ground truth (an oracle: is the
  cloud a right shape turned?);
- after the reference, the kind's part of the gap: its share times the difference of the two
  runs' means there (the parts sum to the gap of the means).
Below each run, for the stools on four legs (a quarter turn maps one onto itself), the median
azimuth error folded to within a quarter turn (0-45 deg; about 22.5 if the azimuths were random)
beside the same for the chairs without arms, as a control. With --hypotheses, for each run first, the
same folded error (stools on four legs, chairs, armchairs) of the hypothesis its selector picks
and of the best of its pose hypotheses (an oracle: does some hypothesis read the azimuth?), and
the median relative gap by which the second-best hypothesis explains an image worse than the
best (training's selection scores; near 0 where the cloud cannot tell them apart). With more than one run after the reference, the same pooled over those runs (pass runs of one
recipe), and for all but the stools. With --stools, each run's stools' mean Chamfer x1000 by base
(the generator's BASES: four legs, splayed legs, a pedestal) and for the wider and the narrower
half of the stools (width, the larger of the x and z extents of the ground truth, over height).

    python benchmarks/gap_by_kind.py DATA_DIR REFERENCE_RUN RUN... [--synth-seed 0] [--turns] [--hypotheses] [--stools]
    (DATA_DIR/chair, made by benchmarks/make_procedural.sh; each run after ssl3d evaluate)
"""

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import torch

import ssl3d.data.synth.chair as chair_synth
from ssl3d.data.synth import shape_rng
from ssl3d.evaluation.evaluate import find_checkpoint, silhouette_fit
from ssl3d.ops import chamfer_distance, normalize_unit_box
from ssl3d.training.checkpoint import load_models
from ssl3d.training.losses import reprojection_scores

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import best_rotations, load_run, turn_y, view_in_frame  # noqa: E402

KINDS = ("stool", "armchair", "chair")


def chair_kind(seed: int, index: int) -> tuple[str, str]:
    """The kind of procedural chair ``index`` of ``ssl3d synth --seed seed`` and its base (the
    generator's BASES): generated again, with the back and arms builders wrapped to note their
    calls; the base is the generator's first draw."""
    base = chair_synth._choice(shape_rng(seed, index), chair_synth.BASES, p=chair_synth.BASE_P)
    built = []
    back, arms = chair_synth.back, chair_synth.arms

    def noting(name, builder):
        return lambda *a, **k: (built.append(name), builder(*a, **k))[1]

    chair_synth.back, chair_synth.arms = noting("back", back), noting("arms", arms)
    try:
        chair_synth.generate_chair(shape_rng(seed, index))
    finally:
        chair_synth.back, chair_synth.arms = back, arms
    return "stool" if "back" not in built else "armchair" if "arms" in built else "chair", base


def model_index(model: str) -> int:
    """chair_00123 -> 123 (the synth's file names)."""
    m = re.fullmatch(r"chair_(\d+)", model)
    if m is None:
        raise ValueError(f"{model!r} is not a procedural chair's name (chair_NNNNN)")
    return int(m.group(1))


def view_errors(pred_views: torch.Tensor, true_views: torch.Tensor, rot: torch.Tensor) -> np.ndarray:
    """Predicted minus true (azimuth wrapped to [-180, 180), elevation) in degrees, the prediction
    taken into the ground truth's frame by ``rot`` (as the pose error is). pred_views,
    true_views: (M, 2). Returns (M, 2)."""
    pred = torch.stack(view_in_frame(pred_views, rot), -1)  # (M, 2)
    diff = np.degrees((pred - true_views.float()).numpy())
    diff[:, 0] = (diff[:, 0] + 180) % 360 - 180
    return diff


def folded(azimuth_error: np.ndarray, period: float = 90.0) -> np.ndarray:
    """Distance in degrees from each azimuth error to the nearest multiple of ``period``."""
    r = np.mod(azimuth_error, period)
    return np.minimum(r, period - r)


def best_turn_chamfer(xyz: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
    """Per cloud, the Chamfer x1000 after the turn about the vertical (0, 5, ..., 355 deg) that
    brings it nearest its ground truth. xyz, gt: (M, N, 3) in the ground truth's frame."""
    return best_rotations(xyz, gt, torch.stack([turn_y(angle) for angle in range(0, 360, 5)]))[1].numpy()


@torch.no_grad()
def hypothesis_errors(run: str, pred, images: torch.Tensor, masks: torch.Tensor,
                      true_views: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The azimuth error, folded to a quarter turn, of the hypothesis the run's selector picks and
    of each of its pose hypotheses, in the ground truth's frame; and how much worse than the best
    the second-best hypothesis explains each image (relative gap of training's selection scores:
    near 0 where the cloud cannot tell the hypotheses apart). pred: the run's predictions file
    (its clouds, colours and fitted rotation, so the reconstruction net is not run again);
    images: (M, 3, S, S); masks: (M, S, S); true_views: (M, 2). Returns (M,), (M, H), (M,)."""
    _, pose, cfg = load_models(find_checkpoint(run))[:3]
    hyp, logits = pose(images, all_hypotheses=True)  # (M, H, 2), (M, H)
    chosen = hyp[torch.arange(len(hyp)), logits.argmax(1)]
    rot = torch.from_numpy(pred["rotation"]).float()
    fold = lambda views: folded(view_errors(views, true_views, rot)[:, 0])  # noqa: E731
    xyz, rgb = (torch.from_numpy(pred[k]).float() for k in ("xyz", "rgb"))  # network frame
    gaps = []
    for i in range(0, len(images), 100):  # in chunks: H projections per image
        scores = reprojection_scores(xyz[i:i + 100], rgb[i:i + 100], hyp[i:i + 100], images[i:i + 100],
                                     masks[i:i + 100].float(), cfg)
        two = scores.sort(1).values[:, :2]  # (chunk, 2): the best and the second best
        gaps.append((two[:, 1] - two[:, 0]) / two[:, 0].clamp_min(1e-12))
    return fold(chosen), np.stack([fold(hyp[:, j]) for j in range(hyp.shape[1])], 1), torch.cat(gaps).numpy()


def main(data: str, runs: list[str], seed: int, turns: bool, hypotheses: bool = False,
         stools: bool = False) -> None:
    rows, kinds = [], None
    for run in runs:
        pred, test, raw, xyz, gt = load_run(data, "chair", run)
        models = [str(m) for m in pred["models"]]
        if kinds is None:
            first_models = models
            kinds, bases = map(np.array, zip(*[chair_kind(seed, model_index(m)) for m in models]))
            legged = (kinds == "stool") & np.isin(bases, ("four", "splayed"))
            if stools:  # each stool's width (the larger of x and z) over its height (y), truth's frame
                ext = gt.amax(1) - gt.amin(1)  # (M, 3)
                aspect = (torch.maximum(ext[:, 0], ext[:, 2]) / ext[:, 1]).numpy()
                wide_limit = np.median(aspect[kinds == "stool"])
        elif models != first_models:
            raise ValueError(f"{run}: its test models differ from the first run's")
        cd = 1000 * chamfer_distance(normalize_unit_box(xyz), normalize_unit_box(gt), "none").numpy()
        cfg = load_models(find_checkpoint(run))[2]
        iou = silhouette_fit(raw, torch.from_numpy(pred["rgb"]).float(),
                             torch.from_numpy(pred["viewpoints"]).float(), test.masks.float(), cfg)["iou"].numpy()
        az_err, elev = view_errors(torch.from_numpy(pred["viewpoints"]), test.viewpoints,
                                   torch.from_numpy(pred["rotation"]).float()).T
        turned = best_turn_chamfer(xyz, gt) if turns else None
        if hypotheses:  # printed at once: the per-run lines below do not carry them
            chosen, each, gap = hypothesis_errors(run, pred, test.images, test.masks, test.viewpoints)
            cells = [f"{name} ({k.sum()}) {np.median(chosen[k]):.1f} / {np.median(each[k].min(1)):.1f} deg "
                     f"(within 10 deg: {np.mean(chosen[k] < 10):.0%} / {np.mean(each[k].min(1) < 10):.0%}; "
                     f"second-best score gap median {np.median(gap[k]):.3f})"
                     for name, k in (("stools on four legs", legged), ("chairs", kinds == "chair"),
                                     ("armchairs", kinds == "armchair"))]
            print(f"{run}: azimuth error folded to a quarter turn, median, of the selected / the best of "
                  f"its {each.shape[1]} pose hypotheses: " + "; ".join(cells))
        rows.append((run, cd, pred["pose_error_deg"] <= 30, iou, elev, turned, az_err))
    ref_cd = rows[0][1]
    for i, (run, cd, right, iou, elev, turned, az_err) in enumerate(rows):
        lines, parts = [], []
        for kind in KINDS:
            k = kinds == kind
            line = (f"  {kind}: {k.mean():.1%} of {len(k)}, pose {right[k].mean():.1%}, "
                    f"IoU {iou[k].mean():.3f}, elevation error median {np.median(np.abs(elev[k])):.1f} "
                    f"deg, mean {elev[k].mean():+.1f}; Chamfer {cd[k].mean():.2f}")
            if turned is not None:
                line += f", best turn {turned[k].mean():.2f}"
            if i > 0:
                parts.append(k.mean() * (cd[k].mean() - ref_cd[k].mean()))
                line += (f" ({cd[k].mean() / ref_cd[k].mean():.2f}x the reference's; part of the "
                         f"gap {parts[-1]:+.2f})")
            lines.append(line)
        share = f"{np.mean(kinds[~right] == 'stool'):.1%}" if (~right).any() else "- (none wrongly posed)"
        head = f"{run}: Chamfer {cd.mean():.2f}, pose {right.mean():.1%}; stools among its wrongly posed {share}"
        if i > 0:
            head += f"; gap to the reference {cd.mean() - ref_cd.mean():+.2f} (parts sum {sum(parts):+.2f})"
        lines.append(f"  azimuth error folded to a quarter turn, median: stools on four legs "
                     f"({legged.sum()}) {np.median(folded(az_err[legged])):.1f} deg, chairs "
                     f"{np.median(folded(az_err[kinds == 'chair'])):.1f} deg")
        if stools:
            s = kinds == "stool"
            cells = [f"{b} ({(s & (bases == b)).sum()}) {cd[s & (bases == b)].mean():.2f}"
                     for b in chair_synth.BASES if (s & (bases == b)).any()]
            lines.append(f"  stools by base: {', '.join(cells)}; the wider half (width / height >= "
                         f"{wide_limit:.2f}) {cd[s & (aspect >= wide_limit)].mean():.2f}, the narrower "
                         f"{cd[s & (aspect < wide_limit)].mean():.2f}")
        print("\n".join([head] + lines))
    if len(rows) > 2:  # the runs after the reference, pooled (pass runs of one recipe for this)
        cds = np.stack([row[1] for row in rows[1:]])  # (R, M)
        print(f"mean over the {len(rows) - 1} runs after the reference: Chamfer {cds.mean():.2f} "
              f"against {ref_cd.mean():.2f} ({cds.mean() / ref_cd.mean():.2f}x)")
        for kind in KINDS:
            k = kinds == kind
            print(f"  {kind}: {cds[:, k].mean():.2f} against {ref_cd[k].mean():.2f} "
                  f"({cds[:, k].mean() / ref_cd[k].mean():.2f}x); part of the gap "
                  f"{k.mean() * (cds[:, k].mean() - ref_cd[k].mean()):+.2f}")
        k = kinds != "stool"
        print(f"  all but the stools: {cds[:, k].mean():.2f} against {ref_cd[k].mean():.2f} "
              f"({cds[:, k].mean() / ref_cd[k].mean():.2f}x)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("runs", nargs="+", help="the reference run first")
    ap.add_argument("--synth-seed", type=int, default=0, help="the seed ssl3d synth made the meshes with")
    ap.add_argument("--turns", action="store_true", help="also the best-turn oracle (slower)")
    ap.add_argument("--hypotheses", action="store_true",
                    help="also each run's pose hypotheses: the folded azimuth error of the selected one and of the best")
    ap.add_argument("--stools", action="store_true",
                    help="also each run's stools' Chamfer by base, and for the wider and narrower half")
    a = ap.parse_args()
    main(a.data, a.runs, a.synth_seed, a.turns, a.hypotheses, a.stools)
