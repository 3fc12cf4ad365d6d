import json
import shutil

import pytest

from ssl3d.cli.main import main as cli
from ssl3d.evaluation.compare import compare_runs, comparison_table
from ssl3d.training.checkpoint import find_checkpoint
from ssl3d.training.trainer import train
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def two_runs(tiny_dataset, tmp_path_factory):
    """Two seeds of one tiny recipe, each trained for 2 steps and evaluated (no EMD)."""
    root = tmp_path_factory.mktemp("compare")
    runs = []
    for seed in (0, 1):
        run = root / f"seed{seed}"
        train(tiny_config(steps=2, seed=seed), tiny_dataset, "chair", run)
        assert cli(["evaluate", str(run), "--no-emd", "--quiet"]) == 0
        runs.append(run)
    return runs


def entry(run, key="test"):
    return json.loads((run / "metrics.json").read_text())["chair"][key]


def copy_run(run, dst, rescored=True, **label_free):
    """A copy of a scored run. ``rescored``: its metrics.json entry names the copy's checkpoint,
    as if the copy had been evaluated, with ``label_free`` values overriding the stored ones."""
    shutil.copytree(run, dst)
    if rescored:
        path = dst / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["chair"]["test"]["checkpoint"] = str(find_checkpoint(dst))
        metrics["chair"]["test"]["label_free"].update(label_free)
        path.write_text(json.dumps(metrics))
    return dst


def test_compare_orders_runs_by_the_stored_label_free_iou(two_runs, capsys):
    scores, differ = compare_runs(two_runs)
    assert differ == []  # seeds of one recipe
    expected = sorted(two_runs, key=lambda r: entry(r)["label_free"]["val_silhouette_iou"], reverse=True)
    assert [s.run for s in scores] == [str(r) for r in expected]
    assert [s.iou for s in scores] == [entry(r)["label_free"]["val_silhouette_iou"] for r in expected]
    top = entry(expected[0])
    assert scores[0].chamfer == top["chamfer_x1000"] and scores[0].emd is None
    assert scores[0].steps == top["steps"] == 2
    table = comparison_table(scores)
    assert f"| {expected[0]} (pick) |" in table and f"{100 * top['pose_acc_30']:.1f}%" in table
    assert table.count("(pick)") == 1
    assert cli(["compare", *map(str, two_runs)]) == 0
    out = capsys.readouterr().out
    assert f"pick: {expected[0]} " in out and "note:" not in out


def test_the_pick_follows_the_score_not_the_order(two_runs, tmp_path):
    low = copy_run(two_runs[0], tmp_path / "low", val_silhouette_iou=0.0)
    high = copy_run(two_runs[1], tmp_path / "high", val_silhouette_iou=1.0)
    for order in ([low, high], [high, low], [low, two_runs[0], high]):
        scores, _ = compare_runs(order)
        assert scores[0].run == str(high) and scores[-1].run == str(low)


def test_compare_refuses_runs_it_cannot_read(two_runs, tmp_path):
    with pytest.raises(ValueError, match="at least two runs"):
        compare_runs(two_runs[:1])
    with pytest.raises(ValueError, match="are the same run"):
        compare_runs([two_runs[0], two_runs[0] / "cc.pt"])
    unscored = copy_run(two_runs[1], tmp_path / "unscored")
    (unscored / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match="unscored.*ssl3d evaluate"):
        compare_runs([two_runs[0], unscored])
    with pytest.raises(ValueError, match="no entry chair/val_other"):
        compare_runs(two_runs, key="val_other")
    for key in ("test_refine2", "test_maskpose"):  # never has a label-free score: refused first
        with pytest.raises(ValueError, match=f"key {key}: compare ranks runs by the label-free"):
            compare_runs(two_runs, key=key)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copyfile(two_runs[0] / "cc.pt", unfinished / "cc_last.pt")
    with pytest.raises(FileNotFoundError, match="holds cc_last.pt, an unfinished run: train it on "
                                                "with --resume"):
        find_checkpoint(unfinished)
    # A copied run's metrics still name the original's checkpoint: the scores of another file.
    with pytest.raises(ValueError, match="evaluate it again"):
        compare_runs([two_runs[0], copy_run(two_runs[1], tmp_path / "copied", rescored=False)])
    # Scores of an earlier step of this file (training resumed since): stale.
    resumed = copy_run(two_runs[1], tmp_path / "resumed")
    metrics = json.loads((resumed / "metrics.json").read_text())
    metrics["chair"]["test"]["steps"] = 1
    (resumed / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match="at step 1, not .* at step 2; evaluate it again"):
        compare_runs([two_runs[0], resumed])


