"""The reconstruction and pose networks (METHOD section 4).

Input images are (B, 3, H, W) in [0, 1]; H = W = image_size (64 in the paper). Each stride-2
convolution halves the resolution, so the encoders' flattened features have
channels * (H / 2^layers)^2 entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ssl3d.camera import wrap_angle
from ssl3d.ops.blur import gaussian_blur, gaussian_taps

STRUCTURE_CONVS = ((32, 3), (64, 3), (128, 3), (256, 5))
"""(channels, kernel) of the structure and pose encoders; every layer has stride 2."""
COLOUR_CONVS = ((32, 3), (64, 3))
"""(channels, kernel) of the colour encoder."""
CRITIC_CONVS = ((32, 3), (64, 3), (128, 3))
"""(channels, kernel) of the view prior's silhouette critic."""
ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True)}
"""Activation name -> module factory."""


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the networks; saved in every checkpoint so a model can be rebuilt from its file."""

    n_points: int = 1024
    """Points per predicted cloud."""
    image_size: int = 64
    """Input image height and width in pixels (a multiple of 16)."""
    hidden: int = 128
    """Width of the fully connected layers, the shape bottleneck included."""
    pose_hidden: int = 0
    """Width of the pose net's fully connected layers; 0 = ``hidden`` (the paper: one width)."""
    activation: str = "relu"
    """Hidden-layer nonlinearity: relu (the paper) or leaky_relu (slope 0.2; units cannot die)."""
    pose_hypotheses: int = 1
    """Viewpoints the pose net proposes per image (1 = the paper). With more, a selector head
    picks one at inference."""
    pose_sectors: bool = False
    """With several hypotheses: hypothesis j keeps its azimuth within 1.5 pi / M of 2 pi j / M
    (centre plus 1.5 pi / M * tanh(.), wrapped to [-pi, pi)), so every image always has a
    candidate in every direction; neighbouring sectors overlap by half, so no azimuth needs a
    saturated tanh, and with M a multiple of 4 the axes (0, +-90, 180 deg: a symmetric object's
    front, back and sides in the network's frame) are sector centres. The elevation stays free.
    False: each hypothesis ranges over the whole circle. No parameter depends on it."""
    pose_input_blur: float = 0.0
    """Standard deviation, in pixels, of a Gaussian blur the pose net applies to every input
    image before its encoder (0 = none, the paper). No parameter depends on it."""
    shape_code_scale: float = 1.0
    """Factor on the shape embedding before the structure decoder. 0 gives every image the same
    cloud, a shared template (a first phase, as Unicorn's progressive conditioning: the pose net
    must then explain every image with one shape); 1 = the paper. No parameter depends on it."""
    shape_code_dims: int = 0
    """How many of the shape embedding's ``hidden`` dims the structure decoder reads, the others
    zeroed (0 = all, the paper): a low-dimensional shape space, in which a cloud drawn to fit a
    silhouette from a wrong view may be harder to express than a chair. No parameter depends on
    it (the unread dims' weights stay as initialised)."""
    mirror_points: bool = False
    """The decoder predicts n_points / 2 points and their colours, and the cloud is those points
    followed by their mirror images across x = 0 (same colours): exactly left-right symmetric by
    construction, with no loss to satisfy and so no incentive to put points on the plane (which
    a mirror-Chamfer term leaves free). False = the paper. Needs an even n_points."""

    def __post_init__(self):
        if self.image_size % 16 or self.image_size <= 0:
            raise ValueError(f"image_size must be a positive multiple of 16, got {self.image_size}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.n_points <= 0 or self.hidden <= 0 or self.pose_hidden < 0:
            raise ValueError(f"n_points and hidden must be positive and pose_hidden >= 0, got "
                             f"{self.n_points}, {self.hidden}, {self.pose_hidden}")
        if self.pose_hypotheses < 1:
            raise ValueError(f"pose_hypotheses must be >= 1, got {self.pose_hypotheses}")
        if self.pose_sectors and self.pose_hypotheses < 2:
            raise ValueError(f"pose_sectors needs pose_hypotheses > 1, got {self.pose_hypotheses}")
        if not (math.isfinite(self.pose_input_blur) and 0 <= self.pose_input_blur <= self.image_size / 4):
            raise ValueError(f"pose_input_blur must be >= 0 and at most image_size / 4 = "
                             f"{self.image_size / 4:g} pixels, got {self.pose_input_blur}")
        if not (math.isfinite(self.shape_code_scale) and self.shape_code_scale >= 0):
            raise ValueError(f"shape_code_scale must be >= 0, got {self.shape_code_scale}")
        if not 0 <= self.shape_code_dims <= self.hidden:
            raise ValueError(f"shape_code_dims must be in [0, hidden = {self.hidden}], got "
                             f"{self.shape_code_dims}")
        if self.mirror_points and self.n_points % 2:
            raise ValueError(f"mirror_points needs an even n_points, got {self.n_points}")


def conv_encoder(layers: tuple[tuple[int, int], ...], image_size: int,
                 activation: str = "relu", in_channels: int = 3) -> tuple[nn.Sequential, int]:
    """Stride-2 convolutions, each followed by the activation, flattened. Returns the module and
    its output width."""
    modules: list[nn.Module] = []
    c_in = in_channels
    for c_out, k in layers:
        modules += [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2), ACTIVATIONS[activation]()]
        c_in = c_out
    modules.append(nn.Flatten())
    side = image_size // 2 ** len(layers)
    return nn.Sequential(*modules), c_in * side * side


