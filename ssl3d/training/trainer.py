"""The training loop: stages CC and NN and the baselines, on CPU, one GPU or several (torchrun).

Run folder (RUN_DIR)::

    config_<stage>.json     the config, readable
    <stage>_last.pt         latest checkpoint with optimiser and RNG state (for --resume)
    <stage>.pt              final weights + config (what evaluate / predict / stage nn read)
    neighbours.pt           stage nn: mined neighbour indices (computed once, shared by all ranks)
    pose_labels.pt          with --pose-labels: the teacher's viewpoint for each training image
                            and the images kept (--pose-label-keep)
    train_<stage>.log       plain-text loss log
    tb/<stage>/             TensorBoard: every loss term, input / projected images

Data are decoded once and held as tensors on the training device; a batch is an index gather.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from ssl3d import camera
from ssl3d.data.dataset import flip_batch, load_split
from ssl3d.models import PoseNet, ReconstructionNet, SilhouetteCritic, set_code_dims
from ssl3d.training.checkpoint import (FORMAT, config_differences, find_checkpoint,
                                       load_checkpoint, models_from_checkpoint, read_labels_file,
                                       require_device, save_atomic, save_pose_labels, stopped_path)
from ssl3d.training.config import TrainConfig
from ssl3d.training.interrupt import StopRequest, TrainingInterrupted
from ssl3d.training.losses import (critic_loss, mean_over_processes, side_gap, step_losses,
                                   view_distribution_weight)
from ssl3d.training.neighbours import embed_images, nearest_neighbours

# Fields a resumed run may change (they do not alter what has been computed so far).
RESUMABLE_CHANGES = {"steps", "progress", "log_every", "image_every", "checkpoint_every", "device",
                     "cuda_graph", "snapshot_every", "stop_on_collapse"}
# A stage's own schedule and weighting: stage nn may differ from stage cc here without a warning.
STAGE_SCHEDULE = {"lr_decay_steps", "lr_decay_nets", "ema_decay", "w_neighbour", "doubt_gap",
                  "shape_code_ramp_steps", "carry_optimiser"}
# The pose-collapse warning's early check starts here (Trainer._warn_pose_collapse).
EARLY_COLLAPSE_STEP = 1500


class PoseCollapse(RuntimeError):
    """Training stopped on a pose collapse (``TrainConfig.stop_on_collapse``)."""


def average_gradients(params: list[torch.Tensor]) -> None:
    """Replace each parameter's gradient by its mean over the processes (one all-reduce,
    capturable; parameters without a gradient are skipped). A no-op in a single process."""
    mean_over_processes([p.grad for p in params if p.grad is not None])


def scheduled_lr(lr: float, step: int, steps: int, decay_steps: int) -> float:
    """The learning rate of (0-based) ``step`` of ``steps``: ``lr`` until the last
    ``decay_steps`` steps, then a half cosine from ``lr`` towards zero (never reaching it)."""
    start = steps - decay_steps
    if decay_steps == 0 or step < start:
        return lr
    return lr * 0.5 * (1 + math.cos(math.pi * (step - start) / decay_steps))


def code_dims_at(dims: int, step: int, ramp_steps: int) -> int:
    """How many of the shape embedding's ``dims`` (hidden, or the shape_code_dims it is limited
    to) the decoder reads at (0-based) ``step`` of a progressive-conditioning ramp of
    ``ramp_steps`` (0 = no ramp): the largest d with d + 1 <= (dims + 1) ** (step / ramp_steps),
    a geometric growth, so none at step 0 (one template cloud), few for long (15 of 256 at half
    the ramp) and all from step ramp_steps on. (The tolerance keeps exact powers, 9 ** 0.5 = 3,
    from rounding down.)"""
    if ramp_steps == 0 or step >= ramp_steps:
        return dims
    return min(dims, int((dims + 1) ** (step / ramp_steps) + 1e-9) - 1)


def ema_decay_at(decay: float, step: int) -> float:
    """The weight average's factor after (0-based) ``step``: ``decay``, ramped up from 0.1 as
    (1 + step) / (10 + step) so that the average soon forgets the weights the stage started from
    (at a fixed 0.999, 22% of it would still be those after 1,500 steps)."""
    return min(decay, (1 + step) / (10 + step))


def unfinished_step(path: Path) -> tuple[int, int]:
    """(step reached, steps asked for) of a ``<stage>_last.pt``."""
    ckpt = load_checkpoint(path)
    return int(ckpt["step"]), int(ckpt["config"]["steps"])


def logged_step(line: str) -> int | None:
    """The step of a ``train_<stage>.log`` line ("step N term=value ..."), None for anything else
    (e.g. a line cut short by a killed process)."""
    words = line.split()
    if len(words) < 2 or words[0] != "step" or not words[1].isdigit() or not line.endswith("\n"):
        return None
    return int(words[1])


def read_log(path) -> dict[int, dict[str, float]]:
    """A ``train_<stage>.log`` as {step: {term: value}} (the lines :meth:`Trainer._log` writes)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        words = line.split()  # "step", N, then term=value pairs
        out[int(words[1])] = {k: float(v) for k, v in (w.split("=") for w in words[2:])}
    return out


