"""The ray-cast renderer and the ``ssl3d render`` dataset writer (ssl3d.data.render)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from ssl3d import camera
from ssl3d.data.mesh_io import load_mesh
from ssl3d.data.render import (CLOUD_DENSE_NAME, CLOUD_GT_NAME, file_digest, is_complete, ray_backend,
                               render_dataset, render_views, view_rays)

REAL_MESHES = Path("/work/shared/meshes")


# --- helpers ------------------------------------------------------------------------------------


def _colored_box(extents, rgb):
    box = trimesh.creation.box(extents)
    box.visual.face_colors = [*rgb, 255]
    return box


def _write_models(folder: Path) -> Path:
    """Three small, differently coloured models in three formats."""
    folder.mkdir(parents=True, exist_ok=True)
    _colored_box((1.0, 0.6, 0.4), (220, 20, 20)).export(folder / "redbox.ply")
    cyl = trimesh.creation.cylinder(radius=0.3, height=1.0, sections=24)
    cyl.visual.vertex_colors = [20, 200, 20, 255]
    cyl.export(folder / "cylinder.glb")
    trimesh.creation.icosphere(2).export(folder / "sphere.off")
    return folder


def _straight_rgb(img: np.ndarray) -> np.ndarray:
    """Mean straight (un-premultiplied) colour of the fully covered pixels of (H, W, 4) uint8."""
    full = img[..., 3] == 255
    return img[full][:, :3].astype(float).mean(axis=0) / 255.0


def _read_views(model_dir: Path) -> torch.Tensor:
    rows = [camera.viewpoint_from_view_txt(line.split())
            for line in (model_dir / "view.txt").read_text().splitlines()]
    return torch.tensor([[az, el] for az, el, _ in rows], dtype=torch.float64)


def _read_alpha(model_dir: Path, views: int) -> np.ndarray:
    return np.stack([np.asarray(Image.open(model_dir / f"render_{i}.png"))[..., 3]
                     for i in range(views)])


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "render_report.json"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """One small dataset shared by the read-only tests below (views=4, size 64)."""
    root = tmp_path_factory.mktemp("render")
    meshes = _write_models(root / "meshes")
    report = render_dataset(meshes, root / "data", "things", views=4, image_size=64, seed=3,
                            progress=False)
    return root / "data", report


# --- renderer -----------------------------------------------------------------------------------


def test_embree_backend_is_used():
    assert ray_backend() == "embree"


@pytest.mark.parametrize("size,supersample", [(64, 3), (128, 1), (224, 2)])
def test_view_rays_equal_camera_unproject_rays(size, supersample):
    """The renderer's batched rays are exactly ssl3d.camera's rays (no second camera model)."""
    vps = camera.sample_viewpoints(5, torch.Generator().manual_seed(0), dtype=torch.float64)
    origins, dirs = view_rays(size, vps.numpy(), supersample)
    for k, vp in enumerate(vps):
        o, d = camera.unproject_rays(size, vp, supersample=supersample)
        np.testing.assert_allclose(origins[k], o.numpy(), atol=1e-12)
        np.testing.assert_allclose(dirs[k], d.reshape(-1, 3).numpy(), atol=1e-12)


def test_layout_and_file_formats(dataset):
    data, report = dataset
    assert report["counts"] == {"rendered": 3, "skipped": 0, "failed": 0, "models_in_dataset": 3}
    for model in ("redbox", "cylinder", "sphere"):
        d = data / "things" / model
        assert is_complete(d, 4, 64)
        for i in range(4):
            im = Image.open(d / f"render_{i}.png")
            assert im.mode == "RGBA" and im.size == (64, 64)
            a = np.asarray(im)
            assert (a[a[..., 3] == 0][:, :3] == 0).all()  # black where there is no object
            assert (a[..., 3] > 0).sum() > 50
        lines = (d / "view.txt").read_text().splitlines()
        assert len(lines) == 4
        for line in lines:
            az, el, tilt, dist = map(float, line.split())
            assert -180 <= az < 180 and -20 <= el <= 40 and tilt == 0 and dist == 2
        gt, dense = np.load(d / CLOUD_GT_NAME), np.load(d / CLOUD_DENSE_NAME)
        assert gt.shape == (1024, 3) and gt.dtype == np.float32
        assert dense.shape == (16384, 3) and dense.dtype == np.float32
        # FPS subset of the dense samples, in the normalised frame (unit bbox diagonal)
        assert np.isin(gt.view("V12"), dense.view("V12")).all()
        assert np.linalg.norm(np.ptp(dense, axis=0)) == pytest.approx(1.0, abs=0.02)
    on_disk = json.loads((data / "things" / "render_report.json").read_text())
    assert on_disk["counts"]["rendered"] == 3


def test_cloud_projects_onto_silhouette(tmp_path):
    """Camera consistency: the dense cloud splatted at each stored view matches the alpha."""
    from ssl3d.ops.projection import project_silhouette
    meshes = tmp_path / "m"
    meshes.mkdir()
    trimesh.creation.box((1.0, 0.7, 0.5)).export(meshes / "box.ply")
    trimesh.creation.icosphere(3).export(meshes / "ball.obj")
    size, views = 128, 6
    render_dataset(meshes, tmp_path / "d", "c", views=views, image_size=size, progress=False)
    for model in ("box", "ball"):
        d = tmp_path / "d" / "c" / model
        vps = _read_views(d)
        pts = torch.from_numpy(np.load(d / CLOUD_DENSE_NAME)).double().expand(views, -1, -1)
        alpha = torch.from_numpy(_read_alpha(d, views) > 127)

        def iou(vp):
            sil = project_silhouette(pts, vp, size) > 0.5
            return ((sil & alpha).sum((1, 2)) / (sil | alpha).sum((1, 2))).numpy()

        assert iou(vps).min() >= 0.9, (model, iou(vps))


def test_render_centroid_matches_camera_projection(tmp_path):
    """Sub-pixel pin of renderer against camera.project: a small ball's alpha centroid sits on the
    projection of its centre (a half-pixel convention slip would show as 0.5 px)."""
    centre = np.array([0.2, 0.1, -0.15])
    trimesh.creation.icosphere(4, radius=0.08).apply_translation(centre).export(tmp_path / "s.ply")
    mesh = load_mesh(tmp_path / "s.ply", normalize=False)
    vps = np.array([[0.3, 0.2], [-2.5, -0.3], [1.7, 0.6]])
    for size in (64, 128):
        alpha = render_views(mesh, vps, size)[..., 3].astype(float)
        uv, _ = camera.project(torch.tensor(centre).expand(3, 1, 3), torch.tensor(vps), size)
        rows, cols = np.mgrid[:size, :size] + 0.5
        for k in range(len(vps)):
            total = alpha[k].sum()
            got = [(alpha[k] * cols).sum() / total, (alpha[k] * rows).sum() / total]
            np.testing.assert_allclose(got, uv[k, 0].numpy(), atol=0.15)


def test_cloud_points_land_inside_silhouette(dataset):
    data, _ = dataset
    d = data / "things" / "redbox"
    vps = _read_views(d)
    uv, _ = camera.project(torch.from_numpy(np.load(d / CLOUD_DENSE_NAME)).double()
                           .expand(len(vps), -1, -1), vps, 64)
    alpha = _read_alpha(d, len(vps))
    ij = np.floor(uv.numpy()).astype(int).clip(0, 63)
    b = np.arange(len(vps))[:, None]
    # not 1.0: a point right on the outline can fall in a pixel none of whose sub-rays hit
    assert (alpha[b, ij[..., 1], ij[..., 0]] > 0).mean() > 0.99


def test_red_box_renders_red(dataset):
    data, _ = dataset
    rgb = _straight_rgb(np.asarray(Image.open(data / "things" / "redbox" / "render_0.png")))
    assert rgb[0] > 0.4 and rgb[1] < 0.1 * rgb[0] + 0.02 and rgb[2] < 0.1 * rgb[0] + 0.02
    rgb = _straight_rgb(np.asarray(Image.open(data / "things" / "cylinder" / "render_1.png")))
    assert rgb[1] > 0.4 and rgb[0] < 0.15 * rgb[1] + 0.02 and rgb[2] < 0.15 * rgb[1] + 0.02
    rgb = _straight_rgb(np.asarray(Image.open(data / "things" / "sphere" / "render_2.png")))
    assert np.ptp(rgb) < 0.02 and 0.2 < rgb.mean() < 0.8  # neutral grey


def test_vertex_colours_land_where_they_belong(tmp_path):
    """Green part at +z, blue part at -z; from azimuth 0 the image's left is world +z."""
    green = trimesh.creation.box((0.5, 0.5, 0.5)).apply_translation((0, 0, 0.3))
    green.visual.vertex_colors = [0, 255, 0, 255]
    blue = trimesh.creation.box((0.5, 0.5, 0.5)).apply_translation((0, 0, -0.3))
    blue.visual.vertex_colors = [0, 0, 255, 255]
    trimesh.util.concatenate([green, blue]).export(tmp_path / "two.glb")
    img = render_views(load_mesh(tmp_path / "two.glb"), [[0.0, 0.0]], 64)[0]
    left, right = img[:, :28], img[:, 36:]
    assert _straight_rgb(left)[1] > 0.5 and _straight_rgb(left)[2] < 0.05
    assert _straight_rgb(right)[2] > 0.5 and _straight_rgb(right)[1] < 0.05


