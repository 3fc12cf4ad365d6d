import math

import pytest
import torch

from ssl3d import camera


def test_origin_lands_at_image_centre_for_any_view_and_size():
    vp = camera.sample_viewpoints(16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for size in (64, 128, 224):
        uv, depth = camera.project(torch.zeros(16, 1, 3, dtype=torch.float64), vp, size)
        assert torch.allclose(uv, torch.full_like(uv, size / 2))
        assert torch.allclose(depth, torch.full_like(depth, 2.0))


def test_known_views():
    # Azimuth 0, elevation 0: camera on +x looking at -x; world +y is image up, world -z is right.
    vp = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    pts = torch.tensor([[[0.0, 0.1, 0.0], [0.0, 0.0, -0.1], [0.5, 0.0, 0.0]]], dtype=torch.float64)
    uv, depth = camera.project(pts, vp, 64)
    f = camera.focal_length(64)
    assert uv[0, 0].tolist() == pytest.approx([32.0, 32.0 - f * 0.1 / 2.0])  # up -> smaller row
    assert uv[0, 1].tolist() == pytest.approx([32.0 + f * 0.1 / 2.0, 32.0])  # -z -> right
    assert depth[0, 2].item() == pytest.approx(1.5)  # nearer the camera
    # Azimuth 90 deg: camera at -z; elevation 90 deg would be above.
    pos = camera.camera_position(torch.tensor(math.pi / 2), torch.tensor(0.0))
    assert pos.tolist() == pytest.approx([0.0, 0.0, -2.0], abs=1e-6)
    pos = camera.camera_position(torch.tensor(0.3), torch.tensor(math.pi / 2))
    assert pos.tolist() == pytest.approx([0.0, 2.0, 0.0], abs=1e-6)


def test_focal_scales_with_size_and_fov():
    assert camera.focal_length(64) == 120.0
    assert camera.focal_length(224) == pytest.approx(420.0)
    fov = 2 * math.degrees(math.atan(32 / camera.focal_length(64)))
    assert fov == pytest.approx(29.86, abs=0.01)


def test_rotation_is_orthonormal_and_camera_sees_origin_ahead():
    vp = camera.sample_viewpoints(32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r = camera.world_to_camera_rotation(vp[:, 0], vp[:, 1])
    eye = torch.eye(3, dtype=torch.float64).expand(32, 3, 3)
    assert torch.allclose(r @ r.transpose(1, 2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(32, dtype=torch.float64))
    # Forward axis points from the camera to the origin.
    pos = camera.camera_position(vp[:, 0], vp[:, 1])
    assert torch.allclose(r[:, 2], -pos / 2, atol=1e-12)


def test_rays_hit_what_project_maps_back():
    vp = torch.tensor([0.7, -0.2], dtype=torch.float64)
    origin, dirs = camera.unproject_rays(32, vp, supersample=2)
    assert dirs.shape == (64, 64, 3)
    pts = origin + dirs[[5, 40, 63], [9, 20, 0]] * torch.tensor([[1.5], [2.0], [2.4]], dtype=torch.float64)
    uv, _ = camera.project(pts.unsqueeze(0), vp.unsqueeze(0), 32)
    # Sub-pixel (row 5, col 9) of a 2x supersampled grid has centre ((9 + .5)/2, (5 + .5)/2).
    expect = torch.tensor([[9.5, 5.5], [20.5, 40.5], [0.5, 63.5]], dtype=torch.float64) / 2
    assert torch.allclose(uv[0], expect, atol=1e-9)


def test_view_txt_round_trip_and_sampling_ranges():
    for row in (["-179.5", "-19.0", "0", "2.0"], ["37.25", "39.9", "0", "2"], ["0", "0", "0", "1.5"]):
        az, el, d = camera.viewpoint_from_view_txt(row)
        line = camera.viewpoint_to_view_txt(az, el, d)
        assert [float(v) for v in line.split()] == pytest.approx([float(v) for v in row], abs=1e-5)
    with pytest.raises(ValueError, match="tilt"):
        camera.viewpoint_from_view_txt(["0", "0", "5", "2"])
    vp = camera.sample_viewpoints(5000, generator=torch.Generator().manual_seed(0))
    assert vp[:, 0].min() >= -math.pi and vp[:, 0].max() <= math.pi
    assert vp[:, 1].min() >= math.radians(-20) and vp[:, 1].max() <= math.radians(40)
    assert vp[:, 1].max() > math.radians(39)


def test_angular_error_and_wrap():
    a = torch.tensor([[math.pi - 0.05, 0.1]])
    b = torch.tensor([[-math.pi + 0.05, 0.1]])
    err = camera.angular_error(a, b)
    assert err.item() == pytest.approx(0.1 * math.cos(0.1), abs=1e-3)
    assert camera.wrap_angle(torch.tensor(3 * math.pi / 2)).item() == pytest.approx(-math.pi / 2)


def test_euler_rotation_is_a_rotation():
    r = camera.rotation_from_euler(torch.tensor(0.3), torch.tensor(-0.4), torch.tensor(1.1))
    assert torch.allclose(r @ r.T, torch.eye(3), atol=1e-6)
    assert torch.linalg.det(r).item() == pytest.approx(1.0, abs=1e-6)
    r0 = camera.rotation_from_euler(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0))
    assert torch.allclose(r0, torch.eye(3))


def test_bad_shapes():
    with pytest.raises(ValueError, match="points"):
        camera.project(torch.zeros(2, 3), torch.zeros(2, 2), 64)
    with pytest.raises(ValueError, match="viewpoint"):
        camera.project(torch.zeros(2, 4, 3), torch.zeros(3, 2), 64)
    with pytest.raises(ValueError, match="image_size"):
        camera.focal_length(0)


def test_mirror_viewpoint_sees_the_mirrored_scene_as_the_flipped_image():
    """Projecting the cloud mirrored across x = 0 from mirror_viewpoint(v) lands every point at
    the left-right mirrored pixel position (u -> S - u, v unchanged), at every image size; and
    mirroring twice is the identity up to the wrap."""
    g = torch.Generator().manual_seed(3)
    pts = torch.randn(8, 50, 3, generator=g, dtype=torch.float64) * 0.2
    vp = camera.sample_viewpoints(8, generator=g, dtype=torch.float64)
    mirrored = pts * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    for size in (32, 64, 137):
        uv, depth = camera.project(pts, vp, size)
        uv_m, depth_m = camera.project(mirrored, camera.mirror_viewpoint(vp), size)
        torch.testing.assert_close(uv_m[..., 0], size - uv[..., 0])
        torch.testing.assert_close(uv_m[..., 1], uv[..., 1])
        torch.testing.assert_close(depth_m, depth)
    twice = camera.mirror_viewpoint(camera.mirror_viewpoint(vp))
    torch.testing.assert_close(camera.wrap_angle(twice - vp), torch.zeros_like(vp), atol=1e-12, rtol=0)
    assert camera.mirror_viewpoint(vp)[:, 0].abs().max() <= math.pi


def test_viewing_directions_stay_on_the_viewpoints_device():
    """A float distance must not put a CPU tensor into the product: angular_error on GPU
    viewpoints raised a device mismatch (session 22). The meta device stands in for a GPU: any
    CPU tensor mixed into the computation raises there too."""
    views = torch.zeros(3, 2, device="meta")
    assert camera.viewing_direction(views).device.type == "meta"
    assert camera.angular_error(views, views).shape == (3,)
    assert camera.camera_position(views[:, 0], views[:, 1], torch.full((3,), 2.0, device="meta")).shape == (3, 3)
    far = camera.camera_position(torch.tensor([0.3]), torch.tensor([0.2]), torch.tensor([2.0]))
    near = camera.camera_position(torch.tensor([0.3]), torch.tensor([0.2]), 1.0)
    torch.testing.assert_close(far, 2 * near)


def test_viewpoint_from_direction_inverts_viewing_direction():
    """Against a per-element loop with math.atan2 / math.asin on the normalised vector; a round
    trip through viewing_direction (any length, elevations inside (-pi/2, pi/2)); float64
    gradcheck; a wrong last dimension is refused."""
    g = torch.Generator().manual_seed(5)
    d = torch.randn(4, 6, 3, generator=g, dtype=torch.float64) * 3
    got = camera.viewpoint_from_direction(d)
    for i in range(4):
        for j in range(6):
            x, y, z = (c / math.sqrt(sum(v * v for v in d[i, j].tolist())) for c in d[i, j].tolist())
            assert got[i, j, 0].item() == pytest.approx(math.atan2(-z, x), abs=1e-12)
            assert got[i, j, 1].item() == pytest.approx(math.asin(y), abs=1e-12)
    vp = camera.sample_viewpoints(50, generator=g, dtype=torch.float64)
    back = camera.viewpoint_from_direction(2.5 * camera.viewing_direction(vp))
    torch.testing.assert_close(camera.wrap_angle(back - vp), torch.zeros_like(vp), atol=1e-10, rtol=0)
    torch.autograd.gradcheck(camera.viewpoint_from_direction, (d[0].clone().requires_grad_(),))
    with pytest.raises(ValueError, match=r"direction must be \(\.\.\., 3\)"):
        camera.viewpoint_from_direction(torch.zeros(2, 2))
