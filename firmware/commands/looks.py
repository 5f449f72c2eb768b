"""``obscura looks``: list the looks with one-line descriptions."""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    """Print every look, one per line; user look files that do not load are reported.

    The user looks folder is created if missing, ready for a ``.cube`` to be copied in.
    """
    from pipeline.looks.look import available_looks, user_looks_dir

    looks, errors = available_looks()
    for look in looks.values():
        print(f"{look.name:<14} {look.description}")
    for error in errors:
        print(f"obscura: skipped a user look: {error}", file=sys.stderr)
    folder = user_looks_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"obscura: cannot create {folder}: {exc.strerror or exc}", file=sys.stderr)
    print(f"(user looks: copy a .toml or .cube into {folder})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``looks`` subcommand."""
    subparsers.add_parser("looks", help="list the looks").set_defaults(run=run)
