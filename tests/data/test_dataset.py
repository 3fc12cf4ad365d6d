"""The dataset reader, on hand-made samples in both layouts.

The paper-layout sample is drawn with the ShapeNet renderer's own geometry (Blender's z-up world,
OBJ axes imported as (x, y, z) -> (x, -z, y), camera at d (cos az cos el, sin az cos el, sin el)),
written independently of ssl3d.camera, so the IoU test pins the view.txt conversion.
"""

import math
import os

import re

import numpy as np
import pytest
import torch
from PIL import Image

from ssl3d.data import dataset as D
from ssl3d.ops import project_silhouette


def l_shaped_cloud(rng, n=4000):
    """Points filling an asymmetric L-shaped solid, so a wrong axis or sign shows up."""
    a = rng.uniform([-0.35, -0.25, -0.1], [0.35, -0.05, 0.1], size=(n // 2, 3))  # long bar along x
    b = rng.uniform([0.15, -0.05, -0.1], [0.35, 0.3, 0.1], size=(n // 4, 3))  # upright at +x
    c = rng.uniform([-0.35, -0.25, 0.1], [-0.2, -0.05, 0.3], size=(n // 4, 3))  # foot toward +z
    return np.concatenate([a, b, c]).astype(np.float32)


def blender_silhouette(points_obj, az_deg, el_deg, size=224, dist=2.0):
    """Silhouette as the paper's Blender renderer would see the OBJ-frame points."""
    p = np.stack([points_obj[:, 0], -points_obj[:, 2], points_obj[:, 1]], 1).astype(np.float64)
    az, el = math.radians(az_deg), math.radians(el_deg)
    cam = dist * np.array([math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)])
    f = -cam / np.linalg.norm(cam)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    rel = p - cam
    xc, yc, zc = rel @ r, rel @ u, rel @ f
    focal = 120.0 * size / 64
    col = focal * xc / zc + size / 2
    row = -focal * yc / zc + size / 2
    mask = np.zeros((size, size), np.uint8)
    for dr in range(-3, 4):  # disc splat, radius 3 px at 224
        for dc in range(-3, 4):
            if dr * dr + dc * dc <= 9:
                rr = np.clip(np.floor(row).astype(int) + dr, 0, size - 1)
                cc = np.clip(np.floor(col).astype(int) + dc, 0, size - 1)
                mask[rr, cc] = 255
    return mask


def write_model(model_dir, cloud_dir, points, views, size=224, mask_files=False):
    model_dir.mkdir(parents=True, exist_ok=True)
    cloud_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (az, el) in enumerate(views):
        alpha = blender_silhouette(points, az, el, size)
        rgba = np.zeros((size, size, 4), np.uint8)
        rgba[..., 0] = 200
        rgba[..., 1] = 60
        rgba[..., 3] = 0 if mask_files else alpha
        Image.fromarray(rgba, "RGBA").save(model_dir / f"render_{i}.png")
        if mask_files:
            Image.fromarray(alpha, "L").save(model_dir / f"mask_{i}.png")
        lines.append(f"{az} {el} 0 2.0")
    (model_dir / "view.txt").write_text("\n".join(lines) + "\n")
    np.save(cloud_dir / D.CLOUD_FILE, points[:: max(1, len(points) // 1024)][:1024])


VIEWS = [(-150.0, 30.0), (-60.0, -15.0), (20.0, 10.0), (100.0, 35.0), (170.0, 0.0)]


@pytest.fixture
def paper_layout(tmp_path):
    rng = np.random.default_rng(0)
    pts = l_shaped_cloud(rng)
    syn = D.SYNSETS["chair"]
    models = ["m0", "m1", "m2"]
    for k, m in enumerate(models):
        write_model(tmp_path / "ShapeNet_rendered" / syn / m, tmp_path / "ShapeNet_v1" / syn / m,
                    pts, VIEWS, mask_files=(k == 2))
    (tmp_path / "splits").mkdir()
    for split, lines in [("train", ["m0_0", "m1_3"]), ("val", ["m2_1"]), ("test", ["m2_4"])]:
        (tmp_path / "splits" / f"{syn}_{split}.txt").write_text("\n".join(lines) + "\n")
    return tmp_path, pts


def iou(a, b):
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_view_txt_conversion_matches_shapenet_renderer(paper_layout):
    root, pts = paper_layout
    model_dir = root / "ShapeNet_rendered" / D.SYNSETS["chair"] / "m0"
    vps = torch.from_numpy(D.read_views(model_dir))
    cloud = torch.from_numpy(pts).unsqueeze(0).expand(len(VIEWS), -1, -1)
    pred = project_silhouette(cloud, vps, 64) > 0.5
    for i in range(len(VIEWS)):
        _, mask = D.load_view(model_dir, i, 64)
        assert iou(pred[i].numpy(), mask > 0.5) >= 0.9, VIEWS[i]
    # The conversion is pinned: a mirrored azimuth or swapped axis would not overlap.
    wrong = project_silhouette(cloud, vps * torch.tensor([-1.0, 1.0]), 64) > 0.5
    _, mask = D.load_view(model_dir, 1, 64)
    assert iou(wrong[1].numpy(), mask > 0.5) < 0.8


def test_load_split_paper_layout_and_cache(paper_layout):
    root, _ = paper_layout
    train = D.load_split(root, "chair", "train", progress=False)
    assert len(train) == 2 and train.images.shape == (2, 3, 64, 64)
    assert train.masks.shape == (2, 64, 64) and train.clouds.shape == (2, 1024, 3)
    assert train.models == ["m0", "m1"] and train.views.tolist() == [0, 3]
    expect = [math.radians(v) for v in VIEWS[3]]
    assert train.viewpoints[1].tolist() == pytest.approx(expect, abs=1e-6)
    # Background is black: RGB premultiplied by the silhouette.
    assert float(train.images[0][:, train.masks[0] == 0].abs().max()) == 0
    assert len(list((root / "cache").glob("*.npz"))) == 1
    again = D.load_split(root, "chair", "train", progress=False)
    assert torch.equal(again.images, train.images)
    # A changed split is decoded again, and the stale cache file goes.
    split_file = root / "splits" / f"{D.SYNSETS['chair']}_train.txt"
    split_file.write_text("m1_3\n")
    os.utime(split_file, ns=(1, 10 ** 18))
    assert D.load_split(root, "chair", "train", progress=False).models == ["m1"]
    assert len(list((root / "cache").glob("*train*.npz"))) == 1
    # A separate mask_{i}.png is used when present.
    val = D.load_split(root, "chair", "val", progress=False)
    assert val.masks.max() > 0.99 and val.images[0, 0].max() > 0.7


def test_ssl3d_layout_and_batch(tmp_path):
    pts = l_shaped_cloud(np.random.default_rng(1))
    for m in ("chair_00000", "chair_00001"):
        write_model(tmp_path / "chair" / m, tmp_path / "chair" / m, pts, VIEWS[:2], size=64)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "chair_train.txt").write_text("chair_00000_1\nchair_00001_0\n")
    views = D.load_split(tmp_path, "chair", "train", use_cache=False, progress=False)
    assert views.models == ["chair_00000", "chair_00001"]  # underscores in model ids are fine
    b = views.batch(torch.tensor([1, 0]))
    assert b["image"].shape == (2, 3, 64, 64) and b["cloud"].shape == (2, 1024, 3)
    item = D.ViewDataset(views)[1]
    assert torch.equal(item["image"], views.images[1])


def test_bad_inputs(tmp_path, paper_layout):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.resolve_paths(tmp_path / "nope", "chair")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="category 'chair'"):
        D.resolve_paths(tmp_path / "empty", "chair")
    (tmp_path / "data" / "chair" / "chair_00000").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=re.escape(f"pass {(tmp_path / 'data').resolve()}") + "$"):
        D.resolve_paths(tmp_path / "data" / "chair", "chair")  # the category folder itself
    root, _ = paper_layout
    syn = D.SYNSETS["chair"]
    with pytest.raises(ValueError, match="split must be"):
        D.load_split(root, "chair", "training")
    (root / "splits" / f"{syn}_test.txt").write_text("m2\n")
    with pytest.raises(ValueError, match="expected '<model>_<view index>'"):
        D.load_split(root, "chair", "test")
    (root / "splits" / f"{syn}_test.txt").write_text("m2_9\nmissing_0\n")
    with pytest.raises(FileNotFoundError, match="could not be read"):
        D.load_split(root, "chair", "test", progress=False)
    # One bad model among good ones is left out with a warning naming it.
    (root / "splits" / f"{syn}_test.txt").write_text("m2_4\nmissing_0\n")
    with pytest.warns(UserWarning, match="missing"):
        views = D.load_split(root, "chair", "test", progress=False)
    assert views.models == ["m2"]
    model_dir = root / "ShapeNet_rendered" / syn / "m0"
    Image.fromarray(np.zeros((30, 40, 4), np.uint8)).save(model_dir / "render_0.png")
    with pytest.raises(ValueError, match="square"):
        D.load_view(model_dir, 0, 64)
    Image.fromarray(np.zeros((64, 64, 4), np.uint8)).save(model_dir / "render_0.png")
    with pytest.raises(ValueError, match="empty"):
        D.load_view(model_dir, 0, 64)
    (model_dir / "render_0.png").write_text("not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        D.load_view(model_dir, 0, 64)


def test_flip_batch_against_a_loop_and_the_projection(tiny_dataset):
    """Each flipped sample is mirrored entry by entry as a per-sample loop does it, the others
    are untouched, and a flipped sample is still an exact view: its mirrored cloud projected at
    its new viewpoint covers its flipped mask as well as the original cloud covers the original."""
    views = D.load_split(tiny_dataset, "chair", "train", image_size=32, progress=False)
    b = views.batch(torch.arange(len(views)))
    flip = torch.arange(len(views)) % 2 == 0
    out = D.flip_batch(b, flip)
    for i in range(len(views)):
        if flip[i]:
            assert torch.equal(out["image"][i], b["image"][i][..., torch.arange(31, -1, -1)])
            assert torch.equal(out["mask"][i], b["mask"][i][:, torch.arange(31, -1, -1)])
            assert torch.equal(out["cloud"][i][:, 0], -b["cloud"][i][:, 0])
            assert torch.equal(out["cloud"][i][:, 1:], b["cloud"][i][:, 1:])
            az = math.pi - float(b["viewpoint"][i, 0])
            az = (az + math.pi) % (2 * math.pi) - math.pi
            assert abs(float(out["viewpoint"][i, 0]) - az) < 1e-5
            assert float(out["viewpoint"][i, 1]) == float(b["viewpoint"][i, 1])
        else:
            for k in ("image", "mask", "cloud", "viewpoint"):
                assert torch.equal(out[k][i], b[k][i])
    assert torch.equal(out["index"], b["index"])

    def iou(cloud, view, mask):
        sil = project_silhouette(cloud, view, 32) > 0.5
        m = mask > 0.5
        return ((sil & m).sum((1, 2)) / (sil | m).sum((1, 2))).float()

    before = iou(b["cloud"], b["viewpoint"], b["mask"])
    after = iou(out["cloud"], out["viewpoint"], out["mask"])
    assert before.min() > 0.7
    torch.testing.assert_close(after, before, atol=1e-3, rtol=0)
    # Projecting the original cloud at the original view against the flipped mask is worse: the
    # check above is not satisfied by any cloud.
    assert iou(b["cloud"][flip], b["viewpoint"][flip], out["mask"][flip]).mean() < before[flip].mean() - 0.05
    with pytest.raises(ValueError, match="flip must be"):
        D.flip_batch(b, flip[:-1])
