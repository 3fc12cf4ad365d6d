"""DistributedDataParallel on CPU (gloo, 2 processes): replicas stay identical and match a
single process trained on the same global batch (view prior on, so its critic is covered, and the
symmetry term across the batch's best plane, whose scores are averaged over the processes)."""

import os
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssl3d.training.checkpoint import load_checkpoint
from ssl3d.training.losses import best_vertical_plane
from ssl3d.training.trainer import Trainer, average_gradients, read_log
from tests.conftest import tiny_config


EXTRA = {"w_view_prior": 1.0, "w_symmetry": 10.0, "symmetry_plane": "best_vertical", "flip_augment": True}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, data, out, result_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        for stage in ("cc", "nn"):
            t = Trainer(tiny_config(steps=3, batch_size=4, stage=stage, **EXTRA), data, "chair", out)
            t.train()
            flat = torch.cat([p.detach().flatten() for m in (t.recon, t.pose, t.critic)
                              for p in m.parameters()])
            gathered = [torch.zeros_like(flat) for _ in range(world)]
            dist.all_gather(gathered, flat)
            if rank == 0:
                torch.save(torch.stack(gathered), os.path.join(result_dir, f"{stage}.pt"))
        dist.barrier()  # let rank 0 finish writing before the group goes away
    finally:
        dist.destroy_process_group()
    # Leave without running C++ static destructors: gloo's background threads can abort the
    # process at interpreter exit ("terminate called without an active exception") on a busy
    # machine, after all the work is done and saved.
    os._exit(0)


def test_ddp_two_processes(tiny_dataset, tmp_path):
    port = _free_port()
    mp.spawn(_worker, args=(2, port, str(tiny_dataset), str(tmp_path / "ddp"), str(tmp_path)),
             nprocs=2, join=True)
    for stage in ("cc", "nn"):
        replicas = torch.load(tmp_path / f"{stage}.pt", weights_only=True)
        assert torch.equal(replicas[0], replicas[1]), f"replicas differ after stage {stage}"
    # One process on the same global batch reaches the same weights. Adam moves every weight by
    # about lr per step whatever the gradient's size, so a weight whose gradient is rounding noise
    # may differ by a few lr; all others agree closely.
    # The view prior's critic (not DDP-wrapped; its gradients are averaged by hand) likewise.
    cfg = tiny_config(steps=3, batch_size=4, **EXTRA)
    single = Trainer(cfg, tiny_dataset, "chair", tmp_path / "one")
    single.train()
    a = load_checkpoint(tmp_path / "ddp" / "cc.pt")
    for net, lr in (("recon", cfg.lr), ("critic", cfg.critic_lr)):
        for k, v in getattr(single, net).state_dict().items():
            diff = (a[net][k] - v).abs()
            assert diff.max() <= 3 * cfg.steps * lr and diff.mean() < 1e-6, (net, k)
    assert (tmp_path / "ddp" / "neighbours.pt").is_file()
    # The log holds the whole batch's losses (averaged over the processes), not rank 0's half:
    # at step 1 both runs start from the same weights and draw the same global batch.
    first = [read_log(tmp_path / run / "train_cc.log")[1] for run in ("ddp", "one")]
    for term in ("loss_recon", "loss_pose", "symmetry"):
        assert abs(first[0][term] - first[1][term]) <= 1e-4 * abs(first[1][term]), term


def _interrupt_worker(rank, world, port, data, out, result_dir):
    """Rank 1 alone gets a SIGINT during step 2; every process must stop at the same step."""
    import json
    import signal

    from ssl3d.training.interrupt import TrainingInterrupted

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    sample = Trainer.sample_step

    def sample_then_signal(self):
        if rank == 1 and self.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return sample(self)

    Trainer.sample_step = sample_then_signal
    t = Trainer(tiny_config(steps=8, batch_size=4, log_every=2, checkpoint_every=8), data, "chair", out)
    try:
        t.train()
        result = {"stopped": False}
    except TrainingInterrupted as exc:
        result = {"stopped": True, "quiet": exc.quiet, "message": str(exc)}
    result["step"] = t.step
    with open(os.path.join(result_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)


def test_a_signal_to_one_process_stops_all_at_the_same_step(tiny_dataset, tmp_path):
    import json

    ctx = mp.spawn(_interrupt_worker, args=(2, _free_port(), str(tiny_dataset),
                                            str(tmp_path / "run"), str(tmp_path)),
                   nprocs=2, join=False)
    deadline = time.monotonic() + 300
    while not ctx.join(timeout=5):  # processes that do not stop together wait on each other
        if time.monotonic() > deadline:
            for process in ctx.processes:
                process.kill()
            pytest.fail("the two processes did not stop together (still running after 300 s)")
    r = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2)]
    # Rank 1 asked to stop after step 2; the processes agree every log_every = 2 steps.
    assert [x["stopped"] for x in r] == [True, True] and [x["step"] for x in r] == [2, 2]
    assert [x["quiet"] for x in r] == [False, True]  # the command tells the user once
    assert "stopped at step 2 of 8" in r[0]["message"]
    assert load_checkpoint(tmp_path / "run" / "cc_last.pt")["step"] == 2
    assert not (tmp_path / "run" / "cc.pt").exists()


