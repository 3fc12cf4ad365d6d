"""Procedural, part-based meshes of chairs, airplanes and cars (``ssl3d synth``).

Each shape is a union of simple primitives (boxes, tapered cylinders, lofts, ellipsoids, swept
tubes) with one colour per part, returned as a single ``trimesh.Trimesh`` with per-face RGBA
colours. Axes follow /work/shared/meshes: up = +y, the object's front faces +z, its right-hand
side is -x; the mesh is centred at its bounding-box centre with a bounding-box diagonal of 1.

Shape ``i`` of a run depends only on ``(seed, i)``, so runs are reproducible, can be resumed
(existing files are skipped) and can be split across processes in any order.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import trimesh

from .airplane import generate_airplane
from .car import generate_car
from .chair import generate_chair
from .primitives import Part, assemble

_GENERATORS: dict[str, Callable[[np.random.Generator], list[Part]]] = {
    "airplane": generate_airplane,
    "car": generate_car,
    "chair": generate_chair,
}
CATEGORIES: tuple[str, ...] = tuple(sorted(_GENERATORS))
"""Categories that :func:`generate` and :func:`synthesize` know."""


def check_category(category: str) -> str:
    """Return ``category`` if known, else raise ValueError naming the known ones."""
    if category not in _GENERATORS:
        raise ValueError(f"unknown category {category!r}; known categories: "
                         f"{', '.join(CATEGORIES)}")
    return category


def generate(category: str, rng: np.random.Generator) -> trimesh.Trimesh:
    """One random shape of ``category`` drawn with ``rng``.

    Returns a Trimesh with per-face colours (``mesh.visual.face_colors``, (F, 4) uint8), centred
    at its bounding-box centre and scaled to a bounding-box diagonal of 1.
    """
    return assemble(_GENERATORS[check_category(category)](rng))


def shape_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for shape ``index`` of a run with ``seed``: a function of both only."""
    return np.random.default_rng([int(seed), int(index)])


def shape_path(out_dir: Path | str, category: str, index: int) -> Path:
    """File name of shape ``index``: ``<out_dir>/<category>_<index:05d>.ply``."""
    return Path(out_dir) / f"{category}_{index:05d}.ply"


def shape_bytes(category: str, seed: int, index: int) -> bytes:
    """Shape ``index`` of ``seed`` as the binary PLY file synthesize writes (it keeps the face
    colours)."""
    return generate(category, shape_rng(seed, index)).export(file_type="ply", encoding="binary")


def _write_one(job: tuple[str, str, int, int]) -> str:
    """Generate and save one shape unless its file exists. job = (category, out_dir, seed, i)."""
    category, out_dir, seed, index = job
    path = shape_path(out_dir, category, index)
    if path.exists():
        return str(path)
    data = shape_bytes(category, seed, index)
    # Write-then-rename so an interrupted run never leaves a truncated file to be "resumed".
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return str(path)


def _check_earlier_shapes(out: Path, category: str, count: int, seed: int) -> None:
    """Existing files are kept (a stopped run resumes), so they must be this seed's shapes: the
    first is made again and compared byte for byte (ValueError if it differs). Warns of shapes
    past ``count``, which ``ssl3d render`` would render too."""
    made = {int(p.stem.rsplit("_", 1)[1]): p for p in out.glob(f"{category}_*.ply")
            if p.stem.rsplit("_", 1)[1].isdigit()}
    if not made:
        return
    first = min(made)
    if made[first].read_bytes() != shape_bytes(category, seed, first):
        raise ValueError(f"{made[first]} is not shape {first} of seed {seed}: {out} holds {category} "
                         f"shapes made with another seed (or another ssl3d version), and existing "
                         f"files are kept; pass the seed they were made with, or write to another "
                         f"folder")
    extra = sorted(i for i in made if i >= count)
    if extra:
        warnings.warn(f"{out} also holds {len(extra)} {category} shapes numbered {count} or more, "
                      f"from an earlier, larger --count; ssl3d render renders every mesh in the "
                      f"folder", stacklevel=3)


def synthesize(category: str, out_dir: Path | str, count: int, seed: int = 0, workers: int = 1,
               progress: bool = True) -> list[Path]:
    """Write ``count`` shapes of ``category`` to ``out_dir`` as binary PLY files.

    Shape ``i`` (0 <= i < count) goes to ``<out_dir>/<category>_<i:05d>.ply`` and depends only on
    ``(seed, i)``; existing files are kept, so an interrupted run can simply be restarted.
    ``workers`` > 1 generates shapes in that many processes. Returns all ``count`` paths in
    index order.
    """
    check_category(category)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count <= 0:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    _check_earlier_shapes(out, category, count, int(seed))
    paths = [shape_path(out, category, i) for i in range(count)]
    jobs = [(category, str(out), int(seed), i) for i, p in enumerate(paths) if not p.exists()]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=count, initial=count - len(jobs), desc=f"synth {category}",
                   unit="shape")
    try:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                _write_one(job)
                if bar is not None:
                    bar.update(1)
        else:
            with multiprocessing.Pool(min(int(workers), len(jobs))) as pool:
                for _ in pool.imap_unordered(_write_one, jobs, chunksize=8):
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return paths


__all__ = ["CATEGORIES", "check_category", "generate", "shape_path", "shape_rng", "synthesize"]
