"""Where a demo keeps its state and its log, and how it leaves nothing behind."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from twitstack.core.logging import configure_logging

LOG_NAME = "demo.log"


@dataclass(frozen=True)
class DemoWorkspace:
    """The demo's data directory, its log file (None: logging to stdout), and whether it goes."""

    data_dir: Path
    log_file: Path | None
    temporary: bool


@contextmanager
def demo_workspace(
    data_dir: Path | None,
    *,
    env: Literal["dev", "prod"],
    level: str,
    verbose: bool,
) -> Iterator[DemoWorkspace]:
    """A data directory (a new temporary one unless given), logs in a file in it.

    The daemon logs a few lines a second while it works; on the terminal they would bury the
    banner, so they go to `demo.log` unless `verbose`. A temporary directory is removed on
    exit, however the demo ends.
    """
    temporary = data_dir is None
    directory = Path(tempfile.mkdtemp(prefix="twitstack-demo-")) if data_dir is None else data_dir
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if verbose:
            yield DemoWorkspace(directory, None, temporary)
            return
        log_file = directory / LOG_NAME
        with log_file.open("a", encoding="utf-8") as stream:
            configure_logging(env, level, stream=stream)
            try:
                yield DemoWorkspace(directory, log_file, temporary)
            finally:
                # Whatever logs after this (an error on the way out) reaches the terminal.
                configure_logging(env, level, stream=sys.stderr)
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
