"""Tests of the procedural mesh generators and ``ssl3d synth``."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import trimesh

from ssl3d.cli import synth as synth_cli
from ssl3d.data.synth import CATEGORIES, generate, shape_path, shape_rng, synthesize


def test_categories():
    assert set(CATEGORIES) >= {"airplane", "car", "chair"}


@pytest.mark.parametrize("category", ["airplane", "car", "chair"])
@pytest.mark.parametrize("index", [0, 1, 2])
def test_generate_is_a_normalised_coloured_mesh(category, index):
    mesh = generate(category, shape_rng(0, index))
    assert isinstance(mesh, trimesh.Trimesh)
    assert 100 <= len(mesh.faces) <= 5000
    assert np.isfinite(mesh.vertices).all()
    assert mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices)
    lo, hi = mesh.bounds
    np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-9)
    assert np.linalg.norm(hi - lo) == pytest.approx(1.0, abs=1e-9)
    colors = mesh.visual.face_colors
    assert colors.shape == (len(mesh.faces), 4) and colors.dtype == np.uint8
    assert (colors[:, 3] == 255).all()
    n_colors = len(np.unique(colors, axis=0))
    assert n_colors >= (3 if category == "car" else 2)
    assert (mesh.area_faces > 0).all()  # no degenerate triangles


def test_axis_conventions():
    """Up is +y and the front faces +z: chair backs and aircraft fins sit at -z, up high;
    aircraft are longer along z than tall; cars are longest along z."""
    for i in range(10):
        plane = generate("airplane", shape_rng(1, i))
        v = plane.vertices
        top = v[v[:, 1] > np.quantile(v[:, 1], 0.97)]
        assert top[:, 2].mean() < 0, "the fin should be at the tail (-z)"
        assert plane.extents[2] > plane.extents[1] and plane.extents[0] > plane.extents[1]
        car = generate("car", shape_rng(1, i))
        assert car.extents[2] > car.extents[0] > car.extents[1] * 0.9
    backs = 0
    for i in range(10):
        chair = generate("chair", shape_rng(1, i))
        v = chair.vertices
        top = v[v[:, 1] > np.quantile(v[:, 1], 0.97)]
        backs += top[:, 2].mean() < -0.05
    assert backs >= 7  # stools have no back, but they are rare


@pytest.mark.parametrize("category", ["airplane", "car", "chair"])
def test_same_seed_same_mesh_different_index_different_mesh(category):
    a = generate(category, shape_rng(5, 3))
    b = generate(category, shape_rng(5, 3))
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.faces, b.faces)
    np.testing.assert_array_equal(a.visual.face_colors, b.visual.face_colors)
    c = generate(category, shape_rng(5, 4))
    d = generate(category, shape_rng(6, 3))
    for other in (c, d):
        assert a.vertices.shape != other.vertices.shape or not np.allclose(a.vertices,
                                                                            other.vertices)


@pytest.mark.parametrize("category,axis", [("airplane", 0), ("car", 1), ("chair", 0)])
def test_variety(category, axis):
    """Bounding-box aspect ratios and triangle counts vary across samples."""
    meshes = [generate(category, shape_rng(0, i)) for i in range(20)]
    ratios = np.array([m.extents[axis] / m.extents.max() for m in meshes])
    assert ratios.std() > 0.015
    assert len({len(m.faces) for m in meshes}) >= 3
    colors = {tuple(m.visual.face_colors[0]) for m in meshes}
    assert len(colors) >= 10


def test_synthesize_writes_ply_with_colours(tmp_path):
    paths = synthesize("car", tmp_path / "out", 3, seed=2, progress=False)
    assert paths == [tmp_path / "out" / f"car_{i:05d}.ply" for i in range(3)]
    for i, path in enumerate(paths):
        assert path.is_file() and path == shape_path(tmp_path / "out", "car", i)
        loaded = trimesh.load(path)
        ref = generate("car", shape_rng(2, i))
        assert loaded.visual.kind == "face"
        np.testing.assert_array_equal(loaded.visual.face_colors, ref.visual.face_colors)
        np.testing.assert_allclose(loaded.vertices[loaded.faces], ref.vertices[ref.faces],
                                   atol=1e-6)
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind


def test_synthesize_resumes_and_parallel_matches_serial(tmp_path):
    serial = synthesize("chair", tmp_path / "a", 4, seed=1, workers=1, progress=False)
    parallel = synthesize("chair", tmp_path / "b", 4, seed=1, workers=2, progress=False)
    for p, q in zip(serial, parallel):
        assert p.read_bytes() == q.read_bytes()
    serial[1].write_bytes(b"sentinel")  # an existing file must be kept, not regenerated
    again = synthesize("chair", tmp_path / "a", 5, seed=1, progress=False)
    assert serial[1].read_bytes() == b"sentinel"
    assert again[4].is_file() and len(again) == 5


def test_synthesize_keeps_one_seed_per_folder_and_warns_of_extra_shapes(tmp_path):
    out = tmp_path / "m"
    synthesize("chair", out, 3, seed=0, progress=False)
    with pytest.raises(ValueError, match=r"chair_00000.ply is not shape 0 of seed 1: .*another seed"):
        synthesize("chair", out, 3, seed=1, progress=False)
    synthesize("car", out, 1, seed=1, progress=False)  # each category is checked on its own
    with pytest.warns(UserWarning, match="2 chair shapes numbered 1 or more"):
        assert len(synthesize("chair", out, 1, seed=0, progress=False)) == 1
    for path in out.glob("chair_*.ply"):  # shapes deleted: a new seed is welcome
        path.unlink()
    synthesize("chair", out, 1, seed=1, progress=False)


@pytest.mark.parametrize("kwargs", [{"category": "boat"}, {"count": 0}, {"count": -3},
                                    {"count": 2.5}, {"workers": 0},
                                    {"seed": -1}])
def test_synthesize_rejects_bad_arguments(tmp_path, kwargs):
    args = {"category": "chair", "out_dir": tmp_path, "count": 2, **kwargs}
    with pytest.raises(ValueError) as err:
        synthesize(**args, progress=False)
    if "category" in kwargs:
        assert "airplane" in str(err.value) and "chair" in str(err.value)
    assert not list(tmp_path.glob("*.ply"))


def test_generate_rejects_unknown_category():
    with pytest.raises(ValueError, match="known categories"):
        generate("table", np.random.default_rng(0))


def test_cli_writes_n_files(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synth_cli.register(parser)
    args = parser.parse_args(["airplane", str(tmp_path / "meshes"), "--count", "3",
                              "--seed", "4", "--workers", "1", "--quiet"])
    assert synth_cli.run(args) == 0
    files = sorted((tmp_path / "meshes").glob("*.ply"))
    assert [f.name for f in files] == [f"airplane_{i:05d}.ply" for i in range(3)]
    assert "3 airplane meshes" in capsys.readouterr().out
    with pytest.raises(ValueError):
        synth_cli.run(parser.parse_args(["lamp", str(tmp_path / "x"), "--count", "1"]))
    # an output path that runs into a file: one error line (exit 2), not a traceback
    from ssl3d.cli.main import main as cli

    (tmp_path / "file").write_text("x")
    assert cli(["synth", "chair", str(tmp_path / "file" / "sub"), "--count", "1"]) == 2
    assert "ssl3d synth: error:" in capsys.readouterr().err
