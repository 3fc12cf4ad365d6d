"""Does `ssl3d predict`'s framing change the pose it reads? Feeds a model the procedural test
renderings through `load_user_image` with each framing and reports the share of azimuths within
30 deg of the truth, after the one azimuth offset (the model's learnt frame) that fits each
framing best. The renderings look at the object's centre from a fixed distance, so "keep" sees
them as `ssl3d evaluate` does.

    python benchmarks/predict_framing.py DATA CATEGORY [--model CKPT] [--n 300]
"""

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from ssl3d.cli.predict import default_model
from ssl3d.evaluation.evaluate import predict
from ssl3d.evaluation.user_images import load_user_image
from ssl3d.training.checkpoint import load_models

VARIANTS = (("auto", 0.78), ("keep", 0.78), ("crop", 0.78), ("crop", 0.75))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped chair model)")
    ap.add_argument("--n", type=int, default=300, help="test renderings (the split's first N)")
    args = ap.parse_args()
    recon, pose, cfg = load_models(args.model or default_model(), torch.device("cpu"))
    data = Path(args.data)
    ids = (data / "splits" / f"{args.category}_test.txt").read_text().split()[:args.n]
    truth, images = [], {v: [] for v in VARIANTS}
    for view_id in ids:
        model, view = view_id.rsplit("_", 1)
        folder = data / args.category / model
        truth.append(float((folder / "view.txt").read_text().splitlines()[int(view)].split()[0]))
        for framing, fill in VARIANTS:
            image, _ = load_user_image(folder / f"render_{view}.png", None, cfg.image_size,
                                       fill=fill, framing=framing)
            images[(framing, fill)].append(image)
    truth = np.radians(truth)
    offsets = np.radians(np.arange(360))
    print(f"{args.model or 'shipped model'}, {len(ids)} {args.category} test renderings of {data}")
    wrap = lambda a: np.abs((a + np.pi) % (2 * np.pi) - np.pi)  # noqa: E731
    kept = None
    for (framing, fill), lst in images.items():
        azimuth = predict(recon, pose, torch.stack(lst))[2][:, 0].numpy()
        right = [np.mean(wrap(azimuth - truth - o) < math.radians(30)) for o in offsets]
        best = int(np.argmax(right))
        what = framing if framing != "crop" else f"crop (fill {fill})"
        line = f"  {what:17s} azimuth within 30 deg: {100 * right[best]:.1f}% (frame offset {best} deg)"
        if framing == "keep":
            kept = azimuth
        elif kept is not None:  # each image's own change against the image as framed
            moved = np.degrees(wrap(azimuth - kept))
            line += (f"; against keep, per image: median change {np.median(moved):.1f} deg, "
                     f"{100 * np.mean(moved > 30):.1f}% by over 30 deg, "
                     f"{100 * np.mean(moved > 90):.1f}% by over 90 deg")
        print(line)


if __name__ == "__main__":
    main()
