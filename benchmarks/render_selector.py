"""Could a selector taught on renders of the run's clouds of other images pick the right view where
training's choice is wrong? Sessions 22-25: the training images a self-supervised run poses wrong
(12-17% of the chairs) hold its shapes back, and every rule that picks among the pose hypotheses
with the image's own cloud, or with other clouds, rights few of them. But training picks the view
by how well the image's OWN cloud explains it, and a cloud drawn for a wrong view explains it
nearly as well as a right pair (session 23): a closed loop. A selector taught only on renders of
the population's clouds at known random views (the pose cycle's images, where the right hypothesis
is known) sees no image's own fit; where most clouds are right, it may learn from the renders'
content (which parts hide which) which of the front or back hypotheses a chair image shows.

On the first N training images of RUN_DIR (rotation into the ground-truth frame fitted on the
validation split, as ``ssl3d evaluate``), this trains a fresh selector head (two layers, 256 wide;
the run's pose features and hypotheses frozen) for STEPS (default 1,500) steps of batch 256 on
renders of the clouds of the training images after the first N whose models are not among the first
N's (so no image's own cloud), less the last tenth of them, at random views drawn as training draws
them, each labelled with the hypothesis nearest its view. It prints, for the run's own selector,
training's choice (reprojection with the image's own cloud) and the new selector: the share of the
N posed right, of training's wrong ones now right, of its right ones kept, and the best hypothesis
in hindsight; and the new selector's accuracy on renders of the held-out tenth (shapes it never
saw), which separates unseen shapes from the step from renders to real images.

With INPUT = masks it trains instead a fresh classifier of the azimuth (24 bins; the pose net's
convolutions and a 256-wide layer, from scratch) on the renders' silhouettes made binary, and picks
the hypothesis whose azimuth it finds likeliest in the real image's mask (made binary too): binary
masks look alike whether rendered or real, where the images may not. It also prints the pick joined
with training's score s: argmin of s / s_min - 1 - lam log p(azimuth bin) for a few lam.

INPUT = truth is the label-reading control of that classifier: the same net trained on the pool
images' real binary masks with their TRUE views (no renders), scored on the held-out images' real
masks, and picking among the run's hypotheses taken into the ground-truth frame; truth-rgb the
same on the colour images. How well do a silhouette, and an image, tell a chair's azimuth at all?

    python benchmarks/render_selector.py DATA_DIR CATEGORY RUN_DIR [N] [STEPS] [features|masks|truth|truth-rgb]
"""

import sys
from pathlib import Path

import numpy as np
import torch

from ssl3d import camera
from ssl3d.evaluation import metrics as M
from ssl3d.evaluation.evaluate import predict
from ssl3d.models.networks import STRUCTURE_CONVS, conv_encoder
from ssl3d.training.losses import pose_l1, project_views

sys.path.insert(0, str(Path(__file__).parent))
from pose_label_check import run_on_training_split  # noqa: E402
from view_candidates import errors_per_view, scores  # noqa: E402


def features(pose, images: torch.Tensor, chunk: int = 256):
    """The pose net's hypotheses (n, M, 2) and the features its selector reads (n, H), from one
    forward pass (the features caught on their way out of the pose net's head)."""
    hyp, feats = [], []
    hook = pose.head.register_forward_hook(lambda _m, _i, out: feats.append(out))
    try:
        with torch.no_grad():
            for i in range(0, len(images), chunk):
                hyp.append(pose(images[i:i + chunk], all_hypotheses=True)[0])
    finally:
        hook.remove()
    return torch.cat(hyp), torch.cat(feats)


def renders(xyz, rgb, cfg, n: int, g: torch.Generator):
    """n clouds drawn from xyz, rgb (C, P, 3) seen from random views (n, 2). Returns images
    (n, 3, S, S), silhouettes (n, S, S) and the views."""
    idx = torch.randint(len(xyz), (n,), generator=g)
    views = camera.sample_viewpoints(n, generator=g)
    with torch.no_grad():
        imgs, sils = project_views(xyz[idx], rgb[idx], views.unsqueeze(1), cfg)
    return imgs[:, 0], sils[:, 0], views


