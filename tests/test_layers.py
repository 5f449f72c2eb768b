"""The layers point one way: bench -> firmware -> hardware -> pipeline, never back up.

Every module's imports (including those inside functions) are read with ``ast``; an import
of a higher layer's package from a lower one fails here, naming the file and the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Package -> layer; a module may import its own layer and those below it.
LAYERS = {"pipeline": 0, "hardware": 1, "firmware": 2, "bench": 3}


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
