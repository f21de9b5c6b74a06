"""When each job runs next: jittered intervals, and an overrunning run is never doubled."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class JobSchedule:
    """Next-run times for one job. The caller runs the job sequentially, so a run that
    overruns its interval simply delays the next one; missed slots are not caught up."""

    interval_s: float
    jitter_fraction: float = 0.1
    rng: random.Random = field(default_factory=random.Random)

    def jittered(self) -> float:
        spread = self.interval_s * self.jitter_fraction
        return max(0.0, self.interval_s + self.rng.uniform(-spread, spread))

    def first_run_at(self, now: float) -> float:
        """Spread replicas and jobs over the first interval instead of starting all at once."""
        return now + self.rng.uniform(0, self.interval_s * max(self.jitter_fraction, 0.0))

    def next_run_at(self, started_at: float, finished_at: float) -> float:
        """The next start: one jittered interval after this start, but never before it ends."""
        return max(started_at + self.jittered(), finished_at)
