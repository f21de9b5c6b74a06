"""Regenerate the review-desk screenshots in this directory.

Usage: python docs/screenshots/make.py

Runs the desk's browser tests (tests/moderation/test_browser_desk.py: real Chromium at
/usr/bin/chromium, a private redis-server, the moderation app, a writer and the sandbox X), which
save a `desk-*.png` at each step they check, then copies that set here. The pictures are
therefore of pages whose content the same run asserted on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ARTIFACTS = ROOT / "test-artifacts"


def main() -> int:
    for old in ARTIFACTS.glob("desk-*.png"):
        old.unlink()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "tests/moderation/test_browser_desk.py", "-q"]
    done = subprocess.run(["nice", "-n", "5", *command], cwd=ROOT, env=env, check=False)
    if done.returncode != 0:
        print("the desk tests failed; screenshots not updated", file=sys.stderr)
        return done.returncode
    shots = sorted(ARTIFACTS.glob("desk-*.png"))
    for stale in HERE.glob("desk-*.png"):
        stale.unlink()
    for shot in shots:
        shutil.copy2(shot, HERE / shot.name)
    print(f"{len(shots)} screenshots in {HERE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
