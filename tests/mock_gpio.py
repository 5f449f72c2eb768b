"""gpiozero mock pins with the electrics real buttons have (factories passed explicitly).

:class:`BouncingMockPin` chatters as a tactile switch does: every change of level, the
press and the release alike, goes through a few short opposite edges (0.2-1 ms apart)
before it settles. :func:`busy_pin_factory` makes pins the system already holds fail as
lgpio fails them (its own exception, "GPIO busy", not a gpiozero error).
"""

from __future__ import annotations

import random
import time

from gpiozero.pins.mock import MockFactory, MockPin


class BouncingMockPin(MockPin):
    """A mock input whose contacts bounce ``chatter`` times on every change of level."""

    chatter = 4

    def __init__(self, factory, info) -> None:  # noqa: ANN001 - gpiozero's signature
        self._rng = random.Random(info.number)
        super().__init__(factory, info)

    def drive_low(self) -> None:
        self._settle(False)

    def drive_high(self) -> None:
        self._settle(True)

    def _settle(self, level: bool) -> None:
        drive = super().drive_high if level else super().drive_low
        undo = super().drive_low if level else super().drive_high
        if self._when_changed is not None and self._state != level:
            for _ in range(self.chatter):
                drive()
                time.sleep(self._rng.uniform(0.0002, 0.001))
                undo()
                time.sleep(self._rng.uniform(0.0002, 0.001))
        drive()


class GpioBusyError(Exception):
    """What lgpio raises for a line the kernel already uses (``lgpio.error``)."""


def busy_pin_factory(*busy_bcm: int) -> MockFactory:
    """A MockFactory whose pins ``busy_bcm`` cannot be claimed, as I2C or 1-wire pins."""

    class ClaimedPin(MockPin):
        def __init__(self, factory, info) -> None:  # noqa: ANN001 - gpiozero's signature
            if any(f"BCM{n}" in info.names for n in busy_bcm):
                raise GpioBusyError("GPIO busy")
            super().__init__(factory, info)

    return MockFactory(pin_class=ClaimedPin)
