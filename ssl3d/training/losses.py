"""The losses of one training step (METHOD sections 5-7 and 12).

:func:`step_losses` runs both networks on a batch and returns the reconstruction loss, the pose
loss and every term for logging. Both losses live on one autograd graph; the trainer
differentiates each with respect to its own network's parameters only, so the reconstruction
loss sees the predicted pose as an input and the pose loss sees the predicted cloud as an input.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from ssl3d import camera
from ssl3d.models import l2_penalty
from ssl3d.ops import (chamfer_distance, chamfer_distance_dense, kth_neighbour_sq_dist, project_cloud,
                       sliced_silhouette_distance)
from ssl3d.ops.affinity import (AFFINITY_FORMS, affinity_intended, default_empty_cost,
                                point_to_silhouette, soft_distance_transform)
from ssl3d.ops.bce import BCE_FORMS
from ssl3d.training.config import TrainConfig, px2_scale

AXES = {"x": 0, "y": 1, "z": 2}


def pose_l1(pred: torch.Tensor, true: torch.Tensor, form: str) -> torch.Tensor:
    """|pred - true|_1 over (azimuth, elevation); ``wrapped`` takes the azimuth difference the
    shorter way round. pred, true: (..., 2). Returns (...)."""
    diff = pred - true
    if form == "wrapped":
        diff = torch.stack([camera.wrap_angle(diff[..., 0]), diff[..., 1]], -1)
    return diff.abs().sum(-1)


def silhouette_losses(pred: torch.Tensor, gt: torch.Tensor, cfg: TrainConfig):
    """Mask BCE and affinity (forward, backward) in the forms ``cfg`` selects, per sample.
    pred, gt: (B, H, W). Returns three (B,) tensors; the intended affinity in 64-px px^2."""
    bce = BCE_FORMS[cfg.bce_form](pred, gt)
    if cfg.affinity_form == "intended":
        scale = px2_scale(pred.shape[-1])
        lam = cfg.affinity_empty_cost / scale if cfg.affinity_empty_cost else None  # image px^2
        fwd, bwd = affinity_intended(pred, gt, empty_cost=lam)
        fwd, bwd = fwd * scale, bwd * scale
    else:
        fwd, bwd = AFFINITY_FORMS[cfg.affinity_form](pred, gt)
    return bce, fwd, bwd


def silhouette_terms(pred: torch.Tensor, gt: torch.Tensor, cfg: TrainConfig):
    """:func:`silhouette_losses` as batch means."""
    return tuple(t.mean() for t in silhouette_losses(pred, gt, cfg))


def view_distribution_weight(cfg: TrainConfig, step: int) -> float:
    """Weight of the viewpoint-distribution prior at (0-based) ``step``: ``w_view_distribution``;
    with ``view_distribution_steps`` set, only in stage cc before that step."""
    if cfg.view_distribution_steps and (cfg.stage == "nn" or step >= cfg.view_distribution_steps):
        return 0.0
    return cfg.w_view_distribution


def cycle_weight(cfg: TrainConfig, step: int) -> float:
    """Weight of the geometric cycle at (0-based) ``step``: 0 before ``cycle_start``, then a
    linear ramp over ``cycle_warmup`` steps up to ``w_cycle_3d``."""
    if step < cfg.cycle_start:
        return 0.0
    if cfg.cycle_warmup <= 0:
        return cfg.w_cycle_3d
    return cfg.w_cycle_3d * min(1.0, (step - cfg.cycle_start + 1) / cfg.cycle_warmup)


def point_silhouette_losses(xyz: torch.Tensor, views: torch.Tensor, mask: torch.Tensor,
                            image_size: int) -> torch.Tensor:
    """:func:`ssl3d.ops.affinity.point_to_silhouette` for clouds (B, N, 3) seen from views
    (B, 2) against masks (B, S, S), per sample: (B,) in 64-px px^2."""
    with torch.no_grad():  # the mask is data: its distance map needs no gradient
        dmap = soft_distance_transform(default_empty_cost(image_size, image_size) * (1 - mask))
    uv, _ = camera.project(xyz, views, image_size)
    return point_to_silhouette(uv, dmap) * px2_scale(image_size)


def transport_term(xyz: torch.Tensor, views: torch.Tensor, mask: torch.Tensor, image_size: int,
                   directions: int) -> torch.Tensor:
    """:func:`ssl3d.ops.sliced_silhouette_distance` of clouds (B, N, 3) seen from views (B, 2)
    against masks (B, S, S), as a batch mean in 64-px px^2."""
    uv, _ = camera.project(xyz, views, image_size)
    return sliced_silhouette_distance(uv, mask, directions).mean() * px2_scale(image_size)


def point_silhouette_term(xyz: torch.Tensor, views: torch.Tensor, mask: torch.Tensor,
                          image_size: int) -> torch.Tensor:
    """:func:`point_silhouette_losses` as a batch mean."""
    return point_silhouette_losses(xyz, views, mask, image_size).mean()


def stray_point_term(xyz: torch.Tensor, k: int, threshold: float = 4.0) -> torch.Tensor:
    """Batch mean of max(0, d_k^2 - threshold * median(d_k^2)) over each cloud's points, d_k the
    distance to the k-th nearest other point of the same cloud. xyz: (B, N, 3). Returns a scalar. The
    gradient pulls a far point and its k-th neighbour towards each other (the neighbour is not
    detached: the measured runs used this form)."""
    d = kth_neighbour_sq_dist(xyz, k)  # (B, N)
    usual = d.detach().median(1, keepdim=True).values
    return torch.relu(d - threshold * usual).mean()


def symmetry_term(xyz: torch.Tensor, axis: str, chamfer=chamfer_distance,
                  self_match: bool = True) -> torch.Tensor:
    """``chamfer`` between clouds (B, N, 3) and their mirror images across the plane ``axis`` = 0;
    without ``self_match`` a point's own mirror image is not a candidate match for it.
    Returns a scalar."""
    mirrored = xyz.clone()
    mirrored[..., AXES[axis]] = -xyz[..., AXES[axis]]  # no host-built sign vector: capturable
    return chamfer(xyz, mirrored, exclude_partner=not self_match)


def vertical_mirror(xyz: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Clouds reflected across the vertical plane through the origin whose normal is
    (cos angle, 0, sin angle) (angle 0: the plane x = 0). xyz: (..., N, 3); angle: radians, a ()
    tensor or one of shape (A, 1, 1) for A planes at once (then the result is (A, ..., N, 3))."""
    normal = torch.stack([angle.cos(), torch.zeros_like(angle), angle.sin()], -1)  # (..., 3)
    return xyz - 2 * (xyz * normal).sum(-1, keepdim=True) * normal


