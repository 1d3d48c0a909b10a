"""What snapshots cost: milliseconds per published snapshot, and the daemon's fps with them on and off.

    python bench/snapshot_cost.py --model models/384x640 [--variant int8] [--frames 60] [--pairs 3]

1. Per snapshot, on a 1280x720 frame from data/smalltext/ with its real boxes: drawing, scaling to
   max_width and JPEG encoding (what the snapshot thread does for each one), at the default
   max_width and quality and at full size; and the per-frame check on the inference thread
   (``offer`` when no snapshot is due).
2. ``craft-edge run`` on the 1280x720 frames of data/smalltext/ (looping; every frame has other
   boxes, so snapshots go out as often as ``min_interval_seconds`` allows: the most the defaults
   send), publishing to a local mosquitto, with ``mqtt.snapshot`` off and on at its defaults,
   alternated ``--pairs`` times in one run; fps timed by a subscriber from the first to the last
   detections message. Figures are for the machine it runs on.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.config.paths import absolute  # noqa: E402
from edge.config.settings import SnapshotConfig, parse_config  # noqa: E402
from edge.detection.boxes import boxes_changed  # noqa: E402
from edge.detection.detector import Detector  # noqa: E402
from edge.detection.postprocess import Box  # noqa: E402
from edge.messaging.publisher import Publisher  # noqa: E402
from edge.messaging.snapshot import SnapshotStream, annotate, encode_jpeg  # noqa: E402
from edge.models.manifest import load_manifest  # noqa: E402
from edge.models.runtime import default_threads, find_runtime, load_model  # noqa: E402
from edge.sources import Frame  # noqa: E402
from edge.sources.imageio import read_rgb  # noqa: E402
from tests.mqtt_helpers import Subscriber, mosquitto  # noqa: E402

FRAMES = sorted((REPO / "data" / "smalltext").glob("*_1280x720_*.jpg"))


def median_ms(work, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def per_snapshot(model_dir: Path, variant: str) -> None:
    model = load_model(model_dir / load_manifest(model_dir).variant(variant).file, find_runtime(), default_threads())
    rgb = read_rgb(FRAMES[0])
    detection = Detector(model).detect(rgb)
    defaults = SnapshotConfig()
    for label, width in ((f"max_width {defaults.max_width}", defaults.max_width), ("full size", 0)):
        picture = annotate(rgb, detection.boxes, max_width=width)
        size = len(encode_jpeg(picture, defaults.jpeg_quality))
        draw = median_ms(lambda width=width: annotate(rgb, detection.boxes, max_width=width), 50)
        total = median_ms(lambda width=width: encode_jpeg(annotate(rgb, detection.boxes, max_width=width),
                                                          defaults.jpeg_quality), 50)
        print(f"1280x720, {len(detection.boxes)} boxes, {label:<13} draw+scale {draw:5.2f} ms, +JPEG q"
              f"{defaults.jpeg_quality} {total:5.2f} ms per snapshot, {size / 1024:5.1f} KiB")
    # never due after the first: the per-frame check only
    stream = SnapshotStream(SnapshotConfig(enabled=True, interval_seconds=1e4, min_interval_seconds=1e4),
                            publisher=lambda: None, changed=boxes_changed)
    frame = Frame(rgb, "bench", time.time())
    stream.offer(frame, detection, 1)
    check = median_ms(lambda: stream.offer(frame, detection, 2), 1000)
    moved = [Box(box.points + 1, box.score) for box in detection.boxes]  # unchanged: every box is compared
    compare = median_ms(lambda: boxes_changed(detection.boxes, moved), 50)
    print(f"on the inference thread: {check * 1e3:.1f} us per frame when no snapshot is due; comparing the boxes "
          f"with the last snapshot's (at most once per min_interval_seconds) {compare:.2f} ms")


def daemon_fps(model_dir: Path, variant: str, frames: int, snapshots: bool,
               scratch: Path) -> tuple[float, float, int]:
    """(fps end to end, the daemon's CPU seconds, snapshots received) for ``craft-edge run`` with
    mqtt.snapshot on or off. CPU time says what the snapshots cost even when others load the machine."""
    with tempfile.TemporaryDirectory(dir=scratch) as folder, mosquitto(Path(folder)) as broker:
        state = Path(folder) / "state"
        config = Path(folder) / "config.yaml"
        config.write_text(yaml.safe_dump({
            "device_id": "bench", "source": {"kind": "files", "path": str(REPO / "data" / "smalltext" /
                                                                          "*_1280x720_*.jpg"), "loop": True},
            "model": {"dir": str(model_dir), "prefer": variant},
            "mqtt": {"host": broker.host, "port": broker.port, "snapshot": {"enabled": snapshots}},
            "state_dir": str(state)}))
        subscriber = Subscriber(broker, "craft-edge/bench/#")
        arrivals: list[float] = []
        pictures = [0]

        def on_message(client: object, userdata: object, message: object) -> None:
            if message.topic.endswith("/detections"):
                arrivals.append(time.perf_counter())
            elif message.topic.endswith("/snapshot") and message.payload:
                pictures[0] += 1

        subscriber.client.on_message = on_message
        command = [sys.executable, "-m", "edge.commands", "run", "--config", str(config),
                   "--max-frames", str(frames + 1)]
        log = Path(folder) / "daemon.log"
        with log.open("w") as stderr:
            daemon = subprocess.Popen(command, cwd=REPO, env={**os.environ, "NOTIFY_SOCKET": ""},
                                      stdout=subprocess.DEVNULL, stderr=stderr)
            _, status, usage = os.wait4(daemon.pid, 0)
        daemon.returncode = os.waitstatus_to_exitcode(status)
        if daemon.returncode != 0:
            raise RuntimeError(f"craft-edge run exited with {daemon.returncode}: {log.read_text()[-500:]}")
        subscriber.wait_for(lambda: len(arrivals) >= frames + 1, timeout=30)
        subscriber.close()
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]), usage.ru_utime + usage.ru_stime, pictures[0]


def interleaved_fps(model_dir: Path, variant: str, blocks: int, block_frames: int, scratch: Path) -> None:
    """One detector and one SnapshotStream publishing to a local mosquitto, snapshots switched off and
    on (defaults) every ``block_frames`` frames: alternating short blocks within one process cancel the
    slow swings of a shared machine that separate daemon runs cannot. Each on-block is compared with
    the mean of the off-blocks on either side."""
    model = load_model(model_dir / load_manifest(model_dir).variant(variant).file, find_runtime(), default_threads())
    detector = Detector(model)
    pictures = [read_rgb(path) for path in FRAMES]
    with mosquitto(scratch) as broker:
        config = parse_config(yaml.safe_dump({"device_id": "bench", "mqtt": {
            "host": broker.host, "port": broker.port, "snapshot": {"enabled": True}}}), "bench")
        publisher = Publisher(config, None)
        publisher.start()
        publisher.connected.wait(10)
        stream = SnapshotStream(config.mqtt.snapshot, lambda: publisher, boxes_changed)
        stream.start()
        rates: list[float] = []
        seq = 0
        for block in range(2 * blocks + 1):  # off, on, off, ..., off
            stream.configure(dataclasses.replace(config.mqtt.snapshot, enabled=block % 2 == 1))
            start = time.perf_counter()
            for _ in range(block_frames):
                seq += 1
                rgb = pictures[seq % len(pictures)]
                stream.offer(Frame(rgb, "bench", time.time()), detector.detect(rgb), seq)
            rates.append(block_frames / (time.perf_counter() - start))
        stream.stop(5)
        publisher.stop()
    ratios = [rates[i] / ((rates[i - 1] + rates[i + 1]) / 2) for i in range(1, len(rates), 2)]
    print(f"one process, {blocks} on-blocks of {block_frames} frames between off-blocks: {stream.published} "
          f"snapshots published; fps on / neighbouring off: median {statistics.median(ratios):.3f}, "
          f"mean {statistics.mean(ratios):.3f} (blocks: off {statistics.median(rates[0::2]):.2f} fps, "
          f"on {statistics.median(rates[1::2]):.2f} fps)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=absolute, default=REPO / "models" / "384x640")
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--pairs", type=int, default=3, help="daemon runs with snapshots off and on (0: none)")
    parser.add_argument("--blocks", type=int, default=0,
                        help="also measure in one process: this many on-blocks between off-blocks")
    parser.add_argument("--block-frames", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; model {args.model.name} {args.variant}, "
          f"{default_threads()} threads")
    per_snapshot(args.model, args.variant)
    if args.blocks:
        with tempfile.TemporaryDirectory() as scratch:
            interleaved_fps(args.model, args.variant, args.blocks, args.block_frames, Path(scratch))
    if not args.pairs:
        return 0
    defaults = SnapshotConfig()
    print(f"craft-edge run, {args.frames} frames per run, snapshots at the defaults (interval "
          f"{defaults.interval_seconds:g} s, min_interval {defaults.min_interval_seconds:g} s, max_width "
          f"{defaults.max_width}, quality {defaults.jpeg_quality})")
    fps: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.pairs):
            for snapshots in (False, True):
                rate, seconds, pictures = daemon_fps(args.model, args.variant, args.frames, snapshots, Path(scratch))
                fps[snapshots].append(rate)
                cpu[snapshots].append(seconds)
                print(f"  snapshots {'on ' if snapshots else 'off'}  {rate:6.2f} fps  {seconds:6.1f} CPU s  "
                      f"{pictures:3d} snapshots", flush=True)
    off, on = statistics.median(fps[False]), statistics.median(fps[True])
    print(f"median fps: off {off:.2f}, on {on:.2f}; ratio on / off {on / off:.3f}")
    off, on = statistics.median(cpu[False]), statistics.median(cpu[True])
    print(f"median daemon CPU seconds per run: off {off:.1f}, on {on:.1f}; ratio on / off {on / off:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
