"""Multi-GPU training throughput and replica agreement, one configuration per launch.

    torchrun --nproc_per_node=G benchmarks/ddp_scaling.py DATA_DIR CATEGORY RUN_DIR BATCH STEPS

Trains stage CC with DistributedDataParallel at the given GLOBAL batch, then prints (rank 0)
the number of processes, samples/s and whether every replica holds identical weights.
"""

import sys

import torch
import torch.distributed as dist

from ssl3d.training.config import TrainConfig
from ssl3d.training.trainer import Trainer


def main(data_dir, category, run_dir, batch, steps):
    cfg = TrainConfig(batch_size=int(batch), steps=int(steps), lr=1e-3, device="cuda",
                      progress=False, log_every=100, checkpoint_every=10 ** 9)
    trainer = Trainer(cfg, data_dir, category, run_dir)
    summary = trainer.train()
    flat = torch.cat([p.detach().flatten() for m in (trainer.recon, trainer.pose) for p in m.parameters()])
    world = dist.get_world_size() if dist.is_initialized() else 1
    same = True
    if world > 1:
        gathered = [torch.zeros_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        same = all(torch.equal(gathered[0], g) for g in gathered[1:])
    if trainer.rank == 0:
        print(f"RESULT gpus={world} global_batch={batch} steps={steps} "
              f"samples_per_s={summary['samples_per_second']:.0f} replicas_identical={same} "
              f"last_loss={open(f'{run_dir}/train_cc.log').read().splitlines()[-1][:160]}")
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