def mean_over_processes(tensors: list[torch.Tensor]) -> None:
    """Replace each tensor, in place, by its element-wise mean over the torch.distributed
    processes, with one all-reduce of one flat buffer (capturable in a CUDA graph). A no-op in a
    single process. tensors: any shapes, one dtype and device."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])  # (sum of numels,)
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


@torch.no_grad()
def best_vertical_plane(xyz: torch.Tensor, angles: int = 36, clouds: int = 32,
                        points: int = 128) -> torch.Tensor:
    """The angle (radians, in [0, pi)) of the vertical plane through the origin about which the
    first ``clouds`` clouds, subsampled to ``points`` points, are most mirror-symmetric on
    average (Chamfer to their reflections), searched over ``angles`` planes evenly spaced over
    half a turn. Under torch.distributed the planes' scores are averaged over the processes, so
    every replica mirrors across the same plane. xyz: (B, N, 3). Returns a () tensor; no host
    synchronisation (capturable)."""
    sub = xyz[:clouds, :: max(1, xyz.shape[1] // points)][:, :points].float()  # (C, P, 3)
    c, p = sub.shape[:2]
    grid = torch.arange(angles, device=xyz.device, dtype=sub.dtype) * (torch.pi / angles)  # (A,)
    mirrored = vertical_mirror(sub, grid.view(-1, 1, 1))  # (A, C, P, 3)
    asym = chamfer_distance(mirrored.reshape(-1, p, 3), sub.repeat(angles, 1, 1), "none")
    scores = asym.view(angles, c).mean(1)  # (A,)
    mean_over_processes([scores])
    return grid.index_select(0, scores.argmin().view(1))[0]  # a tensor index, not a host int


def project_views(xyz: torch.Tensor, rgb: torch.Tensor, views: torch.Tensor, cfg: TrainConfig,
                  dense: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Each cloud seen from each of its V viewpoints, in one projection call.
    xyz, rgb: (B, N, 3); views: (B, V, 2). Returns images (B, V, 3, S, S), silhouettes (B, V, S, S)."""
    (b, v), (n, s) = views.shape[:2], (xyz.shape[1], cfg.image_size)
    imgs, sils = project_cloud(  # the cloud repeated per view: (B * V, N, 3)
        xyz.unsqueeze(1).expand(b, v, n, 3).reshape(b * v, n, 3),
        rgb.unsqueeze(1).expand(b, v, n, 3).reshape(b * v, n, 3),
        views.reshape(b * v, 2), s, sigma2=cfg.pixel_sigma2(), beta=cfg.beta, dense=dense,
        silhouette_form=cfg.silhouette_form, colour_sigma2=cfg.colour_sigma2)
    return imgs.view(b, v, 3, s, s), sils.view(b, v, s, s)