def optimisation_step(recon, pose, opt_r, opt_p, batch: dict, views: torch.Tensor,
                      cfg: TrainConfig, neighbour: dict | None = None, amp: bool = False,
                      step: int = 0, critic=None, opt_c=None, sync_gradients: bool = False):
    """Losses, both backward passes and both Adam steps of one training step (arguments as
    :func:`ssl3d.training.losses.step_losses`), then the view prior critic's step when there is
    one. ``sync_gradients``: average the networks' gradients over the processes here (for
    networks that are not DDP-wrapped, as in a captured step). Returns (terms, extras)."""
    loss_r, loss_p, terms, extras = step_losses(recon, pose, batch, views, cfg, neighbour,
                                                amp=amp, step=step, critic=critic)
    # Gradients stay allocated (not None) so that a captured step can reuse their memory.
    opt_r.zero_grad(set_to_none=False)
    opt_p.zero_grad(set_to_none=False)
    # Each optimiser sees only the gradient of its own loss w.r.t. its own network.
    loss_r.backward(inputs=list(recon.parameters()), retain_graph=True)
    loss_p.backward(inputs=list(pose.parameters()))
    if sync_gradients:
        average_gradients([*recon.parameters(), *pose.parameters()])
    opt_r.step()
    opt_p.step()
    if critic is not None:
        # After the reconstruction's backward pass, which saw the critic as it was.
        loss_c = critic_loss(critic, extras["critic_real"], extras["critic_fake"], cfg.critic_r1)
        opt_c.zero_grad(set_to_none=False)
        loss_c.backward(inputs=list(critic.parameters()))
        average_gradients(list(critic.parameters()))  # the critic is never DDP-wrapped
        opt_c.step()
        terms["critic"] = loss_c.detach()
    return terms, extras


