"""Soak run: the daemon on a looping file source, the broker restarted every few minutes.

    python bench/soak.py --model models/384x640 [--minutes 30] [--restart-every 5]

Reports frames processed (from the daemon's stats), detections received by a subscriber with a
persistent session (unique frame.seq, duplicates, losses), the daemon's resident memory at the
start and the end, and its open file descriptors. Target: 0 lost, no memory growth beyond noise.
Not a CI test: it runs for half an hour.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.config.paths import absolute  # noqa: E402
from tests.daemon_helpers import seqs, start_daemon, write_config  # noqa: E402
from tests.mqtt_helpers import Broker, Subscriber  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=absolute, default=REPO / "models" / "384x640")
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--restart-every", type=float, default=5, help="minutes between broker restarts")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="craft-edge-soak-") as scratch:
        folder = Path(scratch)
        broker = Broker(folder / "broker")
        broker.start()
        subscriber = Subscriber(broker, "craft-edge/test/#", client_id="soak-subscriber")
        config = write_config(folder / "config.yaml", broker.port, args.model, REPO / "edge" / "samples",
                              model={"prefer": args.variant}, mqtt={"stats_interval_seconds": 10})
        log = open(folder / "daemon.log", "w")  # noqa: SIM115 - open for the daemon's whole life
        daemon = start_daemon(config, stdout=subprocess.DEVNULL, stderr=log)
        samples: list[tuple[float, float, int]] = []  # (minutes, RSS MiB, open fds)
        start = time.monotonic()
        next_restart = args.restart_every * 60
        restarts = 0
        try:
            while (elapsed := time.monotonic() - start) < args.minutes * 60:
                if daemon.poll() is not None:
                    print(f"daemon exited early with {daemon.returncode}", file=sys.stderr)
                    return 1
                if elapsed >= next_restart:
                    broker.stop()
                    time.sleep(5)
                    broker.start()
                    restarts += 1
                    next_restart += args.restart_every * 60
                samples.append((elapsed / 60, rss_mib(daemon.pid), open_fds(daemon.pid)))
                time.sleep(10)
            daemon.send_signal(signal.SIGTERM)
            daemon.communicate(timeout=60)
        finally:
            daemon.kill()
        subscriber.wait_for(lambda: False, timeout=5)
        stats = [json.loads(m.payload) for m in subscriber.on("craft-edge/test/stats")]
        received = seqs(subscriber.on("craft-edge/test/detections"))
        broker.stop()
        log.close()
        errors = [line for line in (folder / "daemon.log").read_text().splitlines() if "ERROR" in line]

    frames = stats[-1]["frames"] if stats else 0
    highest = max(received) if received else 0
    lost = len(set(range(1, highest + 1)) - set(received))
    warm = [s for s in samples if s[0] >= 1.0] or samples  # after the first minute (model warm-up)
    print(f"soak: {args.minutes:g} min, broker restarted {restarts} times, model {args.model.name} {args.variant}")
    print(f"frames processed (last stats)   {frames}")
    print(f"detections received (unique)    {len(set(received))}  (highest seq {highest})")
    print(f"duplicates                      {len(received) - len(set(received))}")
    print(f"lost                            {lost}")
    print(f"RSS MiB  at 1 min {warm[0][1]:.1f}, end {samples[-1][1]:.1f}, max {max(s[1] for s in samples):.1f}")
    print(f"open fds at 1 min {warm[0][2]}, end {samples[-1][2]}, max {max(s[2] for s in samples)}")
    print(f"daemon ERROR lines              {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
