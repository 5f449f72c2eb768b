"""Lens profiles for manual lenses: what the camera cannot learn from the lens itself.

A library is a folder holding ``lenses.toml`` (one table per lens) and, for calibrated
lenses, ``<name>.shading.npz`` with the flat-field lens shading table. Built-in profiles
cover the Raspberry Pi lenses; a user's own are added with ``obscura lens add``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import tomllib
import zipfile
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np

from firmware.config import DEFAULT_CONFIG_PATHS, load_config
from hardware.storage import write_atomic
from pipeline.errors import ObscuraError
from pipeline.raw_frame import CameraMetadata, LensShadingMap

logger = logging.getLogger(__name__)

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
        if not isinstance(self.name, str) or not self.name.strip():
            raise LensError(f"name={self.name!r}: a lens needs a name")
        for field in ("focal_length_mm", "max_f_number"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise LensError(f"{self.name}: {field}={value!r}: expected a number")
        if not isinstance(self.mount, str):
            raise LensError(f"{self.name}: mount={self.mount!r}: expected one of {', '.join(MOUNTS)}")
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
    return Path(load_config(DEFAULT_CONFIG_PATHS).lens.library_dir)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


#: The fields of a lens entry in ``lenses.toml``, and whether each is required.
ENTRY_FIELDS = {"focal_length_mm": True, "max_f_number": True, "mount": False}


def profile_from_entry(index: Path, name: str, fields: Any) -> LensProfile:
    """The lens profile of entry ``[lens."name"]`` of ``index``.

    Raises
    ------
    LensError
        The entry is not a table, lacks or has unknown fields, or has a bad value; the
        message names the file, the entry and the field.
    """
    where = f"{index}: lens {name!r}"
    if not isinstance(fields, dict):
        raise LensError(f"{where}: expected a table of {', '.join(ENTRY_FIELDS)}")
    unknown = sorted(set(fields) - set(ENTRY_FIELDS))
    if unknown:
        raise LensError(f"{where}: unknown field {unknown[0]!r} "
                        f"(expected {', '.join(ENTRY_FIELDS)})")
    missing = [f for f, required in ENTRY_FIELDS.items() if required and f not in fields]
    if missing:
        raise LensError(f"{where}: {missing[0]} is missing")
    try:
        return LensProfile(name=name, **fields)
    except LensError as exc:
        raise LensError(f"{index}: lens {exc}") from None


def _check_shading(path: Path, gains: np.ndarray) -> LensShadingMap:
    """``gains`` as a lens shading map, if it is one: (4, gh, gw), finite and positive."""
    if gains.ndim != 3 or gains.shape[0] != 4 or min(gains.shape[1:]) < 2:
        raise LensError(f"{path}: lens shading gains of shape {gains.shape}: expected (4, gh, gw)"
                        " with gh, gw >= 2")
    if not np.issubdtype(gains.dtype, np.floating) or not np.all(np.isfinite(gains) & (gains > 0)):
        raise LensError(f"{path}: lens shading gains must be finite positive numbers")
    return LensShadingMap(gains=gains.astype(np.float32))


class LensLibrary:
    """The built-in lenses plus the user's, stored in ``directory``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_library_dir()

    @property
    def _index(self) -> Path:
        return self.directory / "lenses.toml"

    def load(self) -> tuple[dict[str, LensProfile], dict[str, LensError]]:
        """Every usable lens by name (user profiles overriding built-in ones), and the
        problems of the library's file: by entry name, or by the file's path when the whole
        file is unreadable. One broken entry leaves the others usable."""
        lenses = {lens.name: lens for lens in BUILTIN_LENSES}
        if not self._index.exists():
            return lenses, {}
        try:
            table = tomllib.loads(self._index.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            return lenses, {str(self._index): LensError(f"{self._index}: {exc}")}
        entries = table.get("lens", {})
        if not isinstance(entries, dict):
            problem = LensError(f"{self._index}: lens: expected tables [lens.\"NAME\"]")
            return lenses, {str(self._index): problem}
        problems = {}
        for name, fields in entries.items():
            try:
                lenses[name] = profile_from_entry(self._index, name, fields)
            except LensError as exc:
                problems[name] = exc
        return lenses, problems

    def lenses(self) -> dict[str, LensProfile]:
        """Every usable lens by name, user profiles overriding built-in ones."""
        return self.load()[0]

    def get(self, name: str) -> LensProfile:
        """The lens called ``name``.

        Raises
        ------
        LensError
            Unknown, or its entry in the library's file is broken (that error).
        """
        lenses, problems = self.load()
        if name in lenses and name not in problems:
            return lenses[name]
        if name in problems:
            raise problems[name]
        if str(self._index) in problems:
            raise problems[str(self._index)]
        raise LensError(f"unknown lens {name!r}; known: {', '.join(lenses)}")

    def add(self, lens: LensProfile, replace: bool = False) -> None:
        """Add a user lens profile, or replace one of that name if ``replace`` (written
        atomically).

        Raises
        ------
        LensError
            A lens of that name exists and ``replace`` is false, or the library's file has
            broken entries (rewriting it would lose them).
        """
        lenses, problems = self.load()
        if problems:
            raise LensError(
                f"{self._index} has broken entries; fix or remove them first: "
                + "; ".join(map(str, problems.values()))
            )
        if lens.name in lenses and not replace:
            raise LensError(f"a lens called {lens.name!r} exists; --replace replaces it")
        builtin = {b.name: b for b in BUILTIN_LENSES}
        user = {n: p for n, p in lenses.items() if builtin.get(n) is not p}
        user[lens.name] = lens
        lines = []
        for profile in user.values():
            lines += [
                f"[lens.{json.dumps(profile.name)}]",  # a TOML string, whatever the name holds
                f"focal_length_mm = {float(profile.focal_length_mm)!r}",
                f"max_f_number = {float(profile.max_f_number)!r}",
                f'mount = "{profile.mount}"',
                "",
            ]
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self._index, "\n".join(lines).encode("utf-8"))

    def _shading_path(self, name: str) -> Path:
        return self.directory / f"{_slug(name)}.shading.npz"

    def save_shading(self, name: str, shading: LensShadingMap, source: str = "flat-field") -> Path:
        """Store the shading calibration of lens ``name``; ``source`` says how it was
        measured (``flat-field``, ``pi-jpeg``), for ``obscura lens list``."""
        self.get(name)
        buffer = io.BytesIO()
        np.savez(buffer, gains=shading.gains, source=np.array(source))
        self.directory.mkdir(parents=True, exist_ok=True)
        return write_atomic(self._shading_path(name), buffer.getvalue())

    def calibration(self, name: str) -> tuple[LensShadingMap, str] | None:
        """Lens ``name``'s stored shading table and how it was measured (``flat-field``,
        ``pi-jpeg``), or None if it has none."""
        path = self._shading_path(name)
        if not path.exists():
            return None
        try:
            with np.load(path) as data:
                gains = data["gains"]
                source = str(data["source"]) if "source" in data.files else "flat-field"
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise LensError(f"{path}: unreadable lens shading table: {exc}") from None
        return _check_shading(path, gains), source

    def shading(self, name: str) -> LensShadingMap | None:
        """The stored calibration of lens ``name``, or None if it has none."""
        calibration = self.calibration(name)
        return None if calibration is None else calibration[0]


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
        ``name`` is not in ``library``, its flat-field table is unreadable, or
        ``f_number`` is wider than the lens opens.
    """
    lens = library.get(name)
    library.shading(name)  # a corrupt table is refused now, not found at the next shot
    if f_number is not None and not lens.max_f_number - 1e-6 <= f_number <= 64.0:
        raise LensError(
            f"{lens.name}: f_number={f_number:g}: expected f/{lens.max_f_number:g} or narrower"
        )
    return {
        "lens.name": json.dumps(lens.name),  # a TOML string, whatever the name's quotes
        "lens.focal_length_mm": repr(lens.focal_length_mm),
        "lens.f_number": repr(float(f_number or 0.0)),
    }


@dataclass(frozen=True)
class LensInUse:
    """The lens the ``lens.*`` keys name, resolved in the lens library.

    ``profile`` is None when ``lens.name`` is empty or unknown: ``name`` and
    ``focal_length_mm`` (the ``lens.*`` values) then go to EXIF as they are.
    """

    name: str = ""
    focal_length_mm: float = 0.0
    profile: LensProfile | None = None
    f_number: float | None = None
    shading: LensShadingMap | None = None

    def stamp(self, metadata: CameraMetadata, shape: tuple[int, int]) -> CameraMetadata:
        """``metadata`` of an (H, W) ``shape`` frame with this lens: EXIF/DNG fields and its
        flat-field shading table (which the develop's lens shading stage applies), taking
        on the Pi's white balance at the centre
        (:func:`pipeline.stages.colour_shading.with_pis_white_balance`)."""
        if self.profile is not None:
            shading = self.shading
            if shading is not None:
                # Here, not at the top: ``obscura lens list`` needs no numba.
                from pipeline.stages.colour_shading import with_pis_white_balance

                shading = with_pis_white_balance(shading, metadata, shape)
            return with_lens(metadata, self.profile, self.f_number, shading)
        return dataclasses.replace(
            metadata,
            lens_model=self.name or metadata.lens_model,
            focal_length_mm=self.focal_length_mm or metadata.focal_length_mm,
            f_number=self.f_number or metadata.f_number,
        )


def lens_in_use(name: str, focal_length_mm: float, f_number: float, library_dir: str | Path
                ) -> LensInUse:
    """The lens of the ``lens.*`` keys (``f_number`` 0: unknown); problems are logged,
    never raised: the shot goes ahead without the profile."""
    known_f_number = f_number or None
    bare = LensInUse(name, focal_length_mm, f_number=known_f_number)
    if not name:
        return bare
    library = LensLibrary(Path(library_dir))
    try:
        profile = library.get(name)
    except LensError as exc:
        logger.warning("lens.name: %s (no lens profile or shading table applied)", exc)
        return bare
    try:
        shading = library.shading(name)
    except LensError as exc:  # the lens is still known: its name and focal length go on
        logger.warning("lens.name: %s (no shading table applied)", exc)
        shading = None
    if known_f_number is not None and known_f_number < profile.max_f_number - 1e-6:
        logger.warning("lens.f_number = %g is wider than %s's f/%g: not recorded",
                       known_f_number, name, profile.max_f_number)
        known_f_number = None
    return LensInUse(name, focal_length_mm, profile, known_f_number, shading)
