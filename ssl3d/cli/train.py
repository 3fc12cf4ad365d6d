"""``ssl3d train DATA_DIR --category NAME --out RUN_DIR [options]``."""

from __future__ import annotations

import argparse
import json
import os

from ssl3d.cli.dataclass_args import add_dataclass_options, given_options
from ssl3d.training.config import PRESETS, TrainConfig


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", metavar="DATA_DIR",
                        help="dataset folder (ssl3d render output or the paper's ShapeNet folders)")
    parser.add_argument("--category", required=True, help="category name (e.g. chair) or synset id")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                        help="named settings under the flags below (default: paper)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from RUN_DIR/<stage>_last.pt with its optimiser and RNG state")
    add_dataclass_options(parser, TrainConfig, presets=PRESETS)
    # The other verbs take --quiet too.
    parser.add_argument("--quiet", dest="progress", action="store_false", default=argparse.SUPPRESS,
                        help="the same as --no-progress")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then the preset, then the flags given."""
    values = dict(PRESETS[args.preset])
    values.update(given_options(args, TrainConfig))
    return TrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from ssl3d.training.interrupt import TrainingInterrupted
    from ssl3d.training.trainer import train

    cfg = config_from_args(args)
    joined = dist.is_available() and not dist.is_initialized()  # the run joins its own group
    try:
        summary = train(cfg, args.data_dir, args.category, args.out, resume=args.resume)
    except TrainingInterrupted:  # every process stopped at the same step: safe to leave together
        leave_process_group(joined, cfg.cuda_graph)
        raise
    # Not after another error: a process leaving while another waits in a collective can hang.
    leave_process_group(joined, cfg.cuda_graph)
    if os.environ.get("RANK", "0") == "0":  # one summary under torchrun
        print(json.dumps(summary, indent=2))
    return 0


def leave_process_group(joined: bool, captured: bool) -> None:
    """Under torchrun, leave the process group the run joined (``joined``: none was there before
    it), so that NCCL does not warn of a group never destroyed; a caller's own group is left to
    the caller. Not after a captured step: destroying a group whose NCCL work was captured in a
    CUDA graph can hang (pytorch issue 115388)."""
    import torch.distributed as dist

    if joined and not captured and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
