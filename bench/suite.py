"""The benchmark suite: every figure next to the baseline it is compared with, measured in one run.

    python bench/suite.py --models models [--eval DIR] [--runs 10] [--out docs/benchmarks.md]

``--models`` is a bundle written by ``convert-for-device`` (``make benchmarks`` converts 384x640,
480x864, 576x1024 and 736x1280 beside the 288x288 tile model). Writes a markdown report with the
machine's description and PNG plots next to it. Sections: model latency (PyTorch, ONNX Runtime,
every TFLite variant on every installed runtime; 2 threads), achieved GMAC/s against this machine's
measured matmul peak, post-processing against the official algorithm, daemon end to end against
the bare interpreter with peak RSS, and, on the benchmark (``../shared/eval-ic15train``: 200
ICDAR 2015 photos, or ``--eval DIR`` with ``images/`` and ``gt/``): H-mean/P/R of every variant at
the native size and of int8 at every coarse size, with agreement with fp32, model time per photo
and the ratio to PyTorch; then the tiling modes (``bench/tiling.py``) on the same photos.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import e2e_fps, latency, postprocess, tiling  # noqa: E402
from edge.config.paths import absolute  # noqa: E402
from edge.detection.benchmark import LabelledSet, default_set  # noqa: E402
from edge.detection.detector import Detector  # noqa: E402
from edge.detection.evaluation import Summary, Word, evaluate_image, find_ground_truth, read_words  # noqa: E402
from edge.detection.postprocess import Thresholds  # noqa: E402
from edge.detection.preprocess import letterbox  # noqa: E402
from edge.models.hardware import cpu_info  # noqa: E402
from edge.models.manifest import load_manifest  # noqa: E402
from edge.models.manifest import model_folders as model_folders_of  # noqa: E402
from edge.models.runtime import find_runtime, load_model  # noqa: E402
from edge.sources.imageio import list_images, read_rgb  # noqa: E402

SAMPLE = REPO / "edge" / "samples" / "astronaut_00.jpg"
THREADS = (2,)  # the acceptance setting; 1 thread roughly doubles every figure


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
    model_ms: float  # mean model time per photo
    pytorch_ms: float | None  # PyTorch fp32 at the same size, on the same first PYTORCH_PHOTOS photos
    subset_ms: float  # this variant's mean over those photos


PYTORCH_PHOTOS = 20  # photos PyTorch is timed on (its ratio); every variant is timed on all of them too


def pytorch_ms(size: tuple[int, int], frames: list) -> float:
    """PyTorch fp32's mean model time per photo, letterboxed into ``size`` (2 threads)."""
    timed = []
    for rgb in frames:
        run = latency.torch_backend(letterbox(rgb, size).pixels, 2, "")
        timed.append(min(latency.timings(run, 1, warmup=0)))
    return 1e3 * float(np.mean(timed))


def accuracy(folder: Path, labelled: LabelledSet, variants: list[str], with_pytorch: bool) -> dict[str, Accuracy]:
    """Every variant in ``variants``, the photo letterboxed into the folder's size, 2 threads."""
    manifest = load_manifest(folder)
    runtime = find_runtime()
    truth_files = {image: find_ground_truth(labelled.truth, image.name) for image in list_images(labelled.images)}
    images = [image for image, truth in truth_files.items() if truth is not None]  # labelled photos only
    truths = {image.name: read_words(truth_files[image]) for image in images}
    found: dict[str, dict[str, list]] = {}
    times: dict[str, list[float]] = {}
    for name in variants:
        model = load_model(folder / manifest.variant(name).file, runtime, 2)
        detector = Detector(model, Thresholds())
        found[name], times[name] = {}, []
        for image in tqdm(images, desc=f"{size_of(folder)} {name}", unit="photo"):
            detection = detector.detect(read_rgb(image))
            found[name][image.name] = [b.points for b in detection.boxes]
            times[name].append(detection.timing.inference)
    baseline = (pytorch_ms(manifest.input_size, [read_rgb(image) for image in images[:PYTORCH_PHOTOS]])
                if with_pytorch else None)
    results = {}
    for name, boxes in found.items():
        scored = Summary([evaluate_image(image.name, truths[image.name], boxes[image.name]) for image in images])
        agreement = None
        if name != "fp32" and "fp32" in found:
            agreement = Summary([evaluate_image(image.name, [Word(p, False) for p in found["fp32"][image.name]],
                                                boxes[image.name]) for image in images])
        results[name] = Accuracy(scored, agreement, float(np.mean(times[name])), baseline,
                                 float(np.mean(times[name][:PYTORCH_PHOTOS])))
    return results


