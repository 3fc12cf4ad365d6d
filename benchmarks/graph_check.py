"""Does the CUDA-graph training step (``--cuda-graph``) compute what the eager step does, and
how much faster is it? Needs a GPU.

For each configuration it trains a few steps eagerly twice (the run-to-run noise of atomic
scatter-adds) and once with the captured step, all from the same seed, and prints the largest
relative weight difference of each against the first eager run; then it times both paths over
more steps.

    python benchmarks/graph_check.py DATA_DIR CATEGORY [--steps 5] [--timing-steps 400]
"""

import argparse
import tempfile
from pathlib import Path

import torch

from ssl3d.training.checkpoint import load_checkpoint
from ssl3d.training.config import PRESETS, TrainConfig
from ssl3d.training.trainer import train

CASES = {
    "ssl3d self, 8 hypotheses": {"pose_hypotheses": 8},
    "ssl3d pose-supervised": {"supervision": "pose"},
    "paper self": "paper",
}


def config(case, **kw) -> TrainConfig:
    base = {} if case == "paper" else {**PRESETS["ssl3d"], **case}
    return TrainConfig(**{**base, "device": "cuda", "progress": False, "log_every": 1,
                          "image_every": 10 ** 9, "checkpoint_every": 10 ** 9, **kw})


def weights(path: Path) -> torch.Tensor:
    ckpt = load_checkpoint(path)
    return torch.cat([v.float().flatten() for net in ("recon", "pose")
                      for v in ckpt[net].values()])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("category")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--timing-steps", type=int, default=400)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    for name, case in CASES.items():
        w = {}
        for run, graph in (("eager", False), ("eager2", False), ("graph", True)):
            cfg = config(case, steps=a.steps, batch_size=8, cuda_graph=graph)
            train(cfg, a.data, a.category, tmp / f"{name}-{run}".replace(" ", "_"))
            w[run] = weights(tmp / f"{name}-{run}".replace(" ", "_") / "cc.pt")
        rel = lambda x: float((x - w["eager"]).abs().max() / w["eager"].abs().max())  # noqa: E731
        print(f"{name}: after {a.steps} steps, max weight difference / max weight: "
              f"eager vs eager {rel(w['eager2']):.2e}, graph vs eager {rel(w['graph']):.2e}",
              flush=True)
    for batch in (2, 64):
        for graph in (False, True):
            cfg = config({"supervision": "pose"}, steps=a.timing_steps, batch_size=batch,
                         cuda_graph=graph, log_every=100)
            out = train(cfg, a.data, a.category, tmp / f"time-{batch}-{graph}")
            print(f"batch {batch:3d} {'graph' if graph else 'eager'}: "
                  f"{1000 * out['seconds'] / a.timing_steps:.2f} ms/step, "
                  f"{out['samples_per_second']:.0f} samples/s (capture included)", flush=True)


if __name__ == "__main__":
    main()
