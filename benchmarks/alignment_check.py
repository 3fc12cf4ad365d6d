"""Does the fast global-rotation fit find the protocol's rotation? For a run's validation
predictions, fits with the protocol's settings (Adam, 5000 steps, lr 1e-3, 256 clouds x 512
points) and with evaluate's settings for the device, and prints both rotations, their
validation Chamfer and the time each took.

    python benchmarks/alignment_check.py RUN_DIR [DATA_DIR] [--device cpu|cuda]
"""

import argparse
import time

import torch

from ssl3d.data.dataset import load_split
from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import alignment_settings, find_checkpoint, predict
from ssl3d.training.checkpoint import load_checkpoint, models_from_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("data", nargs="?")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    ckpt = find_checkpoint(args.run)
    dev = torch.device(args.device)
    saved = load_checkpoint(ckpt)
    recon, pose, cfg = models_from_checkpoint(saved, ckpt, dev)
    val = load_split(args.data or saved["data_dir"], saved["category"], "val", cfg.image_size,
                     progress=False)
    xyz, _, _ = predict(recon, pose, val.images)
    protocol = {"steps": 5000, "lr": 1e-3, "max_clouds": 256, "max_points": 512}
    for name, settings in (("protocol", protocol), ("evaluate", alignment_settings(dev))):
        start = time.time()
        a = M.fit_global_rotation(xyz, val.clouds, device=dev, **settings)
        # Score both on the same, full validation set.
        full = M.cloud_metrics(xyz, val.clouds, a.matrix(), emd=False)["chamfer"].mean()
        deg = [round(v * 57.29578, 2) for v in (a.azimuth, a.elevation, a.tilt)]
        print(f"{name:9s} (az, el, tilt) deg {deg}"
              f"  val Chamfer x1000 {1000 * full:.3f}  {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
