"""``ssl3d evaluate RUN_DIR [--data DATA_DIR] [--split test] [--refine STEPS] [--pose-select net|mask]
[--tag NAME] [--rotation-from KEY] [--mean-data DIR]``."""

from __future__ import annotations

import argparse

from ssl3d.cli.dataclass_args import add_quiet_option


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="run folder (uses nn.pt, else cc.pt) or a checkpoint")
    parser.add_argument("--data", default=None, metavar="DATA_DIR",
                        help="dataset folder (default: the one the run was trained on)")
    parser.add_argument("--split", default="test", choices=["val", "test"],
                        help="split to score (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--refine", type=int, default=0, metavar="STEPS",
                        help="test-time optimisation steps per image (0 = off)")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes for the exact EMD (default: %(default)s)")
    parser.add_argument("--no-emd", action="store_true", help="skip EMD (faster)")
    add_quiet_option(parser)
    parser.add_argument("--pose-select", default="net", choices=["net", "mask"],
                        help="models with several pose hypotheses: pick one with the selector "
                             "from the image alone (net, default) or by how well its projection "
                             "explains the image and its mask (mask; with --refine, the "
                             "unrefined cloud's projection)")
    parser.add_argument("--tag", default="",
                        help="prefix of the metrics.json key and predictions file, for scoring "
                             "another data set (e.g. --data REAL --tag real -> real_test; "
                             "default: none on the training data, else the --data folder's name)")
    parser.add_argument("--rotation-from", default="", metavar="KEY",
                        help="reuse the global rotation stored under this metrics.json key (e.g. "
                             "test) instead of fitting one on DATA_DIR's validation split")
    parser.add_argument("--mean-data", default=None, metavar="DIR",
                        help="data folder whose training split gives the mean-shape baseline "
                             "(default: the run's training data, else DATA_DIR); an exported "
                             "model records none, so name its training data when scoring it "
                             "on another set")


def run(args: argparse.Namespace) -> int:
    from ssl3d.evaluation.evaluate import evaluate_run, find_checkpoint

    entry = evaluate_run(args.run, args.data, args.split, args.device, refine_steps=args.refine,
                         workers=args.workers, emd=not args.no_emd, pose_select=args.pose_select,
                         tag=args.tag, rotation_from=args.rotation_from, mean_data=args.mean_data,
                         progress=not args.quiet)
    out = find_checkpoint(args.run).parent
    print((out / "results.md").read_text(), end="")
    if entry["label_free"]:
        lf = entry["label_free"]
        print(f"label-free fit on the validation split (no 3D or pose labels; compares runs of "
              f"the same settings, e.g. seeds): silhouette IoU {lf['val_silhouette_iou']:.4f} "
              f"(higher is better), forward affinity {lf['val_affinity_fwd']:.4f} (lower is better)")
    print(f"written: {out / 'metrics.json'}, {out / 'results.md'}")
    return 0
