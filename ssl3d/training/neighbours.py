"""Nearest-neighbour mining for stage NN (METHOD section 6)."""

from __future__ import annotations

import torch


@torch.no_grad()
def embed_images(recon, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Shape + colour bottleneck of every image. images: (M, 3, S, S). Returns (M, D) float32."""
    recon = getattr(recon, "module", recon)  # unwrap DistributedDataParallel
    was_training = recon.training
    recon.eval()
    out = [recon.embed(images[i:i + batch_size]).float() for i in range(0, len(images), batch_size)]
    recon.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def nearest_neighbours(embedding: torch.Tensor, k: int, chunk: int = 4096) -> torch.Tensor:
    """Exact k nearest neighbours (Euclidean) of every row among the other rows.

    embedding: (M, D). Returns (M, k) int64 indices, nearest first, never the row itself.
    Runs on the embedding's device in row chunks, so memory is O(chunk * M).
    """
    m = embedding.shape[0]
    if not 1 <= k < m:
        raise ValueError(f"need 1 <= k < number of images; got k = {k} with {m} images")
    e = embedding.float()
    sq = (e * e).sum(1)
    out = []
    for start in range(0, m, chunk):
        rows = torch.arange(start, min(start + chunk, m), device=e.device)
        d = sq[rows, None] + sq[None, :] - 2 * e[rows] @ e.T  # (chunk, M)
        d[torch.arange(len(rows), device=e.device), rows] = float("inf")  # exclude self
        out.append(d.topk(k, dim=1, largest=False).indices)
    return torch.cat(out)
