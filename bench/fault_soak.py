"""Fault soak: the daemon under everything an unattended year throws at it, at once, for 20 minutes.

    python bench/fault_soak.py --model models [--minutes 20]

The daemon reaches a real mosquitto through a proxy on loopback whose link drops every 2-5 s
(tests/mqtt_helpers.Link, 20 ms of latency each way); the broker is restarted twice; a SIGHUP comes
every 2 minutes, alternating a valid edit and an invalid one (an empty ``mqtt.host``); the daemon
is SIGKILLed once and started again at once (as systemd would); and its state directory, a small
tmpfs (root only: without root the disk is not filled), is filled to the last byte for a minute.
At the end it is stopped with SIGTERM and started once more with ``--max-frames 1`` to send what
its spool still held.

Reports: detections received (unique ``frame.seq``) against the seqs each run handed out (a
contiguous range per run: a gap is a loss), duplicates, any seq received twice with different
content (reused), what the daemon counted as dropped, and the daemon's resident memory and open
file descriptors sampled every 10 s (first, last, largest, per run). Not a CI test: it runs for
20 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.soak import open_fds, rss_mib  # noqa: E402
from edge.config.paths import absolute  # noqa: E402
from tests.daemon_helpers import start_daemon, write_config  # noqa: E402
from tests.mqtt_helpers import Broker, Link, Subscriber  # noqa: E402

SAMPLES = REPO / "edge" / "samples"
PREFIX = "craft-edge/test"


def flapping(link: Link, stop: threading.Event, rng: random.Random) -> None:
    while not stop.wait(rng.uniform(2, 5)):
        link.cut()


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem has not a byte left."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for chunk in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(bytes(chunk))
    return filler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=absolute, default=REPO / "models")
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--fps", type=float, default=4)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--log", type=absolute, help="keep the daemon's log here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    total = args.minutes * 60
    events = {  # seconds from the start -> what happens (scaled to --minutes)
        0.25: "broker restart", 0.35: "disk full", 0.5: "sigkill", 0.75: "broker restart"}
    events = {round(fraction * total): name for fraction, name in events.items()}
    for second in range(120, int(total), 120):
        events.setdefault(second, "sighup")
    as_root = os.geteuid() == 0

    with tempfile.TemporaryDirectory(prefix="craft-edge-fault-soak-") as scratch:
        folder = Path(scratch)
        state = folder / "state"
        disk = small_disk(state, "4m") if as_root else contextlib.nullcontext(state)
        with disk:
            broker = Broker(folder / "broker")
            broker.start()
            link = Link(broker, latency=0.02)
            subscriber = Subscriber(broker, f"{PREFIX}/#", client_id="fault-soak-subscriber")
            config = folder / "config.yaml"

            def configure(valid: bool, level: str = "info") -> None:
                write_config(config, link.port, args.model, SAMPLES, model={"prefer": args.variant},
                             source={"max_fps": args.fps}, log_level=level, state_dir=str(state),
                             mqtt={"host": "127.0.0.1" if valid else ""})

            configure(True)
            log = open(folder / "daemon.log", "w")  # noqa: SIM115 (open for the whole run)
            daemon = start_daemon(config, stdout=log, stderr=log)
            runs: list[dict] = [{"pid": daemon.pid, "samples": []}]
            stop = threading.Event()
            threading.Thread(target=flapping, args=(link, stop, rng), daemon=True).start()
            started = time.monotonic()
            sighups = 0
            done: set[int] = set()
            filler: Path | None = None
            while (elapsed := time.monotonic() - started) < total:
                time.sleep(1)
                second = int(elapsed)
                if second % 10 == 0 and daemon.poll() is None:
                    runs[-1]["samples"].append((rss_mib(daemon.pid), open_fds(daemon.pid)))
                due = [s for s in events if s <= second and s not in done]
                for moment in due:
                    done.add(moment)
                    what = events[moment]
                    print(f"{second:5d} s: {what}", flush=True)
                    if what == "broker restart":
                        broker.stop()
                        time.sleep(20)
                        broker.start()
                    elif what == "sighup":
                        sighups += 1
                        configure(sighups % 2 == 0, level="info")
                        daemon.send_signal(signal.SIGHUP)
                    elif what == "sigkill":
                        daemon.send_signal(signal.SIGKILL)
                        daemon.wait()
                        configure(True)
                        daemon = start_daemon(config, stdout=log, stderr=log)
                        runs.append({"pid": daemon.pid, "samples": []})
                    elif what == "disk full" and as_root:
                        filler = fill(state)
                if filler is not None and second >= min(s for s, w in events.items() if w == "disk full") + 60:
                    filler.unlink()
                    filler = None
                    print(f"{second:5d} s: disk freed", flush=True)
            stop.set()
            configure(True)
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=120)
            link.close()
            last = start_daemon(config, "--max-frames", "1", "--broker", f"127.0.0.1:{broker.port}",
                                stdout=log, stderr=log)
            last.wait(timeout=300)
            time.sleep(5)
            broker.stop()
            log.close()
            if args.log:
                args.log.write_text((folder / "daemon.log").read_text())

        messages = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/detections")]
        stats = [json.loads(m.payload) for m in subscriber.on(f"{PREFIX}/stats")]
        by_seq: dict[int, set[str]] = {}
        for message in messages:
            by_seq.setdefault(message["frame"]["seq"], set()).add(message["frame"]["timestamp"])
        received = sorted(by_seq)
        # each run hands out a contiguous range; a jump (SIGKILL: up to 1000) starts a new one
        ranges, first = [], received[0]
        for before, after in itertools.pairwise(received):
            if after - before > 200:
                ranges.append((first, before))
                first = after
        ranges.append((first, received[-1]))
        expected = set().union(*(range(a, b + 1) for a, b in ranges))
        dropped = max((s["spool"]["dropped"] for s in stats), default=0)
        print(f"\n{args.minutes:g} min, {link.cuts} link cuts, 2 broker restarts, {sighups} SIGHUPs (half invalid), "
              f"1 SIGKILL, disk filled: {'yes' if as_root else 'no (not root)'}")
        print(f"seq ranges handed out: {ranges}")
        print(f"detections received: {len(messages)} messages, {len(received)} unique seqs; expected "
              f"{len(expected)}; lost {len(expected - set(received))}; duplicates {len(messages) - len(received)}; "
              f"seqs reused (two contents) {sum(len(v) > 1 for v in by_seq.values())}; dropped by the daemon "
              f"{dropped}; oversized {max((s['oversized']['dropped'] for s in stats), default=0)}")
        for index, run in enumerate(runs, start=1):
            samples = run["samples"]
            if samples:
                rss = [r for r, _ in samples]
                fds = [f for _, f in samples]
                print(f"run {index}: RSS MiB first {rss[0]:.1f} last {rss[-1]:.1f} max {max(rss):.1f}; "
                      f"open files first {fds[0]} last {fds[-1]} max {max(fds)} ({len(samples)} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
