"""How well does a self-supervised pose net pose its own clouds' renders, against real images?

The pose net learns mostly through the pose cycle, from renders of its own clouds at random
views (benchmarks/pose_gradients.py). If it poses those renders far more precisely than the
real images, the gap between the two kinds of image, not the cycle's labels, limits the pose.

For each test image the run's cloud is rendered at K random training views (the cycle's images)
and at the real image's own predicted view; the pose net then poses every render. Errors are
angles between viewing directions: for renders against the view rendered from (the network's
own frame, no alignment needed), for real images against the true view after the evaluation's
rotation (RUN_DIR/predictions_test.npz, written by ``ssl3d evaluate``), which is fitted to the
shapes; a second real-image line uses instead the rotation that best fits the poses themselves
(Kabsch on the viewing directions of the images the selector gets within 30 deg), so that a
misfit between the shapes' frame and the poses' is not counted as the pose net's error. Each
line gives the median error and the share within 30 deg for the selector's hypothesis and for
the best hypothesis in hindsight (what the cycle's winner-takes-all trains).

With --refit N, a last line fits each real image's view to its own mask with its own cloud (N
Adam steps on the training's mask and affinity terms, from the selector's view): if the refitted
views lie nearer the true ones than the pose net's, the clouds agree with the true views and the
pose net's error on real images is its own; if not, the clouds were drawn for the views the pose
net gave them.

    python benchmarks/cycle_gap.py DATA_DIR CATEGORY RUN_DIR [--views 3] [--batch-size 100]
        [--refit N]
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from ssl3d import camera
from ssl3d.data.dataset import load_split
from ssl3d.evaluation.evaluate import find_checkpoint
from ssl3d.evaluation.metrics import pose_errors
from ssl3d.training.checkpoint import load_models
from ssl3d.training.losses import project_views, silhouette_losses


def errors_deg(pred: torch.Tensor, true: torch.Tensor, rot: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`ssl3d.evaluation.metrics.pose_errors` of each hypothesis. pred: (..., M, 2);
    true: (..., 2). Returns (..., M) degrees."""
    flat_true = true.unsqueeze(-2).expand_as(pred).reshape(-1, 2)
    return torch.from_numpy(pose_errors(pred.reshape(-1, 2), flat_true, rot)).view(pred.shape[:-1])


def refit_views(xyz: torch.Tensor, rgb: torch.Tensor, start: torch.Tensor, mask: torch.Tensor,
                cfg, steps: int, lr: float = 0.01) -> torch.Tensor:
    """Each cloud's view fitted to its mask: Adam on the mask and affinity terms (training's
    forms and weights) from ``start``. xyz, rgb: (B, N, 3); start: (B, 2); mask: (B, S, S).
    Returns (B, 2)."""
    view = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([view], lr=lr)
    for _ in range(steps):
        with torch.enable_grad():
            _, sils = project_views(xyz, rgb, view.unsqueeze(1), cfg)  # (B, 1, S, S)
            bce, fwd, bwd = silhouette_losses(sils[:, 0], mask, cfg)
            loss = (cfg.w_mask * bce + cfg.w_affinity * (fwd + bwd)).sum()
            opt.zero_grad()
            loss.backward()
        opt.step()
    return view.detach()


