"""Reading ssl3d datasets and the paper's ShapeNet renderings into tensors.

Two on-disk layouts are understood, with the same per-model contents:

* ssl3d's (written by ``ssl3d render``)::

      DATA_DIR/<category>/<model>/render_{i}.png, view.txt, pcl_1024_fps_trimesh.npy, pcl_16384.npy
      DATA_DIR/splits/<category>_{train,val,test}.txt

* the paper's::

      DATA_DIR/ShapeNet_rendered/<synset>/<model>/render_{i}.png (224 x 224 RGBA), view.txt,
                                                  optional mask_{i}.png
      DATA_DIR/ShapeNet_v1/<synset>/<model>/pcl_1024_fps_trimesh.npy
      splits: DATA_DIR/splits/<synset>_{split}.txt if present, else the copies shipped in ssl3d

A split file lists ``<model>_<view>``: the single view used for that model. A split is decoded
once (images resized to the training size with area averaging, RGB premultiplied by alpha so
the background is black like a projected cloud) into ``DATA_DIR/cache/*.npz``; afterwards a batch
is an index into in-memory tensors, which may live on the GPU, so data loading costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from ssl3d import camera

SYNSETS = {"airplane": "02691156", "car": "02958343", "chair": "03001627"}
"""Category names of the paper's ShapeNet classes -> synset ids."""
SPLITS = ("train", "val", "test")
CLOUD_FILE = "pcl_1024_fps_trimesh.npy"
DENSE_CLOUD_FILE = "pcl_16384.npy"
PACKAGED_SPLITS = Path(__file__).resolve().parent.parent / "splits"
CACHE_VERSION = 1


@dataclass
class DatasetPaths:
    """Where one category's data lives."""

    render_root: Path
    """Folder holding one sub-folder per model with render_{i}.png and view.txt."""
    cloud_root: Path
    """Folder holding one sub-folder per model with the ground-truth clouds."""
    split_dir: Path
    """Folder holding ``<prefix>_{train,val,test}.txt``."""
    split_prefix: str
    """Category name or synset id used in the split file names."""
    cache_dir: Path
    """Where decoded splits are cached."""


def resolve_paths(data_dir: str | os.PathLike, category: str) -> DatasetPaths:
    """Find a category's folders in either layout. Raises FileNotFoundError naming what is missing."""
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    synset = SYNSETS.get(category, category)
    if (root / "ShapeNet_rendered").is_dir():
        render_root = root / "ShapeNet_rendered" / synset
        cloud_root = root / "ShapeNet_v1" / synset
        split_dir = root / "splits" if (root / "splits" / f"{synset}_train.txt").exists() \
            else PACKAGED_SPLITS
        prefix = synset
    else:
        name = category if (root / category).is_dir() else synset
        render_root = cloud_root = root / name
        split_dir, prefix = root / "splits", name
    if not render_root.is_dir():
        looked = render_root if render_root.parent != root else \
            " or ".join(str(root / n) for n in dict.fromkeys((category, synset)))
        hint = ""
        if root.name in (category, synset) or (root / "render_report.json").is_file():
            parent = root.resolve().parent
            if parent.name in ("ShapeNet_rendered", "ShapeNet_v1"):  # the paper's layout
                parent = parent.parent
            hint = f"; {root} looks like the category's own folder: pass {parent}"
        raise FileNotFoundError(f"no folder for category {category!r} in data folder {root} "
                                f"(looked for {looked}){hint}")
    return DatasetPaths(render_root, cloud_root, split_dir, prefix, root / "cache")


