"""Checkpoints: written atomically, loaded without executing code, carrying their config.

A checkpoint is a plain dict of tensors and primitives::

    {"format": 1, "config": TrainConfig.to_dict(), "step": int, "stage": str,
     "recon": state_dict, "pose": state_dict,
     "critic": state_dict,  # only with the view prior (w_view_prior > 0)
     # training state, absent from exported models:
     "opt_recon": ..., "opt_pose": ..., "opt_critic": ..., "rng": {...},
     "ema_recon": ..., "ema_pose": ...}  # with ema_decay: the weight average ("recon" and
                                         # "pose" are then the live weights; a final file holds
                                         # the average under "recon" and "pose")

so ``torch.load(path, weights_only=True)`` reads it and :func:`load_models` rebuilds the networks
from the file alone. A shipped model may store a weight ``w`` as int8 ``w.q8`` plus a per-row
float scale ``w.q8scale`` (:func:`quantize_state`), expanded back when loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ssl3d.models import PoseNet, ReconstructionNet
from ssl3d.training.config import ARCHITECTURE_FIELDS, TrainConfig

FORMAT = 1
LABELS_FORMAT = "ssl3d-pose-labels-1"


def save_atomic(obj: dict, path: str | os.PathLike) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves a
    half-written checkpoint under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def labels_problem(labels: dict) -> str | None:
    """What is wrong with a pose-labels dict (:func:`save_pose_labels`), or None: "models" a
    list of M model ids, "views" (M,) view indices, "viewpoints" (M, 2) finite floats, "keep"
    (K,) distinct integer indices in [0, M)."""
    missing = [k for k in ("models", "views", "viewpoints", "keep") if k not in labels]
    if missing:
        return f"it lacks {', '.join(missing)}"
    models, views, viewpoints, keep = (labels[k] for k in ("models", "views", "viewpoints", "keep"))
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        return "models must be a list of model ids"
    m = len(models)
    if not torch.is_tensor(views) or views.shape != (m,):
        return f"views must be a tensor of shape ({m},), got {getattr(views, 'shape', type(views))}"
    if (not torch.is_tensor(viewpoints) or viewpoints.shape != (m, 2)
            or not viewpoints.is_floating_point() or not viewpoints.isfinite().all()):
        return (f"viewpoints must be finite floats of shape ({m}, 2), got "
                f"{getattr(viewpoints, 'shape', type(viewpoints))}, non-finite or not floats")
    if (not torch.is_tensor(keep) or keep.ndim != 1 or keep.dtype == torch.bool
            or keep.is_floating_point() or keep.is_complex()):
        return (f"keep must be a 1-D tensor of integer indices (not a mask), got "
                f"{getattr(keep, 'dtype', type(keep))} of shape {getattr(keep, 'shape', '-')}")
    if len(keep) and (keep.min() < 0 or keep.max() >= m):
        return f"keep's indices must lie in [0, {m})"
    if len(keep.unique()) != len(keep):
        return "keep lists an image more than once"
    return None


def save_pose_labels(path: str | os.PathLike, models: list[str], views: torch.Tensor,
                     viewpoints: torch.Tensor, keep: torch.Tensor, **info) -> None:
    """Write pose labels for a training split, for ``--pose-labels FILE``: the split's model ids
    and view indices (M,), a viewpoint (M, 2) in radians per image and the distinct indices (K,)
    of the images to train on; ``info`` (str, int, float, bool or None values) records where they
    came from. Raises ValueError if they are malformed (:func:`labels_problem`)."""
    bad = [k for k, v in info.items() if not isinstance(v, (str, int, float, bool, type(None)))]
    if bad:  # anything else would make the file unreadable with weights_only
        raise ValueError(f"pose labels: info {', '.join(bad)} must be str, int, float, bool or None")
    cpu = lambda t: t.cpu() if torch.is_tensor(t) else t  # noqa: E731 (labels_problem names a non-tensor)
    labels = {"format": LABELS_FORMAT, "models": list(models), "views": cpu(views),
              "viewpoints": cpu(viewpoints), "keep": cpu(keep), **info}
    problem = labels_problem(labels)
    if problem:
        raise ValueError(f"pose labels for {path}: {problem}")
    labels["viewpoints"] = labels["viewpoints"].float()
    save_atomic(labels, path)


def read_labels_file(path: str | os.PathLike) -> dict | None:
    """The contents of a file :func:`save_pose_labels` wrote, or None for any other file (e.g. a
    checkpoint). Loaded without executing code. Raises ValueError naming the file if it is a
    labels file but malformed."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file: the caller's own reader says what is wrong with it
        return None
    if not (isinstance(obj, dict) and obj.get("format") == LABELS_FORMAT):
        return None
    problem = labels_problem(obj)
    if problem:
        raise ValueError(f"pose labels file {path}: {problem}")
    return obj