def _textured_quad() -> trimesh.Trimesh:
    """A unit quad in the x = 0 plane facing +x, UV laid out so that, seen from azimuth 0
    (image left = world +z, image up = +y), texel row 0 / col 0 lands in the image's top left."""
    y, z = np.meshgrid([-0.5, 0.5], [-0.5, 0.5], indexing="ij")
    verts = np.stack([np.zeros(4), y.ravel(), z.ravel()], axis=1)
    uv = np.stack([0.5 - verts[:, 2], verts[:, 1] + 0.5], axis=1)
    faces = np.array([[0, 2, 3], [0, 3, 1]])
    tex = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 0]]], np.uint8)
    return trimesh.Trimesh(verts, faces, visual=trimesh.visual.TextureVisuals(
        uv=uv, image=Image.fromarray(tex)), process=False)


@pytest.mark.parametrize("ext", ["glb", "obj"])
def test_texture_colours(tmp_path, ext):
    _textured_quad().export(tmp_path / f"quad.{ext}")
    img = render_views(load_mesh(tmp_path / f"quad.{ext}"), [[0.0, 0.0]], 64)[0]
    c = 32
    lo, hi = slice(c - 10, c - 4), slice(c + 4, c + 10)
    quads = {"top-left": img[lo, lo], "top-right": img[lo, hi], "bottom-left": img[hi, lo],
             "bottom-right": img[hi, hi]}
    expected = {"top-left": [1, 0, 0], "top-right": [0, 1, 0], "bottom-left": [0, 0, 1],
                "bottom-right": [1, 1, 0]}
    for name, patch in quads.items():
        rgb = _straight_rgb(patch)
        hue = rgb / rgb.max()
        np.testing.assert_allclose(hue, expected[name], atol=0.05, err_msg=name)


