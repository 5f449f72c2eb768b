"""Fuzz: mutated configuration files either load, and then start the daemon's parts, or
fail with one ConfigError naming the file; nothing that passes `config check` can stop
the next start.

Seeded: a failure names its case, which replays alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from firmware.cli import main as obscura
from firmware.config import SCHEMA, ConfigError, load_config, render_config
from firmware.capture import capture_limits
from firmware.devices import camera_from_config, control_pins
from hardware.controls import Controls
from hardware.storage import PhotoStore

SEED = 20_261_205
CASES = 250
CLI_CASES = 10
#: Values a fuzzer (or a careless edit) puts in place of a key's value.
ODD_VALUES = [
    "9" * 5000, "-1", "0", "1e308", "nan", "inf", "-inf", "3.5", "true", '"None"', '""',
    '"\\u0000"', '"/etc"', '"/"', '"relative/photos"', '"/usr/share"', "[]", '["jpeg", 3]',
    "[" * 300 + "]" * 300, "{ a = 1 }", '"jpeg,dng"', "17", "27", "22", "3", "4", "40",
    '"full"', '"binned"', '"simulator"', '"replay"', '"a\\nb"', "0x11", "1_000", "-0",
]
#: Lines a fuzzer inserts.
ODD_LINES = ["look = \"standard\"", "[pins]", "[camera.deep]", "x.y.z = 1", "[output]",
             "keep = [\"jpeg\"]", "shutter = 4", "storage_path = \"/media/card\"", "= 3", "[[a]]"]


def default_text() -> str:
    """A valid file setting every key to its default (the installed file, uncommented)."""
    return render_config({key.name: key.default for key in SCHEMA})


def mutate(text: str, rng: np.random.Generator) -> tuple[str, str]:
    """One random mutation of a config text, and what it was."""
    lines = text.splitlines()
    kind = rng.integers(0, 5)
    if kind <= 1:  # a key's value replaced (twice as likely: the common damage)
        settable = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("#")]
        i = int(rng.choice(settable))
        value = str(rng.choice(ODD_VALUES))
        name = lines[i].split(" = ")[0]
        lines[i] = f"{name} = {value}"
        return "\n".join(lines) + "\n", f"{name} = {value[:40]}"
    if kind == 2:  # a line inserted
        i = int(rng.integers(0, len(lines) + 1))
        line = str(rng.choice(ODD_LINES))
        lines.insert(i, line)
        return "\n".join(lines) + "\n", f"line {i} inserted: {line}"
    data = bytearray(text.encode())
    if kind == 3:  # bytes flipped
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        return data.decode("utf-8", errors="replace"), "bytes flipped"
    cut = int(rng.integers(0, len(data)))  # truncated
    return data[:cut].decode("utf-8", errors="replace"), f"truncated at {cut}"


def starts(config, tmp_path: Path) -> None:
    """What the daemon's start builds from a configuration, without a camera or a Pi."""
    with Controls(control_pins(config), pin_factory=MockFactory(), on_event=lambda e: None) as c:
        assert c.failures == (), c.failures
    capture_limits(config)
    camera_from_config(config.with_value("camera.source", "simulator"), simulator_size=(8, 8))
    assert Path(config["output.storage_path"]).is_absolute()
    PhotoStore(config["output.storage_path"])


def test_mutated_configs_load_and_start_or_fail_by_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    base = default_text()
    loaded = refused = 0
    for case in range(CASES):
        text, what = mutate(base, rng)
        path = tmp_path / f"case{case}.toml"
        path.write_text(text, encoding="utf-8")
        try:
            config = load_config([path])
        except ConfigError as exc:
            message = str(exc)
            assert message.startswith(str(path)), f"case {case} ({what}): {message}"
            assert "\n" not in message.strip(), f"case {case} ({what}): {message!r}"
            refused += 1
            continue
        except Exception as exc:  # noqa: BLE001 - what the fuzz is looking for
            pytest.fail(f"case {case} ({what}): {type(exc).__name__}: {exc}")
        try:
            starts(config, tmp_path)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"case {case} ({what}) passed check but would not start: "
                        f"{type(exc).__name__}: {exc}")
        loaded += 1
    assert loaded > 20 and refused > 20  # the mutations exercised both outcomes


def test_config_check_is_one_line_whatever_the_file(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(SEED + 1)
    base = default_text()
    for case in range(CLI_CASES):
        text, what = mutate(base, rng)
        path = tmp_path / f"cli{case}.toml"
        path.write_text(text, encoding="utf-8")
        status = obscura(["config", "check", str(path)])
        captured = capsys.readouterr()
        assert status in (0, 1), f"case {case} ({what})"
        assert "Traceback" not in captured.err, f"case {case} ({what}): {captured.err}"
        if status == 1:
            assert len(captured.err.strip().splitlines()) == 1, f"case {case}: {captured.err}"
