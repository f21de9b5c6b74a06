"""Fault injection: seeded probabilistic faults and scripted "next N responses" per endpoint."""

from __future__ import annotations

import random
from collections import Counter, deque
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twitstack.sandbox.xapi.config import Endpoint, FaultKind, FaultSettings


class ScriptedResponse(BaseModel):
    """A canned response; with `commit` the real action happens first and its result is dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int = Field(ge=100, le=599)
    body: dict[str, Any] | list[Any] | str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    commit: bool = False


class ScriptEntry(BaseModel):
    """One scripted step: a fault kind or a canned response."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fault: FaultKind | None = None
    response: ScriptedResponse | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ScriptEntry:
        if (self.fault is None) == (self.response is None):
            raise ValueError("a script entry needs exactly one of `fault` or `response`")
        return self


class FaultInjector:
    """Decides, per request, whether something goes wrong and how.

    Scripted entries for an endpoint are served first, in order; otherwise one draw from the
    seeded RNG picks a fault kind by its rate (the rates partition [0, 1)), so a run with the
    same seed and request order faults the same requests.
    """

    def __init__(self, settings: FaultSettings) -> None:
        self._settings = settings
        self._random = random.Random(settings.seed)
        self._scripts: dict[Endpoint, deque[ScriptEntry]] = {}
        self.fired: Counter[tuple[Endpoint, FaultKind | int]] = Counter()

    @property
    def settings(self) -> FaultSettings:
        """The probabilistic fault settings in force."""
        return self._settings

    @property
    def latency_s(self) -> float:
        """How long latency faults sleep (real seconds, past the client's timeout)."""
        return self._settings.latency_s

    def configure(self, settings: FaultSettings) -> None:
        """Replace the probabilistic settings and reseed the RNG."""
        self._settings = settings
        self._random = random.Random(settings.seed)

    def script(self, endpoint: Endpoint, entries: list[ScriptEntry]) -> None:
        """Queue entries to be served, in order, to the next requests to `endpoint`."""
        self._scripts.setdefault(endpoint, deque()).extend(entries)

    def pending(self) -> dict[str, int]:
        """How many scripted entries are still queued per endpoint."""
        return {endpoint.value: len(queue) for endpoint, queue in self._scripts.items() if queue}

    def clear(self) -> None:
        """Drop scripts and counts and reseed; probabilistic settings stay."""
        self._scripts.clear()
        self.fired.clear()
        self._random = random.Random(self._settings.seed)

    def next_for(self, endpoint: Endpoint) -> ScriptEntry | None:
        """What happens to this request: a scripted entry, a drawn fault, or None."""
        queue = self._scripts.get(endpoint)
        entry: ScriptEntry | None
        if queue:
            entry = queue.popleft()
        else:
            kind = self._draw(endpoint)
            entry = ScriptEntry(fault=kind) if kind is not None else None
        if entry is not None:
            label = entry.fault if entry.fault is not None else entry.response.status  # type: ignore[union-attr]
            self.fired[(endpoint, label)] += 1
        return entry

    def _draw(self, endpoint: Endpoint) -> FaultKind | None:
        if endpoint not in self._settings.endpoints or not self._settings.rates:
            return None
        roll = self._random.random()
        threshold = 0.0
        for kind, rate in self._settings.rates.items():
            threshold += rate
            if roll < threshold:
                return kind
        return None
