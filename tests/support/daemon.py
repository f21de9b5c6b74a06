"""`python -m tests.support.daemon ARGS`: the real CLI and supervisor with test-only services.

Environment: TEST_JOURNAL (file the services write to), TEST_JOB_S (job length), TEST_PORTS
("alpha=PORT,beta=PORT" metrics ports).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.support.services import JobService
from twitstack.cli import main
from twitstack.core.service import Service, ServiceBuilder, ServiceContext


def _catalog() -> dict[str, ServiceBuilder]:
    journal = Path(os.environ["TEST_JOURNAL"])
    job_s = float(os.environ.get("TEST_JOB_S", "0.05"))
    ports = dict(item.split("=") for item in os.environ.get("TEST_PORTS", "").split(",") if item)

    def builder(name: str) -> ServiceBuilder:
        def build(context: ServiceContext) -> Service:
            return JobService(
                name,
                journal=journal,
                job_s=job_s,
                metrics_port=int(ports.get(name, "0")),
                needs_redis=context,
            )

        return build

    return {name: builder(name) for name in ("alpha", "beta")}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], catalog=_catalog()))
