"""Looks: named renderings, one TOML file each beside this module or in the user's folder.

A look only holds parameters; the stages that use them live in their own modules. The
file format is versioned (``version = 2``; files without ``version`` are the original
flat format, version 1, and are read as such). Every section is a frozen dataclass whose
fields give the keys, types and bounds, so one schema validates files and code alike;
errors name the file and the key (or the LUT's file and line).

User looks live in ``$OBSCURA_LOOKS_DIR``, else ``$XDG_CONFIG_HOME/obscura/looks``, else
``~/.config/obscura/looks``: a ``.toml`` look (its ``[lut] file`` relative to it), or a bare
``.cube`` LUT, which becomes the ``standard`` look with that LUT applied.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

from pipeline.errors import InvalidParameterError, ObscuraError
from pipeline.looks.colour_grading import GradingParams, SplitToning
from pipeline.looks.grain import GrainParams
from pipeline.looks.lut3d import LutParams, read_cube
from pipeline.looks.vignette import VignetteParams
from pipeline.parameters import bounded, check_bounds

#: The built-in looks: the TOML files beside this module.
BUILTIN_LOOKS_DIR = Path(__file__).parent
USER_LOOKS_ENV = "OBSCURA_LOOKS_DIR"
FORMAT_VERSION = 2
#: The look a bare .cube file is applied on top of.
LUT_BASE_LOOK = "standard"
#: Version 1 (flat) keys and where version 2 keeps them.
_VERSION_1_KEYS = {
    "description": ("description",),
    "colorimetric": ("colorimetric",),
    "contrast": ("tone", "contrast"),
    "local_tone_strength": ("tone", "local_tone_strength"),
    "sharpen_amount": ("sharpen", "amount"),
    "sharpen_radius_px": ("sharpen", "radius_px"),
}


@dataclass(frozen=True)
class ToneParams:
    """Tone of a look: the filmic curve's contrast, local tone mapping, output levels."""

    contrast: float = bounded(1.3, 0.5, 4.0, "slope of the filmic sigmoid at middle grey")
    local_tone_strength: float = bounded(0.6, 0.0, 1.0, "local tone mapping (0 = none)")
    exposure_ev: float = bounded(0.0, -2.0, 2.0, "added to the automatic exposure")
    black_point: float = bounded(0.0, 0.0, 0.25, "encoded output of black (> 0: matte)")
    white_point: float = bounded(1.0, 0.75, 1.0, "encoded output of white")

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class SharpenParams:
    """Unsharp mask on display luma (:func:`pipeline.stages.sharpen.unsharp_mask`)."""

    amount: float = bounded(0.0, 0.0, 3.0, "detail gain (0 = off)")
    radius_px: float = bounded(1.0, 0.3, 5.0, "Gaussian radius, pixels")

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(frozen=True)
class Look:
    """Parameters of a rendering.

    ``colorimetric`` looks (``neutral``) skip exposure, tone mapping and everything after:
    the output is the scene's colour in sRGB with only the sRGB transfer function.
    """

    name: str
    description: str = ""
    colorimetric: bool = False
    tone: ToneParams = field(default_factory=ToneParams)
    colour: GradingParams = field(default_factory=GradingParams)
    split_toning: SplitToning = field(default_factory=SplitToning)
    vignette: VignetteParams = field(default_factory=VignetteParams)
    grain: GrainParams = field(default_factory=GrainParams)
    sharpen: SharpenParams = field(default_factory=SharpenParams)
    lut: LutParams | None = None


def _describe(kind: object) -> str:
    return getattr(kind, "__name__", str(kind)).replace("typing.", "")


def _convert(kind: object, value: object, path: Path, key: str) -> object:
    """``value`` from TOML as the dataclass field type ``kind``; errors name file and key."""
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise InvalidParameterError(f"{path}: {key} = {value!r} is not a table")
        return _build(kind, value, path, f"{key}.")
    if origin is typing.Literal:
        if value in typing.get_args(kind):
            return value
        raise InvalidParameterError(
            f"{path}: {key} = {value!r}: expected one of {', '.join(typing.get_args(kind))}"
        )
    if origin is tuple:
        items = typing.get_args(kind)
        if isinstance(value, list) and len(value) == len(items):
            return tuple(_convert(t, v, path, key) for t, v in zip(items, value))
        raise InvalidParameterError(f"{path}: {key} = {value!r} is not {len(items)} numbers")
    if kind is Path and isinstance(value, str):
        return path.parent / value
    expected = {float: (int, float), bool: bool, str: str}.get(kind)  # type: ignore[call-overload]
    if expected is None or not isinstance(value, expected) or (
        kind is not bool and isinstance(value, bool)
    ):
        raise InvalidParameterError(f"{path}: {key} = {value!r} is not a {_describe(kind)}")
    return float(value) if kind is float else value


