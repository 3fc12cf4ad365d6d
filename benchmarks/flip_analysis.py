"""Are an evaluated run's back-to-front clouds a split of the learnt frame, or inputs the network
reads the wrong way round? Reads RUN/predictions_test.npz (written by ``ssl3d evaluate``) and the
test split's ground truth, calls a cloud reversed when, in the ground-truth frame, it is at least
10% nearer its ground truth turned half a turn about the vertical axis, and prints:

- the share reversed, and how many of each group have a pose error over 90 deg;
- in the network's own frame, each reversed cloud's mean Chamfer to its 4 nearest unreversed
  clouds, as it is and turned (a split frame would make the turned distance the smaller);
- the same for the ground-truth shapes of the two groups (do the inputs themselves look turned?).

    python benchmarks/flip_analysis.py DATA_DIR CATEGORY RUN_DIR
"""

import sys
from pathlib import Path

import numpy as np
import torch

from ssl3d.data.dataset import load_split
from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import find_checkpoint
from ssl3d.ops import chamfer_distance, normalize_unit_box
from ssl3d.training.checkpoint import load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import half_turn  # noqa: E402


def nearest_cost(query: torch.Tensor, ref: torch.Tensor, k: int = 4) -> torch.Tensor:
    """Mean Chamfer of each query cloud to its k nearest reference clouds. (Q, N, 3), (R, N, 3)."""
    d = torch.stack([chamfer_distance(q[None].expand(len(ref), -1, -1), ref, "none") for q in query])
    return d.topk(k, 1, largest=False).values.mean(1)


def main(data: str, category: str, run: str) -> None:
    pred = np.load(Path(run) / "predictions_test.npz")
    size = load_checkpoint(find_checkpoint(run))["config"]["image_size"]
    gt = load_split(data, category, "test", size, progress=False).clouds.float()
    raw = torch.from_numpy(pred["xyz"]).float()  # the network's frame
    xyz = M.rotate(raw, torch.from_numpy(pred["rotation"]).float())
    score = lambda p: chamfer_distance(normalize_unit_box(p), normalize_unit_box(gt), "none")  # noqa: E731
    reversed_ = score(half_turn(xyz)) < 0.9 * score(xyz)
    wrong = torch.from_numpy(pred["pose_error_deg"]) > 90
    kept = ~reversed_
    print(f"{run}: reversed {reversed_.float().mean():.1%}; pose error > 90 deg in "
          f"{wrong[reversed_].float().mean():.1%} of them, {wrong[kept].float().mean():.1%} of the rest")
    for name, clouds in (("predictions, network frame", raw), ("ground truth", gt)):
        sub = clouds[:, ::4]
        ref, query = sub[kept][:60], sub[reversed_][:40]
        as_is, turned = nearest_cost(query, ref), nearest_cost(half_turn(query), ref)
        print(f"  {name}: reversed clouds to their 4 nearest others, Chamfer x1000 as they are "
              f"{1000 * as_is.mean():.2f}, turned {1000 * turned.mean():.2f}; nearer turned "
              f"{(turned < as_is).float().mean():.1%}")


if __name__ == "__main__":
    main(*sys.argv[1:])
