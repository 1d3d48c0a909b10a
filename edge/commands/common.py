"""What the ``craft-edge`` subcommands share: argument types, shared options, one-line errors, exit codes.

Each subcommand is one module in this package with ``add_to(commands)`` (its options) and
``execute(args) -> int``; ``edge.commands.main`` lists them and turns the errors below into one line.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.config.paths import absolute, write_replacing
from edge.detection.tiling import CONTEXT, TILING_MODES

if TYPE_CHECKING:
    from edge.detection.detector import Detector
    from edge.models.inference import Runners

PROG = "craft-edge"
EXIT_BAD_INPUT = 2
BROKER_ANSWER_SECONDS = 5.0  # a broker answers CONNECT at once; silence means it is something else

class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


class Fatal(Exception):
    """Reported as one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


MAX_THREADS = 64


def check_writable(path: Path, option: str) -> None:
    """Fatal before long work when ``path`` could not be written at its end: no folder, or not ours to write."""
    if not path.parent.is_dir():
        raise Fatal(f"{option} {path}: the folder {path.parent} does not exist")
    # the folder too: the file is written beside itself and renamed over (write_output)
    if path.is_dir() or not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise Fatal(f"{option} {path}: cannot be written")


def write_output(path: Path, text: str, option: str) -> None:
    """``text`` into ``path``, or one line why not (a full disk)."""
    try:
        write_replacing(path, text.encode())  # a failed write leaves the last results whole
    except OSError as exc:
        raise Fatal(f"{option} {path}: cannot write ({exc.strerror or exc})") from None


def thread_count(text: str) -> int:
    """``--threads``: 0 (one per core) up to MAX_THREADS."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 (one per core) to {MAX_THREADS}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number above 0")
    return value


def parse_broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"broker {text!r} is not HOST:PORT")
    return host, int(port)


# -- options and helpers more than one command uses ---------------------------------------------
def model_options(sub: argparse.ArgumentParser, required: bool) -> None:
    sub.add_argument("--model", type=absolute, required=required, help="model folder from convert-for-device")
    sub.add_argument("--threads", type=thread_count, default=0, help="CPU threads (default 0: one per core)")
    sub.add_argument("--state-dir", type=absolute, default=Path.home() / ".cache" / "craft-edge",
                     help="where the model-choice cache lives")

def tiling_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--tiling", choices=TILING_MODES, default="off",
                     help="off: letterbox each image into the (coarse) model's input; full: run it at "
                          "--scale times its size in overlapping tiles of the tile model (small text); "
                          "adaptive: one letterboxed pass, then only the tiles where it saw text")
    sub.add_argument("--scale", type=positive_float, default=1.0, metavar="S",
                     help="with --tiling full/adaptive: resize images by S first (1.0 = native; default 1.0)")
    sub.add_argument("--context", type=int, default=CONTEXT, metavar="PX",
                     help=f"with --tiling full/adaptive: pixels of picture around every tile's core, at "
                          f"most half the tile's shorter side less 16 (default {CONTEXT}; with a 512x512 tile "
                          f"model, 128 made fp32 full agree with one native pass at H >= 0.99 on every test "
                          f"photo, int8 not: README)")


def load_runners(model_dir: Path, variant: str | None, threads: int, state: Path) -> Runners:
    from edge.config.settings import ModelConfig
    from edge.models.inference import build_runners

    return build_runners(ModelConfig(dir=str(model_dir), prefer=variant or "auto", num_threads=threads), state)


def build_detector(args: argparse.Namespace, runners: Runners) -> Detector:
    """The Detector ``--tiling``, ``--scale`` and ``--context`` ask for (detect, eval)."""
    from edge.detection.detector import Detector

    try:
        return Detector(runners.coarse, tiling_mode=args.tiling, scale=args.scale, tile_model=runners.tile,
                        context=args.context)
    except ValueError as exc:  # e.g. a context too wide for the tile model
        raise Fatal(f"--tiling {args.tiling} --context {args.context}: {exc}") from exc


def connect_to_broker(client: Any, broker: tuple[str, int]) -> None:
    """``edge.messaging.connection.connect_and_wait``, its failures as one line (exit 1)."""
    from edge.messaging.connection import BrokerUnreachable, connect_and_wait

    try:
        connect_and_wait(client, broker, BROKER_ANSWER_SECONDS)
    except BrokerUnreachable as exc:
        raise Fatal(str(exc), code=1) from exc
