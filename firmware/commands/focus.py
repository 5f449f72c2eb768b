"""``obscura focus``: focus a manual lens over SSH, without a screen.

Polls the running camera's focus measure a few times a second and redraws a text bar with
the peak so far; turn the focus ring until the bar is full. Meanwhile the camera's LED
blinks faster as focus nears the peak. Ctrl-C stops (``--count N`` stops after N readings).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from firmware.control_client import add_client_arguments, connect
from firmware.focus_assist import FocusMeter

#: Seconds between readings: a few a second, as fast as the camera streams at 12 MP.
POLL_INTERVAL_S = 0.25


def format_reading(result: dict[str, Any], width: int = 40) -> str:
    """One reading as ``[#####-----|]  82.0%  measure 12.3  peak 15.0``."""
    meter = FocusMeter(peak=float(result["peak"]), current=float(result["measure"]))
    return f"{meter.bar(width)}  measure {meter.current:.4g}  peak {meter.peak:.4g}"


def _region(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected TOP,LEFT,HEIGHT,WIDTH as fractions, e.g. 0.4,0.4,0.2,0.2"
        )
    return values


def run(args: argparse.Namespace) -> int:
    """Poll the camera's focus measure and redraw the bar."""
    redraw = sys.stdout.isatty() and not args.json
    readings = 0
    try:
        with connect(args) as client:
            while args.count is None or readings < args.count:
                result = client.request("focus", region=args.region, reset=args.reset and not readings)
                readings += 1
                if args.json:
                    print(json.dumps(result), flush=True)
                elif redraw:
                    print("\r" + format_reading(result), end="", flush=True)
                else:
                    print(format_reading(result), flush=True)
                if args.count is None or readings < args.count:
                    time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        if redraw and readings:
            print()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``focus`` subcommand."""
    parser = subparsers.add_parser(
        "focus", help="focus assist: a live sharpness bar (and the LED blinks faster)"
    )
    parser.add_argument("--region", type=_region, default=None, metavar="T,L,H,W",
                        help="where to measure, in fractions of the frame (default: centre)")
    parser.add_argument("--count", type=int, default=None, help="stop after N readings")
    parser.add_argument("--interval", type=float, default=POLL_INTERVAL_S,
                        help="seconds between readings")
    parser.add_argument("--reset", action="store_true", help="forget the previous peak")
    add_client_arguments(parser)
    parser.set_defaults(run=run)
