"""Mask cross-entropy in both forms of METHOD section 8.

* ``released``: the authors feed the tanh silhouette (already a value in [0, 1)) into a sigmoid
  cross-entropy as if it were a logit, so the "probability" seen is sigmoid(M) in [0.5, 0.73).
* ``intended``: binary cross-entropy on the silhouette as a probability.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssl3d.ops.affinity import _check_masks

EPS = 1e-6
"""Probabilities are clamped to [EPS, 1 - EPS] before the logarithm."""


def bce_released(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Sigmoid cross-entropy with ``pred`` taken as logits. pred, gt: (B, H, W). Returns (B,)."""
    _check_masks(pred, gt)
    return F.binary_cross_entropy_with_logits(pred, gt, reduction="none").mean((1, 2))


def bce_intended(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with ``pred`` as a probability. pred, gt: (B, H, W). Returns (B,)."""
    _check_masks(pred, gt)
    p = pred.clamp(EPS, 1 - EPS)
    return -(gt * torch.log(p) + (1 - gt) * torch.log1p(-p)).mean((1, 2))


BCE_FORMS = {"released": bce_released, "intended": bce_intended}
"""Mask-BCE form name -> function(pred, gt) -> (B,)."""