def _build(cls: type, table: dict, path: Path, prefix: str = "", **extra: object) -> object:
    """Construct dataclass ``cls`` from a TOML table: unknown keys and bad values name the key."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls) if f.init} - set(extra)
    unknown = sorted(set(table) - known)
    if unknown:
        keys = ", ".join(prefix + k for k in unknown)
        raise InvalidParameterError(f"{path}: unknown key(s) {keys}")
    kwargs = {k: _convert(hints[k], v, path, prefix + k) for k, v in table.items()}
    try:
        return cls(**kwargs, **extra)
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"{path}: {prefix}{exc}") from None
    except TypeError as exc:  # a required key is missing
        raise InvalidParameterError(f"{path}: [{prefix.rstrip('.')}] {exc}") from None


def _upgrade_version_1(data: dict, path: Path) -> dict:
    """The version-2 tables of a version-1 (flat) look file."""
    upgraded: dict = {}
    for key, value in data.items():
        if key not in _VERSION_1_KEYS:
            raise InvalidParameterError(f"{path}: unknown key(s) {key}")
        *tables, leaf = _VERSION_1_KEYS[key]
        target = upgraded
        for table in tables:
            target = target.setdefault(table, {})
        target[leaf] = value
    return upgraded


def load_look(path: Path) -> Look:
    """Read one look file (TOML); the look is named after the file.

    Raises
    ------
    InvalidParameterError
        Naming the file and the key: syntax errors, unknown keys, wrong types, values out
        of bounds, an unknown ``version``.
    pipeline.looks.lut3d.CubeFormatError
        Naming the LUT file and line, when ``[lut] file`` is malformed.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidParameterError(f"{path}: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested array or table
        raise InvalidParameterError(f"{path}: arrays or tables nested too deeply") from None
    version = data.pop("version", 1)
    if version == 1:
        data = _upgrade_version_1(data, path)
    elif version != FORMAT_VERSION or isinstance(version, bool):
        raise InvalidParameterError(
            f"{path}: version = {version!r}: expected 1 or {FORMAT_VERSION}"
        )
    lut_table = data.pop("lut", None)
    look = _build(Look, data, path, name=path.stem)
    if lut_table is None:
        return look  # type: ignore[return-value]
    if not isinstance(lut_table, dict) or not isinstance(lut_table.get("file"), str):
        raise InvalidParameterError(f"{path}: lut.file = {lut_table!r}: expected a file name")
    lut_path = path.parent / lut_table["file"]
    lut = _build(LutParams, lut_table, path, "lut.", lut=read_cube(lut_path))
    return dataclasses.replace(look, lut=lut)  # type: ignore[type-var]


def load_cube_look(path: Path) -> Look:
    """A bare ``.cube`` LUT as a look: :data:`LUT_BASE_LOOK` with the LUT applied."""
    lut = read_cube(path)
    base = load_look(BUILTIN_LOOKS_DIR / f"{LUT_BASE_LOOK}.toml")
    return dataclasses.replace(
        base,
        name=path.stem,
        description=f"{LUT_BASE_LOOK} + 3D LUT {lut.title or path.name}",
        lut=LutParams(file=path, lut=lut),
    )


def user_looks_dir() -> Path:
    """The folder of user looks (see the module docstring)."""
    if os.environ.get(USER_LOOKS_ENV):
        return Path(os.environ[USER_LOOKS_ENV])
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "obscura" / "looks"


def _user_look_files() -> list[Path]:
    folder = user_looks_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".toml", ".cube"))


def _load_user_look(path: Path) -> Look:
    if (BUILTIN_LOOKS_DIR / f"{path.stem}.toml").exists():
        raise InvalidParameterError(f"{path}: {path.stem!r} is the name of a built-in look")
    return load_cube_look(path) if path.suffix.lower() == ".cube" else load_look(path)


def look_names() -> tuple[str, ...]:
    """The names of the looks shipped in ``pipeline/looks/``, in file-name order; no file is
    read."""
    return tuple(p.stem for p in sorted(BUILTIN_LOOKS_DIR.glob("*.toml")))


def builtin_looks() -> dict[str, Look]:
    """Every look shipped in ``pipeline/looks/``, by name."""
    return {name: load_look(BUILTIN_LOOKS_DIR / f"{name}.toml") for name in look_names()}


def available_looks() -> tuple[dict[str, Look], list[ObscuraError]]:
    """Built-in and user looks by name, and the errors of user files that did not load.

    A broken user file never hides the other looks.
    """
    looks = builtin_looks()
    errors: list[ObscuraError] = []
    for path in _user_look_files():
        try:
            look = _load_user_look(path)
        except ObscuraError as exc:
            errors.append(exc)
            continue
        if look.name in looks:
            errors.append(InvalidParameterError(f"{path}: look {look.name!r} is defined twice"))
        else:
            looks[look.name] = look
    return looks, errors


def find_look(name: str) -> Look:
    """The built-in or user look called ``name``; only its own file is read."""
    if not name or Path(name).name != name:
        raise InvalidParameterError(f"look={name!r}: not a look name")
    builtin = BUILTIN_LOOKS_DIR / f"{name}.toml"
    if builtin.exists():
        return load_look(builtin)
    candidates = [p for p in _user_look_files() if p.stem == name]
    if len(candidates) == 1:
        return _load_user_look(candidates[0])
    names = sorted({p.stem for p in BUILTIN_LOOKS_DIR.glob("*.toml")} |
                   {p.stem for p in _user_look_files()})
    if candidates:
        raise InvalidParameterError(
            f"look={name!r}: defined by {len(candidates)} files in {user_looks_dir()}"
        )
    raise InvalidParameterError(f"look={name!r}: expected one of {', '.join(names)}")