def image_errors(image: torch.Tensor, imgs: torch.Tensor) -> torch.Tensor:
    """The image loss of each candidate projection: squared error summed over channels, averaged
    over pixels. image: (B, 3, S, S); imgs: (B, M, 3, S, S). Returns (B, M)."""
    return ((image.unsqueeze(1) - imgs) ** 2).sum(2).mean((-1, -2))


def hypothesis_scores(image: torch.Tensor, mask: torch.Tensor, imgs: torch.Tensor,
                      sils: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """How badly the cloud seen from each candidate viewpoint explains the input (lower is
    better): the pose optimiser's image and mask terms, per sample and candidate.
    image: (B, 3, S, S); mask: (B, S, S); imgs: (B, M, 3, S, S); sils: (B, M, S, S). Returns (B, M).
    """
    b, m, s = sils.shape[0], sils.shape[1], sils.shape[-1]
    err = image_errors(image, imgs)
    bce = BCE_FORMS[cfg.bce_form](sils.reshape(b * m, s, s), mask.repeat_interleave(m, 0)).view(b, m)
    return cfg.w_pose_image * err + cfg.w_pose_mask * bce


def hypothesis_weights(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """How much the reconstruction learns from each pose hypothesis, from their scores (B, M)
    (:func:`hypothesis_scores`, lower is better): softmax(-(s - s_min) / (temperature s_min)) per
    row, so a hypothesis whose score is 100 x temperature % worse than the best gets e^-1 of the
    best's weight. temperature 0: all weight on the best (winner takes all). Returns (B, M)."""
    best = scores.amin(1, keepdim=True)  # (B, 1)
    if temperature == 0:
        tied = (scores == best).to(scores.dtype)
        return tied / tied.sum(1, keepdim=True)
    return torch.softmax(-(scores - best) / (temperature * best.clamp_min(1e-12)), 1)


@torch.no_grad()
def reprojection_scores(xyz: torch.Tensor, rgb: torch.Tensor, views: torch.Tensor,
                        image: torch.Tensor, mask: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """:func:`hypothesis_scores` of the cloud projected at each candidate viewpoint. xyz, rgb:
    (B, N, 3); views: (B, M, 2); image: (B, 3, S, S); mask: (B, S, S). Returns (B, M)."""
    imgs, sils = project_views(xyz, rgb, views, cfg)
    return hypothesis_scores(image, mask, imgs, sils, cfg)


def select_by_reprojection(xyz: torch.Tensor, rgb: torch.Tensor, views: torch.Tensor,
                           image: torch.Tensor, mask: torch.Tensor, cfg: TrainConfig,
                           with_index: bool = False):
    """The candidate viewpoint whose projection of the cloud best explains image and mask (the
    criterion training uses to pick a pose hypothesis). xyz, rgb: (B, N, 3); views: (B, M, 2);
    image: (B, 3, S, S); mask: (B, S, S). Returns (B, 2), and with ``with_index`` also the
    chosen candidates' indices (B,)."""
    best = reprojection_scores(xyz, rgb, views, image, mask, cfg).argmin(1)
    chosen = views[torch.arange(views.shape[0], device=views.device), best]
    return (chosen, best) if with_index else chosen


def searched_view(xyz: torch.Tensor, rgb: torch.Tensor, view: torch.Tensor, image: torch.Tensor,
                  mask: torch.Tensor, degrees: float, cfg: TrainConfig, turns: int = 0,
                  with_turned: bool = False):
    """The best of ``view`` and its neighbours by :func:`select_by_reprojection`:
    azimuth +-D and +-2D, elevation +-D (D = ``degrees``, none when 0), a local search that
    corrects a view a few degrees off; and the view turned about the vertical by k * 360/T deg of
    azimuth, k = 1 .. T - 1 (T = ``turns``, none when 0), which corrects a view a half or quarter
    turn off. xyz, rgb: (B, N, 3); view: (B, 2); image: (B, 3, S, S); mask: (B, S, S).
    Returns (B, 2), without gradient, and with ``with_turned`` also (B,) bool: whether a turn won.
    Scored with the fast projection even under ``reference_ops``: only the choice is used, and
    both projections agree to rounding."""
    d = math.radians(degrees)
    local = ((1, 0), (-1, 0), (2, 0), (-2, 0), (0, 1), (0, -1)) if degrees > 0 else ()
    offsets = [(a * d, e * d) for a, e in local] + [(2 * math.pi * k / turns, 0.0) for k in range(1, turns)]
    # Filled in place on the device: a CUDA graph being captured allows no copy from the host.
    steps = torch.zeros(1 + len(offsets), 2, device=view.device, dtype=view.dtype)
    for i, (a, e) in enumerate(offsets, 1):
        steps[i, 0].fill_(a)
        steps[i, 1].fill_(e)
    with torch.no_grad():
        chosen, best = select_by_reprojection(xyz.detach(), rgb.detach(), view.detach().unsqueeze(1) + steps,
                                              image, mask, cfg, with_index=True)  # candidates: (B, 1 + len(offsets), 2)
    return (chosen, best > len(local)) if with_turned else chosen


def searched_neighbour_view(xyz: torch.Tensor, view: torch.Tensor, mask: torch.Tensor,
                            degrees: float, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The neighbour's view with its azimuth moved by whichever of 9 even offsets from -D to +D deg
    (D = ``degrees``) makes the cloud's silhouette match ``mask`` best (the mask loss; the cloud's
    colours are not scored, the neighbour being another object). The offset is a constant: the
    returned view keeps ``view``'s gradient. xyz: (B, N, 3); view: (B, 2); mask: (B, S, S).
    Returns the view (B, 2) and the offsets chosen, in radians (B,)."""
    b, s = xyz.shape[0], cfg.image_size
    offsets = torch.linspace(-math.radians(degrees), math.radians(degrees), 9, device=view.device,
                             dtype=view.dtype)  # (9,)
    with torch.no_grad():
        cand = view.detach().unsqueeze(1).repeat(1, 9, 1)  # (B, 9, 2)
        cand[..., 0] += offsets
        _, sils = project_views(xyz.detach(), torch.zeros_like(xyz), cand, cfg)  # (B, 9, S, S)
        bce = BCE_FORMS[cfg.bce_form](sils.reshape(b * 9, s, s), mask.repeat_interleave(9, 0))
        shift = offsets[bce.view(b, 9).argmin(1)]  # (B,)
    return view + torch.stack([shift, torch.zeros_like(shift)], 1), shift


def lower_part(xyz: torch.Tensor, rgb: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each cloud's lowest ceil(keep * N) points by height (y), the others replaced by copies of
    those (cyclically, lowest first), so the cloud keeps N points and shows only its lower part.
    xyz, rgb: (B, N, 3); keep: (B,) shares in (0, 1]. Returns xyz, rgb (B, N, 3), without gradient."""
    b, n = xyz.shape[:2]
    with torch.no_grad():
        order = xyz[..., 1].argsort(1)  # (B, N), lowest first
        kept = (keep * n).ceil().clamp(1, n).long()  # (B,)
        pick = order.gather(1, torch.arange(n, device=xyz.device).unsqueeze(0) % kept.unsqueeze(1))  # (B, N)
        idx = pick.unsqueeze(-1).expand(b, n, 3)
        return xyz.detach().gather(1, idx), rgb.detach().gather(1, idx)


def true_view_where(view: torch.Tensor, truth: torch.Tensor, which: str) -> torch.Tensor:
    """The ablation ``true_views_for``: ``truth`` for every image (``which`` = "all"), for those
    whose ``view`` is more than 30 deg from it ("wrong") or within 30 deg ("right"); ``view``
    elsewhere; or ``view``'s azimuth with ``truth``'s elevation ("elevation").
    view, truth: (B, 2). Returns (B, 2), no grad."""
    with torch.no_grad():
        if which == "elevation":
            return torch.stack([view[:, 0].detach(), truth[:, 1]], 1)
        wrong = camera.angular_error(view, truth) > math.radians(30)  # (B,)
        use = {"all": torch.ones_like(wrong), "wrong": wrong, "right": ~wrong}[which]
        return torch.where(use.unsqueeze(1), truth, view.detach())


def side_gap(xyz: torch.Tensor, rgb: torch.Tensor, views: torch.Tensor, image: torch.Tensor,
             mask: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """How much worse the cloud explains the input seen from the view turned half a turn about
    the vertical (azimuth + pi) than from ``views``: the ratio of their selection scores
    (:func:`hypothesis_scores`) minus 1. A small gap marks a view that a mirrored silhouette could
    have taken. xyz, rgb: (B, N, 3); views: (B, 2); image: (B, 3, S, S); mask: (B, S, S).
    Returns (B,)."""
    turn = torch.zeros_like(views)
    turn[:, 0] = math.pi
    scores = reprojection_scores(xyz, rgb, torch.stack([views, views + turn], 1), image, mask, cfg)
    return scores[:, 1] / scores[:, 0].clamp_min(1e-12) - 1  # (B,)


def doubt_gaps(scores: torch.Tensor, hyp: torch.Tensor, best: torch.Tensor,
               min_deg: float = 45.0) -> torch.Tensor:
    """How much worse the best distant view explains each image: s_alt / s_best - 1, where s_best
    is the chosen hypothesis's selection score and s_alt the best score among the hypotheses at
    least ``min_deg`` of azimuth from it (inf when there is none). scores: (B, M), lower is
    better; hyp: (B, M, 2) radians; best: (B,) indices. Returns (B,), no grad."""
    with torch.no_grad():
        pick = torch.arange(len(best), device=best.device)
        chosen = hyp[pick, best, 0].unsqueeze(1)  # (B, 1) azimuth
        apart = camera.wrap_angle(hyp[..., 0] - chosen)  # (B, M)
        far = apart.abs() >= math.radians(min_deg)
        s_alt = scores.masked_fill(~far, float("inf")).amin(1)
        return s_alt / scores[pick, best].clamp_min(1e-12) - 1


def doubt_weights(scores: torch.Tensor, hyp: torch.Tensor, best: torch.Tensor, gap: float,
                  min_deg: float = 45.0) -> torch.Tensor:
    """How much each image may teach the reconstruction: min(1, g / gap) with g
    :func:`doubt_gaps` (weight 1 when no hypothesis is ``min_deg`` away). Returns (B,), no grad."""
    return (doubt_gaps(scores, hyp, best, min_deg) / gap).clamp(0, 1)


def azimuth_moments_term(views: torch.Tensor) -> torch.Tensor:
    """Sum of the squared batch means of cos a, sin a, cos 2a and sin 2a over the azimuths a of
    ``views`` (B, 2). About 2 / B for azimuths drawn uniformly (0 for B >= 3 evenly spaced ones);
    2 when all are equal; 1 when they split evenly between two opposite azimuths (the first
    moment vanishes, the second does not). Returns a scalar."""
    a = views[:, 0]
    moments = torch.stack([a.cos(), a.sin(), (2 * a).cos(), (2 * a).sin()]).mean(1)  # (4,)
    return (moments ** 2).sum()


def critic_loss(critic, real: torch.Tensor, fake: torch.Tensor, r1: float = 0.0) -> torch.Tensor:
    """The view prior critic's logistic loss: ``real`` silhouettes (B, S, S) should score high,
    ``fake`` ones (F, S, S) low. ``r1`` > 0 adds the R1 penalty r1 / 2 * mean over the real
    silhouettes of the squared norm of the logit's gradient w.r.t. the silhouette.
    Returns a scalar."""
    bce = torch.nn.functional.softplus
    if r1 > 0:
        real = real.detach().requires_grad_(True)
    logit_real = critic(real)
    loss = bce(-logit_real).mean() + bce(critic(fake)).mean()
    if r1 > 0:
        (grad,) = torch.autograd.grad(logit_real.sum(), real, create_graph=True)  # (B, S, S)
        loss = loss + 0.5 * r1 * grad.pow(2).sum((1, 2)).mean()
    return loss


def step_losses(recon, pose, batch: dict, random_views: torch.Tensor, cfg: TrainConfig,
                neighbour: dict | None = None, amp: bool = False, step: int = 0, critic=None):
    """Losses of one step.

    batch: image (B, 3, S, S), mask (B, S, S), viewpoint (B, 2), cloud (B, P, 3); with
    pose_cycle_cut_share > 0 also pose_cycle_cut (B, 2), uniform draws in [0, 1).
    random_views: (B, K - 1, 2) sampled viewpoints. neighbour (stage nn): image and mask of one
    neighbour per input, plus its viewpoint (used when the pose is supervised). ``step`` (0-based)
    sets the geometric-cycle warm-up. ``critic``: the view prior's critic (when w_view_prior > 0).
    Returns (loss_recon, loss_pose, terms, extras) with ``terms`` a dict of detached scalars and
    ``extras`` the projections for image logs (and, with the view prior, the detached silhouettes
    the critic learns from: ``critic_real`` (B, S, S) and ``critic_fake`` (B * (K - 1), S, S)).
    """
    if cfg.w_view_prior > 0 and critic is None:
        raise ValueError("w_view_prior > 0 needs a critic")
    image, mask = batch["image"], batch["mask"]
    b, s = image.shape[0], cfg.image_size
    k = cfg.n_views
    self_pose = cfg.supervision == "self"
    with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=amp):
        xyz, rgb = recon(image)
        hyp, logits = pose(image, all_hypotheses=True)  # (B, M, 2), (B, M)
    xyz, rgb, hyp, logits = xyz.float(), rgb.float(), hyp.float(), logits.float()
    chamfer = chamfer_distance_dense if cfg.reference_ops else chamfer_distance
    # The supervised baselines project at the true view (and supervise hypothesis 0).
    first = hyp if self_pose else batch["viewpoint"].unsqueeze(1)  # (B, m, 2)
    m = first.shape[1]

    views = torch.cat([first, random_views], 1)  # (B, m + K - 1, 2)
    terms: dict[str, torch.Tensor] = {}
    if neighbour is not None:
        with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=amp):
            v_nb = pose(neighbour["image"]).float() if self_pose else neighbour["viewpoint"]
        if cfg.neighbour_view_search_deg > 0:
            v_nb, shift = searched_neighbour_view(xyz, v_nb, neighbour["mask"],
                                                  cfg.neighbour_view_search_deg, cfg)  # (B, 2), (B,)
            terms["nn_view_search_shift_deg"] = torch.rad2deg(shift.abs()).mean()
        views = torch.cat([views, v_nb.unsqueeze(1)], 1)  # (B, m + K, 2)
    imgs, sils = project_views(xyz, rgb, views, cfg, dense=cfg.reference_ops)
    n = xyz.shape[1]
    rand_imgs = imgs[:, m:m + k - 1]  # (B, K - 1, 3, S, S) at the random views
    nb = m + k - 1  # index of the neighbour's view
    if m > 1:
        if cfg.hypothesis_choice == "selector":  # the reconstruction learns at the selector's pick
            best = logits.argmax(1)  # (B,)
        else:  # at the hypothesis whose projection of the cloud explains the input best
            with torch.no_grad():
                scores = hypothesis_scores(image, mask, imgs[:, :m], sils[:, :m], cfg)  # (B, M)
            best = scores.argmin(1)  # (B,)
        pick = torch.arange(b, device=image.device)
        img0, sil0, v0 = imgs[pick, best], sils[pick, best], hyp[pick, best]
    else:
        img0, sil0, v0 = imgs[:, 0], sils[:, 0], first[:, 0]

    per_sample = (image_errors(image, img0.unsqueeze(1))[:, 0], *silhouette_losses(sil0, mask, cfg))
    l_img, l_mask, aff_f, aff_b = (t_.mean() for t_ in per_sample)  # each (B,) -> a batch mean
    terms.update(image=l_img, mask=l_mask, affinity_fwd=aff_f, affinity_bwd=aff_b)
    # What the reconstruction learns from: the best hypothesis's projection, or with a
    # hypothesis temperature every hypothesis's, weighted (the pose net still learns from the best).
    r_img, r_mask, r_f, r_b = l_img, l_mask, aff_f, aff_b
    v_r, sil_r = v0, sil0  # the view the reconstruction learns at, and its silhouette
    img_cyc = img0  # (B, 3, S, S): the render the geometric cycle re-reconstructs first
    if cfg.view_search_deg > 0 or cfg.view_search_turns > 0 or cfg.true_views_for != "none":
        if cfg.true_views_for == "none":
            v_r, turned = searched_view(xyz, rgb, v0, image, mask, cfg.view_search_deg, cfg,
                                        cfg.view_search_turns, with_turned=True)  # (B, 2), (B,)
        else:
            v_r = true_view_where(v0, batch["viewpoint"], cfg.true_views_for)
        img_r, sil_r = project_views(xyz, rgb, v_r.unsqueeze(1), cfg, dense=cfg.reference_ops)
        sil_r = sil_r[:, 0]  # (B, S, S); img_r stays (B, 1, 3, S, S), as image_errors takes it
        if cfg.cycle_first_view == "reconstruction":
            img_cyc = img_r[:, 0]
        r_img = image_errors(image, img_r).mean()
        r_mask, r_f, r_b = silhouette_terms(sil_r, mask, cfg)
        # Logged beside "mask" (at the pose net's view): what the new view changed.
        terms.update(view_search_moved=(v_r != v0.detach()).any(1).float().mean(),
                     view_search_image=r_img, view_search_mask=r_mask,
                     view_search_shift_deg=torch.rad2deg(camera.angular_error(v_r, v0.detach())).mean())
        if cfg.view_search_turns > 0:  # the share of views a turn replaced
            terms["view_search_turned"] = turned.float().mean()
    if cfg.doubt_gap > 0:  # validate(): several hypotheses, self-supervision, no search or temperature
        wts = doubt_weights(scores, hyp, best, cfg.doubt_gap)  # (B,)
        # A weighted mean: the terms keep their scale against the others (neighbour, cycle,
        # prior), and the doubtful images' share goes to the sure ones.
        norm = wts.sum().clamp_min(1e-6)
        r_img, r_mask, r_f, r_b = ((wts * t_).sum() / norm for t_ in per_sample)
        terms["doubt_weight"] = wts.mean()
    if m > 1 and cfg.hypothesis_temperature > 0:
        wts = hypothesis_weights(scores, cfg.hypothesis_temperature)  # (B, M)
        per_img = image_errors(image, imgs[:, :m])  # (B, M)
        per_sil = silhouette_losses(sils[:, :m].reshape(b * m, s, s), mask.repeat_interleave(m, 0), cfg)
        r_img, r_mask, r_f, r_b = ((wts * t.view(b, m)).sum(1).mean() for t in (per_img, *per_sil))
        terms["hypothesis_top_weight"] = wts.amax(1).mean()

    if cfg.supervision == "3d":
        l_sup = chamfer(xyz, batch["cloud"])
        terms["chamfer_gt"] = l_sup
        loss_r = cfg.w_supervised_3d * l_sup + cfg.w_image * l_img
    else:
        loss_r = cfg.w_image * r_img + cfg.w_mask * r_mask + cfg.w_affinity * (r_f + r_b)
        # Geometric cycle: re-reconstruct from the projections and compare with the cloud.
        # Skipped while its weight is 0 (before cycle_start, or switched off).
        w_cycle = cycle_weight(cfg, step)
        if w_cycle > 0:
            n_cyc = k - 1 if cfg.cycle_form == "released" else k
            cyc_imgs = torch.cat([img_cyc.unsqueeze(1), rand_imgs], 1)  # (B, K, 3, S, S)
            cyc_in = cyc_imgs[:, :n_cyc].reshape(-1, 3, s, s)  # (B * K', 3, S, S)
            if cfg.cycle_gradient == "stop_all":
                cyc_in = cyc_in.detach()
            target = xyz if cfg.cycle_gradient == "full" else xyz.detach()
            with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=amp):
                cyc_xyz, _ = recon(cyc_in)
            cyc_xyz = cyc_xyz.float().view(b, n_cyc, n, 3)
            # The released list also holds P against itself: a zero term, left out here.
            l_cycle = sum(chamfer(cyc_xyz[:, j], target) for j in range(n_cyc))
            terms["cycle_3d"] = l_cycle
            loss_r = loss_r + w_cycle * l_cycle

    if cfg.w_point_silhouette > 0:
        l_pts = point_silhouette_term(xyz, v_r, mask, s)
        if neighbour is not None:
            terms["nn_point_silhouette"] = point_silhouette_term(xyz, views[:, nb], neighbour["mask"], s)
            l_pts = l_pts + cfg.w_neighbour * terms["nn_point_silhouette"]
        terms["point_silhouette"] = l_pts
        loss_r = loss_r + cfg.w_point_silhouette * l_pts

    if cfg.w_transport > 0:
        l_tr = transport_term(xyz, v_r, mask, s, cfg.transport_directions)
        if neighbour is not None:
            terms["nn_transport"] = transport_term(xyz, views[:, nb], neighbour["mask"], s,
                                                   cfg.transport_directions)
            l_tr = l_tr + cfg.w_neighbour * terms["nn_transport"]
        terms["transport"] = l_tr
        loss_r = loss_r + cfg.w_transport * l_tr

    if neighbour is not None:
        nb_mask, nb_f, nb_b = silhouette_terms(sils[:, nb], neighbour["mask"], cfg)
        terms.update(nn_mask=nb_mask, nn_affinity_fwd=nb_f, nn_affinity_bwd=nb_b)
        loss_r = loss_r + cfg.w_neighbour * (cfg.w_mask * nb_mask + cfg.w_affinity * (nb_f + nb_b))

    if cfg.w_outlier > 0:
        terms["stray_points"] = stray_point_term(xyz, cfg.outlier_k, cfg.outlier_threshold)
        loss_r = loss_r + cfg.w_outlier * terms["stray_points"]

    critic_in = {}
    if cfg.w_view_prior > 0:
        # The cloud seen from random viewpoints should look like it does from its own.
        fake = sils[:, m:m + k - 1].reshape(-1, s, s)  # (B * (K - 1), S, S)
        terms["view_prior"] = torch.nn.functional.softplus(-critic(fake)).mean()
        loss_r = loss_r + cfg.w_view_prior * terms["view_prior"]
        real = sil_r.detach() if cfg.critic_real == "input_view" else mask
        critic_in = {"critic_real": real, "critic_fake": fake.detach()}

    if cfg.w_symmetry > 0:
        if cfg.symmetry_plane == "best_vertical":
            # The plane the batch is most symmetric about, so that it follows the frame the
            # networks learn instead of forcing one (a fixed x = 0 can cut an airplane's frame
            # diagonally and make wings and fuselage mirror images of each other).
            angle = best_vertical_plane(xyz.detach())
            l_sym = chamfer(xyz, vertical_mirror(xyz, angle),
                            exclude_partner=not cfg.symmetry_self_match)
            terms["symmetry_plane_deg"] = torch.rad2deg(angle)
        else:
            l_sym = symmetry_term(xyz, cfg.symmetry_axis, chamfer, cfg.symmetry_self_match)
        terms["symmetry"] = l_sym
        loss_r = loss_r + cfg.w_symmetry * l_sym

    # Pose network.
    if self_pose:
        cyc_in = rand_imgs  # (B, K - 1, 3, S, S)
        if cfg.pose_cycle_cut_share > 0:
            # A share of the clouds show the pose net only their lower part (as a stool).
            if "pose_cycle_cut" not in batch:
                raise ValueError("pose_cycle_cut_share > 0 needs batch['pose_cycle_cut'], (B, 2) "
                                 "uniform draws (Trainer.sample_step makes them)")
            with torch.no_grad():
                u = batch["pose_cycle_cut"]  # (B, 2): the share of points kept, whether to cut
                cut_xyz, cut_rgb = lower_part(xyz, rgb, 0.4 + 0.4 * u[:, 0])
                cut_imgs, _ = project_views(cut_xyz, cut_rgb, random_views, cfg, dense=cfg.reference_ops)
                cut = (u[:, 1] < cfg.pose_cycle_cut_share).view(b, 1, 1, 1, 1)
                cyc_in = torch.where(cut, cut_imgs, cyc_in)
        with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=amp):
            v_cyc, logits_cyc = pose(cyc_in.reshape(-1, 3, s, s), all_hypotheses=True)
        v_cyc = v_cyc.float().view(b, k - 1, m, 2)
        # Winner takes all: each sampled view is explained by its closest hypothesis.
        l_cyc = pose_l1(v_cyc, random_views.unsqueeze(2), cfg.azimuth_error)  # (B, K - 1, M)
        l_pose = l_cyc.amin(2).sum(1).mean()
        terms["pose_cycle"] = l_pose
        if cfg.w_cycle_select > 0:  # the selector learns to pick that closest hypothesis
            terms["cycle_select"] = torch.nn.functional.cross_entropy(
                logits_cyc.float(), l_cyc.detach().argmin(2).flatten())
        loss_p = cfg.w_pose_image * l_img + cfg.w_pose_mask * l_mask + cfg.w_pose_cycle * l_pose
        # Logged always: the trainer warns when it shows a pose collapse.
        terms["view_distribution"] = azimuth_moments_term(v0)
        w_dist = view_distribution_weight(cfg, step)
        if w_dist > 0:
            loss_p = loss_p + w_dist * terms["view_distribution"]
        if m > 1 and cfg.hypothesis_choice == "reprojection":
            terms["pose_select"] = torch.nn.functional.cross_entropy(logits, best)
            loss_p = loss_p + terms["pose_select"]
        if cfg.w_cycle_select > 0:
            loss_p = loss_p + cfg.w_cycle_select * terms["cycle_select"]
        if neighbour is not None:
            loss_p = loss_p + cfg.w_pose_mask * terms["nn_mask"]
    else:
        l_pose = pose_l1(hyp[:, 0], batch["viewpoint"], cfg.azimuth_error).mean()
        terms["pose_supervised"] = l_pose
        loss_p = l_pose
        if hyp.shape[1] > 1:  # the selector must learn to pick the supervised hypothesis 0
            hyp0 = torch.zeros(b, dtype=torch.long, device=image.device)
            loss_p = loss_p + torch.nn.functional.cross_entropy(logits, hyp0)

    if cfg.weight_decay == "intended":
        loss_r = loss_r + l2_penalty(recon)
        loss_p = loss_p + l2_penalty(pose)
    terms.update(loss_recon=loss_r, loss_pose=loss_p)
    extras = {"images": img0, "silhouettes": sil0, "viewpoint": v0, **critic_in}
    return loss_r, loss_p, {n_: t.detach() for n_, t in terms.items()}, extras
