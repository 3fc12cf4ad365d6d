import dataclasses
import math

import pytest
import torch

from ssl3d.models import NetworkConfig, PoseNet, ReconstructionNet, l2_penalty, set_code_dims
from ssl3d.ops import gaussian_blur, gaussian_taps


@pytest.mark.parametrize("size,n", [(64, 1024), (32, 100), (128, 256)])
def test_shapes_and_ranges(size, n):
    cfg = NetworkConfig(n_points=n, image_size=size)
    rec, pose = ReconstructionNet(cfg), PoseNet(cfg)
    img = torch.rand(3, 3, size, size)
    xyz, rgb = rec(img)
    assert xyz.shape == (3, n, 3) and rgb.shape == (3, n, 3)
    assert rgb.min() > 0 and rgb.max() < 1
    assert rec.embed(img).shape == (3, 2 * cfg.hidden)
    vp = pose(img)
    assert vp.shape == (3, 2) and vp.abs().max() < math.pi


def test_architecture_matches_paper():
    rec = ReconstructionNet()
    convs = [m for m in rec.structure_encoder if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == \
        [(32, 3, 2), (64, 3, 2), (128, 3, 2), (256, 5, 2)]
    assert rec.shape_bottleneck[0].in_features == 256 * 4 * 4
    assert rec.xyz.out_features == 1024 * 3 and rec.rgb.out_features == 1024 * 3
    assert rec.colour_fuse[0].in_features == 256  # colour features concatenated with h


def test_batch_items_are_independent():
    torch.manual_seed(0)
    rec = ReconstructionNet(NetworkConfig(n_points=64))
    img = torch.rand(4, 3, 64, 64)
    xyz, _ = rec(img)
    xyz2, _ = rec(img[2:3])
    torch.testing.assert_close(xyz[2:3], xyz2, rtol=1e-5, atol=1e-5)


def test_l2_penalty_matches_definition():
    net = PoseNet(NetworkConfig(image_size=32))
    expect = sum(1e-5 * 0.5 * (m.weight ** 2).sum() for m in net.modules() if isinstance(m, torch.nn.Conv2d)) \
        + sum(1e-3 * 0.5 * (m.weight ** 2).sum() for m in net.modules() if isinstance(m, torch.nn.Linear))
    torch.testing.assert_close(l2_penalty(net), expect)


def test_bad_config_and_input():
    with pytest.raises(ValueError, match="image_size"):
        NetworkConfig(image_size=60)
    with pytest.raises(ValueError, match="image"):
        ReconstructionNet(NetworkConfig(image_size=32))(torch.rand(1, 3, 64, 64))


def test_leaky_activation_option():
    rec = ReconstructionNet(NetworkConfig(n_points=16, image_size=32, activation="leaky_relu"))
    acts = {type(m).__name__ for m in rec.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU))}
    assert acts == {"LeakyReLU"}
    with pytest.raises(ValueError, match="activation"):
        NetworkConfig(activation="gelu")


def test_pose_hypotheses_select_and_spread():
    cfg = NetworkConfig(image_size=32, hidden=16, pose_hypotheses=4)
    torch.manual_seed(0)
    net = PoseNet(cfg)
    x = torch.rand(5, 3, 32, 32)
    views, logits = net(x, all_hypotheses=True)
    assert views.shape == (5, 4, 2) and logits.shape == (5, 4)
    chosen = net(x)
    assert chosen.shape == (5, 2)
    for i in range(5):  # inference returns the selector's choice
        assert torch.equal(chosen[i], views[i, int(logits[i].argmax())])
    # The initial azimuths are spread round the circle, near -135, -45, 45 and 135 degrees.
    az = torch.rad2deg(views[..., 0]).mean(0)
    assert torch.allclose(az, torch.tensor([-135.0, -45.0, 45.0, 135.0]), atol=20)
    with pytest.raises(ValueError, match="pose_hypotheses"):
        NetworkConfig(pose_hypotheses=0)


def test_single_hypothesis_is_the_paper_net():
    net = PoseNet(NetworkConfig(image_size=32, hidden=16))
    x = torch.rand(3, 3, 32, 32)
    views, logits = net(x, all_hypotheses=True)
    assert views.shape == (3, 1, 2) and torch.equal(views[:, 0], net(x))
    assert not hasattr(net, "select")


