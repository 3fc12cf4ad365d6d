"""Checkpoints: written atomically, loaded without executing code, carrying their config.

A checkpoint is a plain dict of tensors and primitives::

    {"format": 1, "config": TrainConfig.to_dict(), "step": int, "stage": str,
     "recon": state_dict, "pose": state_dict,
     # training state, absent from exported models:
     "opt_recon": ..., "opt_pose": ..., "rng": {...}}

so ``torch.load(path, weights_only=True)`` reads it and :func:`load_models` rebuilds the networks
from the file alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ssl3d.models import PoseNet, ReconstructionNet
from ssl3d.training.config import ARCHITECTURE_FIELDS, TrainConfig

FORMAT = 1


def save_atomic(obj: dict, path: str | os.PathLike) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves a
    half-written checkpoint under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint safely (no code execution). Raises FileNotFoundError / ValueError naming
    the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say which
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "config" not in ckpt:
        raise ValueError(f"{path} is not an ssl3d checkpoint (format {FORMAT})")
    return ckpt


def check_compatible(ckpt_cfg: dict, cfg: TrainConfig, path) -> None:
    """The checkpoint's networks must have the shapes ``cfg`` asks for."""
    saved = {**TrainConfig().to_dict(), **ckpt_cfg}  # fields added later take their defaults
    diff = {f: (saved[f], getattr(cfg, f)) for f in ARCHITECTURE_FIELDS
            if saved[f] != getattr(cfg, f)}
    if diff:
        detail = ", ".join(f"{f}: checkpoint {a} vs config {b}" for f, (a, b) in diff.items())
        raise ValueError(f"checkpoint {path} was trained with another architecture ({detail})")


def load_models(path: str | os.PathLike, device="cpu", cfg: TrainConfig | None = None):
    """Rebuild (recon, pose, config) from a checkpoint file alone; with ``cfg``, check that the
    checkpoint's architecture matches it first."""
    ckpt = load_checkpoint(path)
    saved = TrainConfig.from_dict(ckpt["config"])
    if cfg is not None:
        check_compatible(ckpt["config"], cfg, path)
    recon = ReconstructionNet(saved.network_config())
    pose = PoseNet(saved.network_config())
    try:
        recon.load_state_dict(ckpt["recon"])
        pose.load_state_dict(ckpt["pose"])
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {path} does not match its own config: {exc}") from exc
    return recon.to(device), pose.to(device), saved
