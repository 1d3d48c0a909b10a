"""``craft-edge frame``: setting up a camera (edge.service.frame_check does the work).

The check loads OpenCV, the models and the sources: imported only when the command runs, so that
``--help``, ``probe`` and the other commands never load them.
"""

from __future__ import annotations

import argparse

from edge.commands.common import Fatal
from edge.config.paths import absolute
from edge.config.settings import load_config


def execute(args: argparse.Namespace) -> int:
    from edge.service.frame_check import FrameError, check

    try:
        checked = check(load_config(args.config), args.out)
    except FrameError as exc:
        raise Fatal(str(exc), code=1) from exc
    print(f"{args.out}: {checked.description}")
    print(f"text size: {checked.verdict}")
    if checked.reading is not None:
        print(f"reading: {checked.reading}")
    print("tiling modes (model.tiling), on this frame and on the benchmark (200 ICDAR 2015 photos, int8, x86, "
          "docs/benchmarks.md):")
    for line in checked.modes:
        print(f"  {line}")
    return 0


def add_to(commands: argparse._SubParsersAction) -> None:
    frame = commands.add_parser(
        "frame", help="setting up a camera: one frame through the model, drawn, and whether its text is large enough")
    frame.add_argument("--config", type=absolute, required=True,
                       help="the daemon's config file: its source, model and detection settings")
    frame.add_argument("--out", type=absolute, required=True, metavar="PNG",
                       help="where to write the frame with its boxes drawn")
    frame.set_defaults(func=execute)
