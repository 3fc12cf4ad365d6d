"""The symmetry term's plane: a reflection across a vertical plane, and the plane a batch is most
symmetric about (TrainConfig.symmetry_plane = best_vertical)."""

import math

import pytest
import torch

from ssl3d import camera
from ssl3d.ops import chamfer_distance
from ssl3d.training import losses as L
from ssl3d.training.trainer import Trainer


def mirror_loop(xyz, angle):
    """Reference: each point reflected one at a time, p - 2 (p . n) n with n = (cos a, 0, sin a)."""
    n = (math.cos(angle), 0.0, math.sin(angle))
    out = torch.empty_like(xyz)
    for idx in range(xyz.shape[0]):
        for j in range(xyz.shape[1]):
            p = [float(v) for v in xyz[idx, j]]
            d = sum(a * b for a, b in zip(p, n))
            out[idx, j] = torch.tensor([p[k] - 2 * d * n[k] for k in range(3)], dtype=xyz.dtype)
    return out


def turned_about_y(xyz, degrees):
    zero = torch.zeros((), dtype=xyz.dtype)
    rot = camera.rotation_from_euler(torch.tensor(math.radians(degrees), dtype=xyz.dtype), zero, zero)
    return xyz @ rot.T


def left_right_symmetric_clouds(b, n, seed):
    """Clouds symmetric across x = 0 only: random halves mirrored, longer along z than x and
    shifted towards +z, so no other vertical plane fits them."""
    g = torch.Generator().manual_seed(seed)
    half = torch.rand(b, n // 2, 3, generator=g, dtype=torch.float64) * torch.tensor(
        [0.3, 0.2, 1.0], dtype=torch.float64) + torch.tensor([0.0, 0.0, 0.2], dtype=torch.float64)
    mirrored = half * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    return torch.cat([half, mirrored], 1)


@pytest.mark.parametrize("angle", [0.0, 0.7, 2.5])
def test_vertical_mirror_against_a_loop_and_in_gradcheck(angle):
    g = torch.Generator().manual_seed(1)
    xyz = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    a = torch.tensor(angle, dtype=torch.float64)
    torch.testing.assert_close(L.vertical_mirror(xyz, a), mirror_loop(xyz, angle))
    back = L.vertical_mirror(L.vertical_mirror(xyz, a), a)  # a reflection undoes itself
    torch.testing.assert_close(back, xyz)
    many = torch.tensor([0.0, angle, 1.3], dtype=torch.float64)  # several planes at once
    stacked = L.vertical_mirror(xyz, many.view(-1, 1, 1))
    assert stacked.shape == (3, 2, 5, 3)
    for i, one in enumerate(many):
        torch.testing.assert_close(stacked[i], mirror_loop(xyz, float(one)))
    torch.autograd.gradcheck(L.vertical_mirror, (xyz.clone().requires_grad_(), a.clone().requires_grad_()))


def test_angle_zero_is_the_fixed_plane_x():
    xyz = torch.randn(3, 40, 3, dtype=torch.float64)
    fixed = L.symmetry_term(xyz, "x")
    mirrored = chamfer_distance(xyz, L.vertical_mirror(xyz, torch.tensor(0.0, dtype=torch.float64)))
    torch.testing.assert_close(fixed, mirrored)


@pytest.mark.parametrize("turn,plane", [(0, 0), (35, 145), (100, 80), (135, 45)])
def test_best_vertical_plane_finds_the_plane_a_turned_batch_is_symmetric_about(turn, plane):
    """Clouds symmetric across x = 0, turned by ``turn`` deg about y: their plane's normal turns
    to (cos(-turn), 0, sin(-turn)), i.e. the plane at -turn mod 180 deg."""
    xyz = turned_about_y(left_right_symmetric_clouds(6, 256, seed=turn), turn)
    found = L.best_vertical_plane(xyz)
    assert abs(math.degrees(float(found)) - plane) < 1e-3
    # Reference: the searched grid scored plane by plane with the reference mirror.
    scores = []
    for k in range(36):
        a = k * math.pi / 36
        scores.append(float(chamfer_distance(xyz[:, ::2].float(), mirror_loop(xyz[:, ::2], a).float())))
    assert min(range(36), key=scores.__getitem__) * 5 == plane


