"""Are an evaluated run's back-to-front clouds a split of the learnt frame, or inputs the network
reads the wrong way round? Reads RUN/predictions_test.npz (written by ``ssl3d evaluate``) and the
test split's ground truth, calls a cloud reversed when, in the ground-truth frame, it is at least
10% nearer its ground truth turned half a turn about the vertical axis, and prints:

- the share reversed (``diagnose_run.py`` says how many of each group have a pose error over
  90 deg);
- in the network's own frame, each reversed cloud's mean Chamfer to its 4 nearest unreversed
  clouds, as it is and turned (a split frame would make the turned distance the smaller);
- the same for the ground-truth shapes of the two groups (do the inputs themselves look turned?);
- with --parts (airplanes), per group (kept; reversed with the view more than 90 deg off;
  reversed with the view right): where along the length axis z the wingtips (the widest points)
  and the fin (the highest points) sit, in the ground truth and in the prediction (both in the
  ground truth's frame, unit box), and how well the predicted wing position follows the true one.

    python benchmarks/flip_analysis.py DATA_DIR CATEGORY RUN_DIR [--parts]
"""

import sys
from pathlib import Path

import numpy as np
import torch

from ssl3d.ops import chamfer_distance, normalize_unit_box

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import chamfer_turned, half_turn, load_run, reversal_groups  # noqa: E402


def nearest_cost(query: torch.Tensor, ref: torch.Tensor, k: int = 4) -> torch.Tensor:
    """Mean Chamfer of each query cloud to its k nearest reference clouds. (Q, N, 3), (R, N, 3)."""
    d = torch.stack([chamfer_distance(q[None].expand(len(ref), -1, -1), ref, "none") for q in query])
    return d.topk(k, 1, largest=False).values.mean(1)


def part_positions(clouds: torch.Tensor, wide: int = 64, high: int = 32):
    """Mean z of each cloud's ``wide`` points farthest from the plane x = 0 (an airplane's
    wingtips) and of its ``high`` highest points (its fin), after unit-box normalisation and
    centring. clouds: (M, N, 3). Returns two (M,) arrays."""
    c = normalize_unit_box(clouds)
    c = c - c.mean(1, keepdim=True)
    tips = c[..., 0].abs().topk(wide, dim=1).indices
    top = c[..., 1].topk(high, dim=1).indices
    return (torch.gather(c[..., 2], 1, tips).mean(1).numpy(),
            torch.gather(c[..., 2], 1, top).mean(1).numpy())


def print_parts(xyz: torch.Tensor, gt: torch.Tensor, groups: tuple) -> None:
    """Wing and fin positions per group (see the module docstring)."""
    gw, gf = part_positions(gt)
    pw, pf = part_positions(xyz)
    print(f"  parts (z, unit box; the nose is +z): true wings {gw.mean():+.3f} (sd {gw.std():.3f}), "
          f"predicted wings {pw.mean():+.3f} (sd {pw.std():.3f}; correlation with the true over all "
          f"clouds {np.corrcoef(pw, gw)[0, 1]:+.2f}), true fin {gf.mean():+.3f} (behind the "
          f"centre in {np.mean(gf < 0):.0%})")
    for name, sel in groups:
        if sel.sum() < 3:
            continue
        r = np.corrcoef(pw[sel], gw[sel])[0, 1]
        print(f"  {name} ({sel.sum()}): true wings {gw[sel].mean():+.3f}, predicted wings "
              f"{pw[sel].mean():+.3f} (correlation with the true {r:+.2f}), predicted fin "
              f"{pf[sel].mean():+.3f} (behind the centre in {np.mean(pf[sel] < 0):.0%})")


def main(data: str, category: str, run: str, *flags: str, k: int = 4) -> None:
    if set(flags) - {"--parts"}:
        raise SystemExit(f"unknown flags {sorted(set(flags) - {'--parts'})}; usage: python "
                         "benchmarks/flip_analysis.py DATA_DIR CATEGORY RUN_DIR [--parts]")
    pred, _, raw, xyz, gt = load_run(data, category, run)
    _, _, flipped = chamfer_turned(xyz, gt)
    reversed_ = torch.from_numpy(flipped)
    kept = ~reversed_
    print(f"{run}: reversed {reversed_.float().mean():.1%}")
    if "--parts" in flags:
        print_parts(xyz, gt, reversal_groups(flipped, pred["pose_error_deg"]))
    if not reversed_.any() or int(kept.sum()) < k:
        return
    for name, clouds in (("predictions, network frame", raw), ("ground truth", gt)):
        sub = clouds[:, ::4]
        ref, query = sub[kept][:60], sub[reversed_][:40]
        as_is, turned = nearest_cost(query, ref, k), nearest_cost(half_turn(query), ref, k)
        print(f"  {name}: reversed clouds to their {k} nearest others, Chamfer x1000 as they are "
              f"{1000 * as_is.mean():.2f}, turned {1000 * turned.mean():.2f}; nearer turned "
              f"{(turned < as_is).float().mean():.1%}")


if __name__ == "__main__":
    main(*sys.argv[1:])