def test_silhouette_critic_learns_to_tell_discs_from_bars():
    """The view prior's critic is an ordinary binary classifier of (B, S, S) silhouettes."""
    from ssl3d.models import SilhouetteCritic
    from ssl3d.training.losses import critic_loss

    torch.manual_seed(0)
    s = 32
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")

    def shapes(n, disc):
        c = torch.randint(10, 22, (n, 2, 1, 1)).float()
        if disc:  # round blobs
            return (((yy - c[:, 0]) ** 2 + (xx - c[:, 1]) ** 2) < 49).float()
        return (((yy - c[:, 0]).abs() < 8) & ((xx - c[:, 1]).abs() < 1.5)).float()  # thin bars

    critic = SilhouetteCritic(s)
    with pytest.raises(ValueError, match=r"\(B, 32, 32\)"):
        critic(torch.rand(2, 1, s, s))
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3)
    for _ in range(60):
        loss = critic_loss(critic, shapes(16, True), shapes(16, False))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert (critic(shapes(64, True)) > 0).float().mean() > 0.9
        assert (critic(shapes(64, False)) < 0).float().mean() > 0.9


def test_critic_r1_penalty_against_per_sample_gradients_and_in_gradcheck():
    """R1 = r1 / 2 * mean_b ||d logit(real_b) / d real_b||^2, each sample's gradient taken alone;
    its own gradient w.r.t. the critic's weights (a double backward) passes a float64 gradcheck."""
    from torch.func import functional_call

    from ssl3d.models import SilhouetteCritic
    from ssl3d.training.losses import critic_loss

    torch.manual_seed(0)
    s = 16
    critic = SilhouetteCritic(s).double()
    real, fake = torch.rand(3, s, s, dtype=torch.float64), torch.rand(2, s, s, dtype=torch.float64)
    norms = []
    for b in range(3):
        x = real[b:b + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x)
        norms.append(float((g ** 2).sum()))
    extra = float((critic_loss(critic, real, fake, r1=2.0) - critic_loss(critic, real, fake)).detach())
    assert abs(extra - sum(norms) / 3) < 1e-9 * max(1.0, extra)
    assert extra > 0 and not real.requires_grad  # the caller's tensor is left alone

    name, weight = next((n, p) for n, p in critic.named_parameters() if p.ndim == 2)
    params = {n: p.detach() for n, p in critic.named_parameters()}

    def loss_of(w):
        def forward(x):
            return functional_call(critic, {**params, name: w}, (x,))
        forward.image_size = s
        return critic_loss(forward, real, fake, r1=2.0)

    assert torch.autograd.gradcheck(loss_of, (weight.detach().clone().requires_grad_(True),))


def test_code_dims_read_only_the_first_dims():
    """Reference: the decoder run by hand on the embedding with its later dims zeroed. At 0 dims
    every image gets one cloud; at d dims the cloud does not depend on the embedding's later dims
    (their bottleneck weights changed, the cloud stays); at all dims it is the plain net's; a net
    loaded from a masked one's state dict reads every dim."""
    torch.manual_seed(0)
    cfg = NetworkConfig(n_points=16, image_size=32, hidden=8)
    rec, img = ReconstructionNet(cfg), torch.rand(3, 3, 32, 32)
    plain = rec(img)[0]
    code = rec.shape_bottleneck(rec.structure_encoder(img))  # (3, 8)
    for d in (0, 3, 8):
        set_code_dims(rec, d)
        keep = (torch.arange(8) < d).float()
        torch.testing.assert_close(rec(img)[0], rec.xyz(rec.structure_head(code * keep)).view(3, -1, 3))
    torch.testing.assert_close(rec(img)[0], plain, rtol=0, atol=0)  # all 8 dims: the plain net
    set_code_dims(rec, 0)
    xyz0 = rec(img)[0]
    torch.testing.assert_close(xyz0, xyz0[:1].expand(3, -1, -1), rtol=0, atol=0)
    set_code_dims(rec, 3)
    before = rec(img)[0]
    with torch.no_grad():
        rec.shape_bottleneck[0].weight[3:] += 1.0
        rec.shape_bottleneck[0].bias[3:] += 1.0
    torch.testing.assert_close(rec(img)[0], before, rtol=0, atol=0)
    assert not torch.allclose(before, plain)
    loaded = ReconstructionNet(cfg)
    loaded.load_state_dict(rec.state_dict())
    set_code_dims(rec, 8)
    torch.testing.assert_close(loaded(img)[0], rec(img)[0], rtol=0, atol=0)
    for bad in (-1, 9):
        with pytest.raises(ValueError, match=r"dims must be in \[0, hidden = 8\]"):
            set_code_dims(rec, bad)
    # A net limited to 3 dims by its config reads those from the start, as set_code_dims(3) does.
    limited = ReconstructionNet(dataclasses.replace(cfg, shape_code_dims=3))
    limited.load_state_dict(rec.state_dict())
    set_code_dims(rec, 3)
    torch.testing.assert_close(limited(img)[0], rec(img)[0], rtol=0, atol=0)
    for bad in (-1, 9):
        with pytest.raises(ValueError, match=r"shape_code_dims must be in \[0, hidden = 8\]"):
            dataclasses.replace(cfg, shape_code_dims=bad)


