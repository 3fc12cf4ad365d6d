"""Are a run's wrongly posed clouds right shapes turned the wrong way, or wrong shapes? Each test
cloud (in the ground truth's frame, after the run's global rotation) is scored against its ground
truth as predicted and after each of these changes, grouped by what they do to a chair:
front and back swapped (a half turn about the vertical y axis, or the mirror z -> -z, which give
a left-right symmetric cloud the same shape), a quarter turn about y (either way: a side taken
for the front or back), and upside down (a half turn about x or z, or the mirror y -> -y). For
the wrongly posed (over 30 deg) and the rightly posed it reports each group's mean Chamfer x1000
(the better of the group's changes per cloud) and how often each group, or the cloud as predicted,
is the nearest to the truth.

    python benchmarks/turned_clouds.py DATA_DIR CATEGORY RUN_DIR   (after ssl3d evaluate RUN_DIR)
"""

import sys
from pathlib import Path

import numpy as np
import torch

from ssl3d.evaluation import metrics as M
from ssl3d.ops import chamfer_distance, normalize_unit_box

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import half_turn, load_run, turn_y  # noqa: E402


def flip(*signs: int):
    """The change multiplying x, y, z by ``signs`` (a half turn when two are -1, a mirror when one)."""
    return lambda xyz: xyz * torch.tensor(signs, dtype=xyz.dtype)


GROUPS = {
    "as predicted": [lambda xyz: xyz],
    "front and back swapped (half turn about y, or mirrored front to back)": [half_turn,
                                                                              flip(1, 1, -1)],
    "a quarter turn about y (either way)": [lambda xyz: M.rotate(xyz, turn_y(90)),
                                            lambda xyz: M.rotate(xyz, turn_y(-90))],
    "upside down (half turn about x or z, or mirrored top to bottom)": [flip(1, -1, -1), flip(-1, -1, 1),
                                                                        flip(1, -1, 1)],
}
"""Group name -> the changes in it."""


def main(data: str, category: str, run: str) -> None:
    pred, _, _, xyz, gt = load_run(data, category, run)
    target = normalize_unit_box(gt)
    score = lambda p: 1000 * chamfer_distance(normalize_unit_box(p), target, "none").numpy()  # noqa: E731
    groups = {name: np.min([score(change(xyz)) for change in changes], 0)
              for name, changes in GROUPS.items()}  # name -> (M,), the group's best per cloud
    wrong = pred["pose_error_deg"] > 30
    nearest = np.stack(list(groups.values())).argmin(0)  # (M,) index into GROUPS
    print(f"{run}: {wrong.mean():.1%} of {len(wrong)} test views over 30 deg off; Chamfer x1000 of "
          f"the rightly posed {groups['as predicted'][~wrong].mean():.2f}, the wrongly posed "
          f"{groups['as predicted'][wrong].mean():.2f}")
    for i, (name, cd) in enumerate(groups.items()):
        print(f"  {name}: wrongly posed mean {cd[wrong].mean():.2f}, nearest for "
              f"{np.mean(nearest[wrong] == i):.1%} of them and {np.mean(nearest[~wrong] == i):.1%} "
              f"of the rightly posed")


if __name__ == "__main__":
    main(*sys.argv[1:])
