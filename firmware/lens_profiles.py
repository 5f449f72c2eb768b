"""Lens profiles for manual lenses: what the camera cannot learn from the lens itself.

A library is a folder holding ``lenses.toml`` (one table per lens) and, for calibrated
lenses, ``<name>.shading.npz`` with the flat-field lens shading table. Built-in profiles
cover the Raspberry Pi lenses; a user's own are added with ``obscura lens add``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware.config import DEFAULT_CONFIG_PATHS, load_config
from hardware.storage import write_atomic
from pipeline.errors import ObscuraError
from pipeline.raw_frame import CameraMetadata, LensShadingMap

#: Diagonal of a 36x24 mm frame over the IMX477's active area (4056x3040 at 1.55 um:
#: 6.287 x 4.712 mm, diagonal 7.857 mm).
IMX477_CROP_FACTOR = float(np.hypot(36.0, 24.0) / np.hypot(4056 * 1.55e-3, 3040 * 1.55e-3))

MOUNTS = ("C", "CS", "M", "M42", "other")


class LensError(ObscuraError, ValueError):
    """A lens profile is unknown or invalid; the message names it."""


@dataclass(frozen=True)
class LensProfile:
    """A lens: its name, focal length, widest aperture and mount."""

    name: str
    focal_length_mm: float
    max_f_number: float
    mount: str = "C"

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise LensError("a lens needs a name")
        if not 1.0 <= self.focal_length_mm <= 2000.0:
            raise LensError(f"{self.name}: focal_length_mm={self.focal_length_mm}: expected 1..2000")
        if not 0.5 <= self.max_f_number <= 64.0:
            raise LensError(f"{self.name}: max_f_number={self.max_f_number}: expected 0.5..64")
        if self.mount not in MOUNTS:
            raise LensError(f"{self.name}: mount={self.mount!r}: expected one of {', '.join(MOUNTS)}")

    @property
    def focal_length_35mm(self) -> float:
        """35 mm-equivalent focal length on the HQ camera's sensor."""
        return self.focal_length_mm * IMX477_CROP_FACTOR


BUILTIN_LENSES = (
    LensProfile("Raspberry Pi 6mm f/1.2 wide angle", 6.0, 1.2, "CS"),
    LensProfile("Raspberry Pi 16mm f/1.4 telephoto", 16.0, 1.4, "C"),
)


def default_library_dir() -> Path:
    """``$OBSCURA_LENS_DIR``, else the configuration's ``lens.library_dir``.

    The daemon reads the same key, so a lens added or calibrated from the command line is
    the one ``obscura lens set`` finds.
    """
    configured = os.environ.get("OBSCURA_LENS_DIR")
    if configured:
        return Path(configured)
    return Path(load_config(DEFAULT_CONFIG_PATHS)["lens.library_dir"])


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


class LensLibrary:
    """The built-in lenses plus the user's, stored in ``directory``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_library_dir()

    @property
    def _index(self) -> Path:
        return self.directory / "lenses.toml"

    def _user_lenses(self) -> dict[str, LensProfile]:
        if not self._index.exists():
            return {}
        try:
            table = tomllib.loads(self._index.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise LensError(f"{self._index}: {exc}") from None
        lenses = {}
        for name, fields in table.get("lens", {}).items():
            try:
                lenses[name] = LensProfile(name=name, **fields)
            except TypeError as exc:
                raise LensError(f"{self._index}: lens {name!r}: {exc}") from None
        return lenses

    def lenses(self) -> dict[str, LensProfile]:
        """Every known lens by name, user profiles overriding built-in ones."""
        return {**{lens.name: lens for lens in BUILTIN_LENSES}, **self._user_lenses()}

    def get(self, name: str) -> LensProfile:
        """The lens called ``name``."""
        lenses = self.lenses()
        if name not in lenses:
            raise LensError(f"unknown lens {name!r}; known: {', '.join(lenses)}")
        return lenses[name]

    def add(self, lens: LensProfile) -> None:
        """Add or replace a user lens profile (written atomically)."""
        user = {**self._user_lenses(), lens.name: lens}
        lines = []
        for profile in user.values():
            name = profile.name.replace("\\", "\\\\").replace('"', '\\"')
            lines += [
                f'[lens."{name}"]',
                f"focal_length_mm = {profile.focal_length_mm!r}",
                f"max_f_number = {profile.max_f_number!r}",
                f'mount = "{profile.mount}"',
                "",
            ]
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self._index, "\n".join(lines).encode("utf-8"))

    def _shading_path(self, name: str) -> Path:
        return self.directory / f"{_slug(name)}.shading.npz"

    def save_shading(self, name: str, shading: LensShadingMap) -> Path:
        """Store the flat-field calibration of lens ``name``."""
        self.get(name)
        buffer = io.BytesIO()
        np.savez(buffer, gains=shading.gains)
        self.directory.mkdir(parents=True, exist_ok=True)
        return write_atomic(self._shading_path(name), buffer.getvalue())

    def shading(self, name: str) -> LensShadingMap | None:
        """The stored calibration of lens ``name``, or None if it has none."""
        path = self._shading_path(name)
        if not path.exists():
            return None
        try:
            with np.load(path) as data:
                return LensShadingMap(gains=data["gains"].astype(np.float32))
        except (OSError, ValueError, KeyError) as exc:
            raise LensError(f"{path}: unreadable lens shading table: {exc}") from None


def with_lens(
    metadata: CameraMetadata,
    lens: LensProfile,
    f_number: float | None,
    shading: LensShadingMap | None = None,
) -> CameraMetadata:
    """``metadata`` with the lens's EXIF/DNG fields and, if given, its shading table."""
    if f_number is not None and not lens.max_f_number - 1e-6 <= f_number <= 64.0:
        raise LensError(
            f"{lens.name}: f_number={f_number}: expected f/{lens.max_f_number} or narrower"
        )
    return dataclasses.replace(
        metadata,
        lens_model=lens.name,
        focal_length_mm=lens.focal_length_mm,
        focal_length_35mm=lens.focal_length_35mm,
        f_number=f_number,
        lens_shading=shading if shading is not None else metadata.lens_shading,
    )


def lens_settings(library: LensLibrary, name: str, f_number: float | None) -> dict[str, str]:
    """The ``lens.*`` configuration that puts lens ``name`` in use at ``f_number``.

    Raises
    ------
    LensError
        ``name`` is not in ``library``, or ``f_number`` is wider than the lens opens.
    """
    lens = library.get(name)
    if f_number is not None and not lens.max_f_number - 1e-6 <= f_number <= 64.0:
        raise LensError(
            f"{lens.name}: f_number={f_number:g}: expected f/{lens.max_f_number:g} or narrower"
        )
    return {
        "lens.name": json.dumps(lens.name),  # a TOML string, whatever the name's quotes
        "lens.focal_length_mm": repr(lens.focal_length_mm),
        "lens.f_number": repr(float(f_number or 0.0)),
    }
