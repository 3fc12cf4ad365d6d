"""``ssl3d predict IMAGE_OR_DIR... [--model RUN_DIR_OR_CKPT] [--mask MASK] [--refine STEPS] --out OUT_DIR``."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="images or folders of images")
    parser.add_argument("--model", default=None, help="run folder or checkpoint (default: the "
                        "pretrained chair model shipped with ssl3d)")
    parser.add_argument("--mask", default=None, help="silhouette image for a single input image "
                        "(default: its alpha channel, else a plain-background estimate)")
    parser.add_argument("--refine", type=int, default=0, metavar="STEPS",
                        help="test-time optimisation steps (0 = off)")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="output folder")
    parser.add_argument("--pose-select", default="net", choices=["net", "mask"],
                        help="models with several pose hypotheses: the selector's choice from "
                             "the image alone (net, default, as evaluate) or the hypothesis whose "
                             "projection best explains the image and its mask (mask; with "
                             "--refine, the unrefined cloud's projection)")
    parser.add_argument("--framing", default="auto", choices=["auto", "keep", "crop"],
                        help="keep: use the image as framed (padded to a square); crop: a square "
                             "around the object, its longest side 78%% of it; auto (default): "
                             "keep an image framed as the training renderings are (square, the "
                             "object 50-95%% of it and near its centre), crop any other")
    parser.add_argument("--colour-from-image", action="store_true",
                        help="colour the points the input image shows from the image (at the "
                             "predicted viewpoint) and every other point like its nearest shown "
                             "point, instead of the colour branch's prediction (not in the paper)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")


def default_model() -> Path:
    path = Path(__file__).resolve().parent.parent / "assets" / "chair.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no --model given and no pretrained model at {path}")
    return path


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ssl3d.evaluation.colour import colours_from_image
    from ssl3d.evaluation.evaluate import find_checkpoint, predict
    from ssl3d.evaluation.refine import RefineConfig, refine
    from ssl3d.evaluation.user_images import collect_images, load_user_image
    from ssl3d.evaluation.visualize import grid, render_points, write_ply
    from ssl3d.training.checkpoint import load_models

    paths = list({p.resolve(): p for p in collect_images(args.inputs)}.values())  # each once
    if args.mask and len(paths) != 1:
        raise ValueError("--mask applies to a single input image")
    by_stem: dict[str, Path] = {}
    for path in paths:  # the outputs are named after the input's stem
        if path.stem in by_stem:
            raise ValueError(f"{by_stem[path.stem]} and {path} would both write {path.stem}.ply; "
                             f"rename one, or predict them into different --out folders")
        by_stem[path.stem] = path
    if args.refine < 0:
        raise ValueError(f"--refine must be 0 or more steps, got {args.refine}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the clouds and previews")
    ckpt = find_checkpoint(args.model) if args.model else default_model()
    dev = torch.device(args.device)
    recon, pose, cfg = load_models(ckpt, dev)
    recon.eval()
    pose.eval()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create --out {out}: {exc}") from exc
    failed = []
    for path in paths:
        try:
            image, mask = load_user_image(path, args.mask, cfg.image_size, framing=args.framing)
        except (OSError, ValueError) as exc:
            if len(paths) == 1:
                raise
            print(f"ssl3d predict: skipped: {exc}", file=sys.stderr)  # the others still run
            failed.append(path)
            continue
        x, m = image[None].to(dev), mask[None].to(dev)
        if args.refine > 0:
            xyz, rgb, vp = refine(recon, pose, x, m, cfg, RefineConfig(steps=args.refine),
                                  pose_select=args.pose_select)
        else:
            xyz, rgb, vp = predict(recon, pose, x,
                                   masks=m if args.pose_select == "mask" else None, cfg=cfg)
        if args.colour_from_image:
            rgb = colours_from_image(xyz, rgb, vp, x, m)
        xyz, rgb, vp = xyz[0].cpu().numpy(), rgb[0].cpu().numpy(), vp[0].cpu().numpy()
        ply = write_ply(out / f"{path.stem}.ply", xyz, rgb)
        views = [tuple(vp), (vp[0] + 2.0, 0.35), (vp[0] - 2.0, 0.35)]
        preview = out / f"{path.stem}_preview.png"
        grid([[image.numpy()] + [render_points(xyz, rgb, v, 192) for v in views]], 192,
             ["input", "input view", "view 2", "view 3"]).save(preview)
        np.save(out / f"{path.stem}_viewpoint.npy", vp)
        print(f"{path}: azimuth {math.degrees(vp[0]):.1f} deg, elevation {math.degrees(vp[1]):.1f} deg"
              f" (in the model's own frame) -> {ply}, {preview}")
    if len(failed) < len(paths):
        print(f"turn them about: ssl3d view {shlex.quote(str(out))}")
    if failed:
        raise ValueError(f"{len(failed)} of {len(paths)} images could not be used: "
                         f"{', '.join(str(p) for p in failed)} (reasons above)")
    return 0
