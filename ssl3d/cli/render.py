"""``ssl3d render MESH_DIR DATA_DIR --category NAME``: meshes in, dataset out (CPU ray casting).

See :mod:`ssl3d.data.render` for the on-disk layout it writes.
"""

from __future__ import annotations

import argparse

from ssl3d.cli.dataclass_args import add_quiet_option


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``render`` arguments to its sub-parser."""
    from ssl3d.data.render import DEFAULT_SUPERSAMPLE  # light import: numpy/trimesh/torch only

    parser.add_argument("mesh_dir", metavar="MESH_DIR",
                        help="folder of .obj/.glb/.gltf/.ply/.off files, or a ShapeNet-style tree "
                             "<model>/model.obj (optionally under <synset>/)")
    parser.add_argument("data_dir", metavar="DATA_DIR",
                        help="dataset root; writes DATA_DIR/<category>/<model>/ and "
                             "DATA_DIR/splits/")
    parser.add_argument("--category", required=True, help="category name (folder under DATA_DIR)")
    parser.add_argument("--views", type=int, default=10, help="views per model (default 10)")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels (default 64)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed for views, clouds and splits (default 0)")
    parser.add_argument("--supersample", type=int, default=DEFAULT_SUPERSAMPLE,
                        help="rays per pixel side for anti-aliasing "
                             f"(default {DEFAULT_SUPERSAMPLE})")
    parser.add_argument("--no-normalize", dest="normalize", action="store_false",
                        help="keep mesh coordinates as they are (default: centre the bounding box "
                             "and scale its diagonal to 1)")
    parser.add_argument("--up-axis", choices=("y", "z"), default="y",
                        help="up axis of the input meshes; z-up meshes are rotated to y-up "
                             "(default: %(default)s)")
    add_quiet_option(parser)


def run(args: argparse.Namespace) -> int:
    """Render the dataset and print a summary. Returns 1 if any model failed unexpectedly."""
    from ssl3d.data.render import render_dataset

    for flag, value in (("--views", args.views), ("--size", args.size),
                        ("--workers", args.workers), ("--supersample", args.supersample)):
        if value < 1:
            raise ValueError(f"{flag} must be a positive integer, got {value}")
    report = render_dataset(args.mesh_dir, args.data_dir, args.category, views=args.views,
                            image_size=args.size, supersample=args.supersample,
                            workers=args.workers, seed=args.seed, normalize=args.normalize,
                            up_axis=args.up_axis, progress=not args.quiet)
    c = report["counts"]
    reasons: dict[str, int] = {}
    for entry in report["skipped"]:
        key = ("already rendered" if entry["reason"] == "already rendered" else "duplicate model id"
               if entry["reason"].startswith("duplicate model id") else "unusable mesh")
        reasons[key] = reasons.get(key, 0) + 1
    detail = ", ".join(f"{n} {k}" for k, n in sorted(reasons.items()))
    print(f"ssl3d render: {c['rendered']} rendered, {c['skipped']} skipped"
          f"{f' ({detail})' if detail else ''}, {c['failed']} failed in {report['seconds']:.1f} s")
    s = report["splits"]
    print(f"  {c['models_in_dataset']} models in {args.data_dir}/{args.category} "
          f"(splits train {s['train']} / val {s['val']} / test {s['test']}); "
          f"report: {args.data_dir}/{args.category}/render_report.json")
    for entry in report["failed"]:
        print(f"  failed: {entry['file']}: {entry['reason']}")
    if c["models_in_dataset"] == 0:
        raise ValueError(f"no usable mesh in {args.mesh_dir}: the data set is empty (reasons in "
                         f"{args.data_dir}/{args.category}/render_report.json)")
    empty = [name for name in ("val", "test") if s[name] == 0]
    if empty:  # training runs without them, but evaluation fits its rotation on val, scores test
        print(f"  warning: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} "
              f"empty: ssl3d evaluate needs both; render more meshes")
    return 1 if c["failed"] else 0
