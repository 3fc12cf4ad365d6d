import json
import math
import shutil

import numpy as np
import pytest
import torch

from ssl3d import camera
from ssl3d.cli.main import main as cli
from ssl3d.evaluation import metrics as M
from ssl3d.training.trainer import train


def test_alignment_recovers_a_rotated_copy():
    g = torch.Generator().manual_seed(0)
    # Asymmetric clouds: boxes of random proportions with a bump, so one rotation fits best.
    base = torch.rand(20, 256, 3, generator=g) * torch.tensor([1.0, 0.5, 0.25])
    base[:, :40, 1] += 0.6
    rot = camera.rotation_from_euler(torch.tensor(1.1), torch.tensor(-0.4), torch.tensor(0.3))
    pred = base @ rot  # = R^T applied: the fit must find R
    align = M.fit_global_rotation(pred, base, steps=300, lr=1e-2, restarts=3)
    scores = M.cloud_metrics(pred, base, align.matrix(), emd=True)
    assert scores["chamfer"].mean() < 1e-4 and scores["emd"].mean() < 1e-4
    unaligned = M.cloud_metrics(pred, base, None, emd=False)
    assert unaligned["chamfer"].mean() > 100 * scores["chamfer"].mean()


def test_alignment_early_stop_and_coarse_subset_find_the_same_rotation(monkeypatch):
    """Stopping once the Chamfer stops falling (tol) and scoring the coarse grid on a subset
    give the rotation of the full-length fit, in fewer Chamfer evaluations."""
    g = torch.Generator().manual_seed(1)
    base = torch.rand(12, 200, 3, generator=g) * torch.tensor([1.0, 0.5, 0.25])
    base[:, :30, 1] += 0.6
    rot = camera.rotation_from_euler(torch.tensor(-2.0), torch.tensor(0.3), torch.tensor(0.1))
    pred = base @ rot + 0.01 * torch.randn(base.shape, generator=g)
    calls = []
    chamfer = M._aligned_chamfer
    monkeypatch.setattr(M, "_aligned_chamfer", lambda *a: calls.append(1) or chamfer(*a))
    full = M.fit_global_rotation(pred, base, steps=300, lr=1e-2, restarts=3)
    n_full, calls[:] = len(calls), []
    fast = M.fit_global_rotation(pred, base, steps=300, lr=1e-2, restarts=3, tol=1e-4,
                                 coarse_clouds=4)
    assert len(calls) < n_full - 100
    assert torch.allclose(fast.matrix(), full.matrix(), atol=0.01)
    assert abs(fast.val_chamfer - full.val_chamfer) < 0.01 * full.val_chamfer


def test_pose_errors_in_degrees_after_rotation():
    views = torch.tensor([[0.3, 0.2], [-2.0, 0.5]])
    assert np.allclose(M.pose_errors(views, views), 0, atol=1e-2)
    off = views + torch.tensor([[math.radians(40), 0.0], [0.0, math.radians(10)]])
    err = M.pose_errors(off, views)
    assert err[0] > 30 and abs(err[1] - 10) < 0.1
    s = M.summarise(np.array([0.001, 0.003]), np.array([0.002, 0.002]), err)
    assert s["pose_acc_30"] == 0.5 and s["chamfer_x1000"] == 2.0 and s["n"] == 2


def test_mean_shape_beats_a_random_training_cloud():
    g = torch.Generator().manual_seed(1)
    clouds = torch.rand(40, 200, 3, generator=g) * torch.tensor([1.0, 0.6, 0.3])
    mean = M.mean_shape(clouds, n_points=200, steps=100)
    score_mean = M.cloud_metrics(mean.expand(40, -1, -1), clouds, emd=False)["chamfer"].mean()
    score_one = M.cloud_metrics(clouds[3].expand(40, -1, -1), clouds, emd=False)["chamfer"].mean()
    assert score_mean < score_one