def init_distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under torchrun (WORLD_SIZE > 1) joins the process group and
    takes the GPU of the local rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, torch.device(device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        if dev.type == "cuda":  # naming the GPU avoids NCCL guessing it from the rank
            dist.init_process_group("nccl", device_id=dev)
        else:
            dist.init_process_group("gloo")
    return rank, world, dev


class Trainer:
    """Builds everything a run needs from (config, data folder, category, run folder)."""

    def __init__(self, cfg: TrainConfig, data_dir, category: str, out_dir, resume: bool = False):
        cfg.validate()
        self.cfg, self.category = cfg, category
        self.data_dir = str(Path(data_dir).resolve())
        self.rank, self.world, self.device = init_distributed(cfg.device)
        require_device(self.device)
        if cfg.batch_size % self.world:
            raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the number of "
                             f"processes {self.world}")
        self.out = Path(out_dir)
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"--out {self.out} is a file; give a folder for the run")
        if not resume:
            # A fresh run would overwrite an interrupted run's state (the same command without
            # --resume), and a fresh stage cc would leave an earlier stage nn standing: evaluate
            # and predict take nn.pt over cc.pt, and stage nn with --resume would go on from
            # nn_last.pt. A finished run of the same stage is simply trained again, and so is one
            # stopped on a pose collapse (its note says to train again with another seed).
            stale = []
            last = self.out / f"{cfg.stage}_last.pt"
            if last.is_file() and not stopped_path(self.out, cfg.stage).is_file():
                done, total = unfinished_step(last)
                if done < total:
                    stale.append(f"{last.name} (an unfinished run at step {done} of {total}; "
                                 f"--resume continues it)")
            if cfg.stage == "cc":
                why = {"nn.pt": "evaluate and predict would use it instead of the new stage cc",
                       "nn_last.pt": "stage nn with --resume would continue it"}
                stale += [f"{n} ({w})" for n, w in why.items() if (self.out / n).is_file()]
            if stale:
                raise ValueError(f"{self.out} holds an earlier run's {'; '.join(stale)}: train into "
                                 f"another --out, or delete those files first")
        self.out.mkdir(parents=True, exist_ok=True)
        self.main = self.rank == 0
        if not resume and self.main:  # a fresh run: an earlier run's collapse note is not its own
            stopped_path(self.out, cfg.stage).unlink(missing_ok=True)
        self.last_path = self.out / f"{cfg.stage}_last.pt"
        self.final_path = self.out / f"{cfg.stage}.pt"

        self.data = load_split(data_dir, category, "train", cfg.image_size,
                               progress=cfg.progress and self.main).to(self.device)
        if cfg.pose_labels:
            self.data.viewpoints, keep = self._teacher_labels(reuse=resume or cfg.stage == "nn")
            if len(keep) < len(self.data):
                self.data = self.data.subset(keep)
        if cfg.stage == "nn" and len(self.data) <= cfg.neighbours:
            raise ValueError(f"stage nn needs more than neighbours={cfg.neighbours} training "
                             f"images, found {len(self.data)}")

        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.recon = ReconstructionNet(cfg.network_config()).to(self.device)
        self.code_dims = cfg.shape_code_dims or cfg.hidden  # the dims a ramp grows to
        self.pose = PoseNet(cfg.network_config()).to(self.device)
        self.critic = SilhouetteCritic(cfg.image_size).to(self.device) if cfg.w_view_prior > 0 else None
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.step = 0
        self.neigh = None
        self.mined_neighbours = False
        self.warned_collapse, self.collapse_logs = False, 0
        self.log_sums: dict[str, torch.Tensor] = {}  # the terms summed since the last log line
        self.log_counted = 0
        ckpt = self._resume_state() if resume else None
        start = None  # the checkpoint a stage nn or --init run starts from
        if ckpt is None and (cfg.stage == "nn" or cfg.init):
            start = self._init_weights()
        if cfg.shape_code_ramp_steps and ckpt is None and not (cfg.stage == "nn" or cfg.init):
            # A dim the ramp switches on must not add noise through random decoder weights: the
            # loss's quickest fix would be to shut its unit off, and Adam's full-size steps on that
            # one unit's gradient killed the whole structure encoder in the first GPU runs (sweeps
            # 184-185). Zero columns, which learn only once their dim is read, add nothing at first.
            # Only fresh networks: trained ones (stage nn, --init) keep what they learned.
            with torch.no_grad():
                self.recon.structure_head[0].weight.zero_()
        if cfg.stage == "nn":
            self.neigh = self._neighbours()
        if cfg.cuda_graph and self.device.type != "cuda":
            raise ValueError("cuda_graph needs --device cuda")
        # A captured step keeps the optimisers' step counts on the GPU (capturable Adam).
        adam = {"lr": cfg.lr, "betas": (cfg.beta1, 0.999), "capturable": cfg.cuda_graph}
        self.opt_r = torch.optim.Adam(self.recon.parameters(), **adam)
        self.opt_p = torch.optim.Adam(self.pose.parameters(), **adam)
        self.opt_c = None if self.critic is None else torch.optim.Adam(
            self.critic.parameters(), **{**adam, "lr": cfg.critic_lr, "betas": (0.5, 0.999)})
        if ckpt is not None:
            if self.critic is not None:
                self.critic.load_state_dict(ckpt["critic"])
            self._load_optimisers(ckpt, self.last_path)
        elif cfg.carry_optimiser:  # validate(): stage nn or --init, so start is set
            self._carry_optimisers(start)
        # The weight average starts from the weights the stage starts from (or resumes its own).
        self.ema = None
        if cfg.ema_decay:  # copies, not new networks: a new one would draw from the global RNG
            self.ema = {key: copy.deepcopy(net) for key, net in self._networks().items()}
            for key, net in self.ema.items():
                if ckpt is not None:
                    net.load_state_dict(ckpt[f"ema_{key}"])
                net.requires_grad_(False)
        if cfg.lr_decay_steps:
            # A captured step reads the rate from GPU memory, so it changes without a new capture
            # (capturable Adam takes a tensor rate); eager Adam takes a number.
            for opt in (self.opt_r, self.opt_p):
                for group in opt.param_groups:
                    rate = float(group["lr"])
                    group["lr"] = torch.tensor(rate, device=self.device) if cfg.cuda_graph else rate
        self.last_good = str(self.last_path) if ckpt is not None else None
        # Several processes: eager steps use DDP, which overlaps the gradient all-reduce with the
        # backward pass. A captured step cannot hold DDP's host-side bookkeeping, so it averages
        # the gradients itself (flat all-reduces inside the graph; see optimisation_step).
        self.sync_gradients = self.world > 1 and cfg.cuda_graph
        if self.world > 1 and not cfg.cuda_graph:
            ddp = torch.nn.parallel.DistributedDataParallel
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.recon = ddp(self.recon, device_ids=ids)
            self.pose = ddp(self.pose, device_ids=ids)
        if self.main:
            (self.out / f"config_{cfg.stage}.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    # ---------------------------------------------------------------------------- set-up helpers
    def _resume_state(self) -> dict:
        # Loaded on the CPU: the RNG states must stay CPU tensors; load_state_dict moves the
        # weights and optimiser state to their parameters' device.
        ckpt = load_checkpoint(self.last_path, map_location="cpu")
        changed = set(config_differences(ckpt["config"], self.cfg)) - RESUMABLE_CHANGES
        if changed:
            raise ValueError(f"cannot resume {self.last_path}: config differs in "
                             f"{sorted(changed)} (only {sorted(RESUMABLE_CHANGES)} may change)")
        if self.cfg.lr_decay_steps and ckpt["config"]["steps"] != self.cfg.steps:
            # The decay covers the last lr_decay_steps of steps: a new total would move it.
            raise ValueError(f"cannot resume {self.last_path} with steps {self.cfg.steps}: it was "
                             f"trained towards {ckpt['config']['steps']} with lr_decay_steps "
                             f"{self.cfg.lr_decay_steps}, and a new total moves the decay")
        self.recon.load_state_dict(ckpt["recon"])
        self.pose.load_state_dict(ckpt["pose"])
        self.step = int(ckpt["step"])
        self.gen.set_state(ckpt["rng"]["batch"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        log = ckpt.get("log", {})  # absent from files written at a log step, or before it was kept
        self.log_sums = {k: v.to(self.device) for k, v in log.get("sums", {}).items()}
        self.log_counted = int(log.get("counted", 0))
        self.collapse_logs = int(log.get("collapse_logs", 0))
        return ckpt

    def _load_optimisers(self, ckpt: dict, path: Path) -> None:
        """The optimisers' state from a training-state checkpoint (``path`` names it in errors)."""
        pairs = [(self.opt_r, "opt_recon"), (self.opt_p, "opt_pose")]
        if self.critic is not None:
            pairs.append((self.opt_c, "opt_critic"))
        for opt, key in pairs:
            if key not in ckpt:
                raise ValueError(f"{path} holds no optimiser state ({key}): pass a training-state "
                                 f"checkpoint (*_last.pt), or leave carry_optimiser off")
            try:
                opt.load_state_dict(ckpt[key])
            except ValueError as err:  # parameter shapes or counts differ
                raise ValueError(f"{path}: its {key} does not fit this network ({err})") from err
            for group in opt.param_groups:  # the saved flag is that of the saving run
                group["capturable"] = self.cfg.cuda_graph
            for st in opt.state.values():
                if "step" in st:
                    st["step"] = st["step"].to(self.device if self.cfg.cuda_graph else "cpu")

    def _carry_optimisers(self, start: dict) -> None:
        """carry_optimiser: Adam's moments from the run this stage starts from (``start``, the
        checkpoint _init_weights loaded its weights from: the --init file itself, or stage cc's
        cc.pt, whose moments are in cc_last.pt), at this stage's rates (load_state_dict brings
        the saved run's rates along)."""
        if self.cfg.init:  # the file the weights came from holds the moments too: already read
            ckpt, path = start, Path(self.cfg.init)
        else:
            path = self.out / "cc_last.pt"
            if not path.is_file():
                raise FileNotFoundError(f"carry_optimiser: {path} does not exist (stage cc writes "
                                        f"it at its last step)")
            ckpt = load_checkpoint(path, map_location="cpu")
            if int(ckpt["step"]) != int(start["step"]):
                raise ValueError(f"carry_optimiser: {path} is from step {int(ckpt['step'])}, the "
                                 f"weights in {self.out / 'cc.pt'} from another (an unfinished or "
                                 f"later stage cc)")
        opts = [o for o in (self.opt_r, self.opt_p, self.opt_c) if o is not None]
        rates = [[(g["lr"], g["betas"]) for g in o.param_groups] for o in opts]  # this stage's
        self._load_optimisers(ckpt, path)
        for opt, kept in zip(opts, rates):
            for group, (lr, betas) in zip(opt.param_groups, kept):
                group["lr"], group["betas"] = lr, betas

    def _init_weights(self) -> dict:
        """Start from --init (either stage: fine-tuning), or stage nn from RUN_DIR/cc.pt.
        Returns that checkpoint."""
        path = Path(self.cfg.init) if self.cfg.init else self.out / "cc.pt"
        if not path.is_file() and not self.cfg.init:
            raise FileNotFoundError(f"stage nn starts from a CC checkpoint: {path} does not exist "
                                    f"(train stage cc into this folder first, or pass --init)")
        ckpt = load_checkpoint(path)  # read once: networks, and the critic when it has one
        recon, pose, _ = models_from_checkpoint(ckpt, path, self.device, self.cfg)
        self.recon.load_state_dict(recon.state_dict())
        self.pose.load_state_dict(pose.state_dict())
        if self.critic is not None and "critic" in ckpt:
            self.critic.load_state_dict(ckpt["critic"])
        if self.main and not self.cfg.init:
            # Stage nn takes its settings from the command line, not from cc.pt: a flag given to
            # stage cc and not repeated here silently changes the method halfway.
            changed = {k: ab for k, ab in config_differences(ckpt["config"], self.cfg).items()
                       if k not in RESUMABLE_CHANGES | STAGE_SCHEDULE | {"stage", "init"}}
            if changed:
                detail = ", ".join(f"{k}: cc {a!r} -> nn {b!r}"
                                   for k, (a, b) in sorted(changed.items()))
                warnings.warn(f"stage nn runs with other settings than {path} was trained with "
                              f"({detail}); repeat stage cc's flags unless this is intended",
                              stacklevel=2)
        return ckpt

    def _teacher_labels(self, reuse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Self-training labels: the viewpoint the --pose-labels run's pose net (its selector's
        hypothesis) gives each training image, and the indices of the images kept
        (pose_label_keep; sorted), or those a labels file gives. Rank 0 computes them into
        RUN_DIR/pose_labels.pt and every rank reads that file; with ``reuse`` (a resumed run,
        stage nn) an existing file is read as it is, so the run keeps the labels it started with
        even when the teacher has moved on.
        Returns (M, 2) on the training device and (K,) indices."""
        cfg = self.cfg
        saved_path = self.out / "pose_labels.pt"
        source = str(Path(cfg.pose_labels).resolve())
        if self.main and not (reuse and saved_path.is_file()):
            views, keep, checkpoint = self._label_with_teacher()
            # In the labels-file form, so this run's labels can also be passed as --pose-labels.
            save_pose_labels(saved_path, self.data.models, self.data.views, views, keep,
                             keep_share=cfg.pose_label_keep, source=source, checkpoint=checkpoint)
        if self.world > 1:
            dist.barrier()
        saved = torch.load(saved_path, map_location="cpu", weights_only=True)
        if (saved["models"] != self.data.models or not torch.equal(saved["views"], self.data.views.cpu())
                or saved["source"] != source or saved["keep_share"] != cfg.pose_label_keep):
            raise ValueError(f"{saved_path} holds labels from {saved['source']} (keeping "
                             f"{saved['keep_share']}) for other training data or from another "
                             f"run or share than --pose-labels {source} --pose-label-keep "
                             f"{cfg.pose_label_keep}; delete it to relabel")
        return saved["viewpoints"].to(self.device), saved["keep"].to(self.device)

    @torch.no_grad()
    def _label_with_teacher(self) -> tuple[torch.Tensor, torch.Tensor, str]:
        """(viewpoints (M, 2), kept indices (K,), the teacher checkpoint's path) for
        :meth:`_teacher_labels`."""
        cfg = self.cfg
        try:  # a run folder's final checkpoint: nn.pt once stage nn has finished
            path = find_checkpoint(cfg.pose_labels)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"pose_labels: {exc}") from exc
        labels = read_labels_file(path)
        if labels is not None:
            return self._labels_from_file(path, labels)
        ckpt = load_checkpoint(path)
        recon, pose, teacher = models_from_checkpoint(ckpt, path, self.device)
        if teacher.image_size != cfg.image_size or teacher.supervision != "self":
            raise ValueError(f"pose_labels: {path} was trained {teacher.supervision}-supervised "
                             f"at {teacher.image_size} px; the labels need a self-supervised run "
                             f"at this run's image_size {cfg.image_size}")
        if ckpt.get("category") and ckpt["category"] != self.category:
            raise ValueError(f"pose_labels: {path} was trained on {ckpt['category']!r}, this run "
                             f"on {self.category!r}")
        recon.eval()
        pose.eval()
        views, gaps = [], []
        for i in range(0, len(self.data), 256):
            image, mask = self.data.images[i:i + 256], self.data.masks[i:i + 256]
            v = pose(image).float()  # (b, 2)
            views.append(v)
            if cfg.pose_label_keep < 1:
                xyz, rgb = recon(image)
                gaps.append(side_gap(xyz.float(), rgb.float(), v, image, mask, teacher))
        views = torch.cat(views)  # (M, 2)
        gap = torch.cat(gaps) if gaps else torch.zeros(len(views), device=views.device)
        if not (views.isfinite().all() and gap.isfinite().all()):
            raise ValueError(f"pose_labels: {path} gives non-finite viewpoints or clouds")
        keep = torch.arange(len(views), device=views.device)
        if gaps:  # the images whose turned view the teacher's cloud explains worst
            k = round(cfg.pose_label_keep * len(views))
            if k < cfg.batch_size:
                raise ValueError(f"pose_label_keep {cfg.pose_label_keep} keeps {k} of "
                                 f"{len(views)} training images, fewer than batch_size "
                                 f"{cfg.batch_size}")
            keep = gap.topk(k).indices.sort().values
        return views, keep, str(path.resolve())

    def _labels_from_file(self, path: Path, labels: dict) -> tuple[torch.Tensor, torch.Tensor, str]:
        """:meth:`_label_with_teacher` for a labels file (:func:`read_labels_file`, which has
        checked its form): its viewpoints (M, 2) and kept indices (K,), sorted, checked against
        the training data."""
        same = labels["models"] == self.data.models and torch.equal(labels["views"].cpu(),
                                                                    self.data.views.cpu())
        if not same:
            raise ValueError(f"pose_labels: {path} labels other training data than "
                             f"{self.category}'s training split here (models or view indices differ)")
        if self.cfg.pose_label_keep < 1:
            raise ValueError(f"pose_labels: {path} is a labels file, which says itself which images "
                             f"to keep; pose_label_keep must be 1, got {self.cfg.pose_label_keep}")
        keep = labels["keep"].long().sort().values.to(self.device)
        if len(keep) < self.cfg.batch_size:
            raise ValueError(f"pose_labels: {path} keeps {len(keep)} images, fewer than batch_size "
                             f"{self.cfg.batch_size}")
        return labels["viewpoints"].float().to(self.device), keep, str(path.resolve())

    def _neighbours(self) -> torch.Tensor:
        """Mine once (rank 0), store in the run folder, share through the file."""
        path = self.out / "neighbours.pt"
        self.mined_neighbours = self.main and not path.is_file()  # mined here, not read
        if self.mined_neighbours:
            emb = embed_images(self.recon, self.data.images)
            idx = nearest_neighbours(emb, self.cfg.neighbours)
            save_atomic({"models": self.data.models, "indices": idx.cpu()}, path)
        if self.world > 1:
            dist.barrier()
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved["models"] != self.data.models or saved["indices"].shape[1] != self.cfg.neighbours:
            raise ValueError(f"{path} was mined for other training data or k; delete it to re-mine")
        return saved["indices"].to(self.device)

    # ---------------------------------------------------------------------------- the loop
    def sample_step(self) -> tuple[dict, torch.Tensor, dict | None]:
        """This rank's share of one global batch; every rank draws the same global numbers."""
        cfg, g, dev = self.cfg, self.gen, self.device
        b = cfg.batch_size
        idx = torch.randint(len(self.data), (b,), generator=g, device=dev)
        views = camera.sample_viewpoints(b * (cfg.n_views - 1), generator=g, device=dev)
        views = views.view(b, cfg.n_views - 1, 2)
        nb_idx = None
        if self.neigh is not None:
            pick = torch.randint(cfg.neighbours, (b,), generator=g, device=dev)
            nb_idx = self.neigh[idx, pick]
        part = slice(self.rank * b // self.world, (self.rank + 1) * b // self.world)
        batch = self.data.batch(idx[part])
        neighbour = self.data.batch(nb_idx[part]) if nb_idx is not None else None
        if cfg.flip_augment:  # an input and its neighbour flip together: both mirrored objects
            flip = (torch.rand(b, generator=g, device=dev) < 0.5)[part]
            batch = flip_batch(batch, flip)
            neighbour = flip_batch(neighbour, flip) if neighbour is not None else None
        if cfg.pose_cycle_cut_share > 0:  # drawn here, from the run's generator: a captured step replays them
            batch["pose_cycle_cut"] = torch.rand(b, 2, generator=g, device=dev)[part]
        if cfg.pose_label_noise_deg > 0:  # noisy labels (an ablation): the same draws on every rank
            for d in filter(None, (batch, neighbour)):
                noise = torch.randn(b, 2, generator=g, device=dev) * math.radians(cfg.pose_label_noise_deg)
                d["viewpoint"] = d["viewpoint"] + noise[part]
        return batch, views[part], neighbour

    def train(self) -> dict:
        cfg = self.cfg
        writer = self._writer()
        log_file = self._open_log() if self.main else None
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.stage}/{cfg.supervision}",
                   disable=not (cfg.progress and self.main), unit="step", dynamic_ncols=True)
        start, start_step = time.time(), self.step
        # Steady throughput is timed after the first steps (capture, allocator and cuDNN warm-up).
        warm = 10 if cfg.steps - start_step > 20 else None
        warm_time = end = None
        run_step = self.optimise
        when = ("this step" if self.world == 1 or self._agree_every() == 1
                else f"at most {self._agree_every()} steps")
        stop = StopRequest(f"ssl3d: interrupted: stopping after {when} to save {self.last_path}; "
                           f"interrupt again to quit without saving" if self.main else None).install()
        try:
            while self.step < cfg.steps:
                batch, views, neighbour = self.sample_step()
                if cfg.lr_decay_steps:
                    self._set_lr(scheduled_lr(cfg.lr, self.step, cfg.steps, cfg.lr_decay_steps))
                # while the ramp lasts (after it the net reads every dim, as it was built to);
                # in place: a captured step reads the new mask
                if cfg.shape_code_ramp_steps and self.step <= cfg.shape_code_ramp_steps:
                    set_code_dims(self._networks()["recon"],
                                  code_dims_at(self.code_dims, self.step, cfg.shape_code_ramp_steps))
                if view_distribution_weight(cfg, self.step) != view_distribution_weight(cfg, self.step - 1):
                    run_step = self.optimise  # a captured step holds the prior's weight: capture anew
                if cfg.cuda_graph and run_step == self.optimise:
                    run_step = self._captured(batch, views, neighbour)
                terms, extras = run_step(batch, views, neighbour)
                if self.ema is not None:
                    self._update_ema()
                self.step += 1
                bar.update(1)
                last = self.step == cfg.steps
                if self.step - start_step == warm:
                    warm_time = self._synchronized_time()
                if last:  # before the last log and checkpoint write, which are not steps
                    end = self._synchronized_time()
                for k, v in terms.items():
                    self.log_sums[k] = self.log_sums.get(k, 0) + v
                self.log_counted += 1
                if self.step % cfg.log_every == 0 or last:
                    means = self._global_means(self.log_sums, self.log_counted)
                    self.log_sums, self.log_counted = {}, 0
                    self._check_finite(means)
                    self._log(means, writer, log_file, bar)
                    if self._warn_pose_collapse(means) and cfg.stop_on_collapse:
                        self.save(self.last_path, training_state=True)
                        why = (f"stopped at step {self.step} of {cfg.steps} on a pose collapse "
                               f"(--stop-on-collapse); its state is in {self.last_path.name}")
                        if self.main:
                            stopped_path(self.out, cfg.stage).write_text(why + "\n")
                        raise PoseCollapse(f"{self.out}: {why}. Train again with another --seed")
                if writer is not None and (self.step % cfg.image_every == 0 or self.step == 1):
                    self._log_images(writer, batch, extras)
                if self.step % cfg.checkpoint_every == 0 or last:
                    self._check_finite({k: float(v) for k, v in terms.items()})
                    self.save(self.last_path, training_state=True)
                if cfg.snapshot_every and self.step % cfg.snapshot_every == 0:
                    self.save(self.out / "snapshots" / f"{cfg.stage}_{self.step:06d}.pt",
                              training_state=False)
                if not last and self._stop_requested(stop):
                    if self.step % cfg.checkpoint_every:
                        self.save(self.last_path, training_state=True)
                    raise TrainingInterrupted(
                        f"{self.out}: stopped at step {self.step} of {cfg.steps}; its state is in "
                        f"{self.last_path.name}: continue with --resume (the same command and flags)",
                        quiet=not self.main)
        finally:
            stop.restore()
            bar.close()
            if log_file:
                log_file.close()
            if writer is not None:
                writer.close()
        # A ramp as long as the stage ends one step short of its dims: the trained net reads them
        # all, as a net loaded from the checkpoint does (the mask is not saved).
        set_code_dims(self._networks()["recon"], self.code_dims)
        self.save(self.final_path, training_state=False)
        if self.main:
            stopped_path(self.out, cfg.stage).unlink(missing_ok=True)  # e.g. resumed without the stop
        elapsed = time.time() - start
        done = self.step - start_step
        summary = {"steps": self.step, "seconds": elapsed,
                   "samples_per_second": done * cfg.batch_size / max(elapsed, 1e-9),
                   "checkpoint": str(self.final_path)}
        if warm_time is not None:  # global samples/s of the steps alone, the first 10 left out
            summary["steady_samples_per_second"] = ((done - warm) * cfg.batch_size
                                                    / max(end - warm_time, 1e-9))
        return summary

    def _agree_every(self) -> int:
        """Steps between the processes' checks for a stop: often enough that torchrun, which
        kills its workers some seconds after passing a signal on, leaves them time to save."""
        return min(self.cfg.log_every, 10)

    def _stop_requested(self, stop: StopRequest) -> bool:
        """Whether to stop on a signal. Every process must stop at the same step, so with
        several they agree every few steps (one small all-reduce)."""
        if self.world == 1:
            return stop.requested
        if self.step % self._agree_every():
            return False
        flag = torch.tensor([float(stop.requested)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _open_log(self):
        """train_<stage>.log for appending. A fresh run starts it anew; a resumed one drops the
        lines past its checkpoint's step, which the resumed steps will write again."""
        path = self.out / f"train_{self.cfg.stage}.log"
        if self.step == 0:
            return open(path, "w")
        if path.is_file():
            kept = [line for line in path.read_text().splitlines(keepends=True)
                    if (n := logged_step(line)) is not None and n <= self.step]
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(kept))
            os.replace(tmp, path)
        return open(path, "a")

    @torch.no_grad()
    def _update_ema(self) -> None:
        """average <- d * average + (1 - d) * weights for both networks, after step t (0-based)
        of the stage, with d = ema_decay_at(ema_decay, t) (one fused kernel per network;
        outside a captured step, after it has updated the weights)."""
        d = ema_decay_at(self.cfg.ema_decay, self.step)
        for key, net in self._networks().items():
            torch._foreach_lerp_(list(self.ema[key].parameters()), list(net.parameters()), 1 - d)

    def _networks(self) -> dict[str, torch.nn.Module]:
        """The live networks by checkpoint key, unwrapped from DistributedDataParallel."""
        return {key: getattr(net, "module", net) for key, net in (("recon", self.recon), ("pose", self.pose))}

    def _set_lr(self, rate: float) -> None:
        """Set the decaying networks' rate (cfg.lr_decay_nets); the others keep cfg.lr."""
        nets = self.cfg.lr_decay_nets
        for opt, decays in ((self.opt_r, nets != "pose"), (self.opt_p, nets != "recon")):
            for group in opt.param_groups:
                value = rate if decays else self.cfg.lr
                if torch.is_tensor(group["lr"]):
                    group["lr"].fill_(value)
                else:
                    group["lr"] = value

    def _synchronized_time(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.time()

    def _global_means(self, sums: dict, counted: int) -> dict[str, float]:
        """Each term's mean over the steps summed and, under torchrun, over the processes (each
        holds an equal share of the global batch), so the log is that of the whole batch."""
        keys = sorted(sums)
        values = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32, device=self.device)
                              for k in keys]) / counted  # (terms,)
        mean_over_processes([values])
        return dict(zip(keys, values.tolist()))

    def optimise(self, batch: dict, views: torch.Tensor, neighbour: dict | None):
        """One step of both optimisers; returns the loss terms and the projections to log."""
        return optimisation_step(self.recon, self.pose, self.opt_r, self.opt_p, batch, views,
                                 self.cfg, neighbour, self.cfg.amp and self.device.type == "cuda",
                                 self.step, self.critic, self.opt_c, self.sync_gradients)

    def _captured(self, batch: dict, views: torch.Tensor, neighbour: dict | None):
        """Capture :meth:`optimise` in a CUDA graph on static copies of the inputs; returns a
        step function that copies new inputs in and replays it. The warm-up steps a capture
        needs (they allocate gradients and optimiser state) are undone, so training goes on
        exactly where it was."""
        copy = lambda d: None if d is None else {  # noqa: E731
            k: v.clone() if torch.is_tensor(v) else v for k, v in d.items()}
        s_batch, s_views, s_nb = copy(batch), views.clone(), copy(neighbour)
        params = [*self.recon.parameters(), *self.pose.parameters()]
        opts = [self.opt_r, self.opt_p]
        if self.critic is not None:
            params += list(self.critic.parameters())
            opts.append(self.opt_c)
        before = [p.detach().clone() for p in params]
        state_before = [{p: {k: v.clone() for k, v in st.items() if torch.is_tensor(v)}
                         for p, st in opt.state.items()} for opt in opts]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.optimise(s_batch, s_views, s_nb)
            with torch.no_grad():
                for p, v in zip(params, before):
                    p.copy_(v)
                for opt, saved in zip(opts, state_before):
                    for p, st in opt.state.items():
                        for k, v in st.items():
                            if torch.is_tensor(v):  # a fresh run had no state: zeros, step 0
                                v.copy_(saved[p][k] if p in saved else torch.zeros_like(v))
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self.optimise(s_batch, s_views, s_nb)

        def replay(batch, views, neighbour):
            for static, new in ((s_batch, batch), (s_nb, neighbour or {})):
                for k, v in new.items():
                    if torch.is_tensor(v):
                        static[k].copy_(v)
            s_views.copy_(views)
            graph.replay()
            return out

        return replay

    # ---------------------------------------------------------------------------- outputs
    def state(self, training_state: bool) -> dict:
        # The final file holds the weight average when there is one: it is the model to use.
        nets = self.ema if self.ema is not None and not training_state else self._networks()
        out = {"format": FORMAT, "config": self.cfg.to_dict(), "stage": self.cfg.stage,
               "category": self.category, "data_dir": self.data_dir, "step": self.step,
               "recon": nets["recon"].state_dict(), "pose": nets["pose"].state_dict()}
        if training_state:
            out.update(opt_recon=self.opt_r.state_dict(), opt_pose=self.opt_p.state_dict(),
                       rng={"batch": self.gen.get_state(), "torch": torch.get_rng_state()})
            # A stop between log lines (an interrupt) keeps the sums towards the next line, so a
            # resumed run logs what an uninterrupted one would. Each process holds its own sums
            # and only the first one saves, so with several the next line averages fewer steps.
            out["log"] = {"collapse_logs": self.collapse_logs}
            if self.log_counted and self.world == 1:
                out["log"].update(sums={k: v.detach().cpu() for k, v in self.log_sums.items()},
                                  counted=self.log_counted)
            if self.ema is not None:
                out.update(ema_recon=self.ema["recon"].state_dict(), ema_pose=self.ema["pose"].state_dict())
        if self.critic is not None:  # also in the final file: stage nn goes on with it
            out["critic"] = self.critic.state_dict()
            if training_state:
                out["opt_critic"] = self.opt_c.state_dict()
        return out

    def save(self, path: Path, training_state: bool) -> None:
        if self.main:
            save_atomic(self.state(training_state), path)
            if training_state:
                self.last_good = str(path)
        if self.world > 1:
            dist.barrier()

    def _check_finite(self, values: dict[str, float]) -> None:
        bad = sorted(k for k, v in values.items() if not math.isfinite(v))
        if self.world > 1:  # every rank must stop together, or the others wait forever
            flag = torch.tensor([float(len(bad))], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if flag.item() > 0 and not bad:
                bad = ["on another process"]
        if bad:
            raise RuntimeError(
                f"non-finite loss at step {self.step} ({', '.join(bad)}); last finite checkpoint: "
                f"{self.last_good or 'none (no checkpoint written yet)'}")

    def _writer(self):
        if not self.main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional at run time; the text log stays
            return None
        return SummaryWriter(str(self.out / "tb" / self.cfg.stage), purge_step=self.step + 1)

    def _log(self, means: dict, writer, log_file, bar) -> None:
        if not self.main:
            return
        if writer is not None:
            for k, v in means.items():
                writer.add_scalar(f"loss/{k}", v, self.step)
        line = f"step {self.step} " + " ".join(f"{k}={v:.6g}" for k, v in sorted(means.items()))
        log_file.write(line + "\n")
        log_file.flush()
        bar.set_postfix(recon=f"{means['loss_recon']:.4g}", pose=f"{means['loss_pose']:.4g}")

    def _warn_pose_collapse(self, means: dict) -> bool:
        """Warn once (and return True, on every process alike) when the logged
        ``view_distribution`` (self-supervision) says the pose net puts the images at few azimuths: a pose collapse (README, Results), which the view prior
        makes rare but has not removed (a chair seed on 6,000 models, session 12). Early logs do
        not count (an untrained pose net gives every image about the same azimuth): only from
        half the steps on, and only when two logs in a row are high. The limit, 0.25 at batch 64,
        also catches a partial collapse: a chair run that stayed at 0.37-0.48 scored 10.77,
        against 3.9-5.9 for the preset's recipes whose second-half logs stayed at or below 0.27
        (session 15; logs every 500 steps). It misses milder bunching: chairs at 0.16-0.18 had
        44.5-71.7% pose accuracy (one a half collapse, 7.30). A limit of 0.13 would have caught
        them without flagging any scored run with 75% or more (those stay at or below 0.10), but
        an unscored run sat at 0.12-0.13 and the default 100-step logs are noisier than the
        500-step logs it was measured on, so the limit stays (benchmarks/collapse_limit.py,
        session 19). From step EARLY_COLLAPSE_STEP to half the steps a higher limit, 0.8 at batch
        64, warns of full collapses sooner, when stopping can save much of the run: in the 196
        chair summaries with two 500-step logs or more in that window, the 163 runs that posed 60%
        or more stayed at or below 0.40 two logs in a row there, and 14 of the 33 below 60%
        reached 0.85-1.99 (benchmarks/collapse_limit.py --early-from 1500, session 35)."""
        value, b = means.get("view_distribution"), self.cfg.batch_size // self.world
        early = 2 * self.step < self.cfg.steps
        if not early:
            limit = max(0.25, 8 / b)  # uniform azimuths give about 2 / b, one azimuth 2
        elif self.step >= EARLY_COLLAPSE_STEP:
            limit = max(0.8, 32 / b)
        else:
            limit = float("inf")  # an untrained pose net gives every image about the same azimuth
        high = value is not None and value > limit
        was_high, self.collapse_logs = self.collapse_logs, (self.collapse_logs + 1 if high else 0)
        if not high or not was_high or self.warned_collapse:
            return False
        self.warned_collapse = True  # the means are every process's: all of them get here together
        if self.main:
            when = f", before half the {self.cfg.steps} steps" if early else ""
            warnings.warn(f"step {self.step}: the pose net puts the images at few azimuths "
                          f"(view_distribution {value:.2f} > {limit:.2f} in two logs in a row{when}; "
                          f"uniform views give about {2 / b:.2f}): a pose collapse, after which runs "
                          f"score far worse. Consider training again with another --seed", stacklevel=2)
        return True

    def _log_images(self, writer, batch, extras) -> None:
        n = min(4, batch["image"].shape[0])
        writer.add_images("input/image", batch["image"][:n].float(), self.step)
        writer.add_images("input/mask", batch["mask"][:n, None].float(), self.step)
        writer.add_images("projection/image", extras["images"][:n].detach().clamp(0, 1), self.step)
        writer.add_images("projection/mask", extras["silhouettes"][:n, None].detach(), self.step)


def train(cfg: TrainConfig, data_dir, category: str, out_dir, resume: bool = False) -> dict:
    """Train one stage; returns a summary (steps, seconds, samples/s, final checkpoint)."""
    out, fresh = Path(out_dir), not Path(out_dir).exists()
    try:
        trainer = Trainer(cfg, data_dir, category, out_dir, resume)
    except Exception:
        if fresh and out.is_dir() and not any(out.iterdir()):
            try:  # a run that failed its checks leaves no empty folder behind
                out.rmdir()
            except OSError:  # another process of the run got there first
                pass
        raise
    return trainer.train()

