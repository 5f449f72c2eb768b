"""``obscura looks``: list the looks with one-line descriptions."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Print every look, one per line."""
    from pipeline.look import builtin_looks

    for look in builtin_looks().values():
        print(f"{look.name:<14} {look.description}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``looks`` subcommand."""
    subparsers.add_parser("looks", help="list the looks").set_defaults(run=run)
