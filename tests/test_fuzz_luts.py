"""Fuzz: mutated .cube files either load as a usable LUT or fail with one CubeFormatError
naming the file and line; one broken LUT never hides the other looks.

Seeded: a failure names its case, which replays alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from firmware.cli import main as obscura
from pipeline.looks.look import available_looks, builtin_looks
from pipeline.looks.lut3d import MAX_CUBE_SIZE, MAX_CUBE_VALUE, CubeFormatError, apply, read_cube

SEED = 20_260_119
CASES = 300
CLI_CASES = 12
#: Words a fuzzer (or a damaged file) puts where numbers belong.
ODD_WORDS = ["nan", "-nan", "inf", "-inf", "1e30", "-1e30", "1e309", "0", "-0", "2.5", "1e2",
             "0x10", "", "1 2", "abc", "\x00", "3" * 400, "+", ".", "-", "1e-320"]
#: Lines a fuzzer inserts.
ODD_LINES = ["LUT_3D_SIZE 2", "LUT_1D_SIZE 4", "DOMAIN_MIN 0 0 0", "DOMAIN_MAX 1 1 1",
             "LUT_3D_INPUT_RANGE 0 1", "TITLE \"x\"", "# comment", "", "0.5 0.5 0.5"]


def cube_text(size: int = 3) -> str:
    """A small, valid, non-trivial LUT: a warm tint, with a domain and a title."""
    axis = np.linspace(0.0, 1.0, size)
    rows = [f"{0.1 + 0.9 * r:.6f} {g:.6f} {0.9 * b:.6f}" for b in axis for g in axis for r in axis]
    header = ["TITLE \"warm\"", f"LUT_3D_SIZE {size}", "DOMAIN_MIN 0 0 0", "DOMAIN_MAX 1 1 1"]
    return "\n".join(header + rows) + "\n"


def mutate(text: str, rng: np.random.Generator) -> tuple[str, str]:
    """One random mutation of a .cube text and what it was."""
    lines = text.splitlines()
    header = sum(not line[0].isdigit() for line in lines)
    index = int(rng.integers(header if rng.random() < 0.4 else len(lines)))  # keywords often
    kind = rng.choice(["word", "word", "word", "insert", "delete", "truncate", "bytes"])
    if kind == "word":
        words = lines[index].split() or [""]
        position = int(rng.integers(len(words)))
        words[position] = str(rng.choice(ODD_WORDS))
        lines[index] = " ".join(words)
    elif kind == "insert":
        lines.insert(index, str(rng.choice(ODD_LINES)))
    elif kind == "delete":
        del lines[index]
    elif kind == "truncate":
        cut = int(rng.integers(len(text)))
        return f"truncated to {cut} characters", text[:cut]
    else:
        start = int(rng.integers(len(text)))
        noise = "".join(chr(int(c)) for c in rng.integers(0, 128, 8))
        return f"8 random characters at {start}", text[:start] + noise + text[start + 8 :]
    return f"{kind} at line {index + 1}", "\n".join(lines) + "\n"


def test_mutated_cube_files_load_usably_or_fail_by_file_and_line(tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    text = cube_text()
    path = tmp_path / "fuzzed.cube"
    loaded = set()
    probe = rng.uniform(-0.5, 1.5, (4, 8, 3)).astype(np.float32)
    for case in range(CASES):
        description, mutated = mutate(text, rng)
        path.write_text(mutated)
        try:
            lut = read_cube(path)
        except CubeFormatError as exc:
            message = str(exc)
            assert re.match(rf"{re.escape(str(path))}(:\d+)?: ", message), (description, message)
            assert "\n" not in message, (description, message)
            loaded.add(False)
            continue
        loaded.add(True)
        assert 2 <= lut.size <= MAX_CUBE_SIZE, description
        assert np.all(np.isfinite(lut.domain_min)) and np.all(lut.domain_max > lut.domain_min)
        assert np.all(np.abs(lut.table) <= MAX_CUBE_VALUE), description
        out = apply(probe.copy(), lut)
        assert np.all(np.isfinite(out)), description
    assert loaded == {True, False}  # the mutations both spare and break files


def test_mutated_cube_files_in_the_looks_folder_hide_no_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OBSCURA_LOOKS_DIR", str(tmp_path))
    rng = np.random.default_rng(SEED + 1)
    (tmp_path / "good.cube").write_text(cube_text())
    for case in range(CLI_CASES):
        (tmp_path / f"fuzzed_{case:02d}.cube").write_text(mutate(cube_text(), rng)[1])
    looks, errors = available_looks()
    assert set(builtin_looks()) | {"good"} <= set(looks)
    assert len(looks) + len(errors) == len(builtin_looks()) + 1 + CLI_CASES
    assert obscura(["looks"]) == 0
    out, err = capsys.readouterr()
    assert "good " in out and "Traceback" not in err
    for error in errors:
        assert str(error) in err  # each broken file is listed with its reason
