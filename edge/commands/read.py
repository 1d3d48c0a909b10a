"""``craft-edge read``: the text of word images (each image one word crop; no detection)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.commands.common import PROG, Fatal, thread_count
from edge.config.paths import absolute
from edge.models.variants import RECOGNIZER_VARIANTS

READ_BATCH = 32  # images decoded and read at a time


def execute(args: argparse.Namespace) -> int:
    import cv2

    from edge.config.reading import RecognitionConfig, check_patterns
    from edge.models.recognizer import load_reader, no_recognizer
    from edge.models.runtime import default_threads
    from edge.recognition.words import FrameReader
    from edge.sources.imageio import ImageError, read_rgb

    try:
        check_patterns(args.pattern, "--pattern")
    except ValueError as exc:
        raise Fatal(str(exc)) from None
    reader = load_reader(args.model, args.variant, args.threads or default_threads())
    if reader is None:
        raise Fatal(f"{args.model}{no_recognizer(args.model)}")
    rules = FrameReader(reader, RecognitionConfig(min_score=0.0, patterns=args.pattern))
    width = max(len(str(image)) for image in args.images)
    header = not args.json
    failures = 0
    # a batch at a time, printed as it is read: every decoded photo of `read photos/*.jpg` held at once
    # could take a Pi's memory before the first line
    for start in range(0, len(args.images), READ_BATCH):
        crops, names = [], []
        for image in args.images[start:start + READ_BATCH]:
            try:
                crops.append(cv2.cvtColor(read_rgb(image), cv2.COLOR_RGB2GRAY))
                names.append(image)
            except ImageError as exc:
                print(f"{PROG}: {exc}", file=sys.stderr)
                failures += 1
        for name, reading in zip(names, reader.read(crops), strict=True):
            rules.new_frame()  # each image its own steering budget
            reading = rules.steered(reading)
            text = reading.text if rules.fits(reading.text) else None  # no likely reading matches --pattern
            if args.json:
                print(json.dumps({"image": str(name), "text": text, "score": round(reading.score, 4)}), flush=True)
                continue
            if header:
                print(f"{'image':<{width}}  {'score':>5}  text ({reader.variant})")
                header = False
            shown = "(no reading matches --pattern)" if text is None else text
            print(f"{name!s:<{width}}  {reading.score:5.2f}  {shown}", flush=True)
    return 1 if failures else 0  # as detect and convert-for-device: 2 is for a bad argument


def add_to(commands: argparse._SubParsersAction) -> None:
    read = commands.add_parser(
        "read", help="the text of word images (each image one word, already cut out; no detection)",
        description="Read the text of word images with the bundle's recognizer: each image is one word crop "
                    "(any size; it is scaled to the recognizer's height). Prints image, score (0..1) and text.")
    read.add_argument("images", type=Path, nargs="+", metavar="IMAGE",
                      help="word images (.jpg, .png, ...), each one word already cut out")
    read.add_argument("--model", type=absolute, required=True,
                      help="convert-for-device's output folder (a bundle with a recognizer) or its recognizer folder")
    read.add_argument("--variant", choices=RECOGNIZER_VARIANTS,
                      help="force a recognizer variant (default: the fastest here that reads like PyTorch on its "
                           "manifest's crops)")
    read.add_argument("--threads", type=thread_count, default=0, help="CPU threads (default 0: one per core)")
    read.add_argument("--pattern", action="append", default=[], metavar="REGEX",
                      help="a regular expression the reading must match (re.search; repeat for several, any one "
                           "may match): each image is read as the likeliest reading the recognizer had that "
                           "matches, '19:40' for a '19.40' when the colon was its second choice; none: text null. "
                           "As recognition.patterns does in config.yaml; try a display's patterns here")
    read.add_argument("--json", action="store_true", help='JSON lines: {"image", "text", "score"}')
    read.set_defaults(func=execute)
