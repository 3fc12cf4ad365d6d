"""The demo end to end with tiny settings: every file the report links exists."""

import re

from ssl3d.cli.main import main as cli


def test_demo_tiny(tmp_path):
    out = tmp_path / "demo"
    assert cli(["demo", "--out", str(out), "--count", "12", "--cc-steps", "2", "--nn-steps", "2",
                "--batch-size", "2"]) == 0
    report = (out / "report.html").read_text()
    links = re.findall(r'(?:src|href)="([^"]+)"', report)
    assert {"reconstructions.png", "turntable.gif", "losses.png", "viewer.html"} <= set(links)
    for link in links:
        assert (out / link).is_file(), link
    assert "Chamfer" in report and "mean shape" in report
    # Everything is kept: a second run resumes instead of redoing the work.
    assert cli(["demo", "--out", str(out), "--count", "12", "--cc-steps", "2", "--nn-steps", "2",
                "--batch-size", "2"]) == 0