def test_shape_code_scale_zero_shares_one_template():
    """At scale 0 every image gets the same cloud (colours still follow the image); the same
    weights at scale 1 give each image its own cloud, and scale s equals the decoder run on s
    times the embedding."""
    torch.manual_seed(0)
    img = torch.rand(3, 3, 32, 32)
    cfgs = {s: NetworkConfig(n_points=16, image_size=32, shape_code_scale=s) for s in (0.0, 0.5, 1.0)}
    rec = {s: ReconstructionNet(c) for s, c in cfgs.items()}
    for s in (0.5, 1.0):
        rec[s].load_state_dict(rec[0.0].state_dict())  # no parameter depends on the scale
    xyz0, rgb0 = rec[0.0](img)
    torch.testing.assert_close(xyz0, xyz0[:1].expand(3, -1, -1), rtol=0, atol=0)
    assert not torch.allclose(rgb0[0], rgb0[1])
    xyz1, _ = rec[1.0](img)
    assert not torch.allclose(xyz1[0], xyz1[1])
    r = rec[1.0]
    code = r.shape_bottleneck(r.structure_encoder(img))
    expect = r.xyz(r.structure_head(0.5 * code)).view(3, -1, 3)
    torch.testing.assert_close(rec[0.5](img)[0], expect)
    with pytest.raises(ValueError, match="shape_code_scale"):
        NetworkConfig(shape_code_scale=-1.0)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="shape_code_scale"):
            NetworkConfig(shape_code_scale=bad)


def test_pose_sectors_against_a_loop_keep_each_hypothesis_in_its_sector():
    """With pose_sectors, hypothesis j's azimuth is 2 pi j / M plus 1.5 pi / M * tanh of the
    head's output, wrapped (a loop over j computes it from the raw output); it stays within
    1.5 pi / M of its centre however large the output; a zero output puts the hypotheses on the
    centres (0, 45, 90, ... deg for M = 8); the elevation is as without sectors; the same weights
    load either way (no parameter depends on it), and gradients reach the head in float64."""
    m = 6
    torch.manual_seed(0)
    net = PoseNet(NetworkConfig(image_size=32, hidden=16, pose_hypotheses=m, pose_sectors=True))
    free = PoseNet(NetworkConfig(image_size=32, hidden=16, pose_hypotheses=m))
    free.load_state_dict(net.state_dict())
    x = torch.rand(4, 3, 32, 32)
    raw = net.out(net.head(net.encoder(x))).view(4, m, 2)
    views, _ = net(x, all_hypotheses=True)
    wrap = lambda a: (a + math.pi) % (2 * math.pi) - math.pi  # noqa: E731
    for j in range(m):
        want = wrap(2 * math.pi * j / m + 1.5 * math.pi / m * torch.tanh(raw[:, j, 0]))
        torch.testing.assert_close(views[:, j, 0], want)
    assert (views[..., 0] >= -math.pi).all() and (views[..., 0] < math.pi).all()
    torch.testing.assert_close(views[..., 1], free(x, all_hypotheses=True)[0][..., 1])
    with torch.no_grad():
        net.out.weight.mul_(1e4)  # saturate every tanh
    views, _ = net(x, all_hypotheses=True)
    centres = torch.tensor([2 * math.pi * j / m for j in range(m)])
    assert (wrap(views[..., 0] - centres).abs() <= 1.5 * math.pi / m + 1e-5).all()
    eight = PoseNet(NetworkConfig(image_size=32, hidden=16, pose_hypotheses=8, pose_sectors=True))
    with torch.no_grad():
        eight.out.weight.zero_()
        eight.out.bias.zero_()
    az = torch.rad2deg(eight(x, all_hypotheses=True)[0][0, :, 0])
    torch.testing.assert_close(az, torch.tensor([0.0, 45, 90, 135, -180, -135, -90, -45]))
    net = PoseNet(NetworkConfig(image_size=32, hidden=16, pose_hypotheses=3, pose_sectors=True)).double()
    xd = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    bias = net.out.bias.detach().clone().requires_grad_(True)

    def views_of(b):  # the hypotheses as a function of the head's output bias
        return torch.func.functional_call(net, {"out.bias": b}, (xd,), {"all_hypotheses": True})[0]

    assert torch.autograd.gradcheck(views_of, (bias,))
    with pytest.raises(ValueError, match="pose_sectors needs pose_hypotheses > 1, got 1"):
        NetworkConfig(pose_sectors=True)


