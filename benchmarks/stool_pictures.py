"""Pictures of a chair run's stool clouds: for the worst, middle and best test stools by Chamfer,
the input image beside the cloud (red) over its ground truth (grey) seen from the front (x, y),
the side (z, y) and the top (x, z), in the ground truth's frame after the fitted rotation, each
row labelled with its Chamfer x1000 and pose error (deg). Shows whether the stools are drawn
with legs or as shapeless blobs.

    python benchmarks/stool_pictures.py DATA_DIR RUN OUT.png [--rows 9] [--synth-seed 0]
    (DATA_DIR/chair made by benchmarks/make_procedural.sh; RUN after ssl3d evaluate)
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ssl3d.ops import chamfer_distance, normalize_unit_box

sys.path.insert(0, str(Path(__file__).parent))
from diagnose_run import load_run  # noqa: E402
from gap_by_kind import chair_kind, model_index  # noqa: E402

CELL = 128


def panel(cloud: np.ndarray, truth: np.ndarray, a: int, b: int) -> Image.Image:
    """Coordinates a (across) and b (up, or depth for the top view) of both clouds (N, 3) in a
    unit box, the truth grey under the cloud red."""
    im = Image.new("RGB", (CELL, CELL), "white")
    draw = ImageDraw.Draw(im)
    sign = -1 if b == 1 else 1  # height grows upwards
    for pts, colour in ((truth, (120, 120, 120)), (cloud, (220, 0, 0))):
        for u, v in zip(pts[:, a], pts[:, b]):
            draw.point((CELL / 2 + u * CELL * 0.9, CELL / 2 + sign * v * CELL * 0.9), fill=colour)
    return im


def main(data: str, run: str, out: str, rows: int, seed: int) -> None:
    pred, test, _, xyz, gt = load_run(data, "chair", run)
    models = [str(m) for m in pred["models"]]
    stools = np.array([i for i, m in enumerate(models) if chair_kind(seed, model_index(m))[0] == "stool"])
    if len(stools) == 0:
        raise ValueError(f"{run}: no stools among its {len(models)} test chairs")
    cloud, truth = normalize_unit_box(xyz), normalize_unit_box(gt)
    cd = 1000 * chamfer_distance(cloud, truth, "none").numpy()
    order = stools[np.argsort(-cd[stools])]  # worst first
    rows = min(rows, len(order))  # each stool at most once
    n_mid = n_best = rows // 3
    n_worst = rows - n_mid - n_best
    mid = max(n_worst, len(order) // 2 - n_mid // 2)
    picks = list(order[:n_worst]) + list(order[mid:mid + n_mid]) + list(order[len(order) - n_best:])
    canvas = Image.new("RGB", (4 * CELL, CELL * len(picks)), "white")
    for r, i in enumerate(picks):
        image = (test.images[i].permute(1, 2, 0).numpy() * 255).astype(np.uint8)  # (S, S, 3)
        canvas.paste(Image.fromarray(image).resize((CELL, CELL)), (0, r * CELL))
        for c, (a, b) in enumerate(((0, 1), (2, 1), (0, 2))):
            canvas.paste(panel(cloud[i].numpy(), truth[i].numpy(), a, b), ((c + 1) * CELL, r * CELL))
        ImageDraw.Draw(canvas).text((2, r * CELL + 2), f"{cd[i]:.1f} / {pred['pose_error_deg'][i]:.0f} deg",
                                    fill=(0, 0, 255))
    canvas.save(out)
    print(f"{run}: {len(stools)} test stools, Chamfer x1000 mean {cd[stools].mean():.2f}, median "
          f"{np.median(cd[stools]):.2f}; rows {len(picks)} (worst, middle, best) -> {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("run")
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=9)
    ap.add_argument("--synth-seed", type=int, default=0, help="the seed ssl3d synth made the meshes with")
    a = ap.parse_args()
    main(a.data, a.run, a.out, a.rows, a.synth_seed)
