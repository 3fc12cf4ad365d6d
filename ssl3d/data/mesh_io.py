"""Finding, loading and normalising meshes for the dataset renderer.

A loaded mesh is a :class:`ColoredMesh`: plain triangle geometry plus, for every face corner, the
information needed to colour a ray hit (a colour, and optionally a texture and UV coordinate).
Scenes are flattened with their node transforms, so multi-part glTF / OBJ files keep every part
and every part keeps its own colour source.

Colour sources, in order of preference for each part:

1. a texture (sampled at the barycentric-interpolated UV), times the material colour (and times
   per-vertex colours where a glTF carries both);
2. per-vertex colours (interpolated across the face) or per-face colours;
3. the material's diffuse / base colour;
4. :data:`NEUTRAL_GREY`.

Colours are kept as stored in the file (8-bit values read as sRGB display values); the renderer
shades them directly, so a mesh's colours come out as an image viewer shows its textures.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import trimesh

MESH_EXTENSIONS = (".obj", ".glb", ".gltf", ".ply", ".off")
"""File types searched for in a flat mesh folder."""
NEUTRAL_GREY = (0.7, 0.7, 0.7)
"""Colour of surfaces that carry no colour information (RGB in [0, 1])."""
UP_AXES = ("y", "z")
"""Supported up axes of input meshes; 'z' meshes are rotated to the y-up world frame."""
# ShapeNet-style layouts, relative to a model folder.
_TREE_MESH_NAMES = ("model.obj", os.path.join("models", "model_normalized.obj"))


class MeshLoadError(ValueError):
    """A mesh file that cannot be used: unreadable, empty, non-finite or degenerate."""


@dataclasses.dataclass
class ColoredMesh:
    """Triangle mesh with per-face-corner colour sources.

    vertices: (V, 3) float64; faces: (F, 3) int64;
    corner_colors: (F, 3, 3) float32 RGB in [0, 1] (multiplies the texture where there is one);
    face_texture: (F,) int32 index into ``textures``, -1 for untextured faces;
    corner_uv: (F, 3, 2) float32 UV of each corner (zeros where untextured);
    textures: list of (h, w, 3) uint8 RGB images (row 0 = top, i.e. v = 1).
    """

    vertices: np.ndarray
    faces: np.ndarray
    corner_colors: np.ndarray
    face_texture: np.ndarray
    corner_uv: np.ndarray
    textures: list

    def to_trimesh(self) -> trimesh.Trimesh:
        """Geometry only, unprocessed (face indices stay aligned with the colour arrays)."""
        return trimesh.Trimesh(self.vertices, self.faces, process=False, validate=False)

    @property
    def triangles(self) -> np.ndarray:
        """(F, 3, 3) float64 corner positions."""
        return self.vertices[self.faces]


def find_meshes(mesh_dir: str | os.PathLike) -> list[tuple[str, Path]]:
    """List the models under ``mesh_dir`` as sorted ``(model_id, path)`` pairs.

    Recognised layouts: ShapeNet-style ``<model>/model.obj`` or
    ``<model>/models/model_normalized.obj``, either directly under ``mesh_dir`` or one level down
    (``<synset>/<model>/...``), where model_id is the model folder's name; and a flat folder of
    ``.obj/.glb/.gltf/.ply/.off`` files, where model_id is the file stem. Duplicated ids are all
    returned; the caller decides (the renderer skips all but the first).

    Raises FileNotFoundError when ``mesh_dir`` is missing or not a folder, ValueError when it holds
    no mesh files.
    """
    root = Path(mesh_dir)
    if not root.exists():
        raise FileNotFoundError(f"mesh folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise FileNotFoundError(f"mesh folder {str(root)!r} is not a folder")
    found: list[tuple[str, Path]] = []

    def tree_mesh(folder: Path) -> Path | None:
        for name in _TREE_MESH_NAMES:
            if (folder / name).is_file():
                return folder / name
        return None

    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in MESH_EXTENSIONS:
            found.append((entry.stem, entry))
        elif entry.is_dir():
            path = tree_mesh(entry)
            if path is not None:
                found.append((entry.name, path))
                continue
            for sub in sorted(entry.iterdir()):  # <synset>/<model>/model.obj
                if sub.is_dir() and not sub.name.startswith("."):
                    path = tree_mesh(sub)
                    if path is not None:
                        found.append((sub.name, path))
    if not found:
        raise ValueError(
            f"no mesh files in {str(root)!r}: expected {'/'.join(MESH_EXTENSIONS)} files or "
            "ShapeNet-style <model>/model.obj folders")
    return sorted(found, key=lambda item: (item[0], str(item[1])))


def _rgb01(color) -> np.ndarray:
    """Any trimesh colour array (..., 3 or 4), uint8 or float, to float32 RGB in [0, 1]."""
    c = np.asarray(color)
    if c.dtype.kind in "ui":
        c = c.astype(np.float32) / 255.0
    return np.clip(c[..., :3].astype(np.float32), 0.0, 1.0)


def _material_color(material) -> np.ndarray | None:
    """Diffuse / base colour of a trimesh material as (3,) float32, or None if it has none."""
    if material is None:
        return None
    if isinstance(material, trimesh.visual.material.PBRMaterial):
        factor = material.baseColorFactor
        return None if factor is None else _rgb01(factor)
    diffuse = getattr(material, "diffuse", None)
    return None if diffuse is None else _rgb01(diffuse)


def _material_image(material):
    """Texture image (PIL) of a material, or None."""
    if material is None:
        return None
    if isinstance(material, trimesh.visual.material.PBRMaterial):
        return material.baseColorTexture
    return getattr(material, "image", None)


def _part_colors(geom: trimesh.Trimesh, textures: list):
    """Colour sources of one part. Returns corner_colors (F, 3, 3), face_texture (F,),
    corner_uv (F, 3, 2); appends a texture to ``textures`` when the part uses one."""
    faces = geom.faces
    n = len(faces)
    grey = np.asarray(NEUTRAL_GREY, np.float32)
    corner_colors = np.broadcast_to(grey, (n, 3, 3)).copy()
    face_texture = np.full(n, -1, np.int32)
    corner_uv = np.zeros((n, 3, 2), np.float32)
    visual = geom.visual
    if isinstance(visual, trimesh.visual.TextureVisuals):
        material = visual.material
        base = _material_color(material)
        if base is not None:
            corner_colors[:] = base
        vcol = visual.vertex_attributes.get("color") if visual.vertex_attributes else None
        if vcol is not None and len(vcol) == len(geom.vertices):
            corner_colors *= _rgb01(vcol)[faces]
        image = _material_image(material)
        uv = visual.uv
        if image is not None and uv is not None and len(uv) == len(geom.vertices):
            textures.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
            face_texture[:] = len(textures) - 1
            corner_uv = np.asarray(uv, np.float32)[faces]
    elif isinstance(visual, trimesh.visual.ColorVisuals):
        if visual.kind == "vertex":
            corner_colors = _rgb01(visual.vertex_colors)[faces]
        elif visual.kind == "face":
            corner_colors = np.repeat(_rgb01(visual.face_colors)[:, None, :], 3, axis=1)
    return corner_colors, face_texture, corner_uv


def _flatten(loaded) -> list[trimesh.Trimesh]:
    """Triangle meshes of a loaded file, with scene transforms applied."""
    if isinstance(loaded, trimesh.Scene):
        parts = loaded.dump(concatenate=False)
    else:
        parts = [loaded]
    return [p for p in parts if isinstance(p, trimesh.Trimesh) and len(p.faces) > 0]


def rotate_up_axis(vertices: np.ndarray, up_axis: str = "y") -> np.ndarray:
    """Express (V, 3) vertices of a mesh whose up axis is ``up_axis`` in the y-up world frame.

    'z' maps (x, y, z) -> (x, z, -y), a proper rotation (-90 deg about x), so handedness is kept.
    """
    if up_axis not in UP_AXES:
        raise ValueError(f"up_axis must be one of {UP_AXES}, got {up_axis!r}")
    if up_axis == "y":
        return vertices
    return np.stack([vertices[:, 0], vertices[:, 2], -vertices[:, 1]], axis=1)


def normalize_vertices(vertices: np.ndarray, faces: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre at the bounding-box centre and scale to a unit bounding-box diagonal.

    Only vertices used by ``faces`` define the box (stray unreferenced vertices are ignored).
    vertices: (V, 3); faces: (F, 3). Returns the new (V, 3) float64 vertices, the old centre (3,)
    and the scale factor applied. Works in float64, so huge (1e8) coordinates are fine.
    """
    used = vertices[np.unique(faces)].astype(np.float64)
    lo, hi = used.min(axis=0), used.max(axis=0)
    centre = (lo + hi) / 2.0
    diagonal = float(np.linalg.norm(hi - lo))
    if not np.isfinite(diagonal) or diagonal <= 0.0:
        raise MeshLoadError("degenerate mesh: its bounding box has zero size")
    scale = 1.0 / diagonal
    return (vertices.astype(np.float64) - centre) * scale, centre, scale


