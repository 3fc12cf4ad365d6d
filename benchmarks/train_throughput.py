"""Training-step throughput: the dense reference formulation (a) against ssl3d's path (b).

For the same random inputs and config, times a full stage-CC step (both networks forward, all
losses with K = 4 projections, both backward passes, both Adam steps) with

  (a) the dense reference ops: every point against every pixel for the projections, the full
      (B, N, N) matrix kept for Chamfer's backward (``reference_ops=True``);
  (b) ssl3d's own path: local splats, chunked nearest-neighbour Chamfer, optional bf16 autocast
      and CUDA-graph capture of the whole step.

It first checks that (a) and (b) give the same losses and gradients on the first step, then
prints median ms per step, samples/s, peak memory and the ratio (b)/(a) for each batch size.

    python benchmarks/train_throughput.py [--device cuda] [--batch-sizes 2 32 max] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ssl3d import camera
from ssl3d.models import PoseNet, ReconstructionNet
from ssl3d.training.config import TrainConfig
from ssl3d.training.losses import step_losses
from ssl3d.training.trainer import optimisation_step


def make_inputs(batch: int, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, 64, 64, generator=g)
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    blob = (((yy - 32) ** 2 + (xx - 32) ** 2) < 15 ** 2).float()
    mask = blob.expand(batch, 64, 64).clone()
    views = camera.sample_viewpoints(batch * 3, generator=g).view(batch, 3, 2)
    batch_d = {"image": image * mask[:, None], "mask": mask,
               "viewpoint": camera.sample_viewpoints(batch, generator=g),
               "cloud": torch.rand(batch, 1024, 3, generator=g) - 0.5}
    return {k: v.to(device) for k, v in batch_d.items()}, views.to(device)


class Step:
    """One training step of both networks, as the trainer runs it."""

    def __init__(self, cfg: TrainConfig, device, amp: bool):
        torch.manual_seed(0)
        self.cfg, self.amp = cfg, amp
        self.recon = ReconstructionNet(cfg.network_config()).to(device)
        self.pose = PoseNet(cfg.network_config()).to(device)
        self.opt_r = torch.optim.Adam(self.recon.parameters(), lr=cfg.lr, capturable=device.type == "cuda")
        self.opt_p = torch.optim.Adam(self.pose.parameters(), lr=cfg.lr, capturable=device.type == "cuda")

    def __call__(self, batch, views):
        return optimisation_step(self.recon, self.pose, self.opt_r, self.opt_p, batch, views,
                                 self.cfg, amp=self.amp)[0]


def check_same(device, batch_size: int = 4) -> str:
    """Losses and gradients of (a) and (b) on one step, float32, no autocast."""
    batch, views = make_inputs(batch_size, device)
    out = {}
    for name, ref in (("a", True), ("b", False)):
        cfg = TrainConfig(batch_size=batch_size, reference_ops=ref)
        s = Step(cfg, device, amp=False)
        loss_r, loss_p, terms, _ = step_losses(s.recon, s.pose, batch, views, cfg)
        gr = torch.autograd.grad(loss_r, list(s.recon.parameters()), retain_graph=True)
        gp = torch.autograd.grad(loss_p, list(s.pose.parameters()))
        out[name] = (terms, torch.cat([g.flatten() for g in gr]), torch.cat([g.flatten() for g in gp]))
    worst_loss = max(abs(float(out["a"][0][k]) - float(out["b"][0][k])) / max(abs(float(out["a"][0][k])), 1e-8)
                     for k in out["a"][0])
    rel = lambda x, y: float((x - y).norm() / y.norm().clamp_min(1e-12))  # noqa: E731
    g_r, g_p = rel(out["b"][1], out["a"][1]), rel(out["b"][2], out["a"][2])
    ok = worst_loss < 1e-2 and g_r < 5e-2 and g_p < 5e-2
    return (f"first-step check (batch {batch_size}, float32): max relative loss difference "
            f"{worst_loss:.2e}, gradient relative difference recon {g_r:.2e} / pose {g_p:.2e} -> "
            f"{'SAME within tolerance' if ok else 'DIFFERENT'} (the local splat truncates the "
            f"Gaussian below 4e-4 per point)")


def time_path(ref: bool, batch_size: int, device, steps: int, amp: bool, graph: bool):
    cfg = TrainConfig(batch_size=batch_size, reference_ops=ref)
    step = Step(cfg, device, amp)
    batch, views = make_inputs(batch_size, device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    run = lambda: step(batch, views)  # noqa: E731
    if graph and cuda:
        s = torch.cuda.Stream(device)
        s.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(s):
            for _ in range(3):
                step(batch, views)
        torch.cuda.current_stream(device).wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step(batch, views)
        run = g.replay
    for _ in range(3):
        run()
    times = []
    for _ in range(steps):
        if cuda:
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    ms = 1000 * statistics.median(times)
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if cuda else float("nan")
    return ms, batch_size / (ms / 1000), peak


def fits(ref: bool, batch_size: int, device, amp: bool, graph: bool) -> bool:
    try:
        time_path(ref, batch_size, device, 1, amp, graph)
        return True
    except torch.OutOfMemoryError:
        return False
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-sizes", nargs="+", default=["2", "32", "max"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                    help="bf16 autocast for (b) (default: on with CUDA)")
    ap.add_argument("--graph", action=argparse.BooleanOptionalAction, default=None,
                    help="capture (b)'s step in a CUDA graph (default: on with CUDA)")
    ap.add_argument("--max-batch", type=int, default=8192, help="upper bound for 'max'")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    amp = cuda if args.amp is None else args.amp
    graph = cuda if args.graph is None else args.graph
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; (b) amp={amp} graph={graph}")
    print(check_same(device))
    sizes = []
    for s in args.batch_sizes:
        if s == "max":
            b = 32
            while b * 2 <= args.max_batch and fits(False, b * 2, device, amp, graph):
                b *= 2
            sizes.append(b)
        else:
            sizes.append(int(s))
    print(f"{'batch':>6} | {'(a) ms':>9} {'(a) samp/s':>11} {'(a) GiB':>8} | "
          f"{'(b) ms':>8} {'(b) samp/s':>11} {'(b) GiB':>8} | {'speed (b)/(a)':>13} {'mem (b)/(a)':>11}")
    for b in sizes:
        try:
            a = time_path(True, b, device, args.steps, False, False)
        except torch.OutOfMemoryError:
            a = None
            if cuda:
                torch.cuda.empty_cache()
        f = time_path(False, b, device, args.steps, amp, graph)
        if a is None:
            print(f"{b:>6} | {'out of memory':>30} | {f[0]:>8.2f} {f[1]:>11.0f} {f[2]:>8.2f} | {'-':>13} {'-':>11}")
        else:
            print(f"{b:>6} | {a[0]:>9.2f} {a[1]:>11.0f} {a[2]:>8.2f} | {f[0]:>8.2f} {f[1]:>11.0f} "
                  f"{f[2]:>8.2f} | {f[1] / a[1]:>12.1f}x {f[2] / a[2] if cuda else float('nan'):>11.3f}")


if __name__ == "__main__":
    main()
