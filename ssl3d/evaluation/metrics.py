"""Evaluation protocol (METHOD section 9): global alignment, Chamfer, EMD, pose accuracy.

The learned canonical frame is arbitrary, so ONE rotation R (azimuth, elevation, tilt) is fitted
on the validation split to bring predictions into the ground-truth frame, then applied unchanged
to the test split. Before every metric each cloud is rescaled to a unit bounding box
(:func:`ssl3d.ops.normalize_unit_box`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ssl3d import camera
from ssl3d.ops import chamfer_distance, emd_exact, normalize_unit_box


@dataclass
class Alignment:
    """A fitted global rotation (radians) and its validation Chamfer."""

    azimuth: float
    elevation: float
    tilt: float
    val_chamfer: float

    def matrix(self, dtype=torch.float32, device="cpu") -> torch.Tensor:
        a = torch.tensor([self.azimuth, self.elevation, self.tilt], dtype=dtype, device=device)
        return camera.rotation_from_euler(a[0], a[1], a[2])

    @classmethod
    def from_dict(cls, d: dict) -> "Alignment":
        """Inverse of :meth:`as_dict`."""
        return cls(math.radians(d["azimuth_deg"]), math.radians(d["elevation_deg"]),
                   math.radians(d["tilt_deg"]), d["val_chamfer_x1000"] / 1000)

    def as_dict(self) -> dict:
        return {"azimuth_deg": math.degrees(self.azimuth), "elevation_deg": math.degrees(self.elevation),
                "tilt_deg": math.degrees(self.tilt), "val_chamfer_x1000": 1000 * self.val_chamfer}


def rotate(points: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """points: (B, N, 3); rot: (3, 3) or (R, 3, 3) -> (B, N, 3) or (R, B, N, 3)."""
    return points @ rot.transpose(-1, -2).unsqueeze(-3) if rot.ndim == 3 else points @ rot.T


def _aligned_chamfer(pred: torch.Tensor, gt: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Mean Chamfer after rotating ``pred`` by each candidate. angles: (R, 3). Returns (R,)."""
    rots = camera.rotation_from_euler(angles[:, 0], angles[:, 1], angles[:, 2])  # (R, 3, 3)
    rotated = rotate(pred, rots)  # (R, B, N, 3)
    r, b = rotated.shape[:2]
    flat = normalize_unit_box(rotated.reshape(r * b, *pred.shape[1:]))
    target = gt.unsqueeze(0).expand(r, *gt.shape).reshape(r * b, *gt.shape[1:])
    return chamfer_distance(flat, target, reduction="none").view(r, b).mean(1)


def fit_global_rotation(pred: torch.Tensor, gt: torch.Tensor, steps: int = 5000, lr: float = 1e-3,
                        restarts: int = 4, max_clouds: int = 256, max_points: int = 512,
                        coarse_clouds: int | None = None, tol: float = 0.0, seed: int = 0,
                        device="cpu") -> Alignment:
    """Fit the rotation minimising mean Chamfer(normalise(R pred), normalise(gt)).

    pred: (M, N, 3) predictions; gt: (M, P, 3) ground truth (validation split). A coarse grid of
    rotations (30 deg azimuth, 45 deg elevation and tilt steps) picks the ``restarts`` best
    starting points (scored on the first ``coarse_clouds`` of them, default all), each then
    refined with Adam (``steps`` at ``lr``) on up to ``max_clouds`` clouds subsampled to
    ``max_points`` points; the best is kept. With ``tol`` > 0 the refinement stops early once
    25 steps lower no restart's Chamfer by more than that fraction. Runs on ``device``.
    """
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(pred.shape[0], generator=g)[:max_clouds]
    p = pred[pick].float()
    t = gt[pick].float()
    if p.shape[1] > max_points:
        p = p[:, torch.randperm(p.shape[1], generator=g)[:max_points]]
    if t.shape[1] > max_points:
        t = t[:, torch.randperm(t.shape[1], generator=g)[:max_points]]
    t = normalize_unit_box(t)  # after subsampling, as the predictions are in _aligned_chamfer
    p, t = p.to(device), t.to(device)
    deg = math.pi / 180
    grid = torch.tensor([(a * deg, e * deg, r * deg)
                         for a in range(-180, 180, 30) for e in (-90, -45, 0, 45, 90)
                         for r in (-90, -45, 0, 45, 90, 180)], dtype=torch.float32, device=device)
    pc, tc = p[:coarse_clouds], t[:coarse_clouds]  # the clouds are in random order already
    with torch.no_grad():
        coarse = torch.cat([_aligned_chamfer(pc, tc, grid[i:i + 60]) for i in range(0, len(grid), 60)])
    angles = grid[coarse.argsort()[:restarts]].clone().requires_grad_(True)
    opt = torch.optim.Adam([angles], lr=lr)
    checked = None
    for step in range(steps):
        opt.zero_grad()
        loss = _aligned_chamfer(p, t, angles)
        if tol > 0 and step % 25 == 0:
            now = loss.detach()
            if checked is not None and bool((checked - now <= tol * checked).all()):
                break
            checked = now
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        final = _aligned_chamfer(p, t, angles)
    best = int(final.argmin())
    a = angles[best].detach().tolist()
    return Alignment(a[0], a[1], a[2], float(final[best]))


