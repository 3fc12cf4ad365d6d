"""How much does each term of the pose loss move a trained pose net? For batches of training
images, the norm of the gradient of each pose-loss term (the image and mask reprojection terms
and the pose cycle, each at weight 1, and as "selector" the terms those weights do not scale: the
selector's cross-entropy, and the view-distribution prior and weight decay where a run has them)
with respect to the pose net's parameters, at the checkpoint's weights. This is the stage-CC
form of the loss: stage NN also adds the neighbour's mask term (at w_pose_mask), left out here. The paper weighs the three pose terms 1 : 1 : 1
(METHOD section 5); this says which of them the pose net mostly learns from once trained.

Each term's gradient is the difference of the pose loss's gradient with that term alone at
weight 1 and with all three at 0 (the selector's term is always on). The loss is linear in the
weights once the chosen hypothesis is fixed, so the choice is made with the run's own weights
throughout (the selection scores use the image and mask weights too); the difference is then
exact. The view prior does not enter the pose loss and is off here.

With --colour-sigma2 S the same at the checkpoint's weights with the colour projection's
Gaussian weighting (ssl3d.ops.projection.splat_colour): what the image term would then give;
--beta B the same with another sharpness of its depth softmax.

    python benchmarks/pose_gradients.py DATA_DIR CATEGORY RUN_OR_CKPT [--batch 64] [--batches 4]
        [--colour-sigma2 S] [--beta B]
"""

import argparse
import dataclasses

import torch

from ssl3d import camera
from ssl3d.data.dataset import load_split
from ssl3d.evaluation.evaluate import find_checkpoint
from ssl3d.training import losses
from ssl3d.training.checkpoint import load_models

TERMS = ("w_pose_image", "w_pose_mask", "w_pose_cycle")


def pose_gradient(recon, pose, batch: dict, views: torch.Tensor, cfg) -> torch.Tensor:
    """The pose loss's gradient w.r.t. the pose net's parameters, flattened: (P,)."""
    _, loss_p, _, _ = losses.step_losses(recon, pose, batch, views, cfg)
    params = list(pose.parameters())
    grads = torch.autograd.grad(loss_p, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                      for g, p in zip(grads, params)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("run")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--colour-sigma2", type=float, default=None,
                    help="the colour projection's Gaussian variance (px^2); default: the run's")
    ap.add_argument("--beta", type=float, default=None,
                    help="the colour projection's depth sharpness; default: the run's")
    args = ap.parse_args()
    recon, pose, cfg = load_models(find_checkpoint(args.run))
    if cfg.supervision != "self":
        raise SystemExit(f"{args.run}: a {cfg.supervision}-supervised run has no self-supervised pose loss")
    cfg = dataclasses.replace(cfg, w_view_prior=0.0)
    if args.colour_sigma2 is not None:
        cfg = dataclasses.replace(cfg, colour_sigma2=args.colour_sigma2)
    if args.beta is not None:
        cfg = dataclasses.replace(cfg, beta=args.beta)
    # Hypotheses chosen as in training whatever the weights below (see the module's docstring).
    scores = losses.hypothesis_scores
    losses.hypothesis_scores = lambda image, mask, imgs, sils, _cfg: scores(image, mask, imgs, sils, cfg)
    train = load_split(args.data, args.category, "train", image_size=cfg.image_size, progress=False)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(train.models), generator=g)
    norms = {name: [] for name in ("selector", *TERMS)}
    for i in range(args.batches):
        idx = order[i * args.batch:(i + 1) * args.batch]
        batch = {"image": train.images[idx], "mask": train.masks[idx],
                 "viewpoint": train.viewpoints[idx], "cloud": train.clouds[idx]}
        views = camera.sample_viewpoints(len(idx) * (cfg.n_views - 1), generator=g)
        views = views.view(len(idx), cfg.n_views - 1, 2)  # (B, K - 1, 2)
        off = dataclasses.replace(cfg, **{t: 0.0 for t in TERMS})
        base = pose_gradient(recon, pose, batch, views, off)
        norms["selector"].append(base.norm().item())
        for t in TERMS:
            alone = pose_gradient(recon, pose, batch, views, dataclasses.replace(off, **{t: 1.0}))
            norms[t].append((alone - base).norm().item())
    print(f"{args.run}: pose-loss gradient norms at weight 1 over {args.batches} batches of "
          f"{args.batch} training images (mean, min-max); the run's weights image / mask / cycle: "
          f"{cfg.w_pose_image:g} / {cfg.w_pose_mask:g} / {cfg.w_pose_cycle:g}; colour_sigma2 "
          f"{cfg.colour_sigma2:g}, beta {cfg.beta:g}")
    for name, v in norms.items():
        t = torch.tensor(v)
        print(f"  {name:13s} {t.mean():9.3g}  ({t.min():.3g}-{t.max():.3g})")


if __name__ == "__main__":
    main()
