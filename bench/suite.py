"""The benchmark suite: every figure next to the baseline it is compared with, measured in one run.

    python bench/suite.py --models models [--eval ../shared/eval] [--runs 10] [--out docs/benchmarks.md]

``--models`` holds one folder per input size written by ``convert-for-device`` (e.g. 320x320,
480x640, 736x1280). Writes a markdown report with the machine's description and PNG plots next
to it. Sections: model latency (PyTorch, ONNX Runtime, every TFLite variant on every installed
runtime; 1 and 2 threads), achieved GMAC/s against this machine's measured matmul peak,
post-processing against the official algorithm, daemon end to end against the bare interpreter
with peak RSS, and accuracy per variant and size on an evaluation folder (``images/`` and ``gt/``)
if one is given: H-mean against ground truth and agreement with the fp32 model of the same size.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import e2e_fps, latency, postprocess  # noqa: E402
from edge.config.paths import absolute  # noqa: E402
from edge.detection.detector import Detector  # noqa: E402
from edge.detection.evaluation import Summary, Word, evaluate_image, find_ground_truth, read_words  # noqa: E402
from edge.detection.postprocess import Thresholds  # noqa: E402
from edge.models.hardware import cpu_info  # noqa: E402
from edge.models.manifest import load_manifest  # noqa: E402
from edge.models.runtime import find_runtime, load_model  # noqa: E402
from edge.sources.imageio import list_images, read_rgb  # noqa: E402

SAMPLE = REPO / "edge" / "samples" / "astronaut_00.jpg"
THREADS = (1, 2)


def model_folders(models: Path) -> list[Path]:
    folders = [p for p in models.iterdir() if (p / "manifest.json").is_file()]
    return sorted(folders, key=lambda p: load_manifest(p).input_size[0] * load_manifest(p).input_size[1])


def size_of(folder: Path) -> str:
    height, width = load_manifest(folder).input_size
    return f"{height}x{width}"


# -- hardware limit and model size --------------------------------------------------------------
def matmul_model(n: int, int8: bool) -> bytes:
    """A TFLite model of one n x n by n x n matmul (FULLY_CONNECTED), float32 or full int8."""
    import tensorflow as tf

    weights = tf.constant(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32))
    function = tf.function(lambda x: tf.matmul(x, weights)).get_concrete_function(tf.TensorSpec([n, n], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([np.random.standard_normal((n, n)).astype(np.float32)]
                                                    for _ in range(2))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def peak_gmacs(threads: int, folder: Path) -> dict[str, float]:
    """MAC/s of a large matmul on the same runtime (XNNPACK) and threads: the reachable limit here."""
    runtime = find_runtime()
    n = 1024
    peak = {}
    for kind in ("fp32", "int8"):
        path = folder / f"matmul_{kind}.tflite"
        path.write_bytes(matmul_model(n, kind == "int8"))
        interpreter = runtime.interpreter(path, threads)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.ones(detail["shape"], dtype=detail["dtype"]))
        interpreter.invoke()
        start = time.perf_counter()
        for _ in range(10):
            interpreter.invoke()
        peak[kind] = 10 * n**3 / (time.perf_counter() - start) / 1e9
    return peak


def model_macs(folder: Path) -> float:
    """Multiply-accumulates of one inference, from the ONNX graph's convolutions (GMAC)."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(folder / f"craft_{size_of(folder)}.onnx")))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(model.graph.value_info) + list(model.graph.output)}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out = shapes[node.output[0]]
            kernel = weights[node.input[1]]  # (out_c, in_c / groups, kh, kw)
            total += int(np.prod(out)) * int(np.prod(kernel[1:]))
    return total / 1e9


# -- accuracy -----------------------------------------------------------------------------------
@dataclass
class Accuracy:
    labelled: Summary
    agreement: Summary | None


