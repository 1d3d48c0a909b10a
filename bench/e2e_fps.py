"""Daemon end-to-end frames per second against the raw interpreter rate of the same model.

    python bench/e2e_fps.py --model models/384x640 [--variant int8] [--frames 40]

Both in one run: first the bare interpreter on one letterboxed frame, then ``craft-edge run`` on
the shipped sample images (looping) publishing to a local mosquitto, timed by a subscriber from
the first to the last message. The ratio is what pre-processing, post-processing, capture and
publishing cost on top of inference. Figures are for the machine it runs on.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.config.paths import absolute  # noqa: E402
from edge.detection.preprocess import letterbox  # noqa: E402
from edge.models.manifest import load_manifest  # noqa: E402
from edge.models.runtime import default_threads, find_runtime, load_model  # noqa: E402
from edge.sources.imageio import read_rgb  # noqa: E402
from tests.mqtt_helpers import Subscriber, mosquitto  # noqa: E402

SAMPLES = REPO / "edge" / "samples"


def raw_fps(model_dir: Path, variant: str, frames: int) -> float:
    manifest = load_manifest(model_dir)
    model = load_model(model_dir / manifest.variant(variant).file, find_runtime(), default_threads())
    pixels = letterbox(read_rgb(SAMPLES / "astronaut_00.jpg"), model.input_hw).pixels
    model(pixels)
    start = time.perf_counter()
    for _ in range(frames):
        model(pixels)
    return frames / (time.perf_counter() - start)


def peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def daemon_run(model_dir: Path, variant: str, frames: int) -> tuple[float, float]:
    """(frames per second end to end, peak RSS MiB of the daemon) for ``craft-edge run``."""
    with tempfile.TemporaryDirectory() as scratch, mosquitto(Path(scratch)) as broker:
        subscriber = Subscriber(broker, "craft-edge/bench/detections")
        arrivals: list[float] = []
        subscriber.client.on_message = lambda *_: arrivals.append(time.perf_counter())
        config = Path(scratch) / "config.yaml"  # one letterboxed pass a frame, as the bare interpreter runs
        config.write_text("model:\n  tiling: \"off\"\n")
        command = [sys.executable, "-m", "edge.commands", "run", "--config", str(config), "--model", str(model_dir),
                   "--variant", variant,
                   "--source", str(SAMPLES), "--loop", "--broker", broker.address, "--device-id", "bench",
                   "--max-frames", str(frames + 1)]
        env = {**os.environ, "STATE_DIRECTORY": scratch}
        daemon = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = 0.0
        while daemon.poll() is None:
            peak = max(peak, peak_rss_mib(daemon.pid))
            time.sleep(0.1)
        if daemon.returncode != 0:
            raise RuntimeError(f"craft-edge run exited with {daemon.returncode}")
        subscriber.wait_for(lambda: len(arrivals) >= frames + 1, timeout=30)
        subscriber.close()
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]), peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=absolute, default=REPO / "models" / "384x640")
    parser.add_argument("--variant", default="int8")
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; model {args.model.name} {args.variant}, "
          f"{args.frames} frames, {default_threads()} threads")
    raw = raw_fps(args.model, args.variant, args.frames)
    e2e, peak = daemon_run(args.model, args.variant, args.frames)
    print(f"raw interpreter      {raw:6.2f} fps")
    print(f"craft-edge run e2e   {e2e:6.2f} fps")
    print(f"ratio e2e / raw      {e2e / raw:6.2f}")
    print(f"daemon peak RSS      {peak:6.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
