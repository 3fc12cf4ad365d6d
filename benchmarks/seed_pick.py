"""Is training several seeds and keeping the one with the best label-free score worth it? Reads the
run summaries in benchmarks/results/ of the plain preset (header flags exactly "--steps 4500
[--seed S] -- nn --steps 1500"), scored on N test models, with the label-free validation IoU that
``ssl3d evaluate`` prints, and gives, over every set of K of them, the mean test Chamfer of the run
the IoU picks, against a single run's mean and the best of the K in hindsight (collapses and
failed runs included: a user meets them too), then the same over the healthy runs alone (pose
accuracy of 60% or more): how much of the gain is setting the failures apart? --flags takes the
runs of another recipe instead: those whose stage-CC flags are exactly "--steps 4500 FLAGS
[--seed S]" (write --flags="..." when FLAGS is one word, as argparse reads a lone "--x" as an
option).

    python benchmarks/seed_pick.py [--category chair] [--n 600] [--k 2 3] [--flags="..."]
"""

import argparse
import itertools
import re
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
from pose_vs_chamfer import RESULTS, nn_row  # noqa: E402


def header(flags: str = "", cc_alone: bool = False) -> re.Pattern:
    """A summary's first line for the preset with these stage-CC flags (none: the plain preset),
    trained as stage CC then NN, or with ``cc_alone`` as stage CC alone for 6,000 steps."""
    flags = " ".join(flags.split())
    extra = f" {re.escape(flags)}" if flags else ""
    seed = r"( --seed \d+)?"
    tail = rf"--steps 6000{extra}{seed}( --)?" if cc_alone else rf"--steps 4500{extra}{seed} -- nn --steps 1500"
    return re.compile(rf"^== (\S+) \((\w+)\) {tail}$")


PLAIN = header()
IOU = re.compile(r"^label-free fit on the validation split .*silhouette IoU ([0-9.]+)", re.M)


def plain_runs(category: str, n: int, pattern: re.Pattern = PLAIN,
               method: str = "ssl3d NN") -> list[tuple[str, float, float, float]]:
    """(file name, test Chamfer, pose accuracy %, validation IoU) of each summary whose first line
    matches ``pattern`` (the plain preset's by default), scored on its last ``method`` row."""
    runs = []
    for path in sorted(RESULTS.glob("*.txt")):
        text = path.read_text(errors="replace")
        head = pattern.match(text.split("\n", 1)[0])
        iou = IOU.search(text)
        row = nn_row(path, category, n, method)
        if head and head.group(2) == category and iou and row:
            runs.append((path.name, row[0], row[1], float(iou.group(1))))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--category", default="chair")
    ap.add_argument("--n", type=int, default=600, help="test models the runs were scored on")
    ap.add_argument("--k", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--flags", default="", help="the recipe's stage-CC flags after --steps 4500 "
                    "(--steps 6000 with --cc-alone; default: none, the plain preset)")
    ap.add_argument("--cc-alone", action="store_true",
                    help="runs trained as stage CC alone for 6,000 steps, scored on their CC row")
    a = ap.parse_args()
    runs = plain_runs(a.category, a.n, header(a.flags, a.cc_alone),
                      "ssl3d CC" if a.cc_alone else "ssl3d NN")
    recipe = f"'{' '.join(a.flags.split())}'" if a.flags.split() else "plain"
    if len(runs) < max(a.k):
        raise SystemExit(f"{len(runs)} {recipe} runs with an IoU found, fewer than K = {max(a.k)}")
    for name, cd, acc, iou in sorted(runs, key=lambda r: -r[3]):
        print(f"{name}: IoU {iou:.4f}, Chamfer x1000 {cd:.2f}, pose {acc:.1f}%")
    groups = [("", [True] * len(runs))]
    groups += [(f" healthy (pose >= {p}%)", [r[2] >= p for r in runs]) for p in (60, 80)]
    for label, keep in groups:
        cd = np.array([r[1] for r, k in zip(runs, keep) if k])
        iou = np.array([r[3] for r, k in zip(runs, keep) if k])
        if len(cd) < 2:
            continue
        print(f"{len(cd)} {recipe}{label} {a.category} runs on {a.n} test models: one run's mean "
              f"Chamfer {cd.mean():.2f} (median {np.median(cd):.2f}); rank correlation of IoU "
              f"with -Chamfer {spearmanr(iou, -cd)[0]:+.2f}")
        for k in a.k:
            if k > len(cd):
                continue
            sets = [list(s) for s in itertools.combinations(range(len(cd)), k)]
            picked = np.array([cd[s][np.argmax(iou[s])] for s in sets])
            best = np.array([cd[s].min() for s in sets])
            print(f"  highest IoU of {k} ({len(sets)} sets): mean Chamfer {picked.mean():.2f}, worst "
                  f"{picked.max():.2f}; best of {k} in hindsight {best.mean():.2f}")


if __name__ == "__main__":
    main()
