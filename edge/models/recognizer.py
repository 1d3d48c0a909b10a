"""The bundle's text recognizer on the TFLite interpreter, and the choice of its variant.

``load_reader`` finds the recognizer's folder (``edge.models.manifest.recognizer_folder``; none, no
reading), checks each file against its manifest sha256 and shapes, and picks a variant: the one asked
for, else (automatic, on the CPU) the fastest of those that read like PyTorch on at least
``MIN_SAME_TEXT`` of the converter's validation crops (measured here, one word at the widest width).
The returned ``edge.recognition.reader.Reader`` runs it; this module hands it the model, as
``edge.models`` hands the detector its runner.
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.models.manifest import (
    RecognizerFile,
    RecognizerManifest,
    RecognizerVariant,
    load_recognizer_manifest,
    recognizer_folder,
)
from edge.models.runtime import ModelLoadError, Runtime, TensorSpec, dequantize, find_runtime, quantize
from edge.models.selection import NoUsableModel, file_matches

if TYPE_CHECKING:
    from edge.recognition.reader import Reader

log = logging.getLogger(__name__)

# auto picks only variants reading exactly like PyTorch on this share of the validation crops
MIN_SAME_TEXT = 0.98
MEASURE_RUNS = 5


class SequenceRunner:
    """One recognizer variant: a TFLite interpreter per input width; (N, height, W) uint8 grey pixels ->
    (N, T, C) softmax probabilities (``edge.recognition.reader.SequenceModel``)."""

    def __init__(self, interpreters: dict[int, Any], height: int) -> None:
        self.height = height
        self.widths = tuple(sorted(interpreters))
        self._by_width = {}
        for width, interpreter in interpreters.items():
            interpreter.allocate_tensors()
            (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
            self._by_width[width] = (interpreter, TensorSpec.from_details(inp), inp["index"],
                                     TensorSpec.from_details(out), out["index"])

    def shapes(self, width: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        _, inp, _, out, _ = self._by_width[width]
        return inp.shape, out.shape

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.ndim != 3 or pixels.shape[1] != self.height or pixels.shape[2] not in self._by_width:
            raise ValueError(f"pixels are {pixels.shape}, the recognizer takes (N, {self.height}, W in {self.widths})")
        interpreter, inp, inp_index, out, out_index = self._by_width[pixels.shape[2]]
        results = []
        for word in pixels:  # batch 1: the LSTMs are converted with a fixed batch
            interpreter.set_tensor(inp_index, quantize(word[None, :, :, None].astype(np.float32), inp))
            interpreter.invoke()
            results.append(dequantize(interpreter.get_tensor(out_index)[0], out))
        return np.stack(results)


def load_variant(folder: Path, manifest: RecognizerManifest, variant: RecognizerVariant, runtime: Runtime,
                 threads: int) -> SequenceRunner:
    """``variant``'s files, each checked against its sha256 and recorded shapes; ``NoUsableModel`` if one is not."""
    interpreters = {}
    for entry in variant.files:
        if not file_matches(folder, entry):
            raise NoUsableModel(f"recognizer {variant.name}: {entry.file} does not match its manifest sha256")
        try:
            interpreters[entry.width] = runtime.interpreter(folder / entry.file, threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{folder / entry.file}: cannot load ({exc})") from exc
    runner = SequenceRunner(interpreters, manifest.input_height)
    for entry in variant.files:
        check_file_shapes(variant.name, entry, runner)
    return runner


def check_file_shapes(name: str, entry: RecognizerFile, runner: SequenceRunner) -> None:
    actual_in, actual_out = runner.shapes(entry.width)
    for kind, recorded, actual in (("input", entry.input.shape, actual_in), ("output", entry.output.shape, actual_out)):
        if list(recorded) != list(actual):
            raise NoUsableModel(f"recognizer {name}: the manifest says {kind} {list(recorded)} for {entry.file} "
                                f"but the file has {list(actual)}")


def measure_ms(runner: SequenceRunner, runs: int = MEASURE_RUNS) -> float:
    """Median time of one word at the widest width (a warm-up run first)."""
    pixels = np.full((1, runner.height, runner.widths[-1]), 128, dtype=np.uint8)
    runner(pixels)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(pixels)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def agrees(variant: RecognizerVariant) -> bool:
    return variant.agreement is not None and variant.agreement.same_text >= MIN_SAME_TEXT


def choose(folder: Path, manifest: RecognizerManifest, runtime: Runtime, threads: int,
           variant: str | None) -> tuple[RecognizerVariant, SequenceRunner]:
    cpu = [v for v in manifest.variants if v.target == "cpu"]
    if variant is not None:
        named = next((v for v in cpu if v.name == variant), None)
        if named is None:
            known = ", ".join(v.name for v in cpu)
            raise NoUsableModel(f"the recognizer has no CPU variant {variant!r} (has: {known})")
        return named, load_variant(folder, manifest, named, runtime, threads)
    measured: dict[str, float] = {}
    for candidate in (v for v in cpu if agrees(v)):
        try:
            runner = load_variant(folder, manifest, candidate, runtime, threads)
        except (NoUsableModel, ModelLoadError) as exc:
            log.error("skipping recognizer %s: %s", candidate.name, exc)
            continue
        measured[candidate.name] = measure_ms(runner)
        del runner  # one variant in memory at a time
    if not measured:
        raise NoUsableModel(f"no usable recognizer variant in {folder} (missing, altered or reading unlike PyTorch "
                            f"on more than {1 - MIN_SAME_TEXT:.0%} of its crops)")
    best = min(measured, key=measured.__getitem__)
    log.info("recognizer: %s, the fastest here (%s)", best,
             ", ".join(f"{name} {ms:.1f} ms" for name, ms in sorted(measured.items(), key=lambda kv: kv[1])))
    chosen = next(v for v in cpu if v.name == best)
    return chosen, load_variant(folder, manifest, chosen, runtime, threads)


def load_reader(model: Path, variant: str | None = None, threads: int = 2) -> Reader | None:
    """The bundle's recognizer (None when the bundle has none: no reading); variant None = automatic choice."""
    from edge.recognition.reader import Reader

    folder = recognizer_folder(model)
    if folder is None:
        return None
    manifest = load_recognizer_manifest(folder)
    chosen, runner = choose(folder, manifest, find_runtime(), threads, variant)
    return Reader(runner, manifest.charset, chosen.name)
