"""``ssl3d compare RUN_DIR RUN_DIR [...] [--key test]``: which of several evaluated runs to keep."""

from __future__ import annotations

import argparse


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="run folders (or checkpoints) already scored by `ssl3d evaluate`, "
                             "e.g. seeds of one recipe on one data set; a folder that "
                             "--stop-on-collapse stopped is left out with its note")
    parser.add_argument("--key", default="test",
                        help="metrics.json entry to read (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from ssl3d.evaluation.compare import compare_runs, comparison_table, split_stopped

    runs, stopped = split_stopped(args.runs)
    for note in stopped:
        print(f"left out {note}")
    scores, differ = compare_runs(runs, args.key)
    print(comparison_table(scores), end="")
    print(f"pick: {scores[0].run} (highest label-free IoU on the validation split; needs no 3D "
          f"or pose labels. Chamfer, EMD and pose need the data's ground truth and are shown for "
          f"reference.)")
    if differ:
        print(f"note: the runs differ in {', '.join(differ)}, not only in the seed. The score was "
              f"checked as a way to pick among seeds of one recipe, where it mostly sets failed "
              f"runs apart; across recipes it is a weaker guide.")
    return 0
