"""The Sense HAT's heat correction, as Home Assistant's `sensehat` integration computes it.

The HAT sits above the Pi's CPU and reads warm. With t the mean of its humidity sensor's and its
pressure sensor's temperature, the room is about t - (t_cpu - t) / factor (factor 1.5), and the
result is averaged over the last few corrections (3) to calm the CPU's swings.
"""

from __future__ import annotations

from collections import deque

from bridge.config.filters import CompensateConfig


def uncorrected(from_humidity: float, from_pressure: float) -> float:
    """What the HAT's two temperature sensors read together, before the correction."""
    return (from_humidity + from_pressure) / 2


class CpuCompensation:
    def __init__(self, config: CompensateConfig):
        self.config = config
        self.recent: deque[float] = deque(maxlen=config.samples)

    def feed(self, from_humidity: float, from_pressure: float, cpu: float) -> float:
        """The corrected temperature, averaged with the previous corrections (the first fills the average)."""
        t = uncorrected(from_humidity, from_pressure)
        corrected = t - (cpu - t) / self.config.factor
        if not self.recent:
            self.recent.extend([corrected] * self.config.samples)
        else:
            self.recent.append(corrected)
        return sum(self.recent) / len(self.recent)
