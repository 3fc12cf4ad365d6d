"""Does a trained model's cloud depend on its input? Prints, per checkpoint, the fraction of live
structure-encoder units and the spread of predicted points across images (near 0 = every image
gets the same cloud: shape collapse).

    python benchmarks/collapse_check.py DATA_DIR CATEGORY RUN_DIR_OR_CKPT...
"""

import sys

import torch

from ssl3d.data.dataset import load_split
from ssl3d.evaluation.evaluate import find_checkpoint, predict
from ssl3d.training.checkpoint import load_models


def main(data_dir: str, category: str, *runs: str) -> None:
    for run in runs:
        recon, pose, cfg = load_models(find_checkpoint(run))
        views = load_split(data_dir, category, "val", cfg.image_size, progress=False)
        x = views.images[:128]
        with torch.no_grad():
            live = (recon.structure_encoder(x) > 0).any(0).float().mean().item()
        xyz, _, _ = predict(recon, pose, x)
        print(f"{run}: live encoder units {live:.1%}, point spread across images "
              f"{xyz.std(0).mean().item():.4f}, within a cloud {xyz.std(1).mean().item():.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