def read_split(split_dir: Path, prefix: str, split: str) -> list[tuple[str, int]]:
    """Parse ``<prefix>_<split>.txt`` into (model_id, view index) pairs."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(split_dir) / f"{prefix}_{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} does not exist (category {prefix!r} has no "
                                f"{split} split)")
    entries = []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        model, sep, view = line.rpartition("_")
        if not sep or not model or not view.isdigit():
            raise ValueError(f"{path}:{line_no}: expected '<model>_<view index>', got {line!r}")
        entries.append((model, int(view)))
    if not entries:
        raise ValueError(f"split file {path} lists no models")
    return entries


def read_views(model_dir: Path) -> np.ndarray:
    """``view.txt`` -> (V, 2) float32 (azimuth, elevation) in radians, camera-module convention."""
    path = model_dir / "view.txt"
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}")
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    out = []
    for row in rows:
        az, el, dist = camera.viewpoint_from_view_txt(row)
        if abs(dist - camera.DEFAULT_DISTANCE) > 1e-3:
            raise ValueError(f"{path}: camera distance {dist} differs from "
                             f"{camera.DEFAULT_DISTANCE}, which the projection assumes")
        out.append((az, el))
    return np.asarray(out, dtype=np.float32)


def load_view(model_dir: Path, view: int, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """One rendering resized to ``image_size``: RGB premultiplied by the silhouette, and the
    silhouette (alpha, or ``mask_{view}.png`` when present).

    Returns image (H, W, 3) and mask (H, W), float32 in [0, 1].
    """
    path = model_dir / f"render_{view}.png"
    if not path.is_file():
        raise FileNotFoundError(f"missing rendering {path}")
    try:
        with Image.open(path) as im:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    except OSError as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    if rgba.shape[0] != rgba.shape[1]:
        raise ValueError(f"{path} is {rgba.shape[1]} x {rgba.shape[0]}; renderings must be square")
    mask_path = model_dir / f"mask_{view}.png"
    if mask_path.is_file():
        with Image.open(mask_path) as im:
            mask = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
        if mask.shape != rgba.shape[:2]:
            raise ValueError(f"{mask_path} has size {mask.shape[::-1]}, its rendering "
                             f"{rgba.shape[1::-1]}")
    else:
        mask = rgba[..., 3]
    layers = np.concatenate([rgba[..., :3] * mask[..., None], mask[..., None]], -1)
    if layers.shape[0] != image_size:
        t = torch.from_numpy(np.ascontiguousarray(layers)).permute(2, 0, 1).unsqueeze(0)
        layers = F.interpolate(t, size=(image_size, image_size), mode="area")[0].permute(1, 2, 0).numpy()
    if layers[..., 3].max() < 0.5:
        raise ValueError(f"{path}: the silhouette is empty (no pixel with alpha >= 0.5)")
    return layers[..., :3], layers[..., 3]


def load_cloud(model_dir: Path, name: str = CLOUD_FILE) -> np.ndarray:
    """A ground-truth cloud (N, 3) float32, checked for shape and finiteness."""
    path = model_dir / name
    if not path.is_file():
        raise FileNotFoundError(f"missing ground-truth cloud {path}")
    cloud = np.load(path, allow_pickle=False)
    if cloud.ndim != 2 or cloud.shape[1] != 3 or not np.isfinite(cloud).all():
        raise ValueError(f"{path}: expected a finite (N, 3) array, got shape {cloud.shape}")
    return cloud.astype(np.float32)


@dataclass
class ViewSet:
    """One split of one category, decoded: everything training and evaluation read.

    images: (M, 3, H, W) float32 in [0, 1], black background; masks: (M, H, W); viewpoints: (M, 2)
    radians; clouds: (M, P, 3) ground truth; models: the M model ids; views: (M,) view indices.
    """

    images: torch.Tensor
    masks: torch.Tensor
    viewpoints: torch.Tensor
    clouds: torch.Tensor
    models: list[str]
    views: torch.Tensor

    def __len__(self) -> int:
        return len(self.models)

    def to(self, device: torch.device | str) -> "ViewSet":
        return ViewSet(self.images.to(device), self.masks.to(device), self.viewpoints.to(device),
                       self.clouds.to(device), self.models, self.views.to(device))

    def subset(self, index: torch.Tensor) -> "ViewSet":
        """The views at ``index`` (K,), in that order."""
        keep = index.tolist()
        return ViewSet(self.images[index], self.masks[index], self.viewpoints[index],
                       self.clouds[index], [self.models[i] for i in keep], self.views[index])

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gather a batch: index (B,) -> dict of (B, ...) tensors."""
        return {"image": self.images[index], "mask": self.masks[index],
                "viewpoint": self.viewpoints[index], "cloud": self.clouds[index], "index": index}


