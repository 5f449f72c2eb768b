"""A burst's frames: checking them, and reading a long burst one frame at a time.

The merge needs every frame's metadata up front (to choose the reference by exposure)
but each frame's pixels only while it is aligned and merged. A :class:`StreamedBurst`
knows the metadata and size of its frames (e.g. from a journal's manifest) and reads each
frame when asked, keeping none: :func:`pipeline.burst.align_and_merge` then holds the
reference, one other frame and its sums, whatever the length of the burst (a 15-frame
12 MP night shot is 370 MB of frames, held in memory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import overload

import numpy as np

from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import CameraMetadata, RawFrame


class BurstError(InvalidParameterError):
    """A burst cannot be merged; ``frame_index`` names the offending frame (or None)."""

    def __init__(self, message: str, frame_index: int | None = None) -> None:
        super().__init__(message)
        self.frame_index = frame_index


class StreamedBurst(Sequence[RawFrame]):
    """Frames read on demand: ``burst[i]`` calls ``read(i)`` every time, caching nothing.

    Parameters
    ----------
    metadata : sequence of CameraMetadata
        Each frame's metadata, in capture order.
    shape : (int, int)
        (H, W) of every frame.
    read : callable
        ``read(i) -> RawFrame``: frame ``i``, which must have ``shape`` and a uint16 mosaic.
    """

    def __init__(self, metadata: Sequence[CameraMetadata], shape: tuple[int, int],
                 read: Callable[[int], RawFrame]) -> None:
        self.metadata = tuple(metadata)
        self.shape = (int(shape[0]), int(shape[1]))
        self._read = read

    def __len__(self) -> int:
        return len(self.metadata)

    @overload
    def __getitem__(self, index: int) -> RawFrame: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[RawFrame]: ...

    def __getitem__(self, index: int | slice) -> RawFrame | Sequence[RawFrame]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        i = range(len(self))[index]  # IndexError out of range, negatives from the end
        frame = self._read(i)
        _check_frame(frame, i)
        if frame.shape != self.shape:
            raise BurstError(
                f"frames[{i}] is {frame.shape[1]}x{frame.shape[0]}, the burst "
                f"{self.shape[1]}x{self.shape[0]}: a burst needs frames of one size", i
            )  # fmt: skip
        return frame


def burst_metadata(frames: Sequence[RawFrame]) -> list[tuple[tuple[int, int], CameraMetadata]]:
    """(shape, metadata) of every frame, without reading a :class:`StreamedBurst`'s pixels."""
    if isinstance(frames, StreamedBurst):
        return [(frames.shape, m) for m in frames.metadata]
    for i, frame in enumerate(frames):
        _check_frame(frame, i)
    return [(frame.shape, frame.metadata) for frame in frames]


def check_burst(frames: Sequence[RawFrame]) -> None:
    """Raise :class:`BurstError` unless ``frames`` are two or more mergeable raw frames.

    A :class:`StreamedBurst` is checked from its metadata; each frame's pixels are checked
    when it is read.
    """
    if len(frames) < 2:
        raise BurstError(f"frames has {len(frames)} frame(s): a burst needs at least 2")
    described = burst_metadata(frames)
    first_shape, first = described[0]
    for i, (shape, metadata) in enumerate(described):
        if shape != first_shape:
            raise BurstError(
                f"frames[{i}] is {shape[1]}x{shape[0]}, frames[0] is "
                f"{first_shape[1]}x{first_shape[0]}: a burst needs frames of one size", i
            )  # fmt: skip
        if metadata.cfa_pattern != first.cfa_pattern:
            raise BurstError(
                f"frames[{i}] has CFA pattern {metadata.cfa_pattern.value}, frames[0] "
                f"{first.cfa_pattern.value}: a burst needs one pattern", i
            )  # fmt: skip
        if min(shape) < 8:
            raise BurstError(f"frames[{i}] is {shape[1]}x{shape[0]}: too small", i)


def _check_frame(frame: object, index: int) -> None:
    if not isinstance(frame, RawFrame) or frame.cfa.dtype != np.uint16 or frame.cfa.ndim != 2:
        raise BurstError(f"frames[{index}] is not a RawFrame with an (H, W) uint16 mosaic", index)
