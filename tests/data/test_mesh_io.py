"""Mesh discovery, loading, normalisation and ground-truth sampling
(ssl3d.data.mesh_io, ssl3d.data.sampling)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image

from ssl3d.data.mesh_io import (MeshLoadError, find_meshes, load_mesh, normalize_vertices,
                                rotate_up_axis)
from ssl3d.data.sampling import farthest_point_sampling, sample_surface


def _bbox(v):
    return v.min(axis=0), v.max(axis=0)


# --- discovery ------------------------------------------------------------------------------


def test_find_meshes_flat_folder(tmp_path):
    box = trimesh.creation.box()
    for name in ("a.obj", "b.ply", "c.off", "d.glb"):
        box.export(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a mesh")
    found = find_meshes(tmp_path)
    assert [m for m, _ in found] == ["a", "b", "c", "d"]
    assert all(p.exists() for _, p in found)


def test_find_meshes_shapenet_tree(tmp_path):
    box = trimesh.creation.box()
    (tmp_path / "03001627" / "m1").mkdir(parents=True)
    box.export(tmp_path / "03001627" / "m1" / "model.obj")
    (tmp_path / "03001627" / "m2" / "models").mkdir(parents=True)
    box.export(tmp_path / "03001627" / "m2" / "models" / "model_normalized.obj")
    assert [m for m, _ in find_meshes(tmp_path)] == ["m1", "m2"]
    # the synset folder itself works too
    assert [m for m, _ in find_meshes(tmp_path / "03001627")] == ["m1", "m2"]


def test_find_meshes_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        find_meshes(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        find_meshes(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="junk"):
        find_meshes(tmp_path / "junk")


# --- loading and normalisation ------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["obj", "ply", "off", "glb"])
def test_load_normalises_to_unit_diagonal(tmp_path, ext):
    box = trimesh.creation.box((2.0, 1.0, 0.5)).apply_translation((5.0, -3.0, 1.0))
    box.export(tmp_path / f"m.{ext}")
    mesh = load_mesh(tmp_path / f"m.{ext}")
    lo, hi = _bbox(mesh.vertices)
    np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-9)
    assert np.linalg.norm(hi - lo) == pytest.approx(1.0)
    # aspect ratio kept
    np.testing.assert_allclose((hi - lo) / (hi - lo)[0], [1.0, 0.5, 0.25], atol=1e-6)
    assert mesh.faces.shape == (12, 3) and mesh.corner_colors.shape == (12, 3, 3)


def test_load_keeps_coordinates_without_normalize(tmp_path):
    box = trimesh.creation.box((2.0, 1.0, 0.5)).apply_translation((5.0, -3.0, 1.0))
    box.export(tmp_path / "m.ply")
    lo, hi = _bbox(load_mesh(tmp_path / "m.ply", normalize=False).vertices)
    np.testing.assert_allclose(lo, [4.0, -3.5, 0.75], atol=1e-6)
    np.testing.assert_allclose(hi, [6.0, -2.5, 1.25], atol=1e-6)


def test_huge_coordinates_normalise(tmp_path):
    box = trimesh.creation.box((3e8, 1e8, 2e8)).apply_translation((7e8, 1e8, -4e8))
    box.export(tmp_path / "huge.ply")
    lo, hi = _bbox(load_mesh(tmp_path / "huge.ply").vertices)
    assert np.linalg.norm(hi - lo) == pytest.approx(1.0)
    np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-7)


def test_normalize_ignores_unreferenced_vertices():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1e9, 1e9, 1e9]], float)
    out, centre, scale = normalize_vertices(v, np.array([[0, 1, 2]]))
    np.testing.assert_allclose(centre, [0.5, 0.5, 0.0])
    assert scale == pytest.approx(1 / np.sqrt(2))


def test_up_axis_z_rotates_to_y_up(tmp_path):
    tall_in_z = trimesh.creation.box((0.2, 0.3, 1.0))
    tall_in_z.export(tmp_path / "z.ply")
    ext = np.ptp(load_mesh(tmp_path / "z.ply", up_axis="z").vertices, axis=0)
    assert ext[1] == max(ext)  # the tall side is now y
    np.testing.assert_allclose(ext / ext[1], [0.2, 1.0, 0.3], atol=1e-6)
    # a proper rotation: +z (up) goes to +y, +y goes to -z
    np.testing.assert_allclose(rotate_up_axis(np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), "z"),
                               [[0, 1, 0], [0, 0, -1]])
    with pytest.raises(ValueError):
        rotate_up_axis(np.zeros((1, 3)), "x")


# --- colour sources -----------------------------------------------------------------------------


def test_face_and_vertex_colours(tmp_path):
    box = trimesh.creation.box()
    box.visual.face_colors = [255, 0, 0, 255]
    box.export(tmp_path / "red.ply")
    np.testing.assert_allclose(load_mesh(tmp_path / "red.ply").corner_colors,
                               np.broadcast_to([1.0, 0.0, 0.0], (12, 3, 3)))
    sphere = trimesh.creation.icosphere(1)
    colors = np.zeros((len(sphere.vertices), 4), np.uint8)
    colors[:, 3] = 255
    colors[:, 1] = np.where(sphere.vertices[:, 0] > 0, 255, 0)
    sphere.visual.vertex_colors = colors
    sphere.export(tmp_path / "vc.glb")
    mesh = load_mesh(tmp_path / "vc.glb")
    assert set(np.unique(mesh.corner_colors[..., 1])) == {0.0, 1.0}
    # colour follows geometry: green corners are the ones with x > 0
    corner_x = mesh.vertices[mesh.faces][..., 0]
    assert (mesh.corner_colors[..., 1][corner_x > 1e-9] == 1.0).all()


def test_material_diffuse_colour(tmp_path):
    box = trimesh.creation.box()
    lines = ["mtllib m.mtl", "usemtl blue"] + [f"v {x} {y} {z}" for x, y, z in box.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in box.faces]
    (tmp_path / "m.obj").write_text("\n".join(lines) + "\n")
    (tmp_path / "m.mtl").write_text("newmtl blue\nKd 0.0 0.0 1.0\n")
    np.testing.assert_allclose(load_mesh(tmp_path / "m.obj").corner_colors[..., 2], 1.0)
    np.testing.assert_allclose(load_mesh(tmp_path / "m.obj").corner_colors[..., :2], 0.0)


def test_no_colour_is_neutral_grey(tmp_path):
    trimesh.creation.box().export(tmp_path / "plain.off")
    c = load_mesh(tmp_path / "plain.off").corner_colors
    assert np.ptp(c) == 0 and 0.3 < c[0, 0, 0] < 0.9


@pytest.mark.parametrize("ext", ["glb", "obj"])
def test_texture_is_kept(tmp_path, ext):
    box = trimesh.creation.box()
    uv = np.random.default_rng(0).random((len(box.vertices), 2))
    image = Image.fromarray(np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 0]]],
                                     np.uint8))
    box.visual = trimesh.visual.TextureVisuals(uv=uv, image=image)
    box.export(tmp_path / f"t.{ext}")
    mesh = load_mesh(tmp_path / f"t.{ext}")
    assert len(mesh.textures) == 1 and (mesh.face_texture == 0).all()
    np.testing.assert_array_equal(mesh.textures[0], np.asarray(image))
    assert np.abs(mesh.corner_uv).sum() > 0


def test_scene_parts_keep_transforms_and_colours(tmp_path):
    scene = trimesh.Scene()
    a = trimesh.creation.box((1, 1, 1))
    a.visual.face_colors = [255, 0, 0, 255]
    b = trimesh.creation.box((1, 1, 1))
    b.visual.face_colors = [0, 0, 255, 255]
    scene.add_geometry(a, node_name="a")
    shift = trimesh.transformations.translation_matrix((3, 0, 0))
    scene.add_geometry(b, node_name="b", transform=shift)
    scene.export(tmp_path / "s.glb")
    mesh = load_mesh(tmp_path / "s.glb", normalize=False)
    assert len(mesh.faces) == 24
    lo, hi = _bbox(mesh.vertices)
    np.testing.assert_allclose([lo[0], hi[0]], [-0.5, 3.5], atol=1e-6)
    right = mesh.triangles[..., 0].mean(axis=1) > 1.5
    assert (mesh.corner_colors[right][..., 2] == 1).all()
    assert (mesh.corner_colors[~right][..., 0] == 1).all()


# --- unusable files -----------------------------------------------------------------------------


def test_bad_files_raise_mesh_load_error_naming_the_file(tmp_path):
    bad = {
        "garbage.obj": "this is not\x00 a mesh at all\n",
        "points.obj": "v 0 0 0\nv 1 0 0\nv 0 1 0\n",
        "nan.obj": "v nan 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 2 3 4\n",
        "inf.obj": "v inf 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n",
        "flat.obj": "v 0 0 0\nv 0 0 0\nv 0 0 0\nf 1 2 3\n",
        "empty.ply": "",
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "corrupt.glb").write_bytes(b"\x00\x13 not glTF" * 20)
    for name in [*bad, "corrupt.glb"]:
        with pytest.raises(MeshLoadError, match=name.replace(".", r"\.")):
            load_mesh(tmp_path / name)


# --- sampling -----------------------------------------------------------------------------------


def test_sample_surface_on_surface_and_area_weighted():
    box = trimesh.creation.box((2.0, 1.0, 0.5))
    pts, faces = sample_surface(box, 20000, np.random.default_rng(0), return_faces=True)
    assert pts.shape == (20000, 3)
    # every point lies on one of the six faces
    on_face = np.isclose(np.abs(pts), [1.0, 0.5, 0.25], atol=1e-9).any(axis=1)
    assert on_face.all()
    assert (np.abs(pts) <= np.array([1.0, 0.5, 0.25]) + 1e-9).all()
    # fraction on the two +-z faces = their share of the area (2*2*1 / total)
    total = 2 * (2 * 1 + 2 * 0.5 + 1 * 0.5)
    frac = np.isclose(np.abs(pts[:, 2]), 0.25).mean()
    assert frac == pytest.approx(4.0 / total, abs=0.015)
    # reproducible
    np.testing.assert_array_equal(pts, sample_surface(box, 20000, np.random.default_rng(0)))


def test_farthest_point_sampling_matches_naive_reference():
    pts = np.random.default_rng(1).random((300, 3))
    k = 40
    idx = farthest_point_sampling(pts, k, start=7)
    ref = [7]
    d = np.full(len(pts), np.inf)
    for _ in range(k - 1):
        d = np.minimum(d, ((pts - pts[ref[-1]]) ** 2).sum(1))
        ref.append(int(np.argmax(d)))
    np.testing.assert_array_equal(idx, ref)
    assert len(set(idx.tolist())) == k


def test_farthest_point_sampling_spreads_and_validates():
    line = np.stack([np.linspace(0, 1, 101), np.zeros(101), np.zeros(101)], axis=1)
    idx = farthest_point_sampling(line, 3, start=50)
    assert sorted(idx.tolist()) == [0, 50, 100]
    assert farthest_point_sampling(line, 101).shape == (101,)
    with pytest.raises(ValueError):
        farthest_point_sampling(line, 0)
    with pytest.raises(ValueError):
        farthest_point_sampling(line, 102)
    with pytest.raises(ValueError):
        farthest_point_sampling(line[:, :2], 3)
