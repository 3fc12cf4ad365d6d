"""``ssl3d synth CATEGORY MESH_DIR --count N [--seed S] [--workers W]``: procedural meshes.

Writes ``MESH_DIR/<category>_<index:05d>.ply`` (binary PLY with per-face colours). Shape ``i``
depends only on ``(seed, i)``; files that already exist are kept, so a stopped run resumes.
"""

from __future__ import annotations

import argparse

from ssl3d.cli.dataclass_args import add_quiet_option


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``synth`` arguments to its sub-parser."""
    parser.add_argument("category", metavar="CATEGORY",
                        help="shape category: airplane, car or chair")
    parser.add_argument("mesh_dir", metavar="MESH_DIR",
                        help="output folder for the .ply meshes (created if missing)")
    parser.add_argument("--count", type=int, required=True, metavar="N",
                        help="number of shapes (indices 0..N-1)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed; shape i depends only on (seed, i) (default 0)")
    parser.add_argument("--workers", type=int, default=1, metavar="W",
                        help="parallel processes (default 1)")
    add_quiet_option(parser)


def run(args: argparse.Namespace) -> int:
    """Generate the meshes; user errors surface as ValueError for the main CLI to print."""
    from ssl3d.data.synth import synthesize

    paths = synthesize(args.category, args.mesh_dir, args.count, seed=args.seed,
                       workers=args.workers, progress=not args.quiet)
    print(f"{len(paths)} {args.category} meshes in {args.mesh_dir}")
    return 0
