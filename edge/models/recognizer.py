"""The bundle's text recognizer on the TFLite interpreter, and the choice of its variant.

``load_reader`` finds the recognizer's folder (``edge.models.manifest.recognizer_folder``; none, no
reading), checks the variant's file against its manifest sha256 and shapes, and picks a variant: the one asked
for, else (automatic, on the CPU) the fastest of those that read like PyTorch on at least
``MIN_SAME_TEXT`` of the converter's validation crops (measured here: one word of the middle width on one
of the interpreters the reader will run, as each of them reads).
The returned ``edge.recognition.reader.Reader`` runs it; this module hands it the model, as
``edge.models`` hands the detector its runner.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.models.manifest import MANIFEST_NAME, ManifestError, recognizer_folder
from edge.models.recognizer_manifest import (
    MIN_RECOGNIZER_WIDTH,
    RecognizerManifest,
    RecognizerVariant,
    load_recognizer_manifest,
)
from edge.models.runtime import (
    ModelLoadError,
    Runtime,
    TensorSpec,
    default_threads,
    dequantize,
    find_runtime,
    quantize,
)
from edge.models.selection import NoUsableModel, file_matches, median_ms

if TYPE_CHECKING:
    from edge.recognition.reader import Reader

log = logging.getLogger(__name__)

# auto picks only variants reading exactly like PyTorch on this share of the validation crops
MIN_SAME_TEXT = 0.98
MEASURE_RUNS = 5
# interpreters a recognizer runs on at most (one per thread asked for): each holds its own packed weights
MAX_LANES = 8
NO_RECOGNIZER = " has no text recognizer (convert-for-device without --no-recognizer makes one)"  # after the path
LANE_WAIT_SECONDS = 60.0  # a read waits this long for a free interpreter (each is held for a word or two)


class _Lane:
    """One interpreter of the file and the width it is currently sized for."""

    def __init__(self, interpreter: Any, height: int) -> None:
        self.interpreter = interpreter
        self.height = height
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
        self.input_index, self.output_index = inp["index"], out["index"]
        self.width: int | None = None

    def resize(self, width: int) -> None:
        if width != self.width:
            self.width = None  # until allocated: after a failed allocation the next call sizes it again
            self.interpreter.resize_tensor_input(self.input_index, [1, self.height, width, 1])
            self.interpreter.allocate_tensors()
            self.width = width

    def specs(self) -> tuple[TensorSpec, TensorSpec]:
        return (TensorSpec.from_details(self.interpreter.get_input_details()[0]),
                TensorSpec.from_details(self.interpreter.get_output_details()[0]))


class SequenceRunner:
    """One recognizer variant on TFLite interpreters: (N, height, W) uint8 grey pixels, W one of ``widths``
    -> (N, T, C) softmax probabilities (``edge.recognition.reader.SequenceModel``).

    The file takes any width; an interpreter is resized when the width changes (about a millisecond,
    against several for a word), so the reader's grouping by width keeps resizes few. Words run one at a
    time on an interpreter (the file's batch is 1). With several interpreters of the same file (``lanes``),
    calls from several threads run at once, each on a free interpreter: the reader spreads a frame's words
    over them. Words are independent and one word's LSTM steps are too small to share between threads, so
    on 2 cores two one-thread interpreters read 1.2-1.5x more words a second than one on two threads.
    Each interpreter holds its own packed weights and tensors (x86: dynamic about 10 MB sized for 64 px,
    26 MB for 1024; fp32 32 and 48 MB), so all but the first are sized when they first read.
    """

    def __init__(self, interpreters: Sequence[Any], height: int, widths: tuple[int, ...]) -> None:
        if not interpreters:
            raise ValueError("a recognizer runner needs at least one interpreter")
        self.height = height
        self.widths = widths
        self.lanes = len(interpreters)
        self._lanes = [_Lane(interpreter, height) for interpreter in interpreters]
        self._lanes[0].resize(widths[-1])
        self._specs = self._lanes[0].specs()  # at the widest width: what the manifest's shapes are checked against
        self._free: queue.SimpleQueue[_Lane] = queue.SimpleQueue()
        for lane in self._lanes:
            self._free.put(lane)
        self.on_word: Callable[[], None] = lambda: None  # after each word (the daemon's watchdog: many words are slow)

    def specs(self) -> tuple[TensorSpec, TensorSpec]:
        """The input and output tensors at the widest width (as loaded: no interpreter is touched)."""
        return self._specs

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.ndim != 3 or pixels.shape[1] != self.height or pixels.shape[2] < MIN_RECOGNIZER_WIDTH:
            raise ValueError(f"pixels are {pixels.shape}, the recognizer takes (N, {self.height}, W), "
                             f"W >= {MIN_RECOGNIZER_WIDTH}")
        try:  # blocks while every interpreter is busy: for a word or two each, when the reader spreads them
            lane = self._free.get(timeout=LANE_WAIT_SECONDS)
        except queue.Empty:
            raise RuntimeError(f"no recognizer interpreter came free in {LANE_WAIT_SECONDS} s (all {self.lanes} "
                               f"held that long)") from None
        try:
            lane.resize(pixels.shape[2])
            inp, out = lane.specs()
            results = []
            for word in pixels:
                # a recognizer converted with fused LSTMs (an interim build) keeps their state in variable
                # tensors: each word starts from zero (a no-op for today's WHILE loops)
                lane.interpreter.reset_all_variables()
                lane.interpreter.set_tensor(lane.input_index, quantize(word[None, :, :, None].astype(np.float32), inp))
                lane.interpreter.invoke()
                results.append(dequantize(lane.interpreter.get_tensor(lane.output_index)[0], out))
                self.on_word()
            probs = np.stack(results)
        finally:
            self._free.put(lane)
        if not np.isfinite(probs).all():  # greedy decoding would read NaN as blanks: "nothing written here"
            raise ModelLoadError("the recognizer gave probabilities that are not numbers (NaN or infinite): damaged "
                                 "weights, or a kernel gone wrong on this machine")
        return probs


def lanes_for(threads: int, cores: int) -> list[int]:
    """The threads of each interpreter for ``threads`` CPU threads: one interpreter a thread, up to MAX_LANES
    and ``cores``; past that, the threads shared out among them."""
    if threads < 1:
        raise ValueError(f"the recognizer needs at least one thread, not {threads}")
    lanes = max(1, min(threads, MAX_LANES, cores))
    return [threads // lanes + (lane < threads % lanes) for lane in range(lanes)]


def load_variant(folder: Path, manifest: RecognizerManifest, variant: RecognizerVariant, runtime: Runtime,
                 threads: int, one_lane: bool = False) -> SequenceRunner:
    """``variant``'s file checked against its sha256 and recorded shapes; ``NoUsableModel`` if it does not match.
    ``one_lane``: only one of the interpreters ``threads`` gives (the one with the most threads)."""
    layout = lanes_for(threads, default_threads())
    if one_lane:
        layout = [max(layout)]
    if not (folder / variant.file).is_file():
        raise NoUsableModel(f"recognizer {variant.name}: {folder / variant.file} is missing")
    if not file_matches(folder, variant):
        raise NoUsableModel(f"recognizer {variant.name}: {variant.file} does not match its manifest sha256")
    try:
        runner = SequenceRunner([runtime.interpreter(folder / variant.file, each) for each in layout],
                                manifest.input_height, tuple(manifest.widths))
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{folder / variant.file}: cannot load ({' '.join(str(exc).split())})") from exc
    for kind, recorded, actual in (("input", variant.input.shape, runner.specs()[0].shape),
                                   ("output", variant.output.shape, runner.specs()[1].shape)):
        if not shapes_fit(recorded, actual):
            raise NoUsableModel(f"recognizer {variant.name}: the manifest says {kind} {list(recorded)} for "
                                f"{variant.file} but the file has {list(actual)}")
    classes = runner.specs()[1].shape[-1]
    if classes != len(manifest.charset) + 1:
        raise NoUsableModel(f"recognizer {variant.name}: {variant.file} gives {classes} classes but the manifest's "
                            f"charset has {len(manifest.charset)} characters (plus the CTC blank)")
    return runner


def shapes_fit(recorded: list[int], actual: tuple[int, ...]) -> bool:
    """The recorded shape, -1 marking the dynamic dimensions, fits the shape the file has now."""
    return len(recorded) == len(actual) and all(r in (-1, a) for r, a in zip(recorded, actual, strict=True))


def measure_ms(runner: SequenceRunner, runs: int = MEASURE_RUNS) -> float:
    """Median time of one word of the middle width (a warm-up run first)."""
    pixels = np.full((1, runner.height, runner.widths[len(runner.widths) // 2]), 128, dtype=np.uint8)
    return median_ms(lambda: runner(pixels), runs)


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
    skipped = {v.name: "no agreement with PyTorch recorded" if v.agreement is None else
               f"reads unlike PyTorch on {1 - v.agreement.same_text:.1%} of its crops (at most "
               f"{1 - MIN_SAME_TEXT:.0%})" for v in cpu if not agrees(v)}
    for candidate in (v for v in cpu if agrees(v)):
        try:
            runner = load_variant(folder, manifest, candidate, runtime, threads, one_lane=True)  # as a lane reads
        except (NoUsableModel, ModelLoadError) as exc:
            skipped[candidate.name] = str(exc)
            log.error("skipping recognizer %s: %s", candidate.name, exc)
            continue
        try:
            measured[candidate.name] = measure_ms(runner)
        except Exception as exc:  # loads but fails to run (a kernel this runtime lacks): the next one may work
            skipped[candidate.name] = f"loads but fails to run ({type(exc).__name__}: {' '.join(str(exc).split())})"
            log.error("skipping recognizer %s: it %s", candidate.name, skipped[candidate.name])
        del runner  # one variant in memory at a time
    if not measured:
        # each reason, so that a runtime too old for the files reads as that, not as damaged files
        reasons = [f"{name}: {why}" for name, why in skipped.items()]
        if not cpu:  # and why the converter kept none
            reasons = ["it has no CPU variant", *(f"the converter left out {name}: {why}"
                                                  for name, why in manifest.rejected.items())]
        raise NoUsableModel(f"no usable recognizer variant in {folder} with {runtime.describe()} "
                            f"({'; '.join(reasons)})")
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


def no_recognizer(model: Path) -> str:
    """Why ``model`` gives no reader, to follow its path: no recognizer was converted, or ``model`` is one
    model folder of a bundle whose index names one (the detector runs from there, the reader does not)."""
    bundle = model.parent
    try:
        above = recognizer_folder(bundle) if bundle != model and (bundle / MANIFEST_NAME).is_file() else None
    except ManifestError:
        above = None
    if above is None:
        return NO_RECOGNIZER
    return (f" is one model folder of the bundle {bundle}; its text recognizer is used only when {bundle} itself is "
            "the model folder (model.dir, --model)")
