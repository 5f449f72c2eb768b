"""The house's rules (ARCHITECTURE.md): the layers point one way, bench -> firmware ->
hardware -> pipeline, never back up; no firmware module grows past a screenful of screens;
pipeline/ keeps its top level small; configuration is read by typed section.

Every module's imports (including those inside functions) are read with ``ast``; an import
of a higher layer's package from a lower one fails here, naming the file and the line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Package -> layer; a module may import its own layer and those below it.
LAYERS = {"pipeline": 0, "hardware": 1, "firmware": 2, "bench": 3}
#: Most lines a firmware module may have (issue 17: one job a module).
MAX_FIRMWARE_LINES = 500
#: Most modules at pipeline/'s top level, beside its subpackages.
MAX_PIPELINE_TOP_LEVEL = 12


def _imported_packages(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module.split(".")[0], node.lineno))
    return found


def upward_imports(root: Path = ROOT) -> list[str]:
    """``file:line: layer imports higher-layer`` for every import that points up."""
    problems = []
    for package, layer in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for imported, line in _imported_packages(tree):
                if LAYERS.get(imported, -1) > layer:
                    problems.append(f"{path.relative_to(root)}:{line}: {package} imports "
                                    f"{imported}")
    return problems


def test_no_import_points_up_a_layer() -> None:
    assert upward_imports() == []


def test_an_upward_import_is_found(tmp_path: Path) -> None:
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "pipeline" / "stage.py").write_text(
        "import numpy\n\ndef f():\n    from firmware.daemon import Daemon\n")
    (tmp_path / "firmware" / "ok.py").write_text("from pipeline import develop\n")
    assert upward_imports(tmp_path) == ["pipeline/stage.py:4: pipeline imports firmware"]


def long_modules(root: Path = ROOT, limit: int = MAX_FIRMWARE_LINES) -> list[str]:
    """``file: N lines`` for every firmware module longer than ``limit``."""
    return [f"{path.relative_to(root)}: {n} lines"
            for path in sorted((root / "firmware").rglob("*.py"))
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > limit]


def test_no_firmware_module_is_over_500_lines() -> None:
    assert long_modules() == []


def test_a_long_module_is_found(tmp_path: Path) -> None:
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "grab_bag.py").write_text("x = 1\n" * 501)
    (tmp_path / "firmware" / "ok.py").write_text("x = 1\n" * 500)
    assert long_modules(tmp_path) == ["firmware/grab_bag.py: 501 lines"]


def test_pipeline_keeps_a_small_top_level() -> None:
    modules = sorted(p.name for p in (ROOT / "pipeline").glob("*.py"))
    assert len(modules) <= MAX_PIPELINE_TOP_LEVEL, modules


#: ``config["capture.mode"]``: a fixed key read by its name, which a typo breaks only at
#: run time; ``config.capture.mode`` is checked by type checkers and fails at once.
_FIXED_KEY_READ = re.compile(r"""(?<!`)\bconfig\w*\[\s*["'][a-z_]+\.[a-z_]+["']\s*\]""")


def fixed_key_reads(root: Path = ROOT) -> list[str]:
    """``file:line`` of every fixed-name configuration read in firmware/, hardware/ and
    bench/ (names chosen at run time, such as ``config[key]``, are fine)."""
    found = []
    for package in ("firmware", "hardware", "bench"):
        for path in sorted((root / package).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _FIXED_KEY_READ.search(line) and not line.lstrip().startswith(("#", '"')):
                    found.append(f"{path.relative_to(root)}:{number}")
    return found


def test_configuration_is_read_by_typed_section() -> None:
    assert fixed_key_reads() == []


def test_a_fixed_key_read_is_found(tmp_path: Path) -> None:
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "m.py").write_text(
        'a = config["capture.mode"]\nb = config.capture.mode\nc = old[key]\n')
    assert fixed_key_reads(tmp_path) == ["firmware/m.py:1"]
