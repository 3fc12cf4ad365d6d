"""Does a run's Chamfer follow its pose quality? Reads the run summaries in benchmarks/results/
(each a results table as ``ssl3d evaluate`` prints it), keeps the ssl3d NN rows of one category
scored on N test models, drops pose collapses (pose accuracy below --min-acc), and prints the
Spearman rank correlation of the Chamfer with the median pose error and with the pose accuracy
at 30 deg, over the runs. Then where the self-supervised runs lose to the pose-supervised ones:
over the summaries that split the Chamfer by pose (``diagnose_run.py``'s line), how much of the
gap between the two means comes from the wrongly posed images' excess over the rightly posed
ones, and how much from the rightly posed ones.

    python benchmarks/pose_vs_chamfer.py [--category chair] [--n 600] [--min-acc 60]
"""

import argparse
import re
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1, ties given their mean rank."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x))
    for v in np.unique(x):
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def result_rows(text: str):
    """The scored rows of the results tables in ``text`` (as ``ssl3d evaluate`` prints them), in
    order: (category, split, method, n, Chamfer, pose accuracy %, median pose error deg); rows
    without a Chamfer or a pose accuracy (the mean shape's, a header) are skipped."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 8:
            continue
        try:
            yield (cells[0], cells[1], cells[2], int(cells[3]), float(cells[4]),
                   float(cells[6].rstrip("%")), float(cells[7]))
        except ValueError:
            continue


def nn_row(path: Path, category: str, n: int, method: str = "ssl3d NN"):
    """(Chamfer, pose accuracy %, median pose error deg) of the file's last row of ``method``
    (ssl3d NN unless told)."""
    rows = [r[4:] for r in result_rows(path.read_text(errors="replace"))
            if r[0] == category and r[2] == method and r[3] == n]
    return rows[-1] if rows else None


def pose_split(path: Path, category: str, n: int):
    """From a summary with ``diagnose_run.py``'s lines: (method kind "self" or "pose", Chamfer,
    Chamfer of the images posed within 30 deg, their share %, Chamfer of the others) for the
    file's first ssl3d row of ``category`` on ``n`` test models, or None (also for the label-noise
    ablations of the pose-supervised baseline, whose labels are corrupted on purpose)."""
    text = path.read_text(errors="replace")
    if "--pose-label-noise-deg" in text.split("\n", 1)[0]:
        return None
    rows = [r for r in result_rows(text) if r[0] == category and r[1] == "test" and r[3] == n
            and r[2] in ("ssl3d NN", "ssl3d CC (pose-supervised)")]
    m = re.search(r"with the pose within 30 deg ([0-9.]+) \(([0-9.]+)%\), the others ([0-9.]+|nan)",
                  text)
    if not rows or not m:
        return None
    kind = "self" if rows[0][2] == "ssl3d NN" else "pose"
    return kind, rows[0][4], float(m.group(1)), float(m.group(2)), float(m.group(3))


def gap_split(category: str, n: int, min_acc: float) -> None:
    """Where the self-supervised runs lose to the pose-supervised ones: the images they pose
    within 30 deg, and the others."""
    by_kind = {"self": [], "pose": []}
    for p in sorted(RESULTS.glob("*.txt")):
        s = pose_split(p, category, n)
        if s is not None and s[3] >= min_acc:
            by_kind[s[0]].append(s[1:])
    if not by_kind["self"] or not by_kind["pose"]:
        return
    (cd, right, share, wrong), (cd_p, right_p, share_p, wrong_p) = (
        np.array(by_kind[k]).mean(0) for k in ("self", "pose"))
    print(f"  where the gap lies ({len(by_kind['self'])} self-supervised and "
          f"{len(by_kind['pose'])} pose-supervised runs with the pose split in their summaries; "
          f"means): self-supervised {cd:.2f} = posed within 30 deg {right:.2f} ({share:.1f}%), "
          f"the others {wrong:.2f}; pose-supervised {cd_p:.2f} = {right_p:.2f} ({share_p:.1f}%), "
          f"the others {wrong_p:.2f}. Of the gap {cd - cd_p:.2f}, the wrongly posed images' excess "
          f"over the rightly posed ones carries {cd - right:.2f} and the rightly posed ones' "
          f"lag {right - cd_p:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--category", default="chair")
    ap.add_argument("--n", type=int, default=600, help="test models the row was scored on")
    ap.add_argument("--min-acc", type=float, default=60.0, help="pose accuracy (%%) below which a run counts as collapsed")
    a = ap.parse_args()
    runs = {p.stem: nn_row(p, a.category, a.n) for p in sorted(RESULTS.glob("*.txt"))}
    runs = {k: v for k, v in runs.items() if v is not None}
    kept = {k: v for k, v in runs.items() if v[1] >= a.min_acc}
    if len(kept) < 3:
        raise SystemExit(f"{len(kept)} runs of {a.category} on {a.n} test models in {RESULTS}: too few")
    cd, acc, med = (np.array(c) for c in zip(*kept.values()))
    print(f"{a.category}, {a.n} test models: {len(kept)} runs ({len(runs) - len(kept)} with pose "
          f"accuracy below {a.min_acc:g}% left out)")
    print(f"  Spearman: Chamfer with median pose error {spearman(cd, med):+.2f}, "
          f"with pose accuracy at 30 deg {spearman(cd, acc):+.2f}")
    print("  lowest median pose error: " + "; ".join(
        f"{k} {v[2]:.1f} deg, Chamfer {v[0]:.2f}" for k, v in sorted(kept.items(), key=lambda kv: kv[1][2])[:5]))
    gap_split(a.category, a.n, a.min_acc)


if __name__ == "__main__":
    main()