def accuracy(folder: Path, eval_dir: Path) -> dict[str, Accuracy]:
    manifest = load_manifest(folder)
    runtime = find_runtime()
    images = list_images(eval_dir / "images")
    frames = {image.name: read_rgb(image) for image in images}
    boxes: dict[str, dict[str, list]] = {}
    for variant in manifest.variants:
        if variant.target != "cpu":
            continue
        model = load_model(folder / variant.file, runtime, os.cpu_count() or 1)
        boxes[variant.name] = {name: [b.points for b in Detector(model, Thresholds()).boxes(rgb)]
                               for name, rgb in frames.items()}
        print(f"  accuracy of {variant.name} at {size_of(folder)}", file=sys.stderr, flush=True)
    results = {}
    for name, found in boxes.items():
        labelled = []
        for image in images:
            truth = find_ground_truth(eval_dir / "gt", image.name)
            if truth is not None:
                labelled.append(evaluate_image(image.name, read_words(truth), found[image.name]))
        agreement = None
        if name != "fp32" and "fp32" in boxes:
            agreement = Summary([evaluate_image(image.name, [Word(p, False) for p in boxes["fp32"][image.name]],
                                                found[image.name]) for image in images])
        results[name] = Accuracy(Summary(labelled), agreement)
    return results


# -- report -------------------------------------------------------------------------------------
def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table followed by a blank line."""
    body = ("| " + " | ".join(row) + " |" for row in rows)
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *body, ""]


def plots(out_dir: Path, latencies: dict, accuracies: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    markers = {"fp32": "o", "fp16": "s", "dynamic": "^", "int8": "D", "int8-tpu": "v"}
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for colour, (size, per_variant) in zip(colours, accuracies.items(), strict=False):
        rows = {r.backend.removeprefix("tflite "): r for r in latencies[(size, 2)] if r.engine == "ai-edge-litert"}
        for variant, result in per_variant.items():
            if variant in rows:
                axes.scatter(rows[variant].median_s * 1e3, result.labelled.count.hmean, color=colour,
                             marker=markers.get(variant, "o"), s=60, alpha=0.8, label=f"{size} {variant}")
    axes.set_xscale("log")
    axes.set_xlabel("latency, ms (ai-edge-litert, 2 threads, x86-64)")
    axes.set_ylabel("H-mean, ICDAR 2015 images (IoU 0.5)")
    axes.set_title("Accuracy against latency: colour = input size, marker = variant")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=6, ncol=3, loc="lower right")
    figure.tight_layout()
    figure.savefig(out_dir / "latency_vs_hmean.png", dpi=120)
    written.append("latency_vs_hmean.png")

    size = "480x640" if any(k[0] == "480x640" for k in latencies) else next(iter(latencies))[0]
    rows = latencies[(size, 2)]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    labels = [f"{r.backend}\n{r.engine}" for r in rows]
    axes.bar(range(len(rows)), [r.median_s * 1e3 for r in rows],
             color=["#888" if r.engine in ("torch", "onnxruntime") else
                    "#2a7" if r.engine == "ai-edge-litert" else "#c63" for r in rows])
    axes.set_xticks(range(len(rows)), labels, rotation=60, ha="right", fontsize=7)
    axes.set_ylabel("median latency, ms")
    axes.set_title(f"Latency by runtime at {size}, 2 threads (x86-64)")
    figure.tight_layout()
    figure.savefig(out_dir / "latency_by_runtime.png", dpi=120)
    written.append("latency_by_runtime.png")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=absolute, default=REPO / "models")
    parser.add_argument("--eval", type=absolute, help="folder with images/ and gt/ (e.g. ../shared/eval)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--e2e-frames", type=int, default=30)
    parser.add_argument("--out", type=absolute, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    started = time.monotonic()
    folders = model_folders(args.models)
    if not folders:
        print(f"suite: no model folders in {args.models}; run convert-for-device first", file=sys.stderr)
        return 2
    cpu = cpu_info()
    lines = [
        "# craft-edge benchmarks", "",
        f"Measured {datetime.date.today().isoformat()} with `python bench/suite.py` on **{cpu.describe()}**, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}.",
        "",
        f"**These are {cpu.machine} figures, not Raspberry Pi figures.** A Pi's come from running the same "
        "command on the Pi (with the device and converter extras; or copy the model folders there).", "",
    ]

    latencies = {}
    for folder in folders:
        for threads in THREADS:
            latencies[(size_of(folder), threads)] = latency.measure_backends(folder, threads, args.runs, SAMPLE)
    lines += ["## Model latency", "",
              f"Median and p90 of {args.runs} runs after 2 warm-up runs on one letterboxed sample frame; ratio = "
              "PyTorch fp32 median (same size and threads, same run) / this median.", ""]
    for (size, threads), rows in latencies.items():
        baseline = rows[0].median_s
        lines += [f"### {size}, {threads} thread{'s' if threads > 1 else ''}", ""]
        lines += table(["backend", "engine", "median ms", "p90 ms", "vs PyTorch"],
                       [[r.backend, r.engine, f"{r.median_s * 1e3:.1f}", f"{r.p90_s * 1e3:.1f}",
                         f"{baseline / r.median_s:.2f}x"] for r in rows])

    with tempfile.TemporaryDirectory() as scratch:
        peak = peak_gmacs(2, Path(scratch))
    lines += ["## Distance to the hardware limit", "",
              f"Reference measured in this run: a 1024x1024 by 1024x1024 matrix multiply as one TFLite "
              f"FULLY_CONNECTED op on {find_runtime().name} (XNNPACK), 2 threads: fp32 {peak['fp32']:.1f} GMAC/s, "
              f"int8 {peak['int8']:.1f} GMAC/s. CRAFT's MACs are counted from the ONNX graph's convolutions.", ""]
    rows = []
    for folder in folders:
        macs = model_macs(folder)
        for r in latencies[(size_of(folder), 2)]:
            if r.engine in ("ai-edge-litert", "torch"):
                kind = "int8" if ("int8" in r.backend or "dynamic" in r.backend) else "fp32"
                achieved = macs / r.median_s
                rows.append([size_of(folder), f"{macs:.1f}", r.backend, r.engine, f"{achieved:.1f}",
                             f"{100 * achieved / peak[kind]:.0f}% of {kind}"])
    lines += table(["input", "GMAC", "backend", "engine", "GMAC/s", "of peak"], rows)

    lines += ["## Post-processing", "", "Official full-map-per-component box extraction against ours (same boxes), "
              "median ms on synthetic score maps.", ""]
    measured = postprocess.measure()
    lines += table(["map", "boxes", "official ms", "ours ms", "speed-up"],
                   [[c, str(b), f"{o:.1f}", f"{u:.1f}", f"{o / u:.1f}x"] for c, b, o, u in measured])

    e2e_folder = next((f for f in folders if size_of(f) == "480x640"), folders[0])
    rows = []
    for variant in [v.name for v in load_manifest(e2e_folder).variants if v.target == "cpu"]:
        raw = e2e_fps.raw_fps(e2e_folder, variant, args.e2e_frames)
        fps, rss = e2e_fps.daemon_run(e2e_folder, variant, args.e2e_frames)
        rows.append([variant, f"{raw:.2f}", f"{fps:.2f}", f"{fps / raw:.2f}", f"{rss:.0f}"])
        print(f"  end to end {variant}", file=sys.stderr, flush=True)
    lines += ["## Daemon end to end", "",
              f"`craft-edge run` on the shipped sample images at {size_of(e2e_folder)} (all cores), timed by a "
              "subscriber, against the bare interpreter on the same model in the same run; peak RSS (VmHWM) of "
              "the daemon process, which imports only the device extra.", ""]
    lines += table(["variant", "interpreter fps", "daemon fps", "ratio", "peak RSS MiB"], rows)

    accuracies = {}
    if args.eval is not None and (args.eval / "images").is_dir():
        for folder in folders:
            accuracies[size_of(folder)] = accuracy(folder, args.eval)
        lines += ["## Accuracy", "",
                  f"On `{args.eval.name}/`: H-mean against the ground truth (ICDAR 2015 protocol, images with "
                  "`gt/`), and agreement of each variant's boxes with the fp32 model of the same size (all images, "
                  "IoU 0.5). Input size decides more than quantisation does.", ""]
        rows = []
        for size, per_variant in accuracies.items():
            for variant, result in per_variant.items():
                agreement = result.agreement
                labelled = result.labelled.count
                rows.append([size, variant, f"{labelled.precision:.3f}", f"{labelled.recall:.3f}",
                             f"{labelled.hmean:.3f}", "-" if agreement is None else f"{agreement.count.hmean:.3f}"])
        lines += table(["input", "variant", "P", "R", "H-mean", "H vs fp32"], rows)
        for name in plots(args.out.parent, latencies, accuracies):
            lines += [f"![{name}]({name})", ""]
    lines += [f"Suite run time: {(time.monotonic() - started) / 60:.1f} minutes.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