def test_antialiased_alpha_and_supersample_1(tmp_path):
    trimesh.creation.icosphere(2).export(tmp_path / "s.ply")
    mesh = load_mesh(tmp_path / "s.ply")
    aa = render_views(mesh, [[0.3, 0.2]], 64, supersample=3)[0, ..., 3]
    hard = render_views(mesh, [[0.3, 0.2]], 64, supersample=1)[0, ..., 3]
    assert ((aa > 0) & (aa < 255)).sum() > 20  # soft edge
    assert set(np.unique(hard)) <= {0, 255}
    # both are the same shape up to the edge pixels
    assert np.abs((aa > 127).astype(int) - (hard > 127)).sum() < 0.1 * (hard > 0).sum()


def test_sizes_128_and_224():
    mesh = load_mesh_from(trimesh.creation.box((1, 0.5, 0.5)))
    for size in (128, 224):
        img = render_views(mesh, [[0.5, 0.1], [-2.0, 0.5]], size, supersample=2)
        assert img.shape == (2, size, size, 4)
        # the object is as large, relative to the frame, at every size
        cover = (img[0, ..., 3] > 127).mean()
        small = (render_views(mesh, [[0.5, 0.1]], 64, supersample=2)[0, ..., 3] > 127).mean()
        assert cover == pytest.approx(small, rel=0.05)


