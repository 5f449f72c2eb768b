"""Looks: named renderings, one TOML file each in ``pipeline/looks/``.

A look only holds parameters; the stages that use them live in their own modules.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from pipeline.errors import InvalidParameterError

BUILTIN_LOOKS_DIR = Path(__file__).with_name("looks")


@dataclass(frozen=True)
class Look:
    """Parameters of a rendering.

    ``colorimetric`` looks (``neutral``) skip exposure, tone mapping and sharpening: the
    output is the scene's colour in sRGB with only the sRGB transfer function.
    """

    name: str
    description: str
    colorimetric: bool = False
    contrast: float = 1.3
    local_tone_strength: float = 0.6
    sharpen_amount: float = 0.0
    sharpen_radius_px: float = 1.0


def load_look(path: Path) -> Look:
    """Read one look file; errors name the file and the offending key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidParameterError(f"{path}: {exc}") from None
    known = {f.name: f for f in fields(Look)}
    unknown = sorted(set(data) - set(known) - {"name"})
    if unknown:
        raise InvalidParameterError(f"{path}: unknown key(s) {', '.join(unknown)}")
    for key, value in data.items():
        expected = known[key].type if key in known else "str"
        kind = {"str": str, "bool": bool, "float": (int, float)}[str(expected)]
        if not isinstance(value, kind) or (kind != bool and isinstance(value, bool)):
            raise InvalidParameterError(f"{path}: {key} = {value!r} is not a {expected}")
    data = {"name": path.stem, "description": "", **data}
    return Look(**data)


def builtin_looks() -> dict[str, Look]:
    """Every look shipped in ``pipeline/looks/``, by name."""
    return {p.stem: load_look(p) for p in sorted(BUILTIN_LOOKS_DIR.glob("*.toml"))}


def find_look(name: str) -> Look:
    """The built-in look called ``name``."""
    looks = builtin_looks()
    if name not in looks:
        raise InvalidParameterError(f"look={name!r}: expected one of {', '.join(looks)}")
    return looks[name]
