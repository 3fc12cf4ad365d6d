"""Shared fixtures: a tiny dataset in ssl3d's layout, made without any renderer."""


import numpy as np
import pytest
import torch
from PIL import Image

from ssl3d import camera
from ssl3d.ops import project_cloud


def write_tiny_dataset(root, category="chair", n_models=6, views=3, size=32, seed=0):
    """Box-like coloured clouds rendered with ssl3d's own projection, written in ssl3d's layout."""
    rng = np.random.default_rng(seed)
    names = []
    for m in range(n_models):
        half = rng.uniform(0.1, 0.3, size=3)
        pts = rng.uniform(-half, half, size=(1024, 3)).astype(np.float32)
        rgb = np.tile(rng.uniform(0.2, 1.0, size=3), (1024, 1)).astype(np.float32)
        vps = camera.sample_viewpoints(views, generator=torch.Generator().manual_seed(seed * 100 + m))
        img, sil = project_cloud(torch.from_numpy(pts).expand(views, -1, -1),
                                 torch.from_numpy(rgb).expand(views, -1, -1), vps, size)
        name = f"{category}_{m:05d}"
        d = root / category / name
        d.mkdir(parents=True)
        for v in range(views):
            rgba = np.concatenate([img[v].permute(1, 2, 0).numpy(), sil[v, ..., None].numpy()], -1)
            Image.fromarray((rgba.clip(0, 1) * 255).round().astype(np.uint8), "RGBA").save(
                d / f"render_{v}.png")
        (d / "view.txt").write_text("".join(
            camera.viewpoint_to_view_txt(float(a), float(e)) + "\n" for a, e in vps.tolist()))
        np.save(d / "pcl_1024_fps_trimesh.npy", pts)
        names.append(name)
    (root / "splits").mkdir(exist_ok=True)
    n_val = max(1, n_models // 6)
    parts = {"train": names[: n_models - 2 * n_val], "val": names[n_models - 2 * n_val: n_models - n_val],
             "test": names[n_models - n_val:]}
    for split, models in parts.items():
        (root / "splits" / f"{category}_{split}.txt").write_text(
            "".join(f"{m}_{int(rng.integers(views))}\n" for m in models))
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def tiny_config(**overrides):
    from ssl3d.training.config import TrainConfig

    base = dict(steps=2, batch_size=2, image_size=32, n_points=64, hidden=32, log_every=1,
                image_every=1, checkpoint_every=1, progress=False, neighbours=2)
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture
def make_config():
    return tiny_config