def load_mesh_from(tm: trimesh.Trimesh):
    """Write a trimesh to a temporary PLY and load it with :func:`load_mesh`."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        tm.export(Path(d) / "m.ply")
        return load_mesh(Path(d) / "m.ply")


def test_dataset_size_128(tmp_path):
    _colored_box((1.0, 0.6, 0.4), (220, 20, 20)).export(tmp_path / "box.ply")
    (tmp_path / "in").mkdir()
    shutil.move(tmp_path / "box.ply", tmp_path / "in" / "box.ply")
    report = render_dataset(tmp_path / "in", tmp_path / "d", "c", views=2, image_size=128,
                            progress=False)
    assert report["counts"]["rendered"] == 1
    assert Image.open(tmp_path / "d" / "c" / "box" / "render_1.png").size == (128, 128)


# --- bad input ----------------------------------------------------------------------------------


def test_bad_meshes_are_skipped_and_reported(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _colored_box((1, 1, 1), (200, 200, 200)).export(src / "good.ply")
    huge_box = trimesh.creation.box((3e8, 1e8, 2e8)).apply_translation((1e8, 5e8, -2e8))
    huge_box.export(src / "huge.ply")
    (src / "garbage.obj").write_text("definitely not a mesh\n\x00\x01\x02\n")
    (src / "nofaces.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    (src / "nan.obj").write_text("v nan 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 2 3 4\n")
    (src / "corrupt.glb").write_bytes(b"\x00\x13 broken" * 30)
    (src / "readme.txt").write_text("ignored: not a mesh extension")
    with pytest.warns(RuntimeWarning) as record:
        report = render_dataset(src, tmp_path / "d", "c", views=2, progress=False)
    assert sorted(r["model_id"] for r in report["rendered"]) == ["good", "huge"]
    skipped = {r["model_id"]: r for r in report["skipped"]}
    assert set(skipped) == {"garbage", "nofaces", "nan", "corrupt"}
    for model_id, entry in skipped.items():
        assert Path(entry["file"]).stem == model_id and entry["reason"]
        assert any(Path(entry["file"]).name in str(w.message) for w in record)
    assert "non-finite" in skipped["nan"]["reason"]
    assert "no triangle" in skipped["nofaces"]["reason"]
    assert report["failed"] == []
    assert not (tmp_path / "d" / "c" / "garbage").exists()
    huge = np.load(tmp_path / "d" / "c" / "huge" / CLOUD_DENSE_NAME)
    assert np.isfinite(huge).all()
    assert np.linalg.norm(np.ptp(huge, axis=0)) == pytest.approx(1, abs=0.02)
    assert (_read_alpha(tmp_path / "d" / "c" / "huge", 2) > 0).any()
    # the report on disk lists them too
    on_disk = json.loads((tmp_path / "d" / "c" / "render_report.json").read_text())
    assert {r["model_id"] for r in on_disk["skipped"]} == set(skipped)


def test_non_utf8_obj_and_cli_summary(tmp_path, capsys):
    """An OBJ whose comment is Latin-1 (common in files from older tools) renders; a data set
    too small for val or test says so; one with no usable mesh is an error."""
    from ssl3d.cli.main import main
    src = tmp_path / "in"
    src.mkdir()
    box = trimesh.creation.box((1, 2, 1))
    lines = [f"v {x:g} {y:g} {z:g}" for x, y, z in box.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in box.faces]
    (src / "latin.obj").write_bytes("# mod\u00e8le cr\u00e9\u00e9\n".encode("latin-1")
                                    + "\n".join(lines).encode() + b"\n")
    report = render_dataset(src, tmp_path / "d", "c", views=1, image_size=32, progress=False)
    assert [r["model_id"] for r in report["rendered"]] == ["latin"]
    capsys.readouterr()
    assert main(["render", str(src), str(tmp_path / "d2"), "--category", "c", "--views", "1",
                 "--size", "32", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "val and test splits are empty" in captured.out
    assert "model/s" not in captured.err  # --no-progress, as train and evaluate spell it: no bar
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "garbage.obj").write_text("not a mesh\n")
    # As a user sees it (a process of its own: pytest records warnings instead of printing them)
    done = subprocess.run([sys.executable, "-m", "ssl3d", "render", str(bad), str(tmp_path / "d3"),
                           "--category", "c", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 2 and "no usable mesh in" in done.stderr
    # the skipped mesh as one warning line, without Python's file, line and source echo
    assert re.search(r"^ssl3d: warning: skipped .*garbage.obj", done.stderr, re.M)
    assert "render_dataset(" not in done.stderr


def test_missing_or_empty_mesh_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        render_dataset(tmp_path / "missing_dir", tmp_path / "d", "c", progress=False)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="empty_dir"):
        render_dataset(tmp_path / "empty_dir", tmp_path / "d", "c", progress=False)
    with pytest.raises(ValueError, match="category"):
        render_dataset(tmp_path / "empty_dir", tmp_path / "d", "a/b", progress=False)


# --- resume, determinism, splits ----------------------------------------------------------------


def test_resume_skips_finished_and_redoes_interrupted(tmp_path):
    meshes = _write_models(tmp_path / "m")
    data = tmp_path / "d"
    render_dataset(meshes, data, "c", views=3, seed=5, progress=False)
    first = _snapshot(data)

    report = render_dataset(meshes, data, "c", views=3, seed=5, progress=False)
    assert report["counts"]["rendered"] == 0
    assert {r["reason"] for r in report["skipped"]} == {"already rendered"}
    assert _snapshot(data) == first  # bytes and modification times untouched

    # an interrupted write: the model never got renamed into place, a temp folder is left over
    shutil.rmtree(data / "c" / "sphere")
    tmp = data / "c" / ".tmp-sphere-12345"
    tmp.mkdir()
    (tmp / "render_0.png").write_bytes(b"half a png")
    # a damaged model folder (a file lost)
    (data / "c" / "cylinder" / CLOUD_DENSE_NAME).unlink()
    report = render_dataset(meshes, data, "c", views=3, seed=5, progress=False)
    assert sorted(r["model_id"] for r in report["rendered"]) == ["cylinder", "sphere"]
    assert not tmp.exists()
    again = _snapshot(data)
    assert set(again) == set(first)
    # redone models are bit-identical to the first run (seeds depend on seed and model id only)
    assert all(again[k][0] == first[k][0] for k in first)


def test_other_unseen_settings_are_refused_and_duplicates_announced(tmp_path, capsys):
    from ssl3d.cli.main import main as cli
    meshes = _write_models(tmp_path / "m")
    data = tmp_path / "d"
    render_dataset(meshes, data, "c", views=2, seed=5, progress=False)
    # the finished models would be kept as if made with these settings
    for kwargs, says in (({"seed": 6}, "seed 5 -> 6"), ({"up_axis": "z"}, "up_axis y -> z"),
                         ({"normalize": False}, "normalize True -> False")):
        with pytest.raises(ValueError, match=f"rendered with other settings \\({says}\\)"):
            render_dataset(meshes, data, "c", views=2, progress=False, **{"seed": 5, **kwargs})
    # more views re-render the models (their files show the count), as before
    assert render_dataset(meshes, data, "c", views=3, seed=5, progress=False)["counts"]["skipped"] == 0
    # two files of one model id: the second is skipped with a warning and counted apart
    trimesh.creation.box().export(meshes / "sphere.obj")
    with pytest.warns(RuntimeWarning, match="sphere.*duplicate model id"):
        render_dataset(meshes, tmp_path / "d2", "c", views=1, progress=False)
    assert cli(["render", str(meshes), str(tmp_path / "d3"), "--category", "c", "--views", "1",
                "--quiet"]) == 0
    assert "1 duplicate model id" in capsys.readouterr().out
    # an unusable file does not knock out a good one of the same id: the next one is tried
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / "x.glb").write_bytes(b"garbage")
    trimesh.creation.box().export(dup / "x.ply")
    with pytest.warns(RuntimeWarning, match="x.glb"):
        report = render_dataset(dup, tmp_path / "d4", "c", views=1, progress=False)
    assert [r["file"] for r in report["rendered"]] == [str(dup / "x.ply")]
    assert [r["file"] for r in report["skipped"]] == [str(dup / "x.glb")]
    # run again: the model is kept, named by the file it was made from, not called a duplicate
    with pytest.warns(RuntimeWarning, match="x.glb: duplicate model id .*taken by .*x.ply"):
        again = render_dataset(dup, tmp_path / "d4", "c", views=1, progress=False)
    assert again["skipped"][0] == {"model_id": "x", "file": str(dup / "x.ply"),
                                   "sha1": file_digest(dup / "x.ply"), "reason": "already rendered"}
    assert [r["file"] for r in again["skipped"][1:]] == [str(dup / "x.glb")]


def test_file_digest_is_sha1_of_the_bytes(tmp_path):
    import hashlib
    f = tmp_path / "m.bin"
    f.write_bytes(bytes(range(256)) * 5000)  # over one read block
    assert file_digest(f) == hashlib.sha1(f.read_bytes()).hexdigest()


def test_an_interrupted_first_render_is_checked_on_its_rerun(tmp_path, monkeypatch):
    """The settings are on record before the first model: a rerun after a Ctrl-C with another
    seed is refused, as it would be after a finished render."""
    import ssl3d.data.render as R
    meshes = _write_models(tmp_path / "m")
    data = tmp_path / "d"
    real, calls = R._render_task, []

    def render_then_interrupt(task):
        if calls:
            raise KeyboardInterrupt
        calls.append(task["model_id"])
        return real(task)

    monkeypatch.setattr(R, "_render_task", render_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        render_dataset(meshes, data, "c", views=2, seed=5, progress=False)
    monkeypatch.setattr(R, "_render_task", real)
    assert json.loads((data / "c" / "render_report.json").read_text())["unfinished"] is True
    with pytest.raises(ValueError, match="seed 5 -> 6"):
        render_dataset(meshes, data, "c", views=2, seed=6, progress=False)
    report = render_dataset(meshes, data, "c", views=2, seed=5, progress=False)
    assert len(report["rendered"]) == 2 and [r["model_id"] for r in report["skipped"]] == calls
    # the model made before the interruption kept its mesh's digest with it
    assert report["skipped"][0]["sha1"] == file_digest(report["skipped"][0]["file"])
    assert "unfinished" not in json.loads((data / "c" / "render_report.json").read_text())


def test_a_mesh_changed_under_its_name_is_rendered_again(tmp_path):
    meshes = _write_models(tmp_path / "m")
    data = tmp_path / "d"
    render_dataset(meshes, data, "c", views=2, seed=5, progress=False)
    before = _snapshot(data)
    _colored_box((1.0, 0.6, 0.4), (20, 20, 220)).export(meshes / "redbox.ply")  # now blue
    with pytest.warns(RuntimeWarning, match="redbox.ply changed since model redbox was rendered"):
        report = render_dataset(meshes, data, "c", views=2, seed=5, progress=False)
    assert [r["model_id"] for r in report["rendered"]] == ["redbox"]
    assert report["rendered"][0]["sha1"] == file_digest(meshes / "redbox.ply")
    rgb = _straight_rgb(np.array(Image.open(data / "c" / "redbox" / "render_0.png")))
    assert rgb[2] > 2 * rgb[0]  # blue now, not red
    after = _snapshot(data)
    assert all(after[k] == before[k] for k in before if "redbox" not in k and "render_report" not in k
               and "splits" not in k)  # the others untouched
    # run again: nothing changed, nothing rendered
    assert render_dataset(meshes, data, "c", views=2, seed=5, progress=False)["counts"]["rendered"] == 0
    # the mesh folder moved: an identical copy keeps its models, an edited one is rendered again
    moved = tmp_path / "moved"
    shutil.copytree(meshes, moved)
    shutil.rmtree(meshes)
    assert render_dataset(moved, data, "c", views=2, seed=5, progress=False)["counts"]["rendered"] == 0
    _colored_box((1.0, 0.6, 0.4), (220, 20, 20)).export(moved / "redbox.ply")
    with pytest.warns(RuntimeWarning, match="redbox.ply changed since model redbox"):
        report = render_dataset(moved, data, "c", views=2, seed=5, progress=False)
    assert [r["model_id"] for r in report["rendered"]] == ["redbox"]
    assert json.loads((data / "c" / "redbox" / "source.json").read_text())["file"] == str(
        (moved / "redbox.ply").resolve())
    # a changed mesh that no longer renders takes its old render with it (no stale model)
    (moved / "redbox.ply").write_bytes(b"not a mesh any more")
    with pytest.warns(RuntimeWarning) as caught:
        report = render_dataset(moved, data, "c", views=2, seed=5, progress=False)
    said = " | ".join(str(w.message) for w in caught)
    assert "redbox.ply changed since" in said and "cannot read mesh" in said and "removed model redbox" in said
    assert not (data / "c" / "redbox").exists()
    assert "redbox" not in " ".join(sum(_read_splits(data, "c").values(), []))
    # models made before sources were kept (no source.json) stay as they are
    (data / "c" / "sphere" / "source.json").unlink()
    trimesh.creation.icosphere(1).export(moved / "sphere.off")
    with pytest.warns(RuntimeWarning, match="redbox.ply: .*cannot read mesh"):  # still broken
        assert render_dataset(moved, data, "c", views=2, seed=5, progress=False)["counts"]["rendered"] == 0


def test_parallel_workers_match_serial(tmp_path):
    meshes = _write_models(tmp_path / "m")
    render_dataset(meshes, tmp_path / "serial", "c", views=2, progress=False)
    report = render_dataset(meshes, tmp_path / "par", "c", views=2, workers=2, progress=False)
    assert report["counts"]["rendered"] == 3
    a, b = _snapshot(tmp_path / "serial"), _snapshot(tmp_path / "par")
    assert set(a) == set(b) and all(a[k][0] == b[k][0] for k in a)


def _read_splits(data: Path, category: str) -> dict[str, list[str]]:
    return {s: (data / "splits" / f"{category}_{s}.txt").read_text().split()
            for s in ("train", "val", "test")}


def test_splits(tmp_path):
    src = tmp_path / "m"
    src.mkdir()
    for i in range(12):
        trimesh.creation.box((1, 0.5 + 0.05 * i, 0.5)).export(src / f"model{i:02d}.off")
    views = 4
    fast = dict(views=views, image_size=32, supersample=1, seed=1, progress=False)
    report = render_dataset(src, tmp_path / "d", "c", **fast)
    splits = _read_splits(tmp_path / "d", "c")
    assert report["splits"] == {k: len(v) for k, v in splits.items()}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [10, 1, 1]
    models = [line.rsplit("_", 1)[0] for s in splits.values() for line in s]
    assert sorted(models) == [f"model{i:02d}" for i in range(12)]  # disjoint and complete
    for lines in splits.values():
        for line in lines:
            model, view = line.rsplit("_", 1)
            assert 0 <= int(view) < views
    # same seed -> same splits, in another folder
    render_dataset(src, tmp_path / "d2", "c", **fast)
    assert _read_splits(tmp_path / "d2", "c") == splits


def test_splits_include_models_from_earlier_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    trimesh.creation.box().export(a / "first.ply")
    trimesh.creation.icosphere(1).export(b / "second.ply")
    render_dataset(a, tmp_path / "d", "c", views=2, progress=False)
    render_dataset(b, tmp_path / "d", "c", views=2, progress=False)
    models = sorted(line.rsplit("_", 1)[0]
                    for lines in _read_splits(tmp_path / "d", "c").values() for line in lines)
    assert models == ["first", "second"]


# --- CLI ----------------------------------------------------------------------------------------


def test_cli(tmp_path, capsys):
    from ssl3d.cli.main import main
    meshes = _write_models(tmp_path / "m")
    rc = main(["render", str(meshes), str(tmp_path / "d"), "--category", "c", "--views", "2",
               "--size", "32", "--supersample", "2", "--seed", "4", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "3 rendered" in out and "0 failed" in out
    assert Image.open(tmp_path / "d" / "c" / "redbox" / "render_1.png").size == (32, 32)
    assert main(["render", str(tmp_path / "nowhere"), str(tmp_path / "d"), "--category", "c"]) == 2
    assert "nowhere" in capsys.readouterr().err


# --- real meshes (development set), when present ------------------------------------------------


@pytest.mark.skipif(not (REAL_MESHES / "chair").is_dir(), reason="no /work/shared/meshes")
def test_real_mesh_colours_survive(tmp_path):
    """Chromaticity (shading-invariant) of the renders matches the mesh's COLOR_0."""
    src = tmp_path / "m"
    src.mkdir()
    files = sorted((REAL_MESHES / "chair").glob("*.glb"))[:3]
    for f in files:
        shutil.copy(f, src / f.name)
    report = render_dataset(src, tmp_path / "d", "chair", views=4, progress=False)
    assert report["counts"]["rendered"] == len(files)
    for f in files:
        mesh = load_mesh(f)
        area = np.linalg.norm(np.cross(mesh.triangles[:, 1] - mesh.triangles[:, 0],
                                       mesh.triangles[:, 2] - mesh.triangles[:, 0]), axis=1)
        surface = (mesh.corner_colors.mean(axis=1) * area[:, None]).sum(0) / area.sum()
        imgs = [np.asarray(Image.open(tmp_path / "d" / "chair" / f.stem / f"render_{i}.png"))
                for i in range(4)]
        rendered = np.mean([_straight_rgb(im) for im in imgs], axis=0)
        np.testing.assert_allclose(rendered / rendered.sum(), surface / surface.sum(), atol=0.04)


