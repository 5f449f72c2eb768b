"""``obscura warm-cache``: compile the numba kernels once (set-up runs it)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Fill numba's on-disk cache."""
    from firmware.warmup import warm_numba_cache

    warm_numba_cache()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``warm-cache`` subcommand."""
    subparsers.add_parser(
        "warm-cache", help="compile the numba kernels once (set-up does this)"
    ).set_defaults(run=run)