def mlp(widths: list[int], activation: str = "relu") -> nn.Sequential:
    """Linear layers with the activation after each (including the last)."""
    modules: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        modules += [nn.Linear(a, b), ACTIVATIONS[activation]()]
    return nn.Sequential(*modules)


class ReconstructionNet(nn.Module):
    """Image -> coloured point cloud: a structure branch (xyz) and a colour branch (rgb)."""

    def __init__(self, cfg: NetworkConfig = NetworkConfig()):
        super().__init__()
        self.cfg = cfg
        h, n, act = cfg.hidden, cfg.n_points, cfg.activation
        self.structure_encoder, width = conv_encoder(STRUCTURE_CONVS, cfg.image_size, act)
        self.shape_bottleneck = mlp([width, h], act)  # the "shape embedding"
        # code_mask (hidden,): 1 for each embedding dim the decoder reads, the first
        # shape_code_dims (0: all), fewer during training's progressive conditioning
        # (set_code_dims). A buffer, not saved: a loaded net reads the dims its config gives.
        self.register_buffer("code_mask", torch.ones(h), persistent=False)
        set_code_dims(self, cfg.shape_code_dims or h)
        self.structure_head = mlp([h, h, h], act)  # -> h
        n = n // 2 if cfg.mirror_points else n  # points the decoder predicts
        self.xyz = nn.Linear(h, n * 3)
        self.colour_encoder, cwidth = conv_encoder(COLOUR_CONVS, cfg.image_size, act)
        self.colour_bottleneck = mlp([cwidth, h], act)
        self.colour_head = mlp([h, h, h], act)
        self.colour_fuse = mlp([2 * h, h], act)  # after concatenating h
        self.rgb = nn.Linear(h, n * 3)

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """Shape and colour bottlenecks, concatenated: (B, 3, H, W) -> (B, 2 * hidden)."""
        return torch.cat([self.shape_bottleneck(self.structure_encoder(image)),
                          self.colour_bottleneck(self.colour_encoder(image))], dim=1)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """image: (B, 3, H, W). Returns xyz (B, N, 3) and rgb (B, N, 3) in (0, 1)."""
        _check_image(image, self.cfg.image_size)
        b = image.shape[0]
        code = self.shape_bottleneck(self.structure_encoder(image))  # (B, hidden)
        h = self.structure_head(code * (self.code_mask * self.cfg.shape_code_scale))
        xyz = self.xyz(h).view(b, -1, 3)  # (B, N*3) -> (B, N, 3)
        c = self.colour_head(self.colour_bottleneck(self.colour_encoder(image)))
        rgb = torch.sigmoid(self.rgb(self.colour_fuse(torch.cat([c, h], dim=1)))).view(b, -1, 3)
        if self.cfg.mirror_points:  # (B, N/2, 3) -> (B, N, 3): the points, then their mirrors
            xyz = torch.cat([xyz, torch.cat([-xyz[..., :1], xyz[..., 1:]], -1)], 1)
            rgb = torch.cat([rgb, rgb], 1)
        return xyz, rgb


def set_code_dims(recon: ReconstructionNet, dims: int) -> None:
    """Let the structure decoder read only the first ``dims`` of the shape embedding's ``hidden``
    dims (0: every image gets one cloud, a template): recon.code_mask (hidden,) set to 1 for
    those, 0 for the rest, in place, so a captured CUDA graph sees it."""
    h = recon.code_mask.numel()
    if not 0 <= dims <= h:
        raise ValueError(f"dims must be in [0, hidden = {h}], got {dims}")
    recon.code_mask.copy_(torch.arange(h, device=recon.code_mask.device) < dims)