# --- options ------------------------------------------------------------------------------------


def test_up_axis_z_renders_like_y_up(tmp_path):
    """A z-up copy of a mesh rendered with up_axis='z' gives the y-up mesh's images and clouds."""
    y_up = trimesh.creation.box((0.3, 1.0, 0.5))
    colors = np.arange(12)[:, None] * [20, 10, 5, 0] + [0, 0, 0, 255]
    y_up.visual.face_colors = colors.astype(np.uint8)
    z_up = y_up.copy()
    x, y, z = y_up.vertices.T
    z_up.vertices = np.stack([x, -z, y], axis=1)
    (tmp_path / "y").mkdir(), (tmp_path / "z").mkdir()
    y_up.export(tmp_path / "y" / "m.ply")
    z_up.export(tmp_path / "z" / "m.ply")
    render_dataset(tmp_path / "y", tmp_path / "dy", "c", views=2, progress=False)
    render_dataset(tmp_path / "z", tmp_path / "dz", "c", views=2, up_axis="z", progress=False)
    for name in ("render_0.png", "render_1.png", CLOUD_DENSE_NAME):
        a, b = tmp_path / "dy" / "c" / "m" / name, tmp_path / "dz" / "c" / "m" / name
        if name.endswith(".npy"):
            np.testing.assert_allclose(np.load(a), np.load(b), atol=1e-6)
        else:
            diff = np.abs(np.asarray(Image.open(a), int) - np.asarray(Image.open(b), int))
            assert (diff > 2).mean() < 0.002


