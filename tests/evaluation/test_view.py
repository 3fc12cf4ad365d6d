"""``ssl3d view``: the clouds the viewer holds, from .ply files, predictions files and meshes."""

import json
import re

import numpy as np
import pytest
import trimesh

from ssl3d.cli.main import main
from ssl3d.cli.view import fit_to_view
from ssl3d.evaluation.visualize import write_ply


def viewer_clouds(html_path):
    """The clouds a written viewer holds: [(name, xyz (N, 3), rgb (N, 3) uint8)]."""
    text = html_path.read_text()
    data = json.loads(re.search(r"const CLOUDS = (\[.*?\]);\n", text, re.S).group(1))
    return [(c["name"], np.array(c["xyz"]).reshape(-1, 3), np.array(c["rgb"]).reshape(-1, 3)) for c in data]


def test_fit_to_view_against_a_loop():
    """Reference: each coordinate minus its box centre, over the box diagonal, point by point."""
    g = np.random.default_rng(0)
    xyz = (g.random((40, 3)) * [300.0, 20.0, 5.0] + 1000.0).astype(np.float32)
    lo = [min(p[k] for p in xyz) for k in range(3)]
    hi = [max(p[k] for p in xyz) for k in range(3)]
    diag = sum((h - l) ** 2 for h, l in zip(hi, lo)) ** 0.5
    want = [[(p[k] - (lo[k] + hi[k]) / 2) / diag for k in range(3)] for p in xyz]
    np.testing.assert_allclose(fit_to_view(xyz), want, atol=1e-6)
    np.testing.assert_allclose(fit_to_view(np.ones((3, 3), np.float32)), 0)  # one point: no division by 0


def test_view_a_folder_of_ply_predictions_and_a_mesh(tmp_path, capsys):
    g = np.random.default_rng(1)
    xyz, rgb = g.random((30, 3)) - 0.5, g.random((30, 3))
    write_ply(tmp_path / "photo.ply", xyz, rgb)
    write_ply(tmp_path / "plain.ply", xyz * 100)  # no colours, another scale
    preds = g.random((5, 20, 3)).astype(np.float32) - 0.5
    np.savez(tmp_path / "predictions_test.npz", xyz=preds, rgb=np.full((5, 20, 3), 0.5, np.float32),
             models=np.array([f"m{i}" for i in range(5)]), pose_error_deg=np.arange(5.0) * 10)
    box = trimesh.creation.box(extents=[2.0, 1.0, 0.5])
    box.visual.face_colors = [255, 0, 0, 255]
    box.export(tmp_path / "box.obj")
    (tmp_path / "notes.txt").write_text("not a cloud")  # left alone

    assert main(["view", str(tmp_path), "--limit", "2"]) == 0
    assert "view.html: 5 clouds" in capsys.readouterr().out
    clouds = {name: (x, c) for name, x, c in viewer_clouds(tmp_path / "view.html")}
    assert sorted(clouds) == sorted(["box.obj", "photo.ply", "plain.ply",
                                     "test: m0 (pose error 0 deg)", "test: m1 (pose error 10 deg)"])
    x, c = clouds["photo.ply"]
    np.testing.assert_allclose(x, fit_to_view(xyz.astype(np.float32)), atol=1e-4)
    np.testing.assert_array_equal(c, (rgb * 255).round())
    np.testing.assert_allclose(clouds["plain.ply"][0], x, atol=1e-4)  # scale taken out
    assert (clouds["plain.ply"][1] == round(0.6 * 255)).all()  # no colours: grey
    x, c = clouds["box.obj"]
    assert len(x) == 4096 and (c == [255, 0, 0]).all()
    extent = x.max(0) - x.min(0)  # the box's proportions kept (in some order, after the y-up turn)
    np.testing.assert_allclose(sorted(extent / extent.max()), [0.25, 0.5, 1.0], atol=0.02)
    np.testing.assert_allclose(clouds["test: m1 (pose error 10 deg)"][0], fit_to_view(preds[1]), atol=1e-4)


