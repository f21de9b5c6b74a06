"""`twitstack demo` as a newcomer starts it: time to the banner, idle RSS, SIGINT→exit.

Run: python bench/demo_startup.py [--rounds 3] [--idle 5]
The reference beside it is `python -c "import twitstack.cli"` (the import floor of any command).
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def one_demo(idle_s: float) -> tuple[float, float, float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "twitstack", "demo", "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("Approve a request in the UI"):
                break
        else:
            raise RuntimeError("the demo exited before printing its banner")
        ready = time.monotonic() - started
        time.sleep(idle_s)
        rss = rss_mib(proc.pid)
        stopping = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"the demo exited {proc.returncode} on SIGINT")
        return ready, rss, time.monotonic() - stopping
    finally:
        proc.kill()


def import_floor() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import twitstack.cli"], check=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=5.0, help="idle seconds before RSS")
    args = parser.parse_args()
    runs = [one_demo(args.idle) for _ in range(args.rounds)]
    floor = statistics.median(import_floor() for _ in range(args.rounds))
    ready, rss, stop = (statistics.median(column) for column in zip(*runs, strict=True))
    print(f"{args.rounds} rounds, medians; RSS after {args.idle:g} s idle")
    print(
        f"twitstack demo: start→banner {ready:.2f} s, idle RSS {rss:.1f} MiB, "
        f"SIGINT→exit {stop:.2f} s"
    )
    print(f"reference: import twitstack.cli {floor:.2f} s (ratio {ready / floor:.1f}×)")


if __name__ == "__main__":
    main()
