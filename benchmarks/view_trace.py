"""When do a self-supervised run's wrong views form? Sessions 22-25 found that the training images
a run poses wrong (about 12-17% of the chairs) hold its shapes back, that no label-free rule
picks their right view afterwards, and yet that a pose-supervised network learns most of them.
This reads the snapshots a run wrote with ``--snapshot-every`` (OUT/snapshots/STAGE_STEP.pt, in
training order) and, on the first N training images, prints for each snapshot:

- the share posed right (within 30 deg; each snapshot's own rotation into the ground-truth
  frame fitted on the validation split, as ``ssl3d evaluate`` with the CPU's settings), and
  how far that rotation lies from the last snapshot's (a frame still turning early on makes the
  early shares rough);
- among the images the last snapshot poses wrong, the share this one poses right; among those
  it poses right, the share this one poses wrong;

and last, of the images the last snapshot poses wrong, how many some earlier snapshot posed
right (was the right view ever held, and lost?). "Last" is the last snapshot, which is the final
model only when the stage's steps are a multiple of N. Snapshots N steps apart miss views held
for a shorter time, and a view right by chance (about one in six for a random azimuth) counts
as held.

    python benchmarks/view_trace.py DATA_DIR CATEGORY RUN_DIR [N]
"""

import sys
from pathlib import Path

import numpy as np

from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import predict

sys.path.insert(0, str(Path(__file__).parent))
from pose_label_check import cached_split, fitted_run, rotation_angle_deg  # noqa: E402


def share(x: np.ndarray) -> str:
    """The share of True in a bool array, or "-" when it is empty."""
    return f"{x.mean():.1%}" if x.size else "-"


def main(data: str, category: str, run: str, n: int = 1200) -> None:
    snaps = sorted((Path(run) / "snapshots").glob("*.pt"))  # cc_ before nn_, steps zero-padded
    if not snaps:
        raise SystemExit(f"no snapshots in {Path(run) / 'snapshots'}: train with --snapshot-every N")
    splits, right, rots = {}, [], []
    for snap in snaps:
        _, recon, pose, cfg, rot = fitted_run(data, category, str(snap), splits)
        train = cached_split(splits, data, category, "train", cfg.image_size)
        m = min(n, len(train))
        _, _, views = predict(recon, pose, train.images[:m])
        right.append(M.pose_errors(views, train.viewpoints[:m], rot) <= 30)
        rots.append(rot)
    right = np.stack(right)  # (snapshots, m)
    final_wrong = ~right[-1]
    print(f"{run}: {len(snaps)} snapshots, the first {right.shape[1]} training images; the last "
          f"snapshot poses {final_wrong.sum()} wrong ({final_wrong.mean():.1%})")
    for snap, r, rot in zip(snaps, right, rots):
        print(f"  {snap.stem}: right {share(r)}; of the finally wrong right {share(r[final_wrong])}; "
              f"of the finally right wrong {share(~r[~final_wrong])}; "
              f"frame {rotation_angle_deg(rot, rots[-1]):.1f} deg from the last")
    if len(snaps) < 2:
        return
    ever = right[:-1, final_wrong].any(0)
    print(f"of the finally wrong, posed right by some earlier snapshot: {share(ever)}; by at least "
          f"half of them: {share(right[:-1, final_wrong].mean(0) >= 0.5)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:]))
