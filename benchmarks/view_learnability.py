"""How well can the azimuth be learnt from the images at all, given the true views? A control that
reads the labels (no self-supervised run involved). Session 27's label-reading classifier
(``render_selector.py ... truth``), trained on 3,240 real chair silhouettes or images with their
true views, found the azimuth of only about 86% of held-out ones, as often as self-supervised
training poses them right, but its training loss fell to 0.02-0.06: too few examples, or views the
images do not tell apart? This trains the same classifier (24 azimuth bins, the pose net's
convolutions and a 256-wide layer, from scratch, STEPS steps of batch 256, random left-right flips
with the view mirrored) on the first K training images for each K in SIZES, and scores it on the
whole validation split: the share whose likeliest bin is within 30 deg of the true azimuth, and of
the misses the share off by more than 150 deg (front and back confused). A share that climbs with K
points at the data; one that stays flat, at the images. WIDTHS (default 1) multiplies the
convolutions' channels (does a larger encoder read more?); PX (default 64) is the side the images
are loaded at (data rendered at 128 px, loaded at 64 and at 128: do more pixels tell more?).

    python benchmarks/view_learnability.py DATA_DIR CATEGORY [masks|rgb] [STEPS] [SIZES, e.g. 1200,2400,4800] [WIDTHS, e.g. 1,2,4] [PX]
"""

import sys
from pathlib import Path

import numpy as np
import torch

from ssl3d.data.dataset import load_split

sys.path.insert(0, str(Path(__file__).parent))
from render_selector import azimuth_off_deg, binary, truth_classifier  # noqa: E402


def main(data: str, category: str, input: str = "masks", steps: int = 1500,
         sizes: str = "1200,2400,4800", widths: str = "1", px: int = 64) -> None:
    """Train and score one classifier per channel multiplier in ``widths`` and training-set size
    in ``sizes`` (both comma-separated)."""
    if input not in ("masks", "rgb"):
        raise SystemExit(f"INPUT must be masks or rgb, got {input!r}")
    torch.manual_seed(0)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    train = load_split(data, category, "train", px, progress=False).to(dev)
    val = load_split(data, category, "val", px, progress=False).to(dev)
    pick = (lambda v: v.images) if input == "rgb" else (lambda v: binary(v.masks))  # (N, C, S, S)
    x, x_val = pick(train), pick(val)
    print(f"{data} {category}: {input} at {px} px, {steps} steps of batch 256 on {dev}, scored on the "
          f"{len(val)} validation images")
    for w in (int(s) for s in widths.split(",")):
        for k in (int(s) for s in sizes.split(",")):
            if not 0 < k <= len(train):
                raise SystemExit(f"a size must be in [1, {len(train)}], got {k}")
            net, acc = truth_classifier(x[:k], train.viewpoints[:k], x_val, val.viewpoints,
                                        x.shape[-1], steps, w)
            off = azimuth_off_deg(net, x_val, val.viewpoints)  # (n_val,)
            miss = off > 30
            print(f"{px} px, {w}x channels, trained on {k} images: azimuth within 30 deg {acc:.1%}; of "
                  f"the misses, off by more than 150 deg "
                  f"{np.mean((off[miss] > 150).cpu().numpy()) if miss.any() else 0:.1%}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3], *sys.argv[3:4], *(int(a) for a in sys.argv[4:5]), *sys.argv[5:7],
         *(int(a) for a in sys.argv[7:8]))