def test_symmetry_term_mirrors_across_the_batch_plane(tiny_dataset, tmp_path, make_config):
    t = Trainer(make_config(steps=1, batch_size=4, w_symmetry=10.0, symmetry_plane="best_vertical"),
                tiny_dataset, "chair", tmp_path)
    batch, views, _ = t.sample_step()
    torch.manual_seed(3)
    loss, _, terms, _ = L.step_losses(t.recon, t.pose, batch, views, t.cfg)
    torch.manual_seed(3)
    loss_off, _, _, _ = L.step_losses(t.recon, t.pose, batch, views,
                                      make_config(steps=1, batch_size=4, w_symmetry=0.0))
    torch.testing.assert_close(loss - loss_off, 10.0 * terms["symmetry"])
    with torch.no_grad():
        xyz, _ = t.recon(batch["image"])
    angle = L.best_vertical_plane(xyz)
    torch.testing.assert_close(terms["symmetry"], chamfer_distance(xyz, L.vertical_mirror(xyz, angle)))
    torch.testing.assert_close(terms["symmetry_plane_deg"], torch.rad2deg(angle))
    with pytest.raises(ValueError, match="symmetry_plane"):
        make_config(symmetry_plane="learned").validate()


def test_without_self_match_a_sheet_on_the_plane_is_not_free():
    """A sheet on x = 0 is its own mirror image: free for the plain term, which is why it pulls
    points onto the plane; without self-matches it costs what a point's nearest other point
    costs. Mirror pairs off the plane are free either way."""
    g = torch.Generator().manual_seed(0)
    sheet = torch.rand(2, 30, 3, generator=g, dtype=torch.float64)
    sheet[..., 0] = 0
    assert float(L.symmetry_term(sheet, "x")) == 0
    nearest_other = torch.cdist(sheet, sheet).add(torch.eye(30) * 1e9).amin(2).pow(2).mean()
    torch.testing.assert_close(L.symmetry_term(sheet, "x", self_match=False), 2 * nearest_other)
    half = torch.rand(2, 15, 3, generator=g, dtype=torch.float64) + torch.tensor([0.2, 0, 0])
    pairs = torch.cat([half, half * torch.tensor([-1.0, 1, 1])], 1)  # (2, 30, 3)
    assert float(L.symmetry_term(pairs, "x", self_match=False)) == pytest.approx(0, abs=1e-12)
    # A lone point near the plane, far from the rest: the plain term pulls it onto the plane,
    # the other form towards the nearest other point's mirror image (here away from the plane).
    lone = torch.cat([pairs, torch.tensor([[[0.05, 3.0, 3.0]]] * 2, dtype=torch.float64)], 1)
    lone.requires_grad_()
    (grad_plain,) = torch.autograd.grad(L.symmetry_term(lone, "x"), lone)
    (grad_other,) = torch.autograd.grad(L.symmetry_term(lone, "x", self_match=False), lone)
    assert (grad_plain[:, -1, 0] > 0).all() and (grad_plain[:, -1, 1:] == 0).all()
    assert (grad_other[:, -1, 1:] > 0).all()  # pulled back towards the others (y, z < 3)


@pytest.mark.parametrize("plane", ["fixed", "best_vertical"])
def test_trainer_passes_symmetry_self_match(tiny_dataset, tmp_path, make_config, plane):
    cfg = make_config(steps=1, batch_size=4, w_symmetry=10.0, symmetry_plane=plane,
                      symmetry_self_match=False)
    t = Trainer(cfg, tiny_dataset, "chair", tmp_path)
    batch, views, _ = t.sample_step()
    torch.manual_seed(3)
    _, _, terms, _ = L.step_losses(t.recon, t.pose, batch, views, t.cfg)
    with torch.no_grad():
        xyz, _ = t.recon(batch["image"])
    angle = L.best_vertical_plane(xyz) if plane == "best_vertical" else torch.tensor(0.0)
    mirrored = L.vertical_mirror(xyz, angle)
    torch.testing.assert_close(terms["symmetry"], chamfer_distance(xyz, mirrored, exclude_partner=True))
    assert terms["symmetry"] > chamfer_distance(xyz, mirrored)
