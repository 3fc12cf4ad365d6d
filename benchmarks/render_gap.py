"""How unlike are the real images and the renders of their own clouds, before and after a blur?

For each test image the run's cloud is rendered at the image's predicted view (as in stage CC's
reprojection); the mean absolute difference between image and render is printed over the mean
absolute image value, unblurred and after Gaussian blurs of several widths (ops.gaussian_blur,
as ``--pose-input-blur`` applies to the pose net's inputs). A look at why the pose net is more
precise on its own clouds' renders than on real images (benchmarks/cycle_gap.py).

    python benchmarks/render_gap.py DATA_DIR CATEGORY RUN_DIR [--count 200] [--sigmas 0.5,1,1.5,2]
"""

import argparse

import torch

from ssl3d.data.dataset import load_split
from ssl3d.evaluation.evaluate import find_checkpoint
from ssl3d.ops import gaussian_blur, gaussian_taps
from ssl3d.training.checkpoint import load_models
from ssl3d.training.losses import project_views


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("run")
    ap.add_argument("--count", type=int, default=200, help="test images used (the first N)")
    ap.add_argument("--sigmas", default="0.5,1,1.5,2", help="blur widths in px, comma-separated")
    args = ap.parse_args()
    sigmas = [float(s) for s in args.sigmas.split(",")]
    if args.count < 1 or min(sigmas) <= 0:
        raise SystemExit(f"--count must be >= 1 and every --sigmas value > 0, got {args.count} "
                         f"and {args.sigmas}")
    recon, pose, cfg = load_models(find_checkpoint(args.run))
    test = load_split(args.data, args.category, "test", cfg.image_size, progress=False)
    images = test.images[:args.count]
    with torch.no_grad():
        xyz, rgb = recon(images)
        renders, _ = project_views(xyz, rgb, pose(images).unsqueeze(1), cfg)  # (B, 1, 3, S, S)
        renders = renders[:, 0]
        print(f"{args.run}: {len(images)} {args.category} test images against their clouds' renders "
              f"at the predicted view (mean |image - render| / mean |image|)")
        for sigma in [0.0] + sigmas:
            a, b = images, renders
            if sigma > 0:
                taps = gaussian_taps(sigma)
                a, b = gaussian_blur(a, taps), gaussian_blur(b, taps)
            print(f"  blur {sigma:3.1f} px: {((a - b).abs().mean() / a.abs().mean()).item():.3f}")


if __name__ == "__main__":
    main()