def test_compare_needs_a_label_free_score(two_runs):
    for run in two_runs:  # refinement fits the very masks the score reads: no score stored
        assert cli(["evaluate", str(run), "--no-emd", "--quiet", "--refine", "1"]) == 0
        assert entry(run, "test_refine1")["label_free"] == {}
    with pytest.raises(ValueError, match="which an evaluation with --refine or --pose-select mask "
                                         "does not make"):
        compare_runs(two_runs, key="test_refine1")
    # an entry without the score under another key (one scored before the score existed)
    for run in two_runs:
        metrics = json.loads((run / "metrics.json").read_text())
        metrics["chair"]["test_old"] = {**metrics["chair"]["test"], "label_free": {}}
        (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match="no label-free score"):
        compare_runs(two_runs, key="test_old")


@pytest.mark.parametrize("field,value", [("sigma2", 0.8), ("n_points", 32)])
def test_compare_needs_one_projection(two_runs, tiny_dataset, tmp_path, field, value):
    other = tmp_path / field
    train(tiny_config(steps=2, **{field: value}), tiny_dataset, "chair", other)
    assert cli(["evaluate", str(other), "--no-emd", "--quiet"]) == 0
    default = getattr(tiny_config(), field)
    with pytest.raises(ValueError, match=f"{field} = {value} but .* has {default}"):
        compare_runs([two_runs[0], other])


def test_compare_needs_one_data_set(two_runs, tmp_path):
    moved = copy_run(two_runs[1], tmp_path / "moved")
    metrics = json.loads((moved / "metrics.json").read_text())
    metrics["chair"]["test"]["data"] = str(tmp_path / "elsewhere")
    (moved / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match="same validation images"):
        compare_runs([two_runs[0], moved])


def test_compare_notes_runs_of_different_recipes(two_runs, tiny_dataset, tmp_path, capsys):
    faster = tmp_path / "faster"
    train(tiny_config(steps=2, lr=3e-3), tiny_dataset, "chair", faster)
    assert cli(["evaluate", str(faster), "--no-emd", "--quiet"]) == 0
    scores, differ = compare_runs([two_runs[0], faster])
    assert differ == ["lr"] and len(scores) == 2
    capsys.readouterr()
    assert cli(["compare", str(two_runs[0]), str(faster)]) == 0
    assert "note: the runs differ in lr, not only in the seed" in capsys.readouterr().out
    # A seed that --stop-on-collapse stopped has nothing to compare: left out, with its note.
    lost = tmp_path / "lost"
    lost.mkdir()
    (lost / "stopped_cc.txt").write_text("stopped at step 2000 of 6000 on a pose collapse\n")
    capsys.readouterr()
    assert cli(["compare", str(two_runs[0]), str(lost), str(faster)]) == 0
    out = capsys.readouterr().out
    assert f"left out {lost}: stopped at step 2000 of 6000" in out and "(pick)" in out
    unfinished = tmp_path / "unfinished"  # no note: an error, not left out
    unfinished.mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        compare_runs([two_runs[0], unfinished])
    # Stopping on a collapse is how a seed sweep runs, not part of the recipe.
    stopping = tmp_path / "stopping"
    train(tiny_config(steps=2, stop_on_collapse=True), tiny_dataset, "chair", stopping)
    assert cli(["evaluate", str(stopping), "--no-emd", "--quiet"]) == 0
    assert compare_runs([two_runs[0], stopping])[1] == []