def _graph_worker(rank, world, port, data, out, result_dir):
    """Eager DDP, then the captured step (gradients averaged inside the graph), 4 steps each."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    for mode in ("eager", "graph"):
        t = Trainer(tiny_config(steps=4, batch_size=4, device="cuda", cuda_graph=mode == "graph",
                                **EXTRA), data, "chair", os.path.join(out, mode))
        nets = (t.recon, t.pose, t.critic)
        start = torch.cat([p.detach().flatten() for m in nets for p in m.parameters()])
        t.train()
        flat = torch.cat([p.detach().flatten() for m in nets for p in m.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        if rank == 0:
            torch.save({"start": start.cpu(), "replicas": torch.stack(gathered).cpu()},
                       os.path.join(result_dir, f"{mode}.pt"))
    dist.barrier()
    os._exit(0)  # no destroy_process_group after capturing NCCL work (it can hang)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_captured_step_under_two_nccl_processes(tiny_dataset, tmp_path):
    """The captured step keeps the replicas identical and trains as eager DDP does, within the
    run-to-run noise of atomic adds (compared relative to how far training moved the weights)."""
    mp.spawn(_graph_worker, args=(2, _free_port(), str(tiny_dataset), str(tmp_path / "runs"),
                                  str(tmp_path)), nprocs=2, join=True)
    r = {m: torch.load(tmp_path / f"{m}.pt", weights_only=True) for m in ("eager", "graph")}
    for m in r:
        assert torch.equal(r[m]["replicas"][0], r[m]["replicas"][1]), m
    assert torch.equal(r["eager"]["start"], r["graph"]["start"])
    moved = (r["eager"]["replicas"][0] - r["eager"]["start"]).norm()
    diff = (r["graph"]["replicas"][0] - r["eager"]["replicas"][0]).norm()
    assert diff < 0.1 * moved, (float(diff), float(moved))


def _average_worker(rank, world, port, result_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    dist.init_process_group("gloo")
    try:
        params = [torch.zeros(2, 3, requires_grad=True), torch.zeros(4, requires_grad=True),
                  torch.zeros(1, requires_grad=True)]  # the last one gets no gradient
        for i, p in enumerate(params[:2]):
            p.grad = torch.arange(p.numel(), dtype=torch.float32).view_as(p) * (rank + 1) + i
        average_gradients(params)
        torch.save([p.grad for p in params], os.path.join(result_dir, f"grads{rank}.pt"))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    os._exit(0)


def test_average_gradients_is_the_mean_over_processes(tmp_path):
    """Reference: the mean of what each rank held, element by element (a sum instead of a mean
    would pass the replica checks, as Adam hardly feels a doubled gradient)."""
    mp.spawn(_average_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        grads = torch.load(tmp_path / f"grads{rank}.pt", weights_only=True)
        for i, (g, shape) in enumerate(zip(grads[:2], [(2, 3), (4,)])):
            base = torch.arange(g.numel(), dtype=torch.float32).view(shape)
            want = (base * 1 + i + base * 2 + i) / 2
            torch.testing.assert_close(g, want)
        assert grads[2] is None


def _plane_worker(rank, world, port, clouds, result_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    dist.init_process_group("gloo")
    try:
        plane = best_vertical_plane(clouds[rank * 2:(rank + 1) * 2])
        torch.save(plane, os.path.join(result_dir, f"plane{rank}.pt"))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    os._exit(0)


def test_every_process_mirrors_across_the_whole_batchs_plane(tmp_path):
    """Each process sees half the batch; the plane must be the one of the whole batch."""
    g = torch.Generator().manual_seed(0)
    while True:  # a batch whose halves, alone, would pick other planes than the whole
        clouds = torch.randn(4, 64, 3, generator=g) * torch.rand(1, 1, 3, generator=g)
        whole = best_vertical_plane(clouds)
        if not (torch.equal(best_vertical_plane(clouds[:2]), whole)
                and torch.equal(best_vertical_plane(clouds[2:]), whole)):
            break
    mp.spawn(_plane_worker, args=(2, _free_port(), clouds, str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        torch.testing.assert_close(torch.load(tmp_path / f"plane{rank}.pt", weights_only=True), whole)


def _cli_worker(rank, world, port, data, out, result_dir):
    """``ssl3d train`` as torchrun starts it: a process group from the environment."""
    from ssl3d.cli.main import main

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    rc = main(["train", data, "--category", "chair", "--out", out, "--steps", "2", "--batch-size", "4",
               "--image-size", "32", "--n-points", "64", "--hidden", "32", "--no-progress"])
    with open(os.path.join(result_dir, f"cli{rank}.txt"), "w") as f:
        f.write(f"{rc} {dist.is_initialized()}")
    os._exit(0)


def test_leave_process_group_keeps_a_callers_group_and_a_captured_one():
    """Only a group the run joined goes, and not after a captured step (destroying can hang)."""
    from ssl3d.cli.train import leave_process_group

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        leave_process_group(joined=False, captured=False)  # the caller's group
        assert dist.is_initialized()
        leave_process_group(joined=True, captured=True)
        assert dist.is_initialized()
        leave_process_group(joined=True, captured=False)
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_train_command_leaves_the_process_group_it_joined(tiny_dataset, tmp_path):
    """After ``ssl3d train`` under two processes the group is gone (NCCL warns of one left)."""
    mp.spawn(_cli_worker, args=(2, _free_port(), str(tiny_dataset), str(tmp_path / "run"),
                                str(tmp_path)), nprocs=2, join=True)
    assert [(tmp_path / f"cli{r}.txt").read_text() for r in range(2)] == ["0 False"] * 2
    assert load_checkpoint(tmp_path / "run" / "cc.pt")["step"] == 2

