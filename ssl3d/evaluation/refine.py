"""Test-time optimisation (METHOD section 10).

Training needs only an image and its silhouette, so the reconstruction network can be fine-tuned
on a single test image with the same self-supervised losses, at the viewpoint the pose network
predicts, while a Chamfer term keeps the cloud close to the initial prediction (the parts the
image does not show have nothing else holding them).

Each image gets its own copy of the network: the copies are stacked and run with ``torch.vmap``,
and since Adam is elementwise, one Adam over the stacked weights is exactly an independent Adam
per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import functional_call
from tqdm import tqdm

from ssl3d.ops import chamfer_distance, project_cloud
from ssl3d.training.losses import select_by_reprojection, silhouette_losses


@dataclass
class RefineConfig:
    """Test-time optimisation settings."""

    steps: int = 100
    """Adam steps per image."""
    lr: float = 5e-5
    """Learning rate of the per-image fine-tuning."""
    w_keep: float = 1e4
    """Weight of the Chamfer to the initial cloud (the paper's geometric-cycle weight)."""
    chunk: int = 32
    """Images refined at once (memory grows with it: one network copy each)."""


def refine(recon, pose, images: torch.Tensor, masks: torch.Tensor, train_cfg,
           cfg: RefineConfig = RefineConfig(), progress: bool = False, pose_select: str = "net"):
    """Fine-tune one copy of ``recon`` per image.

    images: (B, 3, S, S); masks: (B, S, S). Returns refined xyz (B, N, 3), rgb (B, N, 3) and the
    (unchanged) predicted viewpoints (B, 2): the selector's (``pose_select`` "net") or, for a
    pose net of several hypotheses, the one whose projection of the unrefined cloud best
    explains image and mask ("mask", as ``evaluate.predict`` with masks).
    """
    if images.shape[0] != masks.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {masks.shape[0]} masks")
    if masks.flatten(1).amax(1).min() < 0.5:
        raise ValueError("a mask has no foreground pixel (>= 0.5): nothing to refine against")
    if pose_select not in ("net", "mask"):
        raise ValueError(f"pose_select must be 'net' or 'mask', got {pose_select!r}")
    recon.eval()
    pose.eval()
    b, s = images.shape[0], images.shape[-1]
    with torch.no_grad():
        init_xyz, init_rgb = recon(images)
        if pose_select == "mask" and pose.cfg.pose_hypotheses > 1:
            hyp, _ = pose(images, all_hypotheses=True)
            views = select_by_reprojection(init_xyz.float(), init_rgb.float(), hyp.float(), images,
                                           masks, train_cfg)
        else:
            views = pose(images).float()
    params = {k: v.detach().unsqueeze(0).repeat(b, *[1] * v.ndim).requires_grad_(True)
              for k, v in recon.named_parameters()}
    buffers = {k: v.unsqueeze(0).expand(b, *v.shape) for k, v in recon.named_buffers()}

    def one(p, buf, image):
        xyz, rgb = functional_call(recon, (p, buf), (image.unsqueeze(0),))
        return xyz[0], rgb[0]

    run = torch.vmap(one)
    opt = torch.optim.Adam(params.values(), lr=cfg.lr)
    sigma2 = train_cfg.pixel_sigma2()
    for _ in tqdm(range(cfg.steps), desc="refine", disable=not progress, leave=False):
        xyz, rgb = run(params, buffers, images)
        img, sil = project_cloud(xyz, rgb, views, s, sigma2=sigma2, beta=train_cfg.beta,
                                 silhouette_form=train_cfg.silhouette_form,
                                 colour_sigma2=train_cfg.colour_sigma2)
        bce, fwd, bwd = silhouette_losses(sil, masks, train_cfg)
        # Sums over the batch: each copy's gradient is that of its own image's loss.
        loss = (train_cfg.w_image * ((images - img) ** 2).sum(1).mean((1, 2))
                + train_cfg.w_mask * bce
                + train_cfg.w_affinity * (fwd + bwd)
                + cfg.w_keep * chamfer_distance(xyz, init_xyz, reduction="none")).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        xyz, rgb = run(params, buffers, images)
    return xyz.detach(), rgb.detach(), views


def refine_batch(recon, pose, train_cfg, views, steps: int, device, progress: bool = True,
                 cfg: RefineConfig | None = None, pose_select: str = "net"):
    """Refine every image of a :class:`~ssl3d.data.dataset.ViewSet` in chunks, with the networks
    already loaded on ``device``. Returns xyz, rgb, viewpoints on the CPU."""
    base = cfg or RefineConfig()
    cfg = RefineConfig(steps=steps, lr=base.lr, w_keep=base.w_keep, chunk=base.chunk)
    out = []
    for i in tqdm(range(0, len(views), cfg.chunk), desc="refining", disable=not progress):
        sl = slice(i, i + cfg.chunk)
        out.append([t.cpu() for t in refine(recon, pose, views.images[sl].to(device),
                                            views.masks[sl].to(device), train_cfg, cfg,
                                            pose_select=pose_select)])
    return tuple(torch.cat(parts) for parts in zip(*out))
