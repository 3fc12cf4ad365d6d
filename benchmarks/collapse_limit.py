"""Where should the pose-collapse warning's limit lie? Every run summary in benchmarks/results
with a "view_distribution by log" line (most sweeps log every 500 steps, a few every 100) and a
scored ssl3d row gives one point: the highest value two logs in a row reached in the second half
of stage CC or of stage NN (the logs the trainer's warning looks at: step >= half the stage's
steps) against the run's pose accuracy. Summaries without a score are counted and named.
With ``--early-from S`` it looks instead at stage CC's logs from step S up to half its steps
(the trainer's early check), for the summaries whose header gives stage CC's ``--steps``.

    python benchmarks/collapse_limit.py [--results benchmarks/results] [--category chair] [--early-from 1500]
"""

import argparse
import re
from pathlib import Path

from pose_vs_chamfer import result_rows  # benchmarks/ is the script's own folder


def second_half(logs: list[float]) -> list[float]:
    """The logs at or after half the stage's steps, for evenly spaced logs ending at the last step
    (log k of n, 1-based, is at step k * steps / n: kept when 2 k >= n)."""
    return logs[(len(logs) + 1) // 2 - 1:] if logs else []


def early_window(logs: list[float], steps: int, start: int) -> list[float]:
    """The logs at steps in [start, steps / 2), for evenly spaced logs ending at step ``steps``
    (log k of n, 1-based, at step k * steps / n)."""
    n = len(logs)
    return [v for k, v in enumerate(logs, 1) if k * steps >= start * n and 2 * k < n]


def two_in_a_row(values: list[float]) -> float:
    """The highest level two consecutive logs both reach (0 for fewer than two logs)."""
    return max((min(a, b) for a, b in zip(values, values[1:])), default=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="benchmarks/results")
    ap.add_argument("--category", default=None, help="only this category")
    ap.add_argument("--early-from", type=int, default=0, metavar="STEP",
                    help="score stage CC's logs from this step to half its steps instead")
    args = ap.parse_args()
    rows, unscored = [], []
    for f in sorted(Path(args.results).glob("*.txt")):
        for block in re.split(r"^== ", f.read_text(), flags=re.M)[1:]:
            cc = re.search(r"view_distribution by log \(cc\): (.*)", block)
            nn = re.search(r"view_distribution by log \(nn\): (.*)", block)
            res = next((r for r in result_rows(block) if r[1] == "test"
                        and r[2].startswith(("ssl3d NN", "ssl3d CC"))), None)
            if not cc or "..." in cc.group(1) or (nn and "..." in nn.group(1)):
                continue  # no logs, or a shortened list
            cc_logs = [float(x) for x in cc.group(1).split()]
            nn_logs = [float(x) for x in nn.group(1).split()] if nn else []
            if args.early_from:
                steps = re.match(r"\S+ \(\w+\) (?:(?!--stage).)*?--steps (\d+)", block.split(" -- ")[0])
                if not steps:
                    continue  # stage CC's length unknown (or a stage-NN-only line)
                level = two_in_a_row(early_window(cc_logs, int(steps.group(1)), args.early_from))
            else:
                level = max(two_in_a_row(second_half(cc_logs)), two_in_a_row(second_half(nn_logs)))
            if not res:
                unscored.append(f"{block.split()[0]} {level:.2f}")
                continue
            cat, _, _, n, chamfer, acc, _ = res
            if args.category in (None, cat):
                rows.append((level, acc, chamfer, cat, n, block.split()[0], f.name))
    rows.sort()
    window = f"stage CC from step {args.early_from} to half" if args.early_from else "second-half"
    print(f"{len(rows)} runs: {window} level two logs in a row reached, pose accuracy at 30 deg, "
          f"Chamfer x1000, category, test images, run, file")
    for r in rows:
        print(f"  {r[0]:.2f}  {r[1]:5.1f}%  {r[2]:6.2f}  {r[3]:8s} {r[4]:4d}  {r[5]}  ({r[6]})")
    print(f"{len(unscored)} more with logs but no score here (run, level): " + ", ".join(unscored))
    for cat in sorted({r[3] for r in rows}):
        ok = [r[0] for r in rows if r[3] == cat and r[1] >= 75]
        low = [r[0] for r in rows if r[3] == cat and r[1] < 75]
        print(f"{cat}: {len(ok)} runs with pose >= 75% reach at most {max(ok, default=0):.2f}; "
              f"{len(low)} below 75% reach at least {min(low, default=float('nan')):.2f}")


if __name__ == "__main__":
    main()
