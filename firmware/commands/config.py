"""``obscura config get|set|check|default``: the camera's configuration.

``get`` and ``set`` talk to the running daemon, which validates, writes
``/etc/obscura/config.toml`` atomically and applies the change without a restart.
``check`` and ``default`` work offline. Keys the files leave unset take their defaults,
some of which depend on the board's memory (``get --sources`` says where each value
came from).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from firmware.config import (
    DEFAULT_CONFIG_PATHS,
    DEFAULT_SOURCE,
    ConfigError,
    board_memory_bytes,
    default_config,
    load_config,
    render_config,
    write_config_file,
)
from firmware.control_client import add_client_arguments, connect


def _print_values(values: dict, as_json: bool, sources: dict | None = None) -> None:
    if as_json:
        print(json.dumps(values, indent=2))
        return
    for name, value in values.items():
        source = (sources or {}).get(name, DEFAULT_SOURCE)
        print(f"{name} = {json.dumps(value)}" + (f"  # {source}" if sources else ""))


def run_get(args: argparse.Namespace) -> int:
    """Print one key, or every key, of the configuration in force; with ``--sources``,
    where each value came from (a file, a default for this board's memory, the schema's)."""
    with connect(args) as client:
        values = client.request("config.get", key=args.key)
        sources = client.request("config.sources", key=args.key) if args.sources else None
    if args.json and sources is not None:
        values = {name: {"value": value, "source": sources[name]}
                  for name, value in values.items()}
    _print_values(values, args.json, sources)
    return 0


def _parse_assignments(texts: list[str]) -> dict[str, str]:
    assignments = {}
    for text in texts:
        name, equals, value = text.partition("=")
        if not equals or not name.strip():
            raise ConfigError(f"{text!r}: expected KEY=VALUE, e.g. look=monochrome")
        assignments[name.strip()] = value
    return assignments


def run_set(args: argparse.Namespace) -> int:
    """Validate, save and apply ``KEY=VALUE`` assignments."""
    assignments = _parse_assignments(args.assignments)
    with connect(args) as client:
        _print_values(client.request("config.set", assignments=assignments), args.json)
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Validate files offline, in order (later files override earlier ones)."""
    paths = [Path(p) for p in args.paths] or list(DEFAULT_CONFIG_PATHS)
    missing = [path for path in args.paths if not Path(path).exists()]
    if missing:
        raise ConfigError(f"{missing[0]}: no such file")
    defaults = default_config(board_memory_bytes())
    config = load_config(paths, base=defaults)
    if args.json:
        print(json.dumps(config.as_dict(), indent=2))
        return 0
    for path in paths:
        print(f"{path}: {'ok' if path.exists() else 'absent (defaults apply)'}")
    board = {name: config[name] for name, source in config.sources.items()
             if source == defaults.source(name)}
    if board:
        print(f"{next(iter(defaults.sources.values()))}: "
              + ", ".join(f"{name} = {json.dumps(value)}" for name, value in board.items()))
    return 0


def run_default(args: argparse.Namespace) -> int:
    """Print (or write) the commented default configuration."""
    if args.output is None:
        sys.stdout.write(render_config())
    elif args.output.exists() and not args.force:
        raise ConfigError(f"{args.output}: exists; --force replaces it")
    else:
        write_config_file(args.output, {})
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``config`` subcommand and its actions."""
    parser = subparsers.add_parser("config", help="show, change or check the configuration")
    actions = parser.add_subparsers(dest="action", required=True)

    get = actions.add_parser("get", help="show the configuration in force (or one key)")
    get.add_argument("key", nargs="?", help="e.g. look or output.look (default: every key)")
    get.add_argument("--sources", action="store_true",
                     help="say where each value came from (a file, a board default)")
    add_client_arguments(get)
    get.set_defaults(run=run_get)

    set_ = actions.add_parser(
        "set", help="change keys on the running camera, e.g. look=monochrome"
    )
    set_.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    add_client_arguments(set_)
    set_.set_defaults(run=run_set)

    check = actions.add_parser("check", help="validate configuration files offline")
    defaults = " ".join(map(str, DEFAULT_CONFIG_PATHS))
    check.add_argument(
        "paths", nargs="*", metavar="PATH",
        help=f"files, later ones overriding earlier (default: {defaults})",
    )
    check.add_argument("--json", action="store_true", help="print the resulting configuration")
    check.set_defaults(run=run_check)

    default = actions.add_parser("default", help="the commented default configuration file")
    default.add_argument("-o", "--output", type=Path, help="write it here instead of stdout")
    default.add_argument("--force", action="store_true", help="replace an existing file")
    default.set_defaults(run=run_default)
