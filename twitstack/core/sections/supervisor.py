"""Settings of the supervisor: shutdown, restarts and crash-loop detection."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SupervisorSettings(BaseModel):
    """How the daemon starts, restarts and stops its services."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # How long in-flight work may finish after SIGTERM before it is cancelled.
    shutdown_grace_s: float = Field(default=10.0, ge=0, le=600)
    # A crashed service is restarted after this delay, doubled per crash up to the cap.
    restart_backoff_initial_s: float = Field(default=0.5, gt=0, le=60)
    restart_backoff_max_s: float = Field(default=30.0, gt=0, le=3600)
    # More than `crash_loop_max_crashes` crashes of one service within the window is a crash loop.
    crash_loop_max_crashes: int = Field(default=5, ge=1, le=1000)
    crash_loop_window_s: float = Field(default=300.0, gt=0, le=86400)
    # "park": the looping service is retried on the long backoff below while the others keep
    # working; "exit": the daemon exits non-zero so systemd (or a container runtime) restarts it.
    crash_loop_action: Literal["park", "exit"] = "park"
    # A parked service is retried after this delay, doubled per crash up to the cap; it is
    # unparked once it stays up for crash_loop_window_s.
    crash_loop_park_backoff_initial_s: float = Field(default=60.0, gt=0, le=3600)
    crash_loop_park_backoff_max_s: float = Field(default=900.0, gt=0, le=86400)
    # Debug: honour `twitstack:debug:crash:<service>` keys in Redis (docs/operations.md).
    crash_injection: bool = False
    # Where the scraper's and writer's /metrics listen: loopback unless set otherwise. A
    # Prometheus on another host (or container) needs an explicit "0.0.0.0" or interface address.
    metrics_host: str = "127.0.0.1"
    # Start-up waits for Redis this long (with logged backoff) before giving up.
    redis_startup_timeout_s: float = Field(default=30.0, ge=0, le=3600)
