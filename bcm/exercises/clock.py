"""The exercise clock: offsets from STARTEX, compressed by the exercise's speed.

An exercise is written in exercise time (inject 3 at 12 minutes, a scripted answer after 7
minutes). Played at ``speed`` N, N minutes of exercise time pass in one minute of wall time: at
speed 60 an inject at 15m is due 15 seconds after STARTEX. At speed 1 the two clocks agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ExerciseClock:
    """STARTEX and the speed of one exercise run."""

    startex: datetime
    speed: float

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"an exercise clock runs forward: speed {self.speed} is not above 0")

    def wall(self, exercise_time: timedelta) -> timedelta:
        """How long ``exercise_time`` takes on the wall clock."""
        return exercise_time / self.speed

    def due(self, offset: timedelta) -> datetime:
        """When something ``offset`` after STARTEX (in exercise time) is due, on the wall clock."""
        return self.startex + self.wall(offset)

    def exercise_time(self, at: datetime) -> timedelta:
        """How long after STARTEX ``at`` is, in exercise time."""
        return (at - self.startex) * self.speed
