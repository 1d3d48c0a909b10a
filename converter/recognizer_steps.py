"""``convert-for-device``'s recognizer step: the word crops it is checked on, a progress bar, the result.

Light at import (``--help`` loads it): the toolchain is imported when the step runs.
"""

from __future__ import annotations

import argparse
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

# the registry's CPU variants the recognizer converts to (converter.recognizer says why not int8)
from edge.config.paths import make_folder
from edge.models.variants import RECOGNIZER_VARIANTS as RECOGNIZER_VARIANTS

if TYPE_CHECKING:
    from edge.models.recognizer_manifest import RecognizerManifest


class RecognizerStepError(RuntimeError):
    """The recognizer could not be converted or checked; one line for the user."""


@dataclass(frozen=True)
class RecognizerResult:
    folder: Path
    manifest: RecognizerManifest
    seconds: float

    def summary(self) -> str:
        lines = [f"recognizer -> {self.folder}/manifest.json ({self.seconds:.0f} s; same text as PyTorch on "
                 f"{len(self.manifest.validation_crops)} word crops)"]
        for variant in self.manifest.variants:
            same = variant.agreement.same_text if variant.agreement else float("nan")
            lines.append(f"  {variant.name:<8} {variant.bytes / 1e6:6.1f} MB  same text {same:.1%}")
        lines += [f"  {name:<8} left out: {why}" for name, why in self.manifest.rejected.items()]
        return "\n".join(lines)


@dataclass(frozen=True)
class RecognizerInputs:
    weights: Path
    words: list  # converter.word_crops.Word: the crops each variant is checked on


def recognizer_inputs(args: argparse.Namespace) -> RecognizerInputs:
    """The recognizer's weights (loaded strictly) and the labelled words it is checked on, found before
    minutes of detector conversion: a missing file is one line at once, not after the detector."""
    from converter.model import CheckpointError
    from converter.recognizer_model import default_recognizer_weights, load_recognizer
    from converter.word_crops import labelled_words
    from edge.sources.imageio import ImageError

    try:
        weights = default_recognizer_weights()
        load_recognizer(weights)
        words = [*labelled_words(args.validation), *labelled_words(args.calibration)]
    except CheckpointError as exc:
        raise RecognizerStepError(str(exc)) from exc
    except (ImageError, ValueError, OSError) as exc:  # a ground-truth file that is not JSON, an image missing
        raise RecognizerStepError(f"recognizer check words: {exc}") from exc
    if not words:
        raise RecognizerStepError(f"no labelled words (NAME.json beside NAME.jpg) in {args.validation} or "
                                  f"{args.calibration} to check the recognizer on; use --no-recognizer")
    return RecognizerInputs(weights, words)


def convert_recognizer(args: argparse.Namespace, inputs: RecognizerInputs, log: Path,
                       terminal: TextIO) -> RecognizerResult:
    """The recognizer into ``args.out/recognizer``, checked on ``inputs.words`` (the ground-truth words of the
    validation and calibration folders), with a progress bar on ``terminal``; the toolchain's output goes to
    ``log``."""
    from tqdm import tqdm

    from converter.model import CheckpointError
    from converter.recognizer import FOLDER, RecognizerConverter, RecognizerError, RecognizerRequest, step_count

    started = time.monotonic()
    folder = args.out / FOLDER
    make_folder(folder, "the recognizer's folder", RecognizerStepError)
    variants = args.recognizer_variants
    with tqdm(total=step_count(variants), unit="step", file=terminal, dynamic_ncols=True) as bar:
        def progress(step: str) -> None:
            bar.set_description(step)
            bar.update(1)

        try:
            request = RecognizerRequest(weights=inputs.weights, variants=variants, validation=inputs.words,
                                        threads=args.threads)
            manifest = RecognizerConverter(request, folder, progress).run()
        except (CheckpointError, RecognizerError) as exc:
            raise RecognizerStepError(str(exc)) from exc
        except Exception as exc:  # a toolchain failure: the traceback goes to the log, one line to the user
            traceback.print_exc()
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise RecognizerStepError(f"recognizer: {type(exc).__name__}: {first_line} (details in {log})") from exc
    return RecognizerResult(folder, manifest, time.monotonic() - started)
