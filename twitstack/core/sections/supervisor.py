"""Settings of the supervisor: shutdown, restarts and crash-loop detection."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SupervisorSettings(BaseModel):
    """How the daemon starts, restarts and stops its services."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # How long in-flight work may finish after SIGTERM before it is cancelled.
    shutdown_grace_s: float = Field(default=10.0, ge=0, le=600)
    # A crashed service is restarted after this delay, doubled per crash up to the cap.
    restart_backoff_initial_s: float = Field(default=0.5, gt=0, le=60)
    restart_backoff_max_s: float = Field(default=30.0, gt=0, le=3600)
    # More than `crash_loop_max_crashes` crashes of one service within the window stop the daemon.
    crash_loop_max_crashes: int = Field(default=5, ge=1, le=1000)
    crash_loop_window_s: float = Field(default=300.0, gt=0, le=86400)
    # Where the scraper's and writer's /metrics listen: loopback unless set otherwise. A
    # Prometheus on another host (or container) needs an explicit "0.0.0.0" or interface address.
    metrics_host: str = "127.0.0.1"
    # Start-up waits for Redis this long (with logged backoff) before giving up.
    redis_startup_timeout_s: float = Field(default=30.0, ge=0, le=3600)
