"""Where should the pose-collapse warning's limit lie? Every run summary in benchmarks/results
that logs ``view_distribution`` every 500 steps (the sweeps' --log-every 500) and has a scored
ssl3d row gives one point: the highest value two logs in a row reached in the second half of
stage CC or in stage NN (what the trainer's warning looks at) against the run's pose accuracy.

    python benchmarks/collapse_limit.py [--results benchmarks/results] [--category chair]
"""

import argparse
import re
from pathlib import Path


def two_in_a_row(values: list[float]) -> float:
    """The highest level two consecutive logs both reach (0 for fewer than two logs)."""
    return max((min(a, b) for a, b in zip(values, values[1:])), default=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="benchmarks/results")
    ap.add_argument("--category", default=None, help="only this category")
    args = ap.parse_args()
    rows = []
    for f in sorted(Path(args.results).glob("*.txt")):
        for block in re.split(r"^== ", f.read_text(), flags=re.M)[1:]:
            cc = re.search(r"view_distribution by log \(cc\): (.*)", block)
            nn = re.search(r"view_distribution by log \(nn\): (.*)", block)
            res = re.search(r"^\| (\w+) \| test \| ssl3d (?:NN|CC)[^|]*\| (\d+) \| ([\d.]+) \| [^|]* \| "
                            r"([\d.]+)%", block, flags=re.M)
            if not cc or not res or "..." in cc.group(1):  # no logs, no score, or a shortened list
                continue
            cc_logs = [float(x) for x in cc.group(1).split()]
            nn_logs = [float(x) for x in nn.group(1).split()] if nn else []
            level = max(two_in_a_row(cc_logs[len(cc_logs) // 2:]), two_in_a_row(nn_logs))
            cat, n, chamfer, acc = res.groups()
            if args.category in (None, cat):
                rows.append((level, float(acc), float(chamfer), cat, int(n), block.split()[0], f.name))
    rows.sort()
    print(f"{len(rows)} runs: second-half level two logs in a row reached, pose accuracy at 30 deg, "
          f"Chamfer x1000, category, test images, run, file")
    for r in rows:
        print(f"  {r[0]:.2f}  {r[1]:5.1f}%  {r[2]:6.2f}  {r[3]:8s} {r[4]:4d}  {r[5]}  ({r[6]})")
    for cat in sorted({r[3] for r in rows}):
        ok = [r[0] for r in rows if r[3] == cat and r[1] >= 75]
        low = [r[0] for r in rows if r[3] == cat and r[1] < 75]
        print(f"{cat}: {len(ok)} runs with pose >= 75% reach at most {max(ok, default=0):.2f}; "
              f"{len(low)} below 75% reach at least {min(low, default=float('nan')):.2f}")


if __name__ == "__main__":
    main()
