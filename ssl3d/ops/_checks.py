"""Shared argument checks for the ops: clear ValueErrors before any arithmetic."""

from __future__ import annotations

import torch


def check_tensor(x: torch.Tensor, name: str, shape: tuple, finite: bool = True) -> None:
    """Check ``x`` is a floating tensor whose shape matches ``shape``.

    ``shape`` holds ints (exact size), ``None`` (any size) or strings (named sizes, used only in
    the message). Empty dimensions are rejected because every op here needs at least one element.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    want = "(" + ", ".join(str(s) if s is not None else "?" for s in shape) + ")"
    if x.ndim != len(shape):
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    for size, spec in zip(x.shape, shape):
        if isinstance(spec, int) and size != spec:
            raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); it needs at least one element")
    # The finiteness test needs a host-device sync on accelerators, which would stall every
    # training step; there the trainer's non-finite-loss check takes over.
    if finite and x.device.type == "cpu" and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")


def check_same_batch(*pairs: tuple[str, torch.Tensor]) -> None:
    """All tensors share their first dimension."""
    sizes = {name: t.shape[0] for name, t in pairs}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batch sizes differ: {sizes}")
