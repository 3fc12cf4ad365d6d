"""Do colours read off the input image (``ssl3d predict --colour-from-image``) look more like
the object from other views than the colour branch's own?

Splits list one view per model (the protocol), so a temporary copy of the data folder lists
every rendered view of the split's models instead. For every such model, the cloud is predicted
from its first view, coloured either by the network or from that image
(ssl3d.evaluation.colour), and rendered (the training's colour projection) at the viewpoint the
pose net gives each of the model's other views. The score is the mean absolute colour
difference to that view's image over the pixels both silhouettes cover (rendered silhouette
> 0.5 and the view's mask), and, for reference, the same at the input view itself.

    python benchmarks/colour_transfer.py DATA_DIR CATEGORY RUN_OR_CHECKPOINT [--split test]
"""

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

from ssl3d.data.dataset import load_split, read_split, read_views, resolve_paths
from ssl3d.evaluation.colour import colours_from_image
from ssl3d.evaluation.evaluate import find_checkpoint
from ssl3d.training.checkpoint import load_models
from ssl3d.training.losses import project_views


def colour_error(xyz, rgb, view, image, mask, cfg) -> torch.Tensor:
    """Mean |render - image| over the pixels both silhouettes cover, per sample. xyz, rgb:
    (B, N, 3); view: (B, 2); image: (B, 3, S, S); mask: (B, S, S). Returns (B,)."""
    imgs, sils = project_views(xyz, rgb, view.unsqueeze(1), cfg)  # (B, 1, 3, S, S), (B, 1, S, S)
    both = ((sils[:, 0] > 0.5) & (mask > 0.5)).unsqueeze(1).float()  # (B, 1, S, S)
    diff = (imgs[:, 0] - image).abs() * both
    return diff.sum((1, 2, 3)) / (3 * both.sum((1, 2, 3))).clamp_min(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("run")
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    recon, pose, cfg = load_models(find_checkpoint(args.run))
    paths = resolve_paths(args.data, args.category)
    models = sorted({m for m, _ in read_split(paths.split_dir, paths.split_prefix, args.split)})
    with tempfile.TemporaryDirectory() as tmp:  # the same renders, every view in the split
        (Path(tmp) / paths.render_root.name).symlink_to(paths.render_root.resolve())
        (Path(tmp) / "splits").mkdir()
        (Path(tmp) / "splits" / f"{paths.split_prefix}_{args.split}.txt").write_text("".join(
            f"{m}_{v}\n" for m in models for v in range(len(read_views(paths.render_root / m)))))
        views = load_split(tmp, args.category, args.split, cfg.image_size, progress=False)
    by_model = defaultdict(list)
    for i, m in enumerate(views.models):
        by_model[m].append(i)
    groups = [ix for ix in by_model.values() if len(ix) > 1]
    if not groups:
        raise SystemExit(f"{args.data}: no {args.split} model has more than one view")
    src = torch.tensor([ix[0] for ix in groups])
    scores = {"network": defaultdict(list), "from image": defaultdict(list)}
    with torch.no_grad():
        xyz, rgb = recon(views.images[src])
        vp = pose(views.images[src])
        coloured = {"network": rgb, "from image": colours_from_image(
            xyz, rgb, vp, views.images[src], views.masks[src])}
        for name, col in coloured.items():
            scores[name]["input view"].append(
                colour_error(xyz, col, vp, views.images[src], views.masks[src], cfg))
        for k in range(1, max(len(ix) for ix in groups)):
            keep = torch.tensor([j for j, ix in enumerate(groups) if len(ix) > k])
            other = torch.tensor([groups[j][k] for j in keep.tolist()])
            v_other = pose(views.images[other])
            for name, col in coloured.items():
                scores[name]["other views"].append(colour_error(
                    xyz[keep], col[keep], v_other, views.images[other], views.masks[other], cfg))
    print(f"{args.run}: {len(groups)} {args.category} {args.split} models, predicted from their "
          f"first view; mean |render - image| over both silhouettes (colours in [0, 1])")
    for name, per in scores.items():
        cells = ", ".join(f"{where} {torch.cat(v).mean().item():.4f} ({len(torch.cat(v))} images)"
                          for where, v in per.items())
        print(f"  colours {name:10s}: {cells}")


if __name__ == "__main__":
    main()