class PoseNet(nn.Module):
    """Image -> viewpoint (azimuth, elevation) in radians, each in (-pi, pi).

    With ``pose_hypotheses`` = M > 1 the net proposes M viewpoints, their azimuths initially
    spread evenly round the circle, and a selector head scores them: silhouettes of symmetric
    shapes look alike from several viewpoints, and a single regressed pose averages those modes.
    Training scores the hypotheses by reprojection and trains only the best (and the selector to
    pick it); inference returns the selector's choice.
    """

    def __init__(self, cfg: NetworkConfig = NetworkConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder, width = conv_encoder(STRUCTURE_CONVS, cfg.image_size, cfg.activation)
        h, m = cfg.pose_hidden or cfg.hidden, cfg.pose_hypotheses
        self.head = mlp([width, h, h, h], cfg.activation)
        self.out = nn.Linear(h, 2 * m)
        if cfg.pose_sectors:  # centres 2 pi j / M; a buffer (not saved): a captured step copies nothing
            self.register_buffer("sector_centres", torch.tensor([2 * math.pi * j / m for j in range(m)]),
                                 persistent=False)
        if cfg.pose_input_blur > 0:  # a buffer (not saved), as the sector centres
            self.register_buffer("blur_taps", gaussian_taps(cfg.pose_input_blur), persistent=False)
        if m > 1:
            self.select = nn.Linear(h, m)
            if not cfg.pose_sectors:
                with torch.no_grad():  # azimuth biases at -pi + (2j + 1) pi / M (tanh space)
                    spread = torch.tensor([-1 + (2 * j + 1) / m for j in range(m)])
                    self.out.bias.view(m, 2)[:, 0] = torch.atanh(spread)

    def forward(self, image: torch.Tensor, all_hypotheses: bool = False):
        """image: (B, 3, H, W). Returns (B, 2) = pi * tanh(.), the selected hypothesis; with
        ``all_hypotheses`` (B, M, 2) viewpoints and (B, M) selector logits (zeros when M = 1).
        (One forward method for both, so DistributedDataParallel sees every call.)"""
        _check_image(image, self.cfg.image_size)
        if self.cfg.pose_input_blur > 0:
            image = gaussian_blur(image, self.blur_taps)
        f = self.head(self.encoder(image))
        views = math.pi * torch.tanh(self.out(f)).view(image.shape[0], -1, 2)  # (B, M, 2)
        m = views.shape[1]
        if self.cfg.pose_sectors:  # azimuth j within 1.5 pi / M of its centre, then wrapped
            az = self.sector_centres.to(views.dtype) + 1.5 * views[..., 0] / m
            views = torch.stack([wrap_angle(az), views[..., 1]], -1)
        logits = self.select(f) if m > 1 else views.new_zeros(views.shape[0], 1)
        if all_hypotheses:
            return views, logits
        return views[torch.arange(views.shape[0], device=views.device), logits.argmax(1)]


class SilhouetteCritic(nn.Module):
    """Silhouette -> logit that it is the cloud seen from the input's own viewpoint rather than
    from a random one: the discriminator of the adversarial view prior (``w_view_prior``; after
    Kato and Harada, "Learning view priors for single-view 3D reconstruction", CVPR 2019). Not
    part of the paper; used in training only."""

    def __init__(self, image_size: int = 64):
        super().__init__()
        self.image_size = image_size
        self.encoder, width = conv_encoder(CRITIC_CONVS, image_size, "leaky_relu", in_channels=1)
        self.out = nn.Linear(width, 1)

    def forward(self, silhouette: torch.Tensor) -> torch.Tensor:
        """silhouette: (B, S, S) in [0, 1]. Returns (B,) logits."""
        s = self.image_size
        if silhouette.ndim != 3 or silhouette.shape[1:] != (s, s):
            raise ValueError(f"silhouette must have shape (B, {s}, {s}), got {tuple(silhouette.shape)}")
        return self.out(self.encoder(silhouette.unsqueeze(1))).squeeze(1)


def l2_penalty(module: nn.Module, conv_weight: float = 1e-5, fc_weight: float = 1e-3) -> torch.Tensor:
    """The paper's declared weight decay: conv_weight * sum(w^2)/2 over conv kernels plus
    fc_weight * sum(w^2)/2 over fully connected weights (TensorFlow's l2 regulariser). The released
    code declares it but never adds it to the losses (METHOD section 8)."""
    total = torch.zeros((), device=next(module.parameters()).device)
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            total = total + conv_weight * 0.5 * (m.weight ** 2).sum()
        elif isinstance(m, nn.Linear):
            total = total + fc_weight * 0.5 * (m.weight ** 2).sum()
    return total


def _check_image(image: torch.Tensor, size: int) -> None:
    if image.ndim != 4 or image.shape[1] != 3 or image.shape[2] != size or image.shape[3] != size:
        raise ValueError(f"image must have shape (B, 3, {size}, {size}), got {tuple(image.shape)}")
