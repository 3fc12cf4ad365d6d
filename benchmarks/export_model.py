"""Write a run's final weights as a small checkpoint for shipping (the config rides along,
optimiser state and RNG are dropped): half precision, or with --int8 the large weights as int8
with per-row scales (ssl3d.training.checkpoint.quantize_state).

    python benchmarks/export_model.py RUN_DIR_OR_CKPT OUT.pt [--int8]
"""

import sys

import torch

from ssl3d.evaluation.evaluate import find_checkpoint
from ssl3d.training.checkpoint import load_checkpoint, quantize_state


def main(src: str, dst: str, *flags: str) -> None:
    ckpt = load_checkpoint(find_checkpoint(src))
    keep = {k: v for k, v in ckpt.items() if k not in ("opt_recon", "opt_pose", "rng")}
    for net in ("recon", "pose"):
        keep[net] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt[net].items()}
        if "--int8" in flags:
            keep[net] = quantize_state(keep[net])
    keep["data_dir"] = ""  # a path on the training machine means nothing elsewhere
    torch.save(keep, dst)
    print(f"{dst}: {sum(v.numel() for n in ('recon', 'pose') for v in keep[n].values())} stored values")


if __name__ == "__main__":
    main(*sys.argv[1:])
