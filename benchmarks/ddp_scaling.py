"""Multi-GPU training: throughput at several global batches, replica agreement, loss curves.

One launch per process count G, same global batches, same data, `ssl3d` preset, stage CC::

    torchrun --standalone --nproc_per_node=G benchmarks/ddp_scaling.py run DATA CATEGORY OUT \
        [--batches 64:eager 64:graph 1024:graph] [--steps 200] [--curve-steps 2000] \
        [--nn-steps 300] [--curve-repeats 2] [--curve-supervision self|pose]

writes OUT/gpus<G>.json: steady samples/s per (global batch, eager | graph), and for each
curve run (stage CC then NN at global batch 64, captured on CUDA; --curve-repeats of them)
the logged global-batch losses, whether every replica holds identical weights (both networks and
the critic) after each stage, and whether the NN stage's neighbours were mined by exactly one
process. Two curves per G give the run-to-run noise, the yardstick for "G = 2 matches G = 1".
Then::

    python benchmarks/ddp_scaling.py report OUT

prints the scaling table (efficiency = samples/s at G / (G x samples/s at 1)) and the curve
comparison.
"""

import argparse
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist

from ssl3d.training.config import PRESETS, TrainConfig
from ssl3d.training.trainer import Trainer, init_distributed, read_log

CURVE_BATCH = 64
CURVE_TERMS = ("loss_recon", "loss_pose")


def config(**kw) -> TrainConfig:
    return TrainConfig(**{**PRESETS["ssl3d"], "progress": False,
                          "image_every": 10 ** 9, "checkpoint_every": 10 ** 9, **kw})


def replicas_identical(trainer: Trainer, world: int) -> bool:
    nets = [m for m in (trainer.recon, trainer.pose, trainer.critic) if m is not None]
    flat = torch.cat([p.detach().flatten() for m in nets for p in m.parameters()])
    if world == 1:
        return True
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], g) for g in gathered[1:])


def run(a) -> None:
    out = Path(a.out)
    _, world, _ = init_distributed(a.device)
    runs = out / f"runs{world}"
    exists = runs.exists()
    if world > 1:  # every process checks before any creates it
        dist.barrier()
    if exists:  # a run folder would be resumed and its log appended to
        raise SystemExit(f"{runs} exists: delete it or choose another OUT")
    result = {"throughput": [], "curves": []}
    for spec in a.batches:
        batch, mode = spec.split(":")
        name = f"b{batch}-{mode}"
        t = Trainer(config(batch_size=int(batch), steps=a.steps, cuda_graph=mode == "graph",
                           log_every=a.steps, device=a.device), a.data, a.category, runs / name)
        summary = t.train()
        result["throughput"].append({"global_batch": int(batch), "mode": mode,
                                     "samples_per_s": summary["steady_samples_per_second"],
                                     "replicas_identical": replicas_identical(t, world)})
        if t.main:
            print(name, json.dumps(result["throughput"][-1]), flush=True)
    for repeat in range(a.curve_repeats):
        run_dir = runs / f"curve{repeat}"
        curve = {}
        for stage, steps in (("cc", a.curve_steps), ("nn", a.nn_steps)):
            t = Trainer(config(batch_size=CURVE_BATCH, steps=steps, stage=stage,
                               cuda_graph=a.device == "cuda", log_every=a.log_every,
                               device=a.device, supervision=a.curve_supervision), a.data, a.category, run_dir)
            summary = t.train()
            if t.main:
                print(f"curve{repeat} {stage}: {summary['seconds']:.1f} s", flush=True)
            mined = torch.tensor([float(t.mined_neighbours)], device=t.device)
            if world > 1:
                dist.all_reduce(mined)
            curve[stage] = {"replicas_identical": replicas_identical(t, world),
                            "processes_that_mined": int(mined.item()),
                            "log": read_log(run_dir / f"train_{stage}.log") if t.main else None}
        result["curves"].append(curve)
    if int(os.environ.get("RANK", "0")) == 0:
        result["gpus"] = world
        result["device"] = torch.cuda.get_device_name() if a.device == "cuda" else "cpu"
        (out / f"gpus{world}.json").write_text(json.dumps(result, indent=1))
    # No destroy_process_group: after capturing NCCL work it can hang (pytorch issue 115388).