def cloud_metrics(pred: torch.Tensor, gt: torch.Tensor, rot: torch.Tensor | None = None,
                  emd: bool = True, workers: int = 1) -> dict[str, np.ndarray]:
    """Per-cloud Chamfer and EMD after rotation by ``rot`` and unit-box normalisation.

    pred: (M, N, 3); gt: (M, P, 3). EMD matches one-to-one, so if N != P the larger cloud is
    subsampled (seeded) to the smaller size; with the paper's N = P = 1024 nothing is dropped.
    Returns {"chamfer": (M,), "emd": (M,)} in squared units of the normalised clouds.
    """
    p = rotate(pred.float(), rot) if rot is not None else pred.float()
    p, t = normalize_unit_box(p), normalize_unit_box(gt.float())
    out = {"chamfer": np.concatenate([chamfer_distance(p[i:i + 256], t[i:i + 256], "none").numpy()
                                      for i in range(0, len(p), 256)])}
    if emd:
        # One-to-one matching needs equal sizes: a seeded random subset of the larger cloud.
        n = min(p.shape[1], t.shape[1])
        g = torch.Generator().manual_seed(0)
        p_e = p[:, torch.randperm(p.shape[1], generator=g)[:n]] if p.shape[1] > n else p
        t_e = t[:, torch.randperm(t.shape[1], generator=g)[:n]] if t.shape[1] > n else t
        out["emd"] = emd_exact(p_e, t_e, workers=workers)
    return out


def pose_errors(pred_views: torch.Tensor, true_views: torch.Tensor,
                rot: torch.Tensor | None = None) -> np.ndarray:
    """Angle (degrees) between the predicted camera direction, taken into the ground-truth frame
    by ``rot``, and the true one. pred_views, true_views: (M, 2). Returns (M,)."""
    d_pred = camera.viewing_direction(pred_views.float())
    if rot is not None:
        d_pred = d_pred @ rot.T
    d_true = camera.viewing_direction(true_views.float())
    return torch.rad2deg(camera.angle_between(d_pred, d_true)).numpy()


def summarise(chamfer: np.ndarray, emd: np.ndarray | None, pose_err: np.ndarray | None) -> dict:
    """The metrics.json entry of one category and split."""
    out = {"n": int(len(chamfer)), "chamfer_x1000": float(1000 * chamfer.mean()),
           "emd_x1000": float(1000 * emd.mean()) if emd is not None else None,
           "pose_acc_30": None, "pose_median_deg": None}
    if pose_err is not None:
        out["pose_acc_30"] = float((pose_err <= 30).mean())
        out["pose_median_deg"] = float(np.median(pose_err))
    return out


def mean_shape(train_clouds: torch.Tensor, n_points: int = 1024, steps: int = 300,
               max_clouds: int = 512, seed: int = 0, device="cpu", batch: int = 0) -> torch.Tensor:
    """The category's mean shape: a cloud minimising the mean Chamfer to the (normalised)
    training clouds, started from their Chamfer medoid. train_clouds: (M, P, 3). ``max_clouds``
    of them, drawn at random, are fitted; with ``batch`` > 0 each Adam step (and the medoid
    search) sees a random ``batch`` of those only, which on a CPU fits many clouds for the cost
    of a few. Returns (n, 3) on the CPU."""
    if n_points < 1 or steps < 0 or max_clouds < 1 or batch < 0:
        raise ValueError(f"n_points and max_clouds must be >= 1, steps and batch >= 0, got "
                         f"{n_points}, {max_clouds}, {steps}, {batch}")
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(train_clouds), generator=g)[:max_clouds]
    clouds = normalize_unit_box(train_clouds[pick].float()).to(device)
    size = min(batch, len(clouds)) if batch > 0 else len(clouds)
    cand = clouds[: min(32, len(clouds))]
    with torch.no_grad():
        ref = clouds[:size]
        cost = torch.stack([chamfer_distance(c.expand(size, -1, -1), ref, "none").mean()
                            for c in cand])
    start = cand[int(cost.argmin())]
    idx = torch.randint(start.shape[0], (n_points,), generator=g)
    pts = (start[idx] + 1e-3 * torch.randn(n_points, 3, generator=g).to(device)).requires_grad_(True)
    opt = torch.optim.Adam([pts], lr=2e-3)
    for _ in range(steps):
        some = clouds if size == len(clouds) else \
            clouds[torch.randperm(len(clouds), generator=g)[:size].to(clouds.device)]
        opt.zero_grad()
        chamfer_distance(pts.expand(size, -1, -1), some).backward()
        opt.step()
    return pts.detach().cpu()