def load_failure(exc: Exception) -> str:
    """Why ``torch.load(..., weights_only=True)`` failed, in a line. torch's own text for content
    it will not unpickle suggests loading with weights_only=False, which could run the file's
    code: ssl3d never does, so only the finding is kept."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        found = " ".join(text.split("WeightsUnpickler error:", 1)[1]
                         .split("Check the documentation", 1)[0].split(" Please ", 1)[0].split())
        if not found.startswith("Unsupported global"):  # not an object it refuses: bad bytes
            return f"damaged or not a torch file ({found or 'unreadable content'})"
        return (f"it holds more than tensors and plain values ({found}), and ssl3d loads no "
                f"file that could run code")
    return f"{type(exc).__name__}: {' '.join(text.split())}"


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint safely (no code execution). Raises FileNotFoundError / ValueError naming
    the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say which
        raise ValueError(f"cannot read checkpoint {path} (not a file torch.save wrote, or a damaged "
                         f"one): {load_failure(exc)}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "config" not in ckpt:
        raise ValueError(f"{path} is not an ssl3d checkpoint (format {FORMAT})")
    return ckpt


def config_differences(ckpt_cfg: dict, cfg: TrainConfig) -> dict[str, tuple]:
    """Field -> (checkpoint's value, ``cfg``'s value) for every field where they differ. A field
    the checkpoint predates counts with its default, which is what that run used."""
    saved = {**TrainConfig().to_dict(), **ckpt_cfg}
    return {f: (saved[f], v) for f, v in cfg.to_dict().items() if saved[f] != v}


def check_compatible(ckpt_cfg: dict, cfg: TrainConfig, path) -> None:
    """The checkpoint's networks must have the shapes ``cfg`` asks for."""
    diff = {f: ab for f, ab in config_differences(ckpt_cfg, cfg).items()
            if f in ARCHITECTURE_FIELDS}
    if diff:
        detail = ", ".join(f"{f}: checkpoint {a} vs config {b}" for f, (a, b) in diff.items())
        raise ValueError(f"checkpoint {path} was trained with another architecture ({detail})")


def quantize_state(state: dict[str, torch.Tensor], min_numel: int = 4096) -> dict[str, torch.Tensor]:
    """Store every floating weight with at least ``min_numel`` entries and 2+ dimensions as int8
    with one scale per output row (symmetric, max-abs): about a quarter of float32's size.
    Others are kept as they are."""
    out = {}
    for k, v in state.items():
        if v.is_floating_point() and v.ndim >= 2 and v.numel() >= min_numel:
            rows = v.float().reshape(v.shape[0], -1)
            scale = rows.abs().amax(1).clamp_min(1e-12) / 127.0  # (rows,)
            out[k + ".q8"] = torch.round(rows / scale[:, None]).to(torch.int8).reshape(v.shape)
            out[k + ".q8scale"] = scale.half()
        else:
            out[k] = v
    return out


def dequantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`quantize_state` (up to rounding); plain states pass through."""
    out = {}
    for k, v in state.items():
        if k.endswith(".q8scale"):
            continue
        if k.endswith(".q8"):
            name = k[:-3]
            scale = state[name + ".q8scale"].float()
            out[name] = (v.float().reshape(v.shape[0], -1) * scale[:, None]).reshape(v.shape)
        else:
            out[k] = v
    return out


def load_models(path: str | os.PathLike, device="cpu", cfg: TrainConfig | None = None):
    """Rebuild (recon, pose, config) from a checkpoint file alone; with ``cfg``, check that the
    checkpoint's architecture matches it first."""
    return models_from_checkpoint(load_checkpoint(path), path, device, cfg)


def require_device(device: torch.device | str) -> torch.device:
    """``device`` as a torch.device; a RuntimeError saying so if it asks for CUDA on a machine
    without it (instead of torch's assertion deep inside the first .to())."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA device is available")
    return device


def models_from_checkpoint(ckpt: dict, path, device="cpu", cfg: TrainConfig | None = None):
    """:func:`load_models` for a checkpoint already read by :func:`load_checkpoint` (``path``
    names it in errors)."""
    require_device(device)
    saved = TrainConfig.from_dict(ckpt["config"])
    if cfg is not None:
        check_compatible(ckpt["config"], cfg, path)
    recon = ReconstructionNet(saved.network_config())
    pose = PoseNet(saved.network_config())
    try:
        recon.load_state_dict(dequantize_state(ckpt["recon"]))
        pose.load_state_dict(dequantize_state(ckpt["pose"]))
    except (RuntimeError, KeyError) as exc:
        raise ValueError(f"checkpoint {path} does not match its own config: {exc}") from exc
    return recon.to(device), pose.to(device), saved


def find_checkpoint(run: str | os.PathLike) -> Path:
    """A checkpoint file, or the best final checkpoint of a run folder (nn.pt, then cc.pt)."""
    run = Path(run)
    if not run.exists():
        raise FileNotFoundError(f"{run} does not exist (expected a run folder or a checkpoint file)")
    if run.is_file():
        return run
    for name in ("nn.pt", "cc.pt"):
        if (run / name).is_file():
            return run / name
    unfinished = sorted(q.name for q in run.glob("*_last.pt"))
    hint = (f"; it holds {', '.join(unfinished)}, an unfinished run: train it on with --resume"
            if unfinished else "; train first")
    raise FileNotFoundError(f"no checkpoint in {run} (expected nn.pt or cc.pt{hint})")


def stopped_path(run_dir: str | os.PathLike, stage: str) -> Path:
    """The note a run stopped on a pose collapse (--stop-on-collapse) leaves in its folder
    (``ssl3d compare`` reads it); training the stage to its end removes it."""
    return Path(run_dir) / f"stopped_{stage}.txt"