def test_no_normalize_keeps_mesh_frame(tmp_path):
    (tmp_path / "m").mkdir()
    box = trimesh.creation.box((0.4, 0.2, 0.2)).apply_translation((0.1, 0, 0))
    box.export(tmp_path / "m" / "b.ply")
    render_dataset(tmp_path / "m", tmp_path / "d", "c", views=1, normalize=False, progress=False)
    dense = np.load(tmp_path / "d" / "c" / "b" / CLOUD_DENSE_NAME)
    np.testing.assert_allclose(dense.min(0), [-0.1, -0.1, -0.1], atol=1e-6)
    np.testing.assert_allclose(dense.max(0), [0.3, 0.1, 0.1], atol=1e-6)


def test_shapenet_tree_input(tmp_path):
    for model in ("aaa", "bbb"):
        (tmp_path / "ShapeNet" / "03001627" / model).mkdir(parents=True)
        trimesh.creation.box().export(tmp_path / "ShapeNet" / "03001627" / model / "model.obj")
    report = render_dataset(tmp_path / "ShapeNet", tmp_path / "d", "03001627", views=1,
                            progress=False)
    assert [r["model_id"] for r in report["rendered"]] == ["aaa", "bbb"]
    assert is_complete(tmp_path / "d" / "03001627" / "aaa", 1, 64)
