"""The demo end to end with tiny settings: every file the report links exists."""

import re

import pytest

from ssl3d.cli.main import main as cli
from ssl3d.training.checkpoint import load_checkpoint


@pytest.mark.parametrize("scratch", [False, True])
def test_demo_tiny(tmp_path, scratch):
    out = tmp_path / "demo"
    flags = ["--count", "12", "--cc-steps", "2", "--nn-steps", "2", "--batch-size", "2"]
    flags += ["--from-scratch"] if scratch else []
    assert cli(["demo", "--out", str(out), *flags]) == 0
    # By default stage cc fine-tunes the shipped model (and keeps its architecture).
    init = load_checkpoint(out / "run" / "cc.pt")["config"]["init"]
    assert (init == "") if scratch else init.endswith("chair.pt")
    report = (out / "report.html").read_text()
    links = re.findall(r'(?:src|href)="([^"]+)"', report)
    assert {"reconstructions.png", "reconstructions_image_colours.png", "turntable.gif",
            "losses.png", "viewer.html"} <= set(links)
    for link in links:
        assert (out / link).is_file(), link
    # The clouds coloured from the input images look different from the colour branch's.
    assert (out / "reconstructions.png").read_bytes() != \
        (out / "reconstructions_image_colours.png").read_bytes()
    assert "Chamfer" in report and "mean shape" in report
    # Fine-tuning is scored against the model it started from, on the same test chairs.
    assert ("shipped model, before fine-tuning" in report) != scratch
    # Everything is kept: a second run resumes instead of redoing the work.
    assert cli(["demo", "--out", str(out), *flags]) == 0


def test_a_demo_with_other_settings_is_refused_where_one_was_made(tmp_path, capsys):
    from ssl3d.cli.demo import check_settings

    out = tmp_path / "demo"
    settings = {"count": 12, "cc_steps": 2, "nn_steps": 2, "batch_size": 2, "from_scratch": False}
    check_settings(out, settings)  # a fresh folder: recorded
    check_settings(out, settings)  # the same demo again (resumed): fine
    assert cli(["demo", "--out", str(out), "--count", "12", "--cc-steps", "2", "--nn-steps", "2",
                "--batch-size", "2", "--from-scratch"]) == 2
    assert "holds a demo made with other settings (from_scratch False -> True)" in \
        capsys.readouterr().err
    older = tmp_path / "older"  # a demo an earlier version made: no record, so a warning
    (older / "run").mkdir(parents=True)
    with pytest.warns(UserWarning, match="no record of its settings"):
        check_settings(older, settings)
    check_settings(older, settings)  # recorded now


def test_demo_refuses_too_few_chairs_before_any_work(tmp_path, capsys):
    assert cli(["demo", "--out", str(tmp_path / "d"), "--count", "9"]) == 2
    assert "--count must be at least 10" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
