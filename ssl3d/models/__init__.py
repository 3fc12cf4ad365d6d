"""The reconstruction and pose networks."""

from ssl3d.models.networks import (NetworkConfig, PoseNet, ReconstructionNet, SilhouetteCritic,
                                   l2_penalty, set_code_dims)

__all__ = ["NetworkConfig", "PoseNet", "ReconstructionNet", "SilhouetteCritic", "l2_penalty",
           "set_code_dims"]
