"""Which label-free signals single out a self-supervised run's wrongly posed training images?
Session 23 found that a wrong view and the cloud drawn for it fit the image nearly as well as a
right pair, so the reprojection score hardly tells them apart; a shape prior would have to. For
each signal below, computed on the first N training images of RUN_DIR with no label, this
prints the probability that a wrongly posed image (view more than 30 deg off, judged with the
ground truth and the rotation fitted on the validation split, as ``ssl3d evaluate``) scores
higher than a rightly posed one (AUC; 0.5: no signal, below 0.5: lower for the wrong ones), and
the two groups' medians:

- the cloud's asymmetry: Chamfer between it and its mirror across x = 0 of the network's frame
  (the plane the preset's symmetry term mirrors across);
- its distance to other clouds: Chamfer (every 4th point) to the nearest and the mean of K
  random other training clouds;
- its spread (standard deviation) along each axis of the network's frame;
- the reprojection score training selects views by, from the run's own view;
- the view prior's critic (runs trained with it): its loss softplus(-logit) on the cloud's
  silhouettes at 8 random training views (what the reconstruction is trained to lower: does a
  cloud drawn for a wrong view look odd from elsewhere?), on its silhouette at its own view (the
  selector's choice, as everywhere here; training shows the critic the hypothesis that best
  explains the input), and as a control on the input's mask (which the critic never trained on);
- a control that reads the truth: the ground-truth cloud's asymmetry about its x = 0 (are the
  wrongly posed chairs asymmetric ones?).

    python benchmarks/wrong_pose_signals.py DATA_DIR CATEGORY RUN_DIR [N] [K]
"""

import sys
from pathlib import Path

import torch

from ssl3d import camera
from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import predict
from ssl3d.models import SilhouetteCritic
from ssl3d.ops import chamfer_distance
from ssl3d.training.checkpoint import load_checkpoint
from ssl3d.training.losses import project_views

sys.path.insert(0, str(Path(__file__).parent))
from pose_label_check import chamfer_to_each, run_on_training_split  # noqa: E402
from view_candidates import scores  # noqa: E402


def auc(signal: torch.Tensor, wrong: torch.Tensor) -> float:
    """P(signal of a wrong item > signal of a right one), ties counted half. signal: (M,);
    wrong: (M,) bool."""
    b, g = signal[wrong], signal[~wrong]
    return ((b[:, None] > g[None, :]).float().mean() + 0.5 * (b[:, None] == g[None, :]).float().mean()).item()


@torch.no_grad()
def critic_signals(path, cfg, xyz, rgb, views, masks, n_random: int = 8) -> dict:
    """The view prior critic's loss softplus(-logit) per cloud (M,): the mean over ``n_random``
    random viewpoints, at the cloud's own view, and on the input masks (M, S, S). Empty when the
    run has no critic."""
    state = load_checkpoint(path).get("critic")
    if state is None:
        return {}
    critic = SilhouetteCritic(cfg.image_size)
    critic.load_state_dict({k_: v.float() for k_, v in state.items()})
    critic.eval()
    g = torch.Generator().manual_seed(0)
    rand = camera.sample_viewpoints(len(xyz) * n_random, generator=g).view(len(xyz), n_random, 2)

    def fake(sil: torch.Tensor) -> torch.Tensor:  # (b, S, S) -> (b,): the prior's loss
        return torch.nn.functional.softplus(-critic(sil))

    out = {"random": [], "own": [], "mask": []}
    for i in range(0, len(xyz), 200):
        j = slice(i, i + 200)
        both = torch.cat([views[j, None], rand[j]], 1)  # (b, 1 + n_random, 2)
        _, sils = project_views(xyz[j], rgb[j], both, cfg)  # (b, 1 + n_random, S, S)
        b, s = sils.shape[0], cfg.image_size
        out["random"].append(fake(sils[:, 1:].reshape(-1, s, s)).view(b, n_random).mean(1))
        out["own"].append(fake(sils[:, 0]))
        out["mask"].append(fake(masks[j].float()))
    return {f"critic's loss at {n_random} random views": torch.cat(out["random"]),
            "critic's loss at its own view": torch.cat(out["own"]),
            "control: critic's loss on the input's mask": torch.cat(out["mask"])}


def main(data: str, category: str, run: str, n: int = 4800, k: int = 32) -> None:
    path, recon, pose, cfg, rot, train = run_on_training_split(data, category, run)
    n = min(n, len(train))
    images, masks = train.images[:n], train.masks[:n]
    xyz, rgb, views = predict(recon, pose, images)
    wrong = torch.from_numpy(M.pose_errors(views, train.viewpoints[:n], rot) > 30)
    mirror = torch.tensor([-1.0, 1.0, 1.0])
    others = xyz[torch.randperm(n, generator=torch.Generator().manual_seed(0))[:k], ::4]
    d = chamfer_to_each(xyz[:, ::4], others)  # (n, k)
    # an image's own cloud may be among the k: its distance 0 is skipped for the nearest
    near, mean = torch.where(d > 0, d, torch.inf).min(1).values, d.mean(1)
    signals = {
        "asymmetry about x = 0": chamfer_distance(xyz, xyz * mirror, "none"),
        f"Chamfer to the nearest of {k} other clouds": near,
        f"mean Chamfer to {k} other clouds": mean,
        **{f"spread along {a}": xyz.std(1)[:, i] for i, a in enumerate("xyz")},
        "reprojection score from its own view": scores(xyz, rgb, views[:, None], images, masks, cfg)[:, 0],
        "control: the ground truth's asymmetry": chamfer_distance(train.clouds[:n], train.clouds[:n] * mirror,
                                                                  "none"),
    }
    signals.update(critic_signals(path, cfg, xyz, rgb, views, masks))
    print(f"{run}: {n} training images, {100 * wrong.float().mean():.1f}% posed wrong (> 30 deg)")
    for name, s in signals.items():
        print(f"  {name}: AUC {auc(s, wrong):.3f}; median wrong {s[wrong].median():.5f}, "
              f"right {s[~wrong].median():.5f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:]))
