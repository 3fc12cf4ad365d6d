"""The ``ssl3d`` command: one entry point, one sub-command per verb.

Each verb lives in ``ssl3d/cli/<verb>.py`` and exposes ``register(parser)`` (adds its arguments to
an ``argparse`` sub-parser) and ``run(args) -> int``. Modules are imported only when their verb is
used, so ``ssl3d --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import warnings
from pathlib import Path

# verb -> one-line description; the module is ssl3d.cli.<verb>
VERBS = {
    "synth": "generate procedural meshes (chair, airplane, car) for a training set",
    "render": "render a folder of meshes into an ssl3d dataset (images, silhouettes, views, clouds)",
    "train": "train stage CC or NN, or a baseline, on a dataset",
    "evaluate": "evaluate a trained run (alignment, Chamfer, EMD, pose accuracy)",
    "compare": "rank evaluated runs (e.g. seeds) by the label-free validation score: which to keep",
    "predict": "reconstruct a coloured point cloud from your own image(s)",
    "view": "write an offline interactive viewer (HTML) of point clouds, predictions or meshes",
    "demo": "make a small dataset, train briefly, evaluate and write a report",
}


def available_verbs() -> dict[str, str]:
    """The verbs whose module exists in this installation."""
    out = {}
    for verb, help_text in VERBS.items():
        if importlib.util.find_spec(f"ssl3d.cli.{verb}") is not None:
            out[verb] = help_text
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssl3d",
        description="Self-supervised single-image coloured point clouds and viewpoints "
                    "(Navaneet et al., CVPR 2020) in PyTorch.")
    from ssl3d import __version__

    parser.add_argument("--version", action="version", version=f"ssl3d {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, help_text in available_verbs().items():
        p = sub.add_parser(verb, help=help_text, description=help_text)
        importlib.import_module(f"ssl3d.cli.{verb}").register(p)
    return parser


_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)
_PYTHON_FORMAT = warnings.formatwarning


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """ssl3d's own warnings as one line for the command's user (not Python's file, line and
    source echo); other libraries' warnings as Python prints them."""
    if not str(Path(filename).resolve()).startswith(_PACKAGE_DIR):
        return _PYTHON_FORMAT(message, category, filename, lineno, line)
    return f"ssl3d: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 0
    python_format, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        return int(importlib.import_module(f"ssl3d.cli.{args.verb}").run(args) or 0)
    except (OSError, ValueError, RuntimeError) as exc:
        # Users get one clear line naming the problem, not a traceback (OSError: a missing file,
        # an output path that runs into a file, a full disk, no permission).
        print(f"ssl3d {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C: training says where its state is, others stop
        if not getattr(exc, "quiet", False):  # under torchrun, once (by the first process)
            print(f"ssl3d {args.verb}: interrupted{f': {exc}' if str(exc) else ''}",
                  file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = python_format  # for callers that run main() in their process


if __name__ == "__main__":
    sys.exit(main())
