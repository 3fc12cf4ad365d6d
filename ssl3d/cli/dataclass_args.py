"""Expose a dataclass's fields as ``argparse`` options, with each field's docstring as its help.

A field ``batch_size: int = 2`` followed by a string literal becomes ``--batch-size B`` whose help
is that string. ``Literal[...]`` fields get choices, ``bool`` fields get ``--x / --no-x``.
Only options given on the command line are returned, so presets can sit underneath them.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import typing


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass: {field name: the string literal after it}."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) \
                and isinstance(nxt.value.value, str):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` / ``--no-progress`` (either spelling, in every verb): ``args.quiet``."""
    parser.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                        help="no progress bars (for logs)")


def add_dataclass_options(parser: argparse.ArgumentParser, cls: type,
                          skip: tuple[str, ...] = (), presets: dict[str, dict] | None = None) -> None:
    """Add one ``--field-name`` option per field of ``cls`` (defaults are left unset). ``presets``
    (name -> field overrides) adds each preset's value to the help of the fields it sets."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        hint = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        by_preset = "".join(f"; preset {name}: {values[f.name]!r}"
                            for name, values in (presets or {}).items() if f.name in values)
        help_text = f"{docs.get(f.name, '')} (default: {f.default!r}{by_preset})".replace("%", "%%")
        kwargs: dict = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(hint) is typing.Literal:
            parser.add_argument(flag, choices=typing.get_args(hint), **kwargs)
        else:
            parser.add_argument(flag, type=hint, metavar=f.name.upper(), **kwargs)


def given_options(args: argparse.Namespace, cls: type) -> dict:
    """The fields of ``cls`` that were set on the command line."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}