def mean_shape_reference(train_clouds, n_points, steps, max_clouds, seed=0):
    """The full-batch fit written out plainly: the Chamfer medoid of the first 32 drawn clouds
    against all drawn clouds, jittered, then Adam on the mean Chamfer to all of them."""
    from ssl3d.ops import chamfer_distance, normalize_unit_box

    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(train_clouds), generator=g)[:max_clouds]
    clouds = normalize_unit_box(train_clouds[pick].float())
    costs = []
    for c in clouds[:32]:
        pairs = [chamfer_distance(c[None], clouds[j][None]) for j in range(len(clouds))]
        costs.append(sum(pairs) / len(clouds))
    start = clouds[int(torch.stack(costs).argmin())]
    idx = torch.randint(start.shape[0], (n_points,), generator=g)
    pts = (start[idx] + 1e-3 * torch.randn(n_points, 3, generator=g)).requires_grad_(True)
    opt = torch.optim.Adam([pts], lr=2e-3)
    for _ in range(steps):
        opt.zero_grad()
        chamfer_distance(pts.expand(len(clouds), -1, -1), clouds).backward()
        opt.step()
    return pts.detach()


def test_mean_shape_full_batch_matches_the_plain_reference():
    """batch 0 (the GPU's setting) is the plain full-batch fit, draw for draw."""
    g = torch.Generator().manual_seed(4)
    clouds = torch.rand(12, 50, 3, generator=g)
    got = M.mean_shape(clouds, n_points=40, steps=5, max_clouds=10)
    torch.testing.assert_close(got, mean_shape_reference(clouds, 40, 5, 10), rtol=1e-5, atol=1e-6)


def test_mean_shape_from_random_batches_fits_as_well_as_from_all():
    """Each step on a random 8 of 40 clouds (the CPU setting's form) reaches about the full
    fit's mean Chamfer, and both beat a single training cloud; bad settings are refused."""
    g = torch.Generator().manual_seed(2)
    clouds = torch.rand(40, 200, 3, generator=g) * torch.tensor([1.0, 0.6, 0.3])
    clouds[20:] = clouds[20:, :, [2, 1, 0]]  # two kinds of box: long in x, long in z
    score = lambda m: M.cloud_metrics(m.expand(40, -1, -1), clouds, emd=False)["chamfer"].mean()  # noqa: E731
    full = score(M.mean_shape(clouds, n_points=200, steps=150))
    batched = score(M.mean_shape(clouds, n_points=200, steps=150, batch=8))
    assert batched < 1.1 * full
    for one in (clouds[3], clouds[30]):
        assert full < score(one) and batched < score(one)
    with pytest.raises(ValueError, match="batch >= 0"):
        M.mean_shape(clouds, batch=-1)