def test_view_writes_where_asked_and_names_bad_inputs(tmp_path, capsys):
    write_ply(tmp_path / "a.ply", np.zeros((4, 3)) + [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    out = tmp_path / "sub" / "v.html"
    assert main(["view", str(tmp_path / "a.ply"), "--out", str(out)]) == 0
    assert [n for n, _, _ in viewer_clouds(out)] == ["a.ply"]
    capsys.readouterr()

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "nan.ply").write_text("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n"
                                 "property float y\nproperty float z\nend_header\n0 0 0\nnan 1 1\n")
    (bad / "corrupt.ply").write_bytes(b"not a ply at all")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [([str(tmp_path / "missing.ply")], "missing.ply: no such file"),
             ([str(bad / "nan.ply")], "nan.ply: holds non-finite"),
             ([str(bad / "corrupt.ply")], "corrupt.ply: cannot read"),
             ([str(empty)], "no predictions_*.npz, .ply or mesh files"),
             ([str(tmp_path / "a.ply"), "--limit", "0"], "--limit must be >= 1")]
    for argv, message in cases:
        assert main(["view", *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv
    np.savez(tmp_path / "predictions_x.npz", xyz=np.zeros((1, 3, 3)))
    assert main(["view", str(tmp_path / "predictions_x.npz")]) == 2
    assert "not an ssl3d predictions file (no models, rgb)" in capsys.readouterr().err
    preds = {"predictions_flat.npz": dict(xyz=np.zeros((4, 3)), rgb=np.zeros((4, 3)), models=np.array(list("abcd"))),
             "predictions_none.npz": dict(xyz=np.zeros((0, 5, 3)), rgb=np.zeros((0, 5, 3)), models=np.array([], str))}
    for name, arrays in preds.items():
        np.savez(tmp_path / name, **arrays)
    (tmp_path / "predictions_cut.npz").write_bytes((tmp_path / "predictions_x.npz").read_bytes()[:40])
    for name, message in (("predictions_flat.npz", "not an ssl3d predictions file (xyz (4, 3)"),
                          ("predictions_none.npz", "holds no clouds"),
                          ("predictions_cut.npz", "predictions_cut.npz: cannot read")):
        assert main(["view", str(tmp_path / name)]) == 2, name
        assert message in capsys.readouterr().err, name


def test_view_turns_predictions_into_the_data_frame_caps_points_and_labels_inputs(tmp_path, capsys):
    g = np.random.default_rng(2)
    xyz = (g.random((2, 30, 3)) - 0.5).astype(np.float32)
    rot = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]], np.float32)  # a quarter turn about y
    for run in ("s0", "s1"):
        (tmp_path / run).mkdir()
        np.savez(tmp_path / run / "predictions_test.npz", xyz=xyz, rgb=np.zeros_like(xyz),
                 models=np.array(["m0", "m1"]), rotation=rot)
    big = g.random((25000, 3))
    write_ply(tmp_path / "big.ply", big)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert main(["view", str(tmp_path / "s0"), str(tmp_path / "s1"), str(tmp_path / "big.ply"),
                 "--out", str(out_dir)]) == 0  # a folder: view.html in it
    clouds = viewer_clouds(out_dir / "view.html")
    names = [n for n, _, _ in clouds]
    assert names == [f"{tmp_path / 's0'}: test: m0", f"{tmp_path / 's0'}: test: m1",
                     f"{tmp_path / 's1'}: test: m0", f"{tmp_path / 's1'}: test: m1",
                     f"{tmp_path / 'big.ply'} (20000 of 25000 points)"]
    turned = np.array([[rot @ p for p in cloud] for cloud in xyz])  # point by point: p -> R p
    np.testing.assert_allclose(clouds[1][1], fit_to_view(turned[1].astype(np.float32)), atol=1e-4)
    assert len(clouds[4][1]) == 20000


def test_viewer_names_cannot_end_its_script(tmp_path):
    """A name holding "</script>" or "<!--" stays inside the page's data."""
    from ssl3d.evaluation.visualize import write_viewer

    name = "a</script><!--<script>\u00e9"
    out = write_viewer(tmp_path / "v.html", [(name, np.zeros((2, 3)), np.zeros((2, 3)))])
    text = out.read_text()
    assert text.count("</script>") == 1 and "<!--" not in text
    assert viewer_clouds(out)[0][0] == name
