"""Where the dynamic recognizer's disagreement with PyTorch comes from, and what buying it back costs.

    python bench/quantization_split.py --model OUT --eval-rec ../shared/eval-rec --ic15 ../shared/eval-ic15train \\
        [--threads 2] [--margins 0.05,0.1,0.15] [--each-layer]

Two experiments on the same crops as ``bench/recognition.py`` (the project's, IIIT5K and SVT train, ICDAR 2015
train words), each reader behind the device's ``Reader``, strings compared with PyTorch english_g2's:

- **Split**: the dynamic file with some weights put back to float (taken from the fp32 file of the same
  bundle): the convolutions, or the LSTMs and linear layers (``--each-layer``: also each of those weights
  alone). If one part caused the flips, keeping it float would buy the agreement back for that part's share
  of the time.
- **Cascade**: dynamic first, then fp32 again on each word whose closest call (the smallest gap between a
  step's two likeliest classes) is under a margin: measured end to end, not estimated.

The share of each set read as PyTorch reads it, word accuracy on all crops (case-insensitive, letters and
digits), milliseconds per word and the speed-up against PyTorch's fastest reader of ``bench/recognition.py``
(batches of 8) in this run; for dynamic, what its flips are: how many of the words it reads otherwise
than PyTorch either of them reads right, and how many differ only in case or punctuation. Research only:
nothing here is shipped; the weight swap is a flatbuffer edit.
x86 figures for the machine it runs on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.recognition import CropSet, TorchModel, accuracy, alnum, eval_rec_sets, ic15_set, project_set
from edge.commands.common import thread_count
from edge.config.paths import absolute
from edge.models.manifest import recognizer_folder
from edge.models.recognizer import SequenceRunner, lanes_for
from edge.models.recognizer_manifest import load_recognizer_manifest
from edge.models.runtime import default_threads, find_runtime
from edge.recognition.crops import MARGIN
from edge.recognition.reader import Reader, Reading

# (subgraph, operator) of each weight the converter quantizes, in the current graph's files: subgraph 0
# holds the convolutions and the projections around each LSTM's loop, subgraphs 2 and 4 the loops' steps
PARTS = {
    "convolutions": [(0, 4), (0, 6), (0, 7), (0, 9), (0, 10), (0, 12)],
    "LSTMs and linear layers": [(0, 15), (2, 5), (2, 16), (0, 28), (0, 30), (4, 5), (4, 16), (0, 43), (0, 44)],
}


def with_float_weights(dynamic: Path, fp32: Path, operators: list[tuple[int, int]], out: Path) -> Path:
    """``dynamic`` with the int8 weights of ``operators`` replaced by ``fp32``'s float ones."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model, source = flatbuffer_utils.read_model(str(dynamic)), flatbuffer_utils.read_model(str(fp32))
    for subgraph, operator in operators:
        target = model.subgraphs[subgraph].tensors[model.subgraphs[subgraph].operators[operator].inputs[1]]
        weights = source.subgraphs[subgraph].tensors[source.subgraphs[subgraph].operators[operator].inputs[1]]
        if target.type != schema.TensorType.INT8 or list(target.shape) != list(weights.shape):
            raise SystemExit(f"{dynamic}: operator {operator} of subgraph {subgraph} has no int8 weights shaped "
                             f"like {fp32}'s: a graph this bench does not know")
        buffer = schema.BufferT()
        buffer.data = source.buffers[weights.buffer].data
        model.buffers.append(buffer)
        target.buffer, target.type, target.quantization = len(model.buffers) - 1, schema.TensorType.FLOAT32, None
    flatbuffer_utils.write_model(model, str(out))
    return out


def closest_call(reading: Reading) -> float:
    """The smallest gap between a step's two likeliest classes."""
    top = np.sort(reading.steps, axis=1)[:, -2:]
    return float((top[:, 1] - top[:, 0]).min())


def print_flips(texts: list[str], reference: list[str], labels: list[str], sets: list[CropSet],
                bounds: np.ndarray) -> None:
    """Per set, of the words ``texts`` reads otherwise than ``reference``: how many each reads right (alnum)
    and how many differ only in case or punctuation."""
    for crop_set, lo, hi in zip(sets, bounds[:-1], bounds[1:], strict=True):
        flips = [i for i in range(lo, hi) if texts[i] != reference[i]]
        print(f"    {crop_set.name}: {len(flips)} read otherwise than PyTorch; right: PyTorch "
              f"{sum(alnum(reference[i]) == alnum(labels[i]) for i in flips)}, this "
              f"{sum(alnum(texts[i]) == alnum(labels[i]) for i in flips)}; only case or punctuation apart: "
              f"{sum(alnum(texts[i]) == alnum(reference[i]) for i in flips)}")


