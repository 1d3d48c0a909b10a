"""``craft-edge detect``: boxes for image files, as text or JSON lines, optionally read and drawn."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from edge.commands.common import PROG, Fatal, build_detector, load_runners, model_options, tiling_options
from edge.config.paths import absolute, write_replacing

if TYPE_CHECKING:
    import numpy as np

    from edge.detection.postprocess import Box
    from edge.recognition.reader import Reader
    from edge.recognition.words import WordReading


def read_words(reader: Reader, rgb: np.ndarray, boxes: list[Box]) -> list[WordReading]:
    """Every box cut out of ``rgb`` and read in one batch, whatever its score (no min_score or patterns here)."""
    from edge.recognition import spotting
    from edge.recognition.words import WordReading

    return [WordReading(r.text, round(r.score, 3)) for r in spotting.read_boxes(reader, rgb, [b.points for b in boxes])]


def load_reader_or_fail(args: argparse.Namespace) -> Reader:
    from edge.models.recognizer import load_reader, no_recognizer
    from edge.models.runtime import default_threads

    reader = load_reader(args.model, None, args.threads or default_threads())
    if reader is None:
        raise Fatal(f"--read: {args.model}{no_recognizer(args.model)}")
    return reader


def execute(args: argparse.Namespace) -> int:
    import cv2

    from edge.messaging.payload import box_json
    from edge.messaging.snapshot import annotate
    from edge.recognition.regions import joined
    from edge.sources.imageio import ImageError, read_rgb

    if args.draw:  # before any model loads: a folder that cannot be written fails at once
        try:
            args.draw.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Fatal(f"--draw {args.draw}: cannot make the folder ({exc.strerror or exc})") from None
        if not os.access(args.draw, os.W_OK):
            raise Fatal(f"--draw {args.draw}: cannot be written")
    reader = load_reader_or_fail(args) if args.read else None  # before the detector: a missing one fails at once
    runners = load_runners(args.model, args.variant, args.threads, args.state_dir)
    runner = runners.coarse
    detector = build_detector(args, runners)
    drawn: set[str] = set()
    failures = 0
    for image in args.images:
        try:
            rgb = read_rgb(image)
        except ImageError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            failures += 1
            continue
        detection = detector.detect(rgb)
        boxes = detection.boxes
        words = read_words(reader, rgb, boxes) if reader else None
        if args.json:
            listed = [box_json(b, w) for b, w in zip(boxes, words, strict=True)] if words is not None \
                else [box_json(b) for b in boxes]
            print(json.dumps({"image": str(image), "boxes": listed, "tiles_run": detection.tiles_run,
                              "timing_ms": {"inference": round(detection.timing.inference, 2),
                                            "total": round(detection.timing.total, 2)}}), flush=True)
        else:
            print(f"{image}: {len(boxes)} boxes ({runner.choice.variant} on {runner.choice.backend}, "
                  f"{detection.tiles_run} inference{'s' if detection.tiles_run > 1 else ''})")
            if words is not None:
                print(f"  {joined([b.points for b in boxes], words)[0]}")
        if args.draw:
            texts = [w.text for w in words] if words is not None else ()
            name = drawn_name(image, drawn)
            try:  # not cv2.imwrite: it reports a full disk only as a warning and a False nobody reads
                write_replacing(args.draw / name, cv2.imencode(".png", annotate(rgb, boxes, texts=texts))[1].tobytes())
            except OSError as exc:
                print(f"{PROG}: --draw {args.draw / name}: cannot write ({exc.strerror or exc})", file=sys.stderr)
                failures += 1
    return 1 if failures else 0


def drawn_name(image: Path, taken: set[str]) -> str:
    """``NAME_boxes.png``, numbered when another image of this run had the same stem (a.jpg and b/a.png)."""
    name, number = f"{image.stem}_boxes.png", 1
    while name in taken:
        number += 1
        name = f"{image.stem}_{number}_boxes.png"
    taken.add(name)
    return name


def add_to(commands: argparse._SubParsersAction) -> None:
    summary = "one-shot: boxes for image files (and their text), as text or JSON lines"
    detect = commands.add_parser("detect", help=summary, description=f"{summary}. An image that cannot be read is "
                                 "one line on stderr, the others go on, and the exit is 1.")
    detect.add_argument("images", type=Path, nargs="+", metavar="IMAGE",  # read here and echoed as given
                        help="image files (.jpg, .png, ...), each detected whole")
    model_options(detect, required=True)
    detect.add_argument("--variant", help="force the detector's variant (fp32, fp16, dynamic, int8, int8-tpu; "
                                          "default: the best for this hardware); --read picks the recognizer's")
    detect.add_argument("--read", action="store_true",
                        help="read each box with the bundle's recognizer (its automatic variant): --json boxes gain "
                             "text and text_score; otherwise the words are printed in reading order")
    detect.add_argument("--json", action="store_true", help='JSON lines: {"image", "boxes": [...]} in source pixels')
    detect.add_argument("--draw", type=absolute, metavar="OUT_DIR",
                        help="write each image with its boxes drawn (and, with --read, their words)")
    tiling_options(detect)
    detect.set_defaults(func=execute)
