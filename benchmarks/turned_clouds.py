"""Are a run's wrongly posed clouds right shapes turned the wrong way, or wrong shapes? Each test
cloud (in the ground truth's frame, after the run's global rotation) is scored against its ground
truth as predicted and after each half turn (about the vertical y axis: front and back swapped;
about x or z: upside down) and each mirror (front-back, up-down), and the script reports, for the
wrongly posed (over 30 deg) and the rightly posed, the mean Chamfer x1000 of each and how often each
is the nearest. A silhouette seen from (azimuth a, elevation e) matches that of the left-right
symmetric object turned by pi about x seen from (pi - a, -e) in an orthographic view, so an
upside-down cloud is the shape that exactly explains the most common wrong view.

    python benchmarks/turned_clouds.py DATA_DIR CATEGORY RUN_DIR   (after ssl3d evaluate RUN_DIR)
"""

import sys
from pathlib import Path

import numpy as np
import torch

from ssl3d.ops import chamfer_distance, normalize_unit_box

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import load_run  # noqa: E402

SIGNS = {"as predicted": (1, 1, 1), "half turn about y (front-back)": (-1, 1, -1),
         "half turn about x (upside down, front-back)": (1, -1, -1),
         "half turn about z (upside down, left-right)": (-1, -1, 1),
         "mirrored front-back": (1, 1, -1), "mirrored up-down": (1, -1, 1)}
"""Name -> per-axis signs: each turn or mirror here flips the signs of some of x, y, z."""


def main(data: str, category: str, run: str) -> None:
    pred, _, _, xyz, gt = load_run(data, category, run)
    target = normalize_unit_box(gt)
    scores = {name: 1000 * chamfer_distance(normalize_unit_box(xyz * torch.tensor(s, dtype=xyz.dtype)),
                                            target, "none").numpy() for name, s in SIGNS.items()}
    wrong = pred["pose_error_deg"] > 30
    nearest = np.stack(list(scores.values())).argmin(0)  # (M,) index into SIGNS
    print(f"{run}: {wrong.mean():.1%} of {len(wrong)} test views over 30 deg off; Chamfer x1000 of "
          f"the rightly posed {scores['as predicted'][~wrong].mean():.2f}, the wrongly posed "
          f"{scores['as predicted'][wrong].mean():.2f}")
    for i, (name, cd) in enumerate(scores.items()):
        print(f"  {name}: wrongly posed mean {cd[wrong].mean():.2f}, nearest for "
              f"{np.mean(nearest[wrong] == i):.1%} of them and {np.mean(nearest[~wrong] == i):.1%} "
              f"of the rightly posed")


if __name__ == "__main__":
    main(*sys.argv[1:])
