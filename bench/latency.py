"""Model latency: every converted variant against PyTorch and ONNX Runtime, in one run.

    python bench/latency.py --model models/384x640 [--threads 2] [--runs 10]

Prints the median (and p90) latency of one inference per backend on the same letterboxed sample
frame, and each one's ratio to PyTorch fp32 measured in the same process. Needs the converter
extra (PyTorch, ONNX Runtime); figures are for the machine it runs on (say which in reports).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from converter.calibration import DEFAULT_VALIDATION_DIR
from edge.config.paths import absolute
from edge.detection.preprocess import letterbox
from edge.models.manifest import load_manifest
from edge.models.runtime import RUNTIME_MODULES, find_runtime, load_model
from edge.sources.imageio import read_rgb


def timings(fn: Callable[[], object], runs: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def torch_backend(pixels: np.ndarray, threads: int, manifest_weights: str) -> Callable[[], object]:
    import torch

    from converter.model import default_weights_path, load_pixel_model

    torch.set_num_threads(threads)
    model = load_pixel_model(default_weights_path())
    batch = torch.from_numpy(pixels.transpose(2, 0, 1)[None].astype(np.float32))

    def run() -> object:
        with torch.no_grad():
            return model(batch)

    return run


def onnxruntime_backend(onnx_path: Path, pixels: np.ndarray, threads: int) -> Callable[[], object]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: pixels.transpose(2, 0, 1)[None].astype(np.float32)}
    return lambda: session.run(None, feed)


def installed_runtimes() -> list:
    found = []
    for name, _ in RUNTIME_MODULES:
        try:
            found.append(find_runtime(name))
        except Exception:
            continue
    return found


@dataclass(frozen=True)
class Row:
    backend: str  # "pytorch fp32", "onnxruntime fp32", "tflite int8", ...
    engine: str  # torch, onnxruntime, ai-edge-litert, tflite-runtime
    median_s: float
    p90_s: float


def measure_backends(model_dir: Path, threads: int, runs: int, image: Path) -> list[Row]:
    """PyTorch first (the baseline), then ONNX Runtime, then every CPU variant on every runtime."""
    manifest = load_manifest(model_dir)
    pixels = letterbox(read_rgb(image), tuple(manifest.input_size)).pixels
    size = f"{manifest.input_size[0]}x{manifest.input_size[1]}"
    backends: list[tuple[str, str, Callable[[], object]]] = [
        ("pytorch fp32", "torch", torch_backend(pixels, threads, manifest.source_weights)),
    ]
    onnx_path = model_dir / f"craft_{size}.onnx"
    if onnx_path.is_file():
        backends.append(("onnxruntime fp32", "onnxruntime", onnxruntime_backend(onnx_path, pixels, threads)))
    for runtime in installed_runtimes():
        if runtime.name == "tensorflow":
            continue  # a workstation fallback, not a device runtime
        for variant in manifest.variants:
            if variant.target == "cpu":
                model = load_model(model_dir / variant.file, runtime, threads)
                backends.append((f"tflite {variant.name}", runtime.name, lambda m=model: m(pixels)))
    rows = []
    for label, engine, fn in backends:
        samples = timings(fn, runs)
        rows.append(Row(label, engine, statistics.median(samples), float(np.percentile(samples, 90))))
        print(f"  measured {label} on {engine} at {size}, {threads} threads", file=sys.stderr, flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=absolute, default="models/384x640", help="a converted model folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--image", type=absolute, default=DEFAULT_VALIDATION_DIR / "astronaut_00.jpg")
    args = parser.parse_args()

    manifest = load_manifest(args.model)
    size = f"{manifest.input_size[0]}x{manifest.input_size[1]}"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}")
    print(f"input {size}, {args.threads} threads, {args.runs} runs after 2 warm-up runs, image {args.image.name}\n")
    rows = measure_backends(args.model, args.threads, args.runs, args.image)
    baseline = rows[0].median_s
    print(f"{'backend':<20} {'engine':<16} {'median ms':>10} {'p90 ms':>8} {'vs PyTorch':>11}")
    for row in rows:
        print(f"{row.backend:<20} {row.engine:<16} {row.median_s * 1e3:>10.1f} {row.p90_s * 1e3:>8.1f} "
              f"{baseline / row.median_s:>10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