def test_evaluate_cli_writes_metrics(tiny_dataset, tmp_path, make_config):
    train(make_config(steps=2), tiny_dataset, "chair", tmp_path / "run")
    assert cli(["evaluate", str(tmp_path / "run"), "--workers", "1"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    entry = metrics["chair"]["test"]
    for key in ("chamfer_x1000", "emd_x1000", "pose_acc_30", "pose_median_deg", "n"):
        assert entry[key] is not None and entry["mean_shape"][key if key.startswith(("ch", "em", "n")) else "n"] is not None
    assert entry["n"] == 1 and "| chair | test |" in (tmp_path / "run" / "results.md").read_text()
    assert (tmp_path / "run" / "predictions_test.npz").is_file()
    assert 0 <= entry["label_free"]["val_silhouette_iou"] <= 1
    assert entry["label_free"]["val_affinity_fwd"] >= 0
    # an unfinished run's state beside the final cc.pt keeps its scores apart from cc.pt's
    shutil.copyfile(tmp_path / "run" / "cc.pt", tmp_path / "run" / "cc_last.pt")
    assert cli(["evaluate", str(tmp_path / "run" / "cc_last.pt"), "--workers", "1", "--no-emd",
                "--quiet"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["chair"]["test"] == entry and "cc_last_test" in metrics["chair"]


def test_mean_shape_baseline_is_cached_per_data_set(tmp_path, monkeypatch, capsys):
    from ssl3d.data.dataset import load_split, resolve_paths
    from ssl3d.evaluation import evaluate as E
    from tests.conftest import write_tiny_dataset

    # Its own data: the shared tiny set may already hold caches other tests' evaluations wrote.
    tiny_dataset = write_tiny_dataset(tmp_path / "tiny")

    test = load_split(tiny_dataset, "chair", "test", 32, progress=False)
    first = E.mean_shape_baseline(tiny_dataset, "chair", test.clouds, torch.device("cpu"),
                                  workers=1, progress=True)
    assert "fitting the mean-shape baseline" in capsys.readouterr().err  # the slow part says so
    cached = list(resolve_paths(tiny_dataset, "chair").cache_dir.glob("mean_shape_chair_*.npz"))
    assert len(cached) == 1

    def fail(*_a, **_k):
        raise AssertionError("the cached baseline should have been read")

    monkeypatch.setattr(E.M, "mean_shape", fail)
    again = E.mean_shape_baseline(tiny_dataset, "chair", test.clouds, torch.device("cpu"),
                                  workers=1, progress=False)
    assert np.array_equal(first["chamfer"], again["chamfer"])
    assert np.array_equal(first["emd"], again["emd"])
    # Different test clouds are a different baseline: recomputed, not read back.
    with pytest.raises(AssertionError, match="cached baseline"):
        E.mean_shape_baseline(tiny_dataset, "chair", test.clouds + 0.1, torch.device("cpu"),
                              workers=1, progress=False)


def test_select_by_reprojection_picks_the_best_explaining_view():
    """Reference: project the cloud at each candidate alone and score image error + mask BCE."""
    from ssl3d.ops import project_cloud
    from ssl3d.ops.bce import bce_intended
    from ssl3d.training.config import TrainConfig
    from ssl3d.training.losses import select_by_reprojection

    cfg = TrainConfig(image_size=32, bce_form="intended")
    g = torch.Generator().manual_seed(3)
    xyz = torch.rand(2, 300, 3, generator=g) * torch.tensor([0.6, 0.3, 0.15]) - 0.2
    rgb = torch.rand(2, 300, 3, generator=g)
    truth = torch.tensor([[0.4, 0.2], [-2.0, 0.1]])
    image, mask = project_cloud(xyz, rgb, truth, 32, sigma2=cfg.pixel_sigma2())
    cands = torch.stack([truth + 1.3, truth, truth - 0.9], 1)  # (2, 3, 2); the truth is 1
    chosen = select_by_reprojection(xyz, rgb, cands, image, mask, cfg)
    for b in range(2):
        scores = []
        for j in range(3):
            img, sil = project_cloud(xyz[b:b + 1], rgb[b:b + 1], cands[b, j:j + 1], 32,
                                     sigma2=cfg.pixel_sigma2())
            err = ((image[b:b + 1] - img) ** 2).sum(1).mean()
            scores.append(float(cfg.w_pose_image * err + cfg.w_pose_mask * bce_intended(sil, mask[b:b + 1])))
        assert torch.equal(chosen[b], cands[b, int(np.argmin(scores))])
        assert torch.equal(chosen[b], truth[b])


def test_silhouette_fit_matches_a_per_image_reference():
    """Per image, alone: project the cloud at its view, threshold silhouette and mask at 0.5,
    intersection over union; the forward affinity as training computes it. A cloud seen from the
    view its mask was drawn from fits it exactly; from another view it does not."""
    from ssl3d.ops import project_cloud
    from ssl3d.evaluation.evaluate import silhouette_fit
    from ssl3d.training.config import TrainConfig
    from ssl3d.training.losses import silhouette_losses

    cfg = TrainConfig(image_size=32)
    g = torch.Generator().manual_seed(5)
    xyz = torch.rand(3, 300, 3, generator=g) * torch.tensor([0.6, 0.3, 0.15]) - 0.2
    rgb = torch.rand(3, 300, 3, generator=g)
    drawn = torch.tensor([[0.4, 0.2], [-2.0, 0.1], [1.0, 0.3]])
    _, sil = project_cloud(xyz, rgb, drawn, 32, sigma2=cfg.pixel_sigma2())
    masks = (sil > 0.5).float()
    seen = drawn + torch.tensor([[0.0, 0.0], [1.2, 0.0], [0.0, 0.0]])  # image 1 from elsewhere
    fit = silhouette_fit(xyz, rgb, seen, masks, cfg, batch_size=2)
    for b in range(3):
        _, s = project_cloud(xyz[b:b + 1], rgb[b:b + 1], seen[b:b + 1], 32, sigma2=cfg.pixel_sigma2())
        a, m = s[0] > 0.5, masks[b] > 0.5
        assert float(fit["iou"][b]) == pytest.approx(float((a & m).sum()) / float((a | m).sum()))
        ref_fwd = silhouette_losses(s, masks[b:b + 1], cfg)[1][0]
        assert float(fit["affinity_fwd"][b]) == pytest.approx(float(ref_fwd), rel=1e-5, abs=1e-7)
    assert float(fit["iou"][0]) == 1.0 and float(fit["iou"][2]) == 1.0 and float(fit["iou"][1]) < 0.9
    with pytest.raises(ValueError, match="one row per image"):
        silhouette_fit(xyz, rgb, seen[:2], masks, cfg)


def test_evaluate_with_mask_selected_pose(tiny_dataset, tmp_path, make_config):
    train(make_config(steps=2, pose_hypotheses=3), tiny_dataset, "chair", tmp_path / "run")
    assert cli(["evaluate", str(tmp_path / "run"), "--workers", "1", "--no-emd",
                "--pose-select", "mask"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["chair"]["test_maskpose"]["method"].endswith("mask-selected pose")
    # Poses picked by the masks would flatter the label-free score that reads those masks.
    assert metrics["chair"]["test_maskpose"]["label_free"] == {}


def test_evaluate_no_progress_hides_the_bars(tiny_dataset, tmp_path, make_config, capsys):
    train(make_config(steps=2), tiny_dataset, "chair", tmp_path / "run")
    for flags, bars in (([], True), (["--no-progress"], False)):
        shutil.rmtree(tiny_dataset / "cache", ignore_errors=True)  # so the splits decode again
        capsys.readouterr()
        assert cli(["evaluate", str(tmp_path / "run"), "--no-emd", *flags]) == 0
        assert ("decoding chair/test" in capsys.readouterr().err) == bars


def test_evaluate_another_data_set_with_a_stored_rotation(tiny_dataset, tmp_path, make_config,
                                                          capsys):
    run = tmp_path / "run"
    train(make_config(steps=2), tiny_dataset, "chair", run)
    assert cli(["evaluate", str(run), "--no-emd", "--rotation-from", "test"]) != 0
    assert "no entry chair/test" in capsys.readouterr().err
    assert cli(["evaluate", str(run), "--workers", "1", "--no-emd"]) == 0
    assert cli(["evaluate", str(run), "--no-emd", "--data", str(tiny_dataset), "--tag", "other",
                "--rotation-from", "test"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())["chair"]
    assert set(metrics) == {"test", "other_test"}
    assert metrics["other_test"]["alignment_from"] == "test"
    for k in ("azimuth_deg", "elevation_deg", "tilt_deg"):
        assert metrics["other_test"]["alignment"][k] == pytest.approx(metrics["test"]["alignment"][k])
    # Same data, same rotation: the same scores, written beside the first ones.
    assert metrics["other_test"]["chamfer_x1000"] == pytest.approx(metrics["test"]["chamfer_x1000"])
    assert (run / "predictions_other_test.npz").is_file() and (run / "predictions_test.npz").is_file()
    assert "| chair | other_test |" in (run / "results.md").read_text()


def test_alignment_round_trips_through_its_dict():
    a = M.Alignment(0.3, -0.2, 1.1, 0.004)
    b = M.Alignment.from_dict(a.as_dict())
    assert torch.allclose(a.matrix(), b.matrix(), atol=1e-6) and b.val_chamfer == pytest.approx(0.004)


def test_rotation_from_must_be_this_checkpoints_and_other_data_gets_a_tag(
        tiny_dataset, tmp_path, make_config, capsys):
    import shutil

    run = tmp_path / "run"
    train(make_config(steps=2), tiny_dataset, "chair", run)
    assert cli(["evaluate", str(run), "--workers", "1", "--no-emd"]) == 0  # cc.pt -> "test"
    train(make_config(stage="nn", steps=2), tiny_dataset, "chair", run)
    # nn.pt is evaluated now: the stored rotation was fitted for cc.pt.
    assert cli(["evaluate", str(run), "--no-emd", "--rotation-from", "test"]) != 0
    assert "was fitted for" in capsys.readouterr().err
    # Another data folder without --tag goes under that folder's name, not over "test".
    copy = tmp_path / "copied"
    shutil.copytree(tiny_dataset, copy)
    assert cli(["evaluate", str(run / "cc.pt"), "--no-emd", "--data", str(copy),
                "--rotation-from", "test"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())["chair"]
    assert set(metrics) == {"test", "copied_test"}
    assert metrics["test"]["checkpoint"].endswith("cc.pt")


def test_mean_shape_says_when_it_was_fitted_to_the_scored_models(tiny_dataset, tmp_path,
                                                                  make_config, capsys):
    """A set whose splits all list the same models (as benchmarks/make_real.sh makes them) would
    give a mean shape fitted to the very clouds it is scored on; --mean-data fits it to the
    run's training data instead, and the table marks the first."""
    run = tmp_path / "run"
    train(make_config(steps=2), tiny_dataset, "chair", run)
    assert cli(["evaluate", str(run), "--workers", "1", "--no-emd"]) == 0
    same = tmp_path / "same"
    shutil.copytree(tiny_dataset, same)
    shutil.rmtree(same / "cache", ignore_errors=True)
    splits = same / "splits"
    test_lines = (splits / "chair_test.txt").read_text()
    for s in ("train", "val"):
        (splits / f"chair_{s}.txt").write_text(test_lines)
    n_test = len(test_lines.split())
    flags = ["--no-emd", "--data", str(same), "--rotation-from", "test"]
    assert cli(["evaluate", str(run), *flags, "--tag", "own", "--mean-data", str(same)]) == 0
    assert cli(["evaluate", str(run), *flags, "--tag", "trained", "--mean-data", str(tiny_dataset)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())["chair"]
    own, trained = metrics["own_test"]["mean_shape"], metrics["trained_test"]["mean_shape"]
    assert own["scored_models_in_it"] == n_test and trained["scored_models_in_it"] == 0
    assert trained["fitted_on"] == str(tiny_dataset)
    # The same training clouds and the same test clouds as the run's own evaluation.
    assert trained["chamfer_x1000"] == pytest.approx(metrics["test"]["mean_shape"]["chamfer_x1000"])
    assert own["chamfer_x1000"] != pytest.approx(trained["chamfer_x1000"])
    table = (run / "results.md").read_text()
    assert f"| chair | own_test | mean shape (fitted to {n_test} of these {n_test}) |" in table
    assert "| chair | trained_test | mean shape |" in table
    capsys.readouterr()
    assert cli(["evaluate", str(run), *flags, "--mean-data", str(tmp_path / "nowhere")]) != 0
    assert "--mean-data" in capsys.readouterr().err