def load_mesh(path: str | os.PathLike, normalize: bool = True, up_axis: str = "y"
              ) -> ColoredMesh:
    """Load one mesh file (any format trimesh reads) into a :class:`ColoredMesh`.

    Scenes are flattened with their transforms; non-triangle geometry (point clouds, paths) is
    dropped. ``up_axis`` rotates the mesh into the y-up frame; ``normalize`` then centres it and
    scales it to a unit bounding-box diagonal (METHOD section 2).

    Raises :class:`MeshLoadError` naming the file for anything unusable: unreadable / corrupt files,
    no triangle faces, non-finite vertices, zero surface area.
    """
    path = Path(path)
    try:
        loaded = trimesh.load(str(path), process=False)
    except Exception as exc:  # noqa: BLE001 - any loader failure means "unreadable"
        raise MeshLoadError(f"{path}: cannot read mesh ({type(exc).__name__}: {exc})") from exc
    try:
        parts = _flatten(loaded)
    except Exception as exc:  # noqa: BLE001
        raise MeshLoadError(f"{path}: cannot flatten scene ({type(exc).__name__}: {exc})") from exc
    if not parts:
        raise MeshLoadError(f"{path}: no triangle faces")

    verts, faces, colors, tex_ids, uvs, textures = [], [], [], [], [], []
    offset = 0
    for part in parts:
        f = np.asarray(part.faces, dtype=np.int64)
        v = np.asarray(part.vertices, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != 3 or f.min() < 0 or f.max() >= len(v):
            raise MeshLoadError(f"{path}: face indices out of range")
        c, t, uv = _part_colors(part, textures)
        verts.append(v)
        faces.append(f + offset)
        colors.append(c)
        tex_ids.append(t)
        uvs.append(uv)
        offset += len(v)
    vertices = np.concatenate(verts)
    faces_all = np.concatenate(faces)
    if not np.isfinite(vertices[np.unique(faces_all)]).all():
        raise MeshLoadError(f"{path}: non-finite (NaN or inf) vertex coordinates")
    vertices = rotate_up_axis(vertices, up_axis)
    if normalize:
        try:
            vertices, _, _ = normalize_vertices(vertices, faces_all)
        except MeshLoadError as exc:
            raise MeshLoadError(f"{path}: {exc}") from None
    mesh = ColoredMesh(vertices=vertices, faces=faces_all,
                       corner_colors=np.concatenate(colors).astype(np.float32),
                       face_texture=np.concatenate(tex_ids), corner_uv=np.concatenate(uvs),
                       textures=textures)
    if not face_areas(mesh).sum() > 0.0:
        raise MeshLoadError(f"{path}: zero surface area (all faces degenerate)")
    return mesh


def face_areas(mesh) -> np.ndarray:
    """(F,) float64 triangle areas of anything with ``vertices`` (V, 3) and ``faces`` (F, 3)."""
    tri = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