def test_pose_hidden_widens_the_pose_net_alone():
    cfg = NetworkConfig(image_size=32, hidden=16, pose_hidden=24, pose_hypotheses=2)
    pose, rec = PoseNet(cfg), ReconstructionNet(cfg)
    widths = [m.out_features for m in pose.head if isinstance(m, torch.nn.Linear)]
    assert widths == [24, 24, 24] and pose.out.in_features == 24 and pose.select.in_features == 24
    assert rec.shape_bottleneck[0].out_features == 16  # the reconstruction net keeps hidden
    views, logits = pose(torch.rand(2, 3, 32, 32), all_hypotheses=True)
    assert views.shape == (2, 2, 2) and logits.shape == (2, 2)
    same = PoseNet(NetworkConfig(image_size=32, hidden=16))  # 0: the shared width, as before
    assert [m.out_features for m in same.head if isinstance(m, torch.nn.Linear)] == [16, 16, 16]
    with pytest.raises(ValueError, match="pose_hidden >= 0"):
        NetworkConfig(pose_hidden=-1)


def test_pose_input_blur_filters_every_input_before_the_encoder():
    """A pose net with the input blur equals the same weights without it fed blurred images, and
    its output differs from theirs on the raw image; the blur has no parameters of its own."""
    cfg = NetworkConfig(image_size=32, hidden=16, pose_hypotheses=2, pose_input_blur=1.0)
    blurred = PoseNet(cfg)
    plain = PoseNet(NetworkConfig(image_size=32, hidden=16, pose_hypotheses=2))
    plain.load_state_dict(blurred.state_dict())  # same keys: the taps are not saved
    image = torch.rand(3, 3, 32, 32)
    views, logits = blurred(image, all_hypotheses=True)
    want_views, want_logits = plain(gaussian_blur(image, gaussian_taps(1.0)), all_hypotheses=True)
    torch.testing.assert_close(views, want_views)
    torch.testing.assert_close(logits, want_logits)
    assert not torch.allclose(views, plain(image, all_hypotheses=True)[0])
    with pytest.raises(ValueError, match="pose_input_blur must be >= 0"):
        NetworkConfig(pose_input_blur=-0.5)
    with pytest.raises(ValueError, match="at most image_size / 4 = 8 pixels"):
        NetworkConfig(image_size=32, pose_input_blur=9.0)


def test_mirror_points_predicts_half_and_mirrors_it():
    """The decoder predicts N / 2 points; the cloud is them, then each one's mirror image across
    x = 0 with the same colour (a loop reference), so the symmetry term is exactly zero."""
    from ssl3d.training.losses import symmetry_term

    torch.manual_seed(0)
    cfg = NetworkConfig(n_points=32, image_size=32, mirror_points=True)
    rec = ReconstructionNet(cfg)
    assert rec.xyz.out_features == 16 * 3 and rec.rgb.out_features == 16 * 3
    img = torch.rand(2, 3, 32, 32)
    xyz, rgb = rec(img)
    assert xyz.shape == (2, 32, 3) and rgb.shape == (2, 32, 3)
    pts, cols = xyz.detach(), rgb.detach()
    for b in range(2):
        for i in range(16):
            x, y, z = (float(v) for v in pts[b, i])
            assert pts[b, 16 + i].tolist() == [-x, y, z]
            assert cols[b, 16 + i].tolist() == cols[b, i].tolist()
    assert float(symmetry_term(pts, "x")) == 0
    (xyz[:, 16:, 0].sum()).backward()  # the mirrored half trains the same weights
    assert rec.xyz.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="mirror_points needs an even n_points"):
        NetworkConfig(n_points=33, mirror_points=True)
