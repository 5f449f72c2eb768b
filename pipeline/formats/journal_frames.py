"""Raw frames as plain data: the mosaic as one packed buffer, the metadata as JSON fields.

The camera journals each frame of a shot this way before it acknowledges the shot: unlike
a DNG, nothing is built in memory but the packed mosaic, which goes to the card as it is.
Values that fit in 12 bits (the IMX477's) are packed two pixels in three bytes, the MIPI
CSI-2 layout of :func:`pipeline.formats.picamera2_raw.pack_csi2` without row padding; a frame with
a larger value (a merged, or a replayed 14/16-bit frame) is kept as little-endian 16-bit
words. :func:`unpack_frame` gives back the same mosaic bit for bit and equal metadata.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from pipeline.cfa import CfaPattern
from pipeline.errors import InvalidParameterError, RawFormatError
from pipeline.formats.picamera2_raw import pack_csi2, unpack_csi2_packed
from pipeline.raw_frame import CameraMetadata, RawFrame

#: 12-bit CSI-2 groups (1.5 bytes a pixel), or little-endian 16-bit words (2 bytes a pixel).
Packing = Literal["csi2_12", "uint16_le"]
#: Metadata fields not kept per frame: the lens shading table is a (4, gh, gw) array that
#: every frame of a shot shares, so its owner keeps it once.
UNKEPT_FIELDS = ("lens_shading",)


@dataclass(frozen=True, eq=False)
class PackedFrame:
    """A frame ready to be written: ``data`` (contiguous, written as it is) and the
    JSON-ready ``fields`` needed to read it back (packing, shape, metadata)."""

    data: npt.NDArray[np.uint8] | npt.NDArray[np.uint16]
    fields: dict[str, Any]


def packed_nbytes(packing: Packing, height: int, width: int) -> int:
    """Bytes of the packed mosaic of an (H, W) frame (12-bit rows end on a whole group);
    ``"uint16_le"`` gives the most any frame can take."""
    if packing == "csi2_12":
        return height * 3 * ((width + 1) // 2)
    return height * width * 2


def pack_frame(frame: RawFrame) -> PackedFrame:
    """``frame`` as a packed buffer and its fields, 12-bit whenever every value fits."""
    cfa = frame.cfa
    if cfa.dtype != np.uint16 or cfa.ndim != 2 or cfa.size == 0:
        raise InvalidParameterError(f"frame.cfa is {cfa.dtype} {cfa.shape}: expected (H, W) uint16")
    height, width = frame.shape
    if int(cfa.max()) < 4096:
        packing: Packing = "csi2_12"
        data = pack_csi2(cfa, 12, stride=packed_nbytes(packing, 1, width))
    else:
        packing = "uint16_le"
        data = np.ascontiguousarray(cfa, dtype="<u2")
    fields = {"packing": packing, "shape": [height, width],
              "metadata": metadata_fields(frame.metadata)}
    return PackedFrame(data, fields)


def unpack_frame(data: npt.ArrayLike, fields: dict[str, Any]) -> RawFrame:
    """The frame :func:`pack_frame` packed: ``data`` is its buffer (any contiguous bytes),
    ``fields`` its fields (the lens shading table is not among them: None).

    Raises
    ------
    RawFormatError
        Fields that do not describe a packed frame, or ``data`` of the wrong size.
    """
    try:
        packing = fields["packing"]
        height, width = (int(v) for v in fields["shape"])
        metadata = metadata_from_fields(fields["metadata"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RawFormatError(f"packed frame fields {sorted(fields)}: {exc!r}") from None
    if packing not in get_args(Packing) or height < 1 or width < 1:
        raise RawFormatError(f"packed frame: packing {packing!r}, shape {height}x{width}")
    buffer = np.frombuffer(data, dtype=np.uint8)
    expected = packed_nbytes(packing, height, width)
    if buffer.size != expected:
        raise RawFormatError(
            f"packed frame: {buffer.size} bytes, a {height}x{width} {packing} frame has {expected}"
        )
    if packing == "csi2_12":
        cfa = unpack_csi2_packed(buffer.reshape(height, -1), width, height, 12)
    else:
        cfa = buffer.view("<u2").reshape(height, width).astype(np.uint16)
    return RawFrame(cfa, metadata)


def read_packed_frame(path: str | Path, fields: dict[str, Any]) -> RawFrame:
    """:func:`unpack_frame` of the file ``path``."""
    return unpack_frame(np.fromfile(path, dtype=np.uint8), fields)


def metadata_fields(metadata: CameraMetadata) -> dict[str, Any]:
    """``metadata`` as JSON-ready values, all but :data:`UNKEPT_FIELDS` (floats survive
    JSON exactly, so :func:`metadata_from_fields` gives back an equal one)."""
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(metadata):
        if field.name in UNKEPT_FIELDS:
            continue
        value = getattr(metadata, field.name)
        if isinstance(value, CfaPattern):
            value = value.value
        elif isinstance(value, dt.datetime):
            value = value.isoformat()
        fields[field.name] = _plain(value)
    return fields


def metadata_from_fields(fields: dict[str, Any]) -> CameraMetadata:
    """The inverse of :func:`metadata_fields`; unknown names are ignored (a newer writer)."""
    known = {f.name for f in dataclasses.fields(CameraMetadata)} - set(UNKEPT_FIELDS)
    values = {name: _tuples(value) for name, value in fields.items() if name in known}
    values["cfa_pattern"] = CfaPattern.parse(values["cfa_pattern"])
    if values.get("datetime_original") is not None:
        values["datetime_original"] = dt.datetime.fromisoformat(values["datetime_original"])
    return CameraMetadata(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