def labelled(pose, xyz, rgb, cfg, n, g):
    """Renders' features (n, H), the index of the hypothesis nearest each render's view (n,),
    and each hypothesis's angular error to it (n, M), in degrees."""
    imgs, _, views = renders(xyz, rgb, cfg, n, g)
    hyp, f = features(pose, imgs)
    err = torch.rad2deg(camera.angular_error(hyp, views.unsqueeze(1).expand_as(hyp)))
    return f, pose_l1(hyp, views.unsqueeze(1), "wrapped").argmin(1), err


BINS = 24  # azimuth classes of 15 deg for the mask classifier


def binary(masks: torch.Tensor) -> torch.Tensor:
    """Silhouettes or anti-aliased masks (n, S, S) made 0 / 1 at 0.5, as (n, 1, S, S)."""
    return (masks > 0.5).float().unsqueeze(1)


def azimuth_bin(azimuth: torch.Tensor) -> torch.Tensor:
    """The class (0 .. BINS - 1) of azimuths in radians, any shape."""
    return ((camera.wrap_angle(azimuth) + torch.pi) / (2 * torch.pi) * BINS).long() % BINS


def azimuth_off_deg(net, inputs: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
    """How far (deg) the centre of the likeliest azimuth bin of ``net`` on ``inputs`` (n, C, S, S)
    lies from each true azimuth in ``views`` (n, 2). Returns (n,)."""
    with torch.no_grad():
        centre = (net(inputs).argmax(1).float() + 0.5) * (2 * torch.pi / BINS) - torch.pi
    return torch.rad2deg(camera.wrap_angle(centre - views[:, 0]).abs())


def azimuth_classifier(batch, held, image_size: int, steps: int, what: str, width: int = 1):
    """A fresh azimuth classifier (24 bins) on binary silhouettes, or on images: the pose net's
    convolutions (``width`` times their channels) and a 256-wide layer, from scratch, trained for
    ``steps`` on
    ``batch(k, generator)`` -> (silhouettes (k, 1, S, S) or images (k, 3, S, S), views (k, 2)).
    Returns it and its share of the held-out ``held = (inputs, views)`` whose likeliest bin's
    centre lies within 30 deg of the view's azimuth. The net lives on the held-out inputs' device."""
    convs = tuple((c * width, k) for c, k in STRUCTURE_CONVS)
    enc, features = conv_encoder(convs, image_size, in_channels=held[0].shape[1])
    net = torch.nn.Sequential(enc, torch.nn.Linear(features, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, BINS)).to(held[0].device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        sil, views = batch(256, g)
        loss = torch.nn.functional.cross_entropy(net(sil), azimuth_bin(views[:, 0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"  step {step}: {what}' azimuth loss {loss.item():.3f}", flush=True)
    return net, (azimuth_off_deg(net, *held) <= 30).float().mean().item()


def mask_classifier(pool_xyz, pool_rgb, held_xyz, held_rgb, cfg, steps: int):
    """:func:`azimuth_classifier` trained on binary silhouettes of the pool's clouds at random
    views, held out on renders of the held-out clouds."""
    def batch(k, gen):
        _, sils, views = renders(pool_xyz, pool_rgb, cfg, k, gen)
        return binary(sils), views  # (k, 1, S, S), (k, 2)

    _, sils, views = renders(held_xyz, held_rgb, cfg, 2048, torch.Generator().manual_seed(1))
    return azimuth_classifier(batch, (binary(sils), views), cfg.image_size, steps, "renders")


def truth_classifier(inputs, views, held_inputs, held_views, image_size: int, steps: int,
                     width: int = 1):
    """The label-reading control: :func:`azimuth_classifier` trained on the pool's real inputs
    (binary masks (n, 1, S, S) or colour images (n, 3, S, S)) with their true views, each flipped
    left to right at random with the view mirrored with it, held out on the held-out images'. How
    well can a silhouette, or the image, tell a chair's azimuth, front from back, across shapes?"""
    def batch(k, gen):
        idx = torch.randint(len(inputs), (k,), generator=gen).to(inputs.device)
        flip = (torch.rand(k, generator=gen) < 0.5).to(inputs.device)
        x = torch.where(flip.view(-1, 1, 1, 1), inputs[idx].flip(-1), inputs[idx])
        v = torch.where(flip.view(-1, 1), camera.mirror_viewpoint(views[idx]), views[idx])
        return x, v

    return azimuth_classifier(batch, (held_inputs, held_views), image_size, steps, "real inputs",
                              width)


def main(data: str, category: str, run: str, n: int = 1200, steps: int = 1500,
         input: str = "features") -> None:
    if input not in ("features", "masks", "truth", "truth-rgb"):
        raise SystemExit(f"INPUT must be features, masks, truth or truth-rgb, got {input!r}")
    torch.manual_seed(0)
    path, recon, pose, cfg, rot, train = run_on_training_split(data, category, run)
    if pose.cfg.pose_hypotheses < 2:
        raise SystemExit(f"{path}: the pose net has one hypothesis, so there is nothing to select")
    images, masks, truth = train.images[:n], train.masks[:n], train.viewpoints[:n]
    with torch.no_grad():  # the truth modes need no other images' clouds
        xyz, rgb, _ = predict(recon, pose, images if input.startswith("truth") else train.images)
        hyp, f_real = features(pose, images)
        own = scores(xyz[:n], rgb[:n], hyp, images, masks, cfg)  # (n, M), lower is better
        own_choice = own.argmin(1)
        run_choice = pose.select(f_real).argmax(1)
    first = set(train.models[:n])  # the other models' clouds only
    others = torch.tensor([i for i in range(n, len(train)) if train.models[i] not in first])
    cut = len(others) - len(others) // 10  # the last tenth held out: shapes never trained on
    if input.startswith("truth"):  # the classifier reads the ground-truth frame: hypotheses there
        hyp_gt = camera.viewpoint_from_direction(camera.viewing_direction(hyp) @ rot.T)
        x = train.images if input == "truth-rgb" else binary(train.masks)  # (N, C, S, S)
        net_acc = truth_classifier(x[others[:cut]], train.viewpoints[others[:cut]], x[others[cut:]],
                                   train.viewpoints[others[cut:]], cfg.image_size, steps)
        what = "colour images" if input == "truth-rgb" else "binary masks"
        return report_masks(path, n, steps, hyp, hyp_gt[..., 0], own, run_choice, truth, rot, x[:n],
                            *net_acc, f"the real {what} of {cut} other images, with their true views")
    pool_xyz, pool_rgb = xyz[others[:cut]], rgb[others[:cut]]
    held_xyz, held_rgb = xyz[others[cut:]], rgb[others[cut:]]
    if input == "masks":
        return report_masks(path, n, steps, hyp, hyp[..., 0], own, run_choice, truth, rot,
                            binary(masks),
                            *mask_classifier(pool_xyz, pool_rgb, held_xyz, held_rgb, cfg, steps),
                            f"binary silhouettes of {len(pool_xyz)} other clouds")
    g = torch.Generator().manual_seed(0)
    h = f_real.shape[1]
    head = torch.nn.Sequential(torch.nn.Linear(h, 256), torch.nn.ReLU(), torch.nn.Linear(256, hyp.shape[1]))
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    for step in range(steps):
        f, target, _ = labelled(pose, pool_xyz, pool_rgb, cfg, 256, g)
        loss = torch.nn.functional.cross_entropy(head(f), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"  step {step}: renders' selection loss {loss.item():.3f}", flush=True)
    f, target, err = labelled(pose, held_xyz, held_rgb, cfg, 2048, torch.Generator().manual_seed(1))
    rows = torch.arange(len(f))
    with torch.no_grad():
        new_choice = head(f_real).argmax(1)
        render_acc = {name: ((c == target).float().mean().item(), (err[rows, c] <= 30).float().mean().item())
                      for name, c in (("new", head(f).argmax(1)), ("run", pose.select(f).argmax(1)))}
    best_render = (err.amin(1) <= 30).float().mean().item()
    pick = torch.arange(n)
    wrong = M.pose_errors(hyp[pick, own_choice], truth, rot) > 30
    each = errors_per_view(hyp, truth, rot)  # (n, M)
    print(f"{path}: {n} training images, {steps} steps on renders of {len(pool_xyz)} other clouds")
    print(f"renders of the held-out clouds (2,048): the hypothesis nearest the view / one within "
          f"30 deg picked by the new selector {render_acc['new'][0]:.1%} / {render_acc['new'][1]:.1%}, by the run's own "
          f"{render_acc['run'][0]:.1%} / {render_acc['run'][1]:.1%}; some hypothesis within 30 deg "
          f"{best_render:.1%}")
    print(f"training's choice (own cloud's reprojection) right {np.mean(~wrong):.1%} ({wrong.sum()} wrong); "
          f"best hypothesis in hindsight right {np.mean(each.min(1) <= 30):.1%}, "
          f"for the wrong ones {np.mean(each[wrong].min(1) <= 30):.1%}")
    for name, choice in (("the run's selector", run_choice), ("the selector taught on renders", new_choice)):
        e = M.pose_errors(hyp[pick, choice], truth, rot)
        print(f"{name}: right {np.mean(e <= 30):.1%}; of training's wrong ones now right "
              f"{np.mean(e[wrong] <= 30):.1%}, of its right ones kept {np.mean(e[~wrong] <= 30):.1%}; "
              f"agrees with training's choice {(choice == own_choice).float().mean():.1%}")


def report_masks(path, n, steps, hyp, hyp_azimuth, own, run_choice, truth, rot, inputs, net, acc,
                 taught_on: str) -> None:
    """The classifier's picks on the real images' ``inputs`` (n, C, S, S) (its kind: binary masks
    or images)
    against training's and the run's, alone and joined with training's score: argmin over
    hypotheses of s / s_min - 1 - lam log p(azimuth bin). hyp_azimuth: (n, M), the hypotheses'
    azimuths in the frame the classifier reads."""
    own_choice = own.argmin(1)
    with torch.no_grad():
        logp = torch.log_softmax(net(inputs), 1)  # (n, BINS)
    logp_hyp = logp.gather(1, azimuth_bin(hyp_azimuth))  # (n, M)
    new_choice = logp_hyp.argmax(1)  # (n,)
    rel = own / own.amin(1, keepdim=True) - 1  # (n, M), 0 for training's choice
    pick = torch.arange(n)
    wrong = M.pose_errors(hyp[pick, own_choice], truth, rot) > 30
    print(f"{path}: {n} training images, {steps} steps on {taught_on}")
    print(f"the held-out (renders of the held-out clouds, 2,048, or the held-out images' real inputs): "
          f"the likeliest azimuth bin within 30 deg of the view {acc:.1%}")
    print(f"training's choice (own cloud's reprojection) right {np.mean(~wrong):.1%} ({wrong.sum()} wrong)")
    joined = [(f"joined, lam {lam}", (rel - lam * logp_hyp).argmin(1)) for lam in (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)]
    for name, choice in (("the run's selector", run_choice), ("the classifier's pick", new_choice), *joined):
        e = M.pose_errors(hyp[pick, choice], truth, rot)
        print(f"{name}: right {np.mean(e <= 30):.1%}; of training's wrong ones now right "
              f"{np.mean(e[wrong] <= 30):.1%}, of its right ones kept {np.mean(e[~wrong] <= 30):.1%}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], *(int(a) for a in sys.argv[4:6]), *sys.argv[6:7])
