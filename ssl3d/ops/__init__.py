"""Pure tensor ops: projection, Chamfer, EMD, silhouette losses, normalisation, blur.

Every op takes explicit tensors (shapes in its docstring), checks them up front and raises a
ValueError naming the bad argument.
"""

from ssl3d.ops.affinity import affinity_intended, affinity_released, soft_distance_transform
from ssl3d.ops.bce import bce_intended, bce_released
from ssl3d.ops.blur import gaussian_blur, gaussian_taps
from ssl3d.ops.chamfer import chamfer_distance, chamfer_distance_dense, kth_neighbour_sq_dist
from ssl3d.ops.emd import emd_exact, emd_sinkhorn
from ssl3d.ops.normalize import normalize_unit_box
from ssl3d.ops.projection import (project_cloud, project_silhouette, splat_colour,
                                  splat_colour_dense, splat_silhouette, splat_silhouette_dense)
from ssl3d.ops.transport import sliced_silhouette_distance

__all__ = [
    "affinity_intended", "affinity_released", "soft_distance_transform", "bce_intended",
    "bce_released", "gaussian_blur", "gaussian_taps", "chamfer_distance", "chamfer_distance_dense",
    "emd_exact", "emd_sinkhorn",
    "kth_neighbour_sq_dist", "normalize_unit_box", "project_cloud", "project_silhouette", "splat_colour",
    "splat_colour_dense", "splat_silhouette", "splat_silhouette_dense", "sliced_silhouette_distance",
]