def tiling_modes(models: Path, labelled: LabelledSet, coarse: str, tile: str, native: str) -> str:
    """bench/tiling.py's report for int8 on the benchmark: its printed table, as it prints it."""
    arguments = ["--coarse-model", str(models / coarse), "--tile-model", str(models / tile),
                 "--native-model", str(models / native), "--set", f"{labelled.images}:{labelled.truth}",
                 "--clip", str(REPO / "data" / "clip")]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            tiling.main(arguments)
        except SystemExit as exc:  # e.g. a photo larger than the native model: report it, keep the rest
            print(f"bench/tiling.py stopped: {exc}")
    return printed.getvalue()


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
        for variant, result in per_variant.items():
            axes.scatter(result.model_ms, result.labelled.count.hmean, color=colour,
                         marker=markers.get(variant, "o"), s=60, alpha=0.8, label=f"{size} {variant}")
    axes.set_xscale("log")
    axes.set_xlabel("model ms per photo (ai-edge-litert, 2 threads, x86-64)")
    axes.set_ylabel("H-mean, 200 ICDAR 2015 photos (IoU 0.5)")
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
    parser.add_argument("--eval", type=absolute,
                        help="folder with images/ and gt/ (default: ../shared/eval-ic15train, else data/smalltext)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--e2e-frames", type=int, default=30)
    parser.add_argument("--out", type=absolute, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    started = time.monotonic()
    args.out.parent.mkdir(parents=True, exist_ok=True)  # the plots are written beside it before the report
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

    e2e_folder = model_folders_of(args.models).coarse
    rows = []
    for variant in [v.name for v in load_manifest(e2e_folder).variants if v.target == "cpu"]:
        raw = e2e_fps.raw_fps(e2e_folder, variant, args.e2e_frames)
        fps, rss = e2e_fps.daemon_run(e2e_folder, variant, args.e2e_frames)
        rows.append([variant, f"{raw:.2f}", f"{fps:.2f}", f"{fps / raw:.2f}", f"{rss:.0f}"])
        print(f"  end to end {variant}", file=sys.stderr, flush=True)
    lines += ["## Daemon end to end", "",
              f"`craft-edge run` on the shipped sample images at {size_of(e2e_folder)} (all cores, `tiling: off`), "
              "timed by a "
              "subscriber, against the bare interpreter on the same model in the same run; peak RSS (VmHWM) of "
              "the daemon process, which imports only the device extra.", ""]
    lines += table(["variant", "interpreter fps", "daemon fps", "ratio", "peak RSS MiB"], rows)

    accuracies = {}
    labelled = (default_set(Path.cwd()) if args.eval is None
                else LabelledSet(args.eval.name, args.eval / "images", args.eval / "gt"))
    if labelled is not None:
        roles = model_folders_of(args.models)
        coarse, tile = roles.coarse.name, roles.tile.name
        # the largest model that is not the tile model: 736x1280 holds a 1280x720 photo at its own size
        native = next(size_of(f) for f in reversed(folders) if f.name != tile)
        for folder in folders:
            if folder.name == tile:  # a whole photo letterboxed into a tile is no mode anyone runs
                continue
            variants = ([v.name for v in load_manifest(folder).variants if v.target == "cpu"]
                        if size_of(folder) == native else ["int8"])
            accuracies[size_of(folder)] = accuracy(folder, labelled, variants, size_of(folder) == native)
        lines += ["## Accuracy", "",
                  f"On `{labelled.name}/` ({len(list_images(labelled.images))} photos): H-mean, precision and "
                  "recall against the ground truth (ICDAR 2015 protocol, IoU 0.5), each photo letterboxed into the "
                  "input size (one pass; 736x1280 is the photo at its own size), 2 threads; agreement of each "
                  f"variant's boxes with fp32 of the same size; mean model time per photo; and the ratio to PyTorch "
                  f"fp32 at the same size, both timed on the first {PYTORCH_PHOTOS} photos in this run.", ""]
        rows = []
        for size, per_variant in accuracies.items():
            for variant, result in per_variant.items():
                agreement, count = result.agreement, result.labelled.count
                ratio = "-" if result.pytorch_ms is None else f"{result.pytorch_ms / result.subset_ms:.2f}x"
                rows.append([size, variant, f"{count.hmean:.3f}", f"{count.precision:.3f}", f"{count.recall:.3f}",
                             "-" if agreement is None else f"{agreement.count.hmean:.3f}", f"{result.model_ms:.0f}",
                             ratio])
        lines += table(["input", "variant", "H-mean", "P", "R", "H vs fp32", "model ms/photo", "vs PyTorch"], rows)
        for name in plots(args.out.parent, latencies, accuracies):
            lines += [f"![{name}]({name})", ""]
        lines += ["## Tiling modes", "",
                  f"`bench/tiling.py` on the same photos, int8, 2 threads: native = one pass at the photo's own size "
                  f"({native}); off = letterboxed into the coarse model ({coarse}); full = every {tile} "
                  f"tile; adaptive = the coarse pass, then tiles where it needs them. `vs native` is the mode's model "
                  "time over the native pass's, same run.", "", "```", tiling_modes(args.models, labelled, coarse, tile,
                                                                                    native).rstrip(), "```",
                  ""]
    lines += [f"Suite run time: {(time.monotonic() - started) / 60:.1f} minutes.", ""]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