def kabsch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The rotation R minimising sum |R a_i - b_i|^2 over unit vectors a, b: (P, 3). Returns (3, 3)."""
    u, _, vt = torch.linalg.svd(b.T.double() @ a.double())
    d = torch.sign(torch.linalg.det(u @ vt))
    return (u @ torch.diag(torch.tensor([1.0, 1.0, float(d)], dtype=torch.float64)) @ vt).float()


def summary(name: str, sel: torch.Tensor, best: torch.Tensor) -> str:
    def one(e):
        return f"median {e.median():5.1f} deg, within 30 deg {100 * (e < 30).float().mean():5.1f}%"
    return f"  {name:38s} selector: {one(sel)};  best hypothesis: {one(best)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("run")
    ap.add_argument("--views", type=int, default=3, help="random views rendered per test image")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--refit", type=int, default=0, help="Adam steps of the view refit (0: none)")
    args = ap.parse_args()
    recon, pose, cfg = load_models(find_checkpoint(args.run))
    recon.float().eval()
    pose.float().eval()
    pred_file = Path(args.run) / "predictions_test.npz"
    if not pred_file.is_file():
        raise SystemExit(f"{pred_file} not found: run `ssl3d evaluate {args.run}` first")
    rot = torch.as_tensor(np.load(pred_file)["rotation"]).float()
    test = load_split(args.data, args.category, "test", cfg.image_size, progress=False)
    g = torch.Generator().manual_seed(0)
    out = {k: [] for k in ("real_sel", "real_best", "own_sel", "own_best", "rand_sel", "rand_best")}
    hyps, picks, refits = [], [], []
    with torch.no_grad():
        for i in range(0, len(test), args.batch_size):
            x, true = test.images[i:i + args.batch_size], test.viewpoints[i:i + args.batch_size]
            b = len(x)
            xyz, rgb = recon(x)
            hyp, logits = pose(x, all_hypotheses=True)  # (B, M, 2), (B, M)
            pick = logits.argmax(1)
            own = hyp[torch.arange(b), pick]  # (B, 2): the real image's predicted view
            e = errors_deg(hyp, true, rot)  # (B, M)
            out["real_sel"].append(e[torch.arange(b), pick])
            out["real_best"].append(e.amin(1))
            hyps.append(hyp)
            picks.append(pick)
            if args.refit:
                refits.append(refit_views(xyz, rgb, own, test.masks[i:i + args.batch_size], cfg,
                                          args.refit))
            rand = camera.sample_viewpoints(b * args.views, generator=g).view(b, args.views, 2)
            views = torch.cat([own.unsqueeze(1), rand], 1)  # (B, 1 + K, 2)
            imgs, _ = project_views(xyz, rgb, views, cfg)  # (B, 1 + K, 3, S, S)
            s = cfg.image_size
            h_r, l_r = pose(imgs.reshape(-1, 3, s, s), all_hypotheses=True)  # (B(1+K), M, 2)
            e_r = errors_deg(h_r, views.reshape(-1, 2))  # (B(1+K), M), the network's own frame
            sel_r = e_r[torch.arange(len(e_r)), l_r.argmax(1)].view(b, -1)
            best_r = e_r.amin(1).view(b, -1)
            out["own_sel"].append(sel_r[:, 0])
            out["own_best"].append(best_r[:, 0])
            out["rand_sel"].append(sel_r[:, 1:].reshape(-1))
            out["rand_best"].append(best_r[:, 1:].reshape(-1))
    r = {k: torch.cat(v) for k, v in out.items()}
    hyp, pick = torch.cat(hyps), torch.cat(picks)
    right = r["real_sel"] < 30
    sel_dir = camera.viewing_direction(hyp[torch.arange(len(hyp)), pick])
    rot_pose = kabsch(sel_dir[right], camera.viewing_direction(test.viewpoints)[right])
    e_pose = errors_deg(hyp, test.viewpoints, rot_pose)  # (M_test, M)
    print(f"{args.run}: pose errors on {len(test)} {args.category} test images "
          f"({cfg.pose_hypotheses} hypotheses, colour_sigma2 {cfg.colour_sigma2:g})")
    print(summary("real images (after the evaluation's rotation)", r["real_sel"], r["real_best"]))
    print(summary("real images (rotation fitted to the poses)",
                  e_pose[torch.arange(len(e_pose)), pick], e_pose.amin(1)))
    if args.refit:
        e_fit = errors_deg(torch.cat(refits).unsqueeze(1), test.viewpoints, rot_pose)[:, 0]
        print(summary(f"real images, view refitted ({args.refit} steps)", e_fit, e_fit))
    print(summary("its cloud rendered at that predicted view", r["own_sel"], r["own_best"]))
    print(summary(f"its cloud at {args.views} random views each", r["rand_sel"], r["rand_best"]))


if __name__ == "__main__":
    main()