def timed(read: Callable[[list[np.ndarray]], list[str]], crops: list[np.ndarray]) -> tuple[list[str], float]:
    read(crops[:2])  # warm-up
    start = time.perf_counter()
    texts = read(crops)
    return texts, (time.perf_counter() - start) * 1e3 / len(crops)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=absolute, required=True, help="convert-for-device output (with a recognizer)")
    parser.add_argument("--eval-rec", type=absolute, required=True, help="../shared/eval-rec")
    parser.add_argument("--ic15", type=absolute, required=True, help="../shared/eval-ic15train")
    parser.add_argument("--threads", type=thread_count, default=2, help="0: one per core")
    parser.add_argument("--margins", default="0.05,0.1,0.15", help="cascade margins, comma-separated")
    parser.add_argument("--each-layer", action="store_true", help="also each quantized weight float on its own")
    args = parser.parse_args()
    threads = args.threads or default_threads()
    folder = recognizer_folder(args.model)
    if folder is None:
        parser.error(f"{args.model} has no recognizer")
    manifest = load_recognizer_manifest(folder)
    files = {v.name: folder / v.file for v in manifest.variants}
    if not {"fp32", "dynamic"} <= set(files):
        parser.error(f"{folder} needs the fp32 and dynamic variants")
    runtime = find_runtime()
    widths = tuple(manifest.widths)

    def reader(path: Path) -> Reader:
        interpreters = [runtime.interpreter(path, each) for each in lanes_for(threads, default_threads())]
        return Reader(SequenceRunner(interpreters, manifest.input_height, widths), manifest.charset, path.stem)

    sets: list[CropSet] = [project_set(MARGIN), *eval_rec_sets(args.eval_rec), ic15_set(args.ic15, MARGIN)]
    crops = [crop for crop_set in sets for crop in crop_set.crops]
    labels = [label for crop_set in sets for label in crop_set.labels]
    bounds = np.cumsum([0] + [len(crop_set.crops) for crop_set in sets])

    def report(name: str, texts: list[str], ms: float) -> None:
        same = np.array([a == b for a, b in zip(texts, reference, strict=True)])
        shares = "  ".join(f"{crop_set.name} {same[lo:hi].mean():6.1%}"
                           for crop_set, lo, hi in zip(sets, bounds[:-1], bounds[1:], strict=True))
        print(f"  {name:<44} {ms:5.2f} ms  x{baseline / ms:4.2f}   {shares}   accuracy "
              f"{accuracy(texts, labels, alnum):.3f}", flush=True)

    def texts_of(chosen: Reader) -> Callable[[list[np.ndarray]], list[str]]:
        return lambda batch: [r.text for r in chosen.read(batch)]

    torch_reader = Reader(TorchModel(widths, threads, batch=8), manifest.charset, "pytorch")
    reference, baseline = timed(texts_of(torch_reader), crops)
    print(f"x86 ({runtime.describe()}, {threads} threads), {len(crops)} crops; same as PyTorch per set "
          f"(PyTorch in batches of 8: {baseline:.2f} ms a word)")
    readers = {"fp32": reader(files["fp32"]), "dynamic": reader(files["dynamic"])}
    read_by = {name: timed(texts_of(each), crops) for name, each in readers.items()}
    for name, (texts, ms) in read_by.items():
        report(name, texts, ms)
    print_flips(read_by["dynamic"][0], reference, labels, sets, bounds)
    splits = {f"{part} float": operators for part, operators in PARTS.items()}
    if args.each_layer:
        splits |= {f"weight of operator {op} in subgraph {graph} float": [(graph, op)]
                   for operators in PARTS.values() for graph, op in operators}
    with tempfile.TemporaryDirectory() as work:
        for name, operators in splits.items():
            path = with_float_weights(files["dynamic"], files["fp32"], operators, Path(work) / "split.tflite")
            report(f"dynamic, {name}", *timed(texts_of(reader(path)), crops))

    for margin in (float(m) for m in args.margins.split(",")):
        redone = 0

        def cascade(batch: list[np.ndarray], margin: float = margin) -> list[str]:
            nonlocal redone
            first = readers["dynamic"].read(batch)
            again = [i for i, reading in enumerate(first) if closest_call(reading) < margin]
            texts = [reading.text for reading in first]
            for i, reading in zip(again, readers["fp32"].read([batch[i] for i in again]), strict=True):
                texts[i] = reading.text
            redone = len(again)
            return texts

        texts, ms = timed(cascade, crops)
        report(f"cascade, fp32 under margin {margin} ({redone / len(crops):.0%} again)", texts, ms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
