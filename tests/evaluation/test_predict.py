import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from ssl3d.cli.main import main as cli
from ssl3d.evaluation import refine as R
from ssl3d.evaluation import user_images as U
from ssl3d.evaluation import visualize as V
from ssl3d.training.checkpoint import load_models
from ssl3d.training.trainer import train


@pytest.fixture(scope="module")
def tiny_model(tiny_dataset, tmp_path_factory):
    from tests.conftest import tiny_config

    out = tmp_path_factory.mktemp("model")
    train(tiny_config(steps=1), tiny_dataset, "chair", out)
    return out / "cc.pt"


def photo(size=(120, 90), bg=(250, 250, 250)):
    a = np.zeros((size[1], size[0], 3), np.uint8) + np.array(bg, np.uint8)
    a[20:70, 30:80] = (200, 40, 40)
    return a


def test_predict_rgba_jpeg_with_mask_and_folder(tiny_model, tmp_path, capsys):
    rgba = np.zeros((90, 120, 4), np.uint8)
    rgba[20:70, 30:80] = (200, 40, 40, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(photo(bg=(90, 160, 30))).save(tmp_path / "b.jpg")
    mask = np.zeros((90, 120), np.uint8)
    mask[20:70, 30:80] = 255
    Image.fromarray(mask).save(tmp_path / "b_mask.png")
    out = tmp_path / "out"
    assert cli(["predict", str(tmp_path / "a.png"), "--model", str(tiny_model), "--out", str(out)]) == 0
    assert cli(["predict", str(tmp_path / "b.jpg"), "--mask", str(tmp_path / "b_mask.png"),
                "--model", str(tiny_model), "--out", str(out), "--refine", "2"]) == 0
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo()).save(folder / "c.jpg")  # plain background: estimated silhouette
    Image.fromarray(rgba, "RGBA").save(folder / "d.png")
    assert cli(["predict", str(folder), "--model", str(tiny_model), "--out", str(out)]) == 0
    for stem in ("a", "b", "c", "d"):
        ply = (out / f"{stem}.ply").read_text().splitlines()
        assert ply[0] == "ply" and "element vertex 64" in ply and len(ply) == 64 + 10
        assert (out / f"{stem}_preview.png").is_file()
    printed = capsys.readouterr().out
    assert "azimuth" in printed and f"ssl3d view {out}" in printed
    assert cli(["view", str(out)]) == 0  # the command it suggests takes the four clouds
    assert "view.html: 4 clouds" in capsys.readouterr().out


def test_estimated_mask_keeps_thin_parts_and_the_background_seen_through():
    """A chair drawn in grey on white: seat block, one-pixel legs, a back frame around a large
    window of background, a small near-white patch inside the seat, and a speck apart."""
    rgb = np.ones((80, 80, 3))
    truth = np.zeros((80, 80), bool)
    truth[40:48, 20:60] = True  # seat
    truth[48:75, 21] = truth[48:75, 58] = True  # one-pixel legs
    truth[10:40, 20:24] = truth[10:40, 56:60] = truth[10:14, 20:60] = True  # back frame
    rgb[truth] = 0.4
    rgb[43:45, 30:32] = 0.95  # a light patch on the seat: object, near the background colour
    rgb[2:4, 70:72] = 0.4  # a speck of dirt apart from the object
    got = U.estimate_background_mask(rgb)
    np.testing.assert_array_equal(got, truth)  # legs kept, patch filled, window open, speck gone
    rgb[44, :] = 0.4  # a one-pixel table edge behind the seat, running out of the picture
    got = U.estimate_background_mask(rgb)
    # the edge is not the object's (but for the pixel next to the seat the opening keeps on
    # either side); the legs still are
    assert not got[44, :19].any() and not got[44, 61:].any() and got[48:75, 21].all()