def flip_batch(batch: dict[str, torch.Tensor], flip: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mirror the chosen samples of a batch (data augmentation): image (B, 3, S, S) and mask
    (B, S, S) flipped left to right, cloud (B, P, 3) mirrored across x = 0 and viewpoint (B, 2)
    moved to :func:`ssl3d.camera.mirror_viewpoint`, so each flipped sample is a geometrically exact
    view of the mirrored object (a rendered image's shading is mirrored too, so its light comes
    from the other side). flip: (B,) bool. Other entries are kept. Returns a new dict."""
    if flip.shape != batch["image"].shape[:1]:
        raise ValueError(f"flip must be ({batch['image'].shape[0]},), got {tuple(flip.shape)}")
    dev = batch["image"].device
    mirror = torch.tensor([-1.0, 1.0, 1.0], dtype=batch["cloud"].dtype, device=dev)
    flip = flip.to(dev)
    f = flip.view(-1, 1, 1)
    return {**batch,
            "image": torch.where(f.unsqueeze(1), batch["image"].flip(-1), batch["image"]),
            "mask": torch.where(f, batch["mask"].flip(-1), batch["mask"]),
            "cloud": torch.where(f, batch["cloud"] * mirror, batch["cloud"]),
            "viewpoint": torch.where(flip.view(-1, 1), camera.mirror_viewpoint(batch["viewpoint"]),
                                     batch["viewpoint"])}


class ViewDataset(torch.utils.data.Dataset):
    """A map-style dataset over a :class:`ViewSet` for code that wants a DataLoader."""

    def __init__(self, views: ViewSet):
        self.views = views

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        b = self.views.batch(torch.tensor([i]))
        return {k: v[0] for k, v in b.items()}


def load_split(data_dir: str | os.PathLike, category: str, split: str, image_size: int = 64,
               use_cache: bool = True, progress: bool = True) -> ViewSet:
    """Decode one split (cached in ``DATA_DIR/cache``) and return it as tensors."""
    paths = resolve_paths(data_dir, category)
    entries = read_split(paths.split_dir, paths.split_prefix, split)
    # The key changes when the split or the set of model folders changes (renders are written
    # into place by renaming, which updates the category folder's modification time).
    stamps = (paths.render_root.stat().st_mtime_ns,
              (paths.split_dir / f"{paths.split_prefix}_{split}.txt").stat().st_mtime_ns)
    key = hashlib.sha1(repr((CACHE_VERSION, str(paths.render_root), stamps, entries)).encode()
                       ).hexdigest()[:12]
    cache = paths.cache_dir / f"{paths.split_prefix}_{split}_{image_size}_{key}.npz"
    if use_cache and cache.is_file():
        arrays = dict(np.load(cache, allow_pickle=False))
    else:
        arrays = _decode(paths, entries, image_size, f"{category}/{split}", progress)
        if use_cache:
            for stale in paths.cache_dir.glob(f"{paths.split_prefix}_{split}_{image_size}_*.npz"):
                if stale != cache:  # another process may be reading the current one
                    stale.unlink(missing_ok=True)
            save_npz_atomic(cache, arrays)
    return ViewSet(
        images=torch.from_numpy(arrays["images"]).permute(0, 3, 1, 2).float() / 255.0,
        masks=torch.from_numpy(arrays["masks"]).float() / 255.0,
        viewpoints=torch.from_numpy(arrays["viewpoints"]),
        clouds=torch.from_numpy(arrays["clouds"]),
        models=[str(m) for m in arrays["models"]],
        views=torch.from_numpy(arrays["views"]).long())


def _decode(paths: DatasetPaths, entries, image_size: int, label: str, progress: bool) -> dict:
    images, masks, viewpoints, clouds, problems = [], [], [], [], []
    kept_models, kept_views = [], []
    for model, view in tqdm(entries, desc=f"decoding {label}", disable=not progress, leave=False):
        model_dir = paths.render_root / model
        try:
            views = read_views(model_dir)
            if view >= len(views):
                raise ValueError(f"{model_dir / 'view.txt'} has {len(views)} views, split asks "
                                 f"for view {view}")
            image, mask = load_view(model_dir, view, image_size)
            cloud = load_cloud(paths.cloud_root / model)
        except (FileNotFoundError, ValueError) as exc:
            problems.append(str(exc))
            continue
        images.append(np.round(image * 255).astype(np.uint8))
        masks.append(np.round(mask * 255).astype(np.uint8))
        viewpoints.append(views[view])
        clouds.append(cloud)
        kept_models.append(model)
        kept_views.append(view)
    if problems:
        shown = "\n  ".join(problems[:10])
        msg = f"{label}: {len(problems)} of {len(entries)} models could not be read:\n  {shown}"
        if not images:
            raise FileNotFoundError(msg)
        warnings.warn(msg + "\n(they are left out)", stacklevel=3)
    sizes = {c.shape[0] for c in clouds}
    if len(sizes) > 1:
        raise ValueError(f"{label}: ground-truth clouds have different sizes {sorted(sizes)}")
    return {"images": np.stack(images), "masks": np.stack(masks),
            "viewpoints": np.stack(viewpoints).astype(np.float32),
            "clouds": np.stack(clouds), "models": np.asarray(kept_models),
            "views": np.asarray(kept_views, dtype=np.int64)}


def save_npz_atomic(path: Path, arrays: dict) -> None:
    """Write ``arrays`` as an .npz at ``path`` by renaming a finished temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, path)