def curve_gap(a: dict, b: dict) -> float:
    """Mean over the log points and CURVE_TERMS of |a - b| / |a|."""
    gaps = [abs(a[s][k] - b[s][k]) / abs(a[s][k]) for s in a if s in b for k in CURVE_TERMS]
    return sum(gaps) / max(len(gaps), 1)


def report(a) -> None:
    results = {int(p.stem[4:]): json.loads(p.read_text()) for p in Path(a.out).glob("gpus*.json")}
    if 1 not in results:
        raise SystemExit(f"{a.out}/gpus1.json is missing: run G = 1 first")
    base = {(r["global_batch"], r["mode"]): r["samples_per_s"] for r in results[1]["throughput"]}
    print("| card | GPUs | global batch | step | samples/s | efficiency | replicas identical |")
    print("|---|---|---|---|---|---|---|")
    for g in sorted(results):
        for r in results[g]["throughput"]:
            one = base.get((r["global_batch"], r["mode"]))
            eff = "-" if one is None else f"{r['samples_per_s'] / (g * one):.0%}"
            print(f"| {results[g]['device']} | {g} | {r['global_batch']} | {r['mode']} | "
                  f"{r['samples_per_s']:,.0f} | {eff} | {r['replicas_identical']} |")
    ref = {s: results[1]["curves"][0][s]["log"] for s in ("cc", "nn")}
    for g in sorted(results):
        for i, curve in enumerate(results[g]["curves"]):
            if g == 1 and i == 0:
                continue
            logs = {s: {int(k): v for k, v in curve[s]["log"].items()} for s in ("cc", "nn")}
            gaps = ", ".join(f"{s} {curve_gap({int(k): v for k, v in ref[s].items()}, logs[s]):.2%}"
                             for s in ("cc", "nn"))
            print(f"curve G={g} run {i} against G=1 run 0: mean relative gap {gaps}; "
                  f"replicas identical cc/nn "
                  f"{curve['cc']['replicas_identical']}/{curve['nn']['replicas_identical']}; "
                  f"processes that mined {curve['nn']['processes_that_mined']}")
    print("mean of the last 5 logged losses (loss_recon / loss_pose):")
    for g in sorted(results):
        for i, curve in enumerate(results[g]["curves"]):
            tail = {}
            for s in ("cc", "nn"):
                log = curve[s]["log"]
                last = sorted(log, key=int)[-5:]
                tail[s] = "/".join(f"{sum(log[k][t] for k in last) / len(last):.4g}"
                                   for t in CURVE_TERMS)
            print(f"  G={g} run {i}: cc {tail['cc']}, nn {tail['nn']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("data")
    r.add_argument("category")
    r.add_argument("out")
    r.add_argument("--batches", nargs="+", default=["64:eager", "64:graph", "1024:graph"])
    r.add_argument("--steps", type=int, default=200,
                   help="steps per throughput run (over 20: the first 10 are not timed)")
    r.add_argument("--curve-steps", type=int, default=2000)
    r.add_argument("--nn-steps", type=int, default=300)
    r.add_argument("--log-every", type=int, default=50)
    r.add_argument("--curve-repeats", type=int, default=2)
    r.add_argument("--curve-supervision", default="self", choices=["self", "pose"],
                   help="self-supervised training is chaotic: same-seed runs part within a few "
                        "hundred steps; pose-supervised curves are steadier")
    r.add_argument("--device", default="cuda", help="cpu runs eager steps only (a smoke test)")
    p = sub.add_parser("report")
    p.add_argument("out")
    a = ap.parse_args()
    if a.command == "run" and (a.steps <= 20 or a.curve_repeats < 1):
        ap.error("--steps must be over 20 and --curve-repeats at least 1")
    run(a) if a.command == "run" else report(a)


if __name__ == "__main__":
    main()