def test_an_estimated_mask_is_announced(tmp_path):
    Image.fromarray(photo()).save(tmp_path / "p.jpg")
    with pytest.warns(UserWarning, match="estimated from the plain background; pass --mask"):
        U.load_user_image(tmp_path / "p.jpg")


def test_predict_errors(tiny_model, tmp_path):
    Image.fromarray(np.full((50, 50, 3), 255, np.uint8)).save(tmp_path / "blank.png")
    with pytest.raises(ValueError, match="no object found"):
        U.load_user_image(tmp_path / "blank.png")
    Image.fromarray(photo()).save(tmp_path / "p.jpg")
    Image.fromarray(np.zeros((90, 120), np.uint8)).save(tmp_path / "empty_mask.png")
    with pytest.raises(ValueError, match="silhouette is empty"):
        U.load_user_image(tmp_path / "p.jpg", tmp_path / "empty_mask.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small_mask.png")
    with pytest.raises(ValueError, match="is 10 x 10"):
        U.load_user_image(tmp_path / "p.jpg", tmp_path / "small_mask.png")
    noisy = np.random.default_rng(0).integers(0, 255, (60, 60, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(tmp_path / "noisy.png")
    with pytest.raises(ValueError, match="pass --mask"):
        U.load_user_image(tmp_path / "noisy.png")
    (tmp_path / "bad.png").write_text("nope")
    with pytest.raises(ValueError, match="cannot read image"):
        U.load_user_image(tmp_path / "bad.png")
    assert cli(["predict", str(tmp_path / "missing.png"), "--model", str(tiny_model),
                "--out", str(tmp_path / "o")]) == 2


def test_high_bit_depth_and_float_images(tmp_path):
    """16-bit and float greyscale files keep their levels (Pillow's own RGBA conversion clips
    them to white or black); a float image with NaNs is refused, naming the file."""
    levels = np.linspace(0, 1, 40 * 30).reshape(30, 40)
    Image.fromarray((levels * 65535).round().astype(np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray(levels.astype(np.float32), "F").save(tmp_path / "f.tif")
    for name in ("g16.png", "f.tif"):
        rgba = U.read_rgba(tmp_path / name)
        assert rgba.shape == (30, 40, 4) and np.allclose(rgba[..., 3], 1)
        assert np.allclose(rgba[..., 0], levels, atol=1e-4) and np.allclose(rgba[..., 2], levels, atol=1e-4)
    bad = levels.astype(np.float32)
    bad[3, 4] = np.nan
    Image.fromarray(bad, "F").save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match="nan.tif holds NaN"):
        U.read_rgba(tmp_path / "nan.tif")
    Image.fromarray((levels * 5000).astype(np.float32), "F").save(tmp_path / "big.tif")
    with pytest.raises(ValueError, match="big.tif: values 0 to 5000 .* float image in"):
        U.read_rgba(tmp_path / "big.tif")
    # a 16-bit grey level marked transparent (tRNS) is the silhouette, as in 8-bit files
    grey = np.full((8, 8), 1000, np.uint16)
    grey[2:6, 2:6] = 40000
    Image.fromarray(grey).save(tmp_path / "t16.png", transparency=1000)
    assert np.array_equal(U.read_rgba(tmp_path / "t16.png")[..., 3], (grey != 1000).astype(np.float32))


def test_predict_cli_errors_name_the_problem(tiny_model, tmp_path, capsys):
    """Each bad argument ends in one error line (exit 2) that names the file or the option."""
    Image.fromarray(photo()).save(tmp_path / "p.jpg")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    (tmp_path / "empty.pt").write_bytes(b"")
    image, model, out = str(tmp_path / "p.jpg"), str(tiny_model), str(tmp_path / "o")
    cases = [
        (["--model", model, "--out", out, "--mask", str(tmp_path / "nomask.png")],
         f"mask {tmp_path / 'nomask.png'} does not exist"),
        (["--model", model, "--out", out, "--refine", "-1"], "--refine must be 0 or more"),
        (["--model", model, "--out", image], f"--out {image} is a file"),
        (["--model", str(tmp_path / "none.pt"), "--out", out], f"{tmp_path / 'none.pt'} does not exist"),
        (["--model", str(tmp_path / "text.pt"), "--out", out], "not a file torch.save wrote"),
        (["--model", str(tmp_path / "empty.pt"), "--out", out], f"cannot read checkpoint {tmp_path / 'empty.pt'}"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--model", model, "--out", out, "--device", "cuda"], "no CUDA device"))
    for extra, message in cases:
        assert cli(["predict", image] + extra) == 2, extra
        assert message in capsys.readouterr().err, extra
    assert (tmp_path / "p.jpg").is_file()  # --out naming it left it as it was

def test_user_image_crop(tmp_path):
    rgba = np.zeros((100, 200, 4), np.uint8)
    rgba[10:30, 150:190] = (255, 255, 255, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "x.png")
    img, mask = U.load_user_image(tmp_path / "x.png", image_size=64, fill=0.5)
    ys, xs = np.nonzero(mask.numpy() > 0.5)
    assert abs((xs.min() + xs.max() + 1) / 2 - 32) <= 1 and abs((ys.min() + ys.max() + 1) / 2 - 32) <= 1
    assert abs((xs.max() - xs.min() + 1) - 32) <= 2  # longest side fills half the image
    assert bool((img <= mask + 1e-6).all())  # premultiplied: black background


def test_an_image_framed_as_the_renderings_is_kept_and_others_are_cropped(tmp_path):
    def square(size, box, name):
        rgba = np.zeros((size, size, 4), np.uint8)
        y0, y1, x0, x1 = box
        rgba[y0:y1, x0:x1] = (255, 255, 255, 255)
        Image.fromarray(rgba, "RGBA").save(tmp_path / name)
        return rgba[..., 3] / 255.0

    # 64 px, the object 40 px (62%) tall and a little off centre, as a rendering: kept as it is
    framed = square(64, (14, 54, 20, 41), "framed.png")
    assert U.framed_like_renderings(framed)
    _, mask = U.load_user_image(tmp_path / "framed.png", image_size=64)
    np.testing.assert_allclose(mask.numpy(), framed, atol=1e-6)
    # a small object in a corner, or one touching an edge: cropped, its longest side 78%
    for name, box in (("small.png", (5, 20, 5, 15)), ("edge.png", (0, 50, 10, 40))):
        assert not U.framed_like_renderings(square(64, box, name) )
        _, mask = U.load_user_image(tmp_path / name, image_size=64)
        ys, xs = np.nonzero(mask.numpy() > 0.5)
        assert abs(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 - 0.78 * 64) <= 2, name
    # --framing keep / crop override the choice
    _, kept = U.load_user_image(tmp_path / "small.png", image_size=64, framing="keep")
    assert kept.numpy()[5:20, 5:15].min() > 0.99 and kept.numpy()[30:].max() == 0
    _, cropped = U.load_user_image(tmp_path / "framed.png", image_size=64, framing="crop")
    assert not np.allclose(cropped.numpy(), framed)
    with pytest.raises(ValueError, match="framing must be one of"):
        U.load_user_image(tmp_path / "framed.png", framing="fit")


def test_masks_phone_photos_and_inverted_masks(tmp_path):
    # a photo stored sideways with its EXIF orientation (6: turn 90 deg clockwise to show) reads
    # upright, so a mask drawn on the shown photo fits it
    stored = np.zeros((40, 60, 3), np.uint8)  # 60 wide as stored, 40 wide as shown
    stored[5:15, 10:50] = 200
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif)
    assert U.read_rgba(tmp_path / "phone.jpg").shape == (60, 40, 4)
    # a 0/1 mask (1 as the foreground, in 8 bits) is read as a mask, not as an empty one
    Image.fromarray(photo()).save(tmp_path / "p.jpg")
    ones = np.zeros((90, 120), np.uint8)
    ones[20:70, 30:80] = 1
    Image.fromarray(ones).save(tmp_path / "ones.png")
    _, mask = U.load_user_image(tmp_path / "p.jpg", tmp_path / "ones.png")
    assert mask.max() > 0.99
    # an inverted mask (background white) covers the image's border: a warning says so
    Image.fromarray(255 - 255 * ones).save(tmp_path / "inverted.png")
    with pytest.warns(UserWarning, match="inverted.png: the silhouette covers 100% of the image's"):
        U.load_user_image(tmp_path / "p.jpg", tmp_path / "inverted.png")
    # a cut-out cropped to its object touches all four edges, but is no inverted mask
    cut = np.zeros((40, 40, 4), np.uint8)
    cut[0:40, 18:22] = cut[18:22, 0:40] = (200, 40, 40, 255)  # a cross, edge to edge
    Image.fromarray(cut, "RGBA").save(tmp_path / "cut.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        U.load_user_image(tmp_path / "cut.png")


def test_predict_refuses_clashing_names_and_goes_past_an_unreadable_image(tiny_model, tmp_path,
                                                                          capsys):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(photo()).save(tmp_path / sub / "x.png")
    out = tmp_path / "out"
    assert cli(["predict", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"),
                "--model", str(tiny_model), "--out", str(out)]) == 2
    assert "would both write x.ply" in capsys.readouterr().err and not out.exists()
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("a.png", "c.png"):
        Image.fromarray(photo()).save(folder / name)
    (folder / "b.png").write_text("not an image")
    assert cli(["predict", str(folder), "--model", str(tiny_model), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "skipped: cannot read image" in err and "1 of 3 images could not be used" in err
    assert (out / "a.ply").is_file() and (out / "c.ply").is_file() and not (out / "b.ply").exists()


def test_refine_starts_from_the_mask_selected_view(tiny_dataset, tmp_path):
    from ssl3d.data.dataset import load_split
    from ssl3d.evaluation.evaluate import predict
    from tests.conftest import tiny_config

    cfg = tiny_config(steps=1, pose_hypotheses=4)
    train(cfg, tiny_dataset, "chair", tmp_path / "m")
    recon, pose, cfg = load_models(tmp_path / "m" / "cc.pt", torch.device("cpu"))
    views = load_split(tiny_dataset, "chair", "train", cfg.image_size, progress=False)
    x, m = views.images, views.masks
    choices = {select: predict(recon, pose, x, masks=m if select == "mask" else None, cfg=cfg)[2]
               for select in ("net", "mask")}
    assert not torch.allclose(choices["net"], choices["mask"])  # else the test could not tell
    for select, expected in choices.items():
        got = R.refine(recon, pose, x, m, cfg, R.RefineConfig(steps=1), pose_select=select)[2]
        torch.testing.assert_close(got, expected)


def test_refine_lowers_the_silhouette_loss(tiny_model, tiny_dataset):
    from ssl3d.data.dataset import load_split
    from ssl3d.ops.bce import bce_released

    recon, pose, cfg = load_models(tiny_model)
    views = load_split(tiny_dataset, "chair", "train", 32, progress=False)
    x, m = views.images[:2], views.masks[:2]
    from ssl3d.ops import project_silhouette

    def sil_loss(xyz, vp):
        return float(bce_released(project_silhouette(xyz, vp, 32), m).mean())

    with torch.no_grad():
        xyz0, _ = recon(x)
        vp0 = pose(x)
    xyz1, _, vp1 = R.refine(recon, pose, x, m, cfg, R.RefineConfig(steps=30, lr=1e-3, w_keep=1.0))
    assert torch.equal(vp0, vp1)
    assert sil_loss(xyz1, vp1) < sil_loss(xyz0, vp0)


def test_refine_projects_with_the_models_silhouette_form(tiny_model, tiny_dataset, monkeypatch):
    """Refinement optimises the same silhouette the model was trained on."""
    import dataclasses

    from ssl3d.data.dataset import load_split

    recon, pose, cfg = load_models(tiny_model)
    views = load_split(tiny_dataset, "chair", "train", 32, progress=False)
    seen = []
    real = R.project_cloud

    def spy(*args, **kwargs):
        seen.append(kwargs.get("silhouette_form"))
        return real(*args, **kwargs)

    monkeypatch.setattr(R, "project_cloud", spy)
    for form in ("max", "tanh_sum"):
        seen.clear()
        R.refine(recon, pose, views.images[:1], views.masks[:1],
                 dataclasses.replace(cfg, silhouette_form=form), R.RefineConfig(steps=2))
        assert seen == [form, form]


def test_pictures_and_viewer(tmp_path):
    g = np.random.default_rng(0)
    xyz = g.uniform(-0.3, 0.3, (500, 3)).astype(np.float32)
    rgb = np.tile([[1.0, 0.0, 0.0]], (500, 1))
    img = V.render_points(xyz, rgb, (0.3, 0.2), 128)
    assert img.shape == (128, 128, 3)
    assert (img[64, 64] != 255).any() and (img[0, 0] == 255).all()  # object centred, white bg
    assert img[64, 64, 0] > img[64, 64, 1]  # red
    html = V.write_viewer(tmp_path / "v.html", [("a", xyz, rgb)]).read_text()
    for fetch in ("http://", "https://", "src=", "import(", "fetch("):
        assert fetch not in html
    assert '"name":"a"' in html
    V.turntable(xyz, rgb, tmp_path / "t.gif", frames=4, size=64)
    assert Image.open(tmp_path / "t.gif").n_frames == 4
    V.reconstruction_grid(np.zeros((2, 3, 32, 32)), xyz[None].repeat(2, 0), rgb[None].repeat(2, 0),
                          np.zeros((2, 2)), xyz[None].repeat(2, 0), tmp_path / "g.png", cell=64)
    assert Image.open(tmp_path / "g.png").size[0] > 5 * 64


def test_shipped_chair_model_predicts_without_model_flag(tmp_path, capsys):
    """The pretrained chair model inside the package loads safely (weights only) and
    ``ssl3d predict`` uses it when no --model is given."""
    from ssl3d.cli.predict import default_model
    from ssl3d.training.checkpoint import load_models

    path = default_model()
    assert path.stat().st_size < 10e6
    recon, pose, cfg = load_models(path)
    assert cfg.image_size == 64 and cfg.n_points == 1024
    img = np.zeros((96, 96, 4), np.uint8)
    img[20:80, 30:66] = (150, 90, 40, 255)  # a brown box on a transparent background
    Image.fromarray(img, "RGBA").save(tmp_path / "box.png")
    assert cli(["predict", str(tmp_path / "box.png"), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "box.ply").is_file()
    assert "azimuth" in capsys.readouterr().out


def test_colour_from_image_paints_the_cloud_with_the_photos_colours(tmp_path):
    """With --colour-from-image the shipped model's points that land on the object take its
    colour (a uniform blue box here), which the colour branch alone does not give them."""
    img = np.zeros((96, 96, 4), np.uint8)
    img[20:80, 30:66] = (40, 90, 200, 255)
    Image.fromarray(img, "RGBA").save(tmp_path / "box.png")

    def colours(*flags):
        out = tmp_path / ("out" + "".join(flags))
        assert cli(["predict", str(tmp_path / "box.png"), "--out", str(out), *flags]) == 0
        rows = (out / "box.ply").read_text().splitlines()
        body = rows[rows.index("end_header") + 1:]
        return np.array([[int(v) for v in r.split()[3:]] for r in body])

    near = lambda c: (np.abs(c - np.array([40, 90, 200])).max(1) <= 12).mean()  # noqa: E731
    painted, own = near(colours("--colour-from-image")), near(colours())
    assert painted > 0.5 and painted > own + 0.3
