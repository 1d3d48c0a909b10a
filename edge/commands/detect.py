"""``craft-edge detect``: boxes for image files, as text or JSON lines, optionally drawn."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge.commands.common import PROG, build_detector, load_runners, model_options, tiling_options
from edge.config.paths import absolute


def execute(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from edge.messaging.payload import box_json
    from edge.sources.imageio import ImageError, read_rgb

    runners = load_runners(args.model, args.variant, args.threads, args.state_dir)
    runner = runners.coarse
    detector = build_detector(args, runners)
    if args.draw:
        args.draw.mkdir(parents=True, exist_ok=True)
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
        if args.json:
            print(json.dumps({"image": str(image), "boxes": [box_json(b) for b in boxes],
                              "tiles_run": detection.tiles_run,
                              "timing_ms": {"inference": round(detection.timing.inference, 2),
                                            "total": round(detection.timing.total, 2)}}), flush=True)
        else:
            print(f"{image}: {len(boxes)} boxes ({runner.choice.variant} on {runner.choice.backend}, "
                  f"{detection.tiles_run} inference{'s' if detection.tiles_run > 1 else ''})")
        if args.draw:
            canvas = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            for box in boxes:
                cv2.polylines(canvas, [np.round(box.points).astype(np.int32)], True, (0, 255, 0), 2)
            cv2.imwrite(str(args.draw / f"{image.stem}_boxes.png"), canvas)
    return 1 if failures else 0


def add_to(commands: argparse._SubParsersAction) -> None:
    detect = commands.add_parser("detect", help="one-shot: boxes for image files, as text or JSON lines")
    detect.add_argument("images", type=Path, nargs="+")  # read here and echoed as given
    model_options(detect, required=True)
    detect.add_argument("--variant", help="force a variant (default: best for this hardware)")
    detect.add_argument("--json", action="store_true", help='JSON lines: {"image", "boxes": [...]} in source pixels')
    detect.add_argument("--draw", type=absolute, metavar="OUT_DIR", help="write each image with its boxes drawn")
    tiling_options(detect)
    detect.set_defaults(func=execute)
