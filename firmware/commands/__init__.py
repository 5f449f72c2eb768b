"""Subcommands of the ``obscura`` tool: one module each, with ``register(subparsers)``.

A module's ``register`` adds its parser and sets ``run=function(args) -> int``; add the
names it registers to ``COMMAND_MODULES`` in :mod:`firmware.cli` to make it reachable.
"""
