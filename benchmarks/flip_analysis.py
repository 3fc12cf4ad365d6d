"""Are an evaluated run's back-to-front clouds a split of the learnt frame, or inputs the network
reads the wrong way round? Reads RUN/predictions_test.npz (written by ``ssl3d evaluate``) and the
test split's ground truth, calls a cloud reversed when, in the ground-truth frame, it is at least
10% nearer its ground truth turned half a turn about the vertical axis, and prints:

- the share reversed (``diagnose_run.py`` says how many of each group have a pose error over
  90 deg);
- in the network's own frame, each reversed cloud's mean Chamfer to its 4 nearest unreversed
  clouds, as it is and turned (a split frame would make the turned distance the smaller);
- the same for the ground-truth shapes of the two groups (do the inputs themselves look turned?).

    python benchmarks/flip_analysis.py DATA_DIR CATEGORY RUN_DIR
"""

import sys
from pathlib import Path

import torch

from ssl3d.ops import chamfer_distance

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import chamfer_turned, half_turn, load_run  # noqa: E402


def nearest_cost(query: torch.Tensor, ref: torch.Tensor, k: int = 4) -> torch.Tensor:
    """Mean Chamfer of each query cloud to its k nearest reference clouds. (Q, N, 3), (R, N, 3)."""
    d = torch.stack([chamfer_distance(q[None].expand(len(ref), -1, -1), ref, "none") for q in query])
    return d.topk(k, 1, largest=False).values.mean(1)


def main(data: str, category: str, run: str, k: int = 4) -> None:
    _, _, raw, xyz, gt = load_run(data, category, run)
    _, _, flipped = chamfer_turned(xyz, gt)
    reversed_ = torch.from_numpy(flipped)
    kept = ~reversed_
    print(f"{run}: reversed {reversed_.float().mean():.1%}")
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
