"""``compare-with-pytorch``: how closely converted variants reproduce PyTorch on your own images.

    compare-with-pytorch --model models/480x640 --images DIR [--variant V] [--json OUT]

The device command ``craft-edge eval --against`` compares variants with each other; this one (on
the workstation, with the converter extra) takes the PyTorch model's boxes as the truth, on the
same letterboxed input, with the ICDAR 2015 matching (IoU >= 0.5, one to one).
"""

from __future__ import annotations

import argparse
import json
import sys

from converter.calibration import FramesError, model_inputs, read_frames
from converter.model import CheckpointError, default_weights_path, load_pixel_model
from converter.onnx_export import torch_scores
from edge.config.paths import absolute
from edge.detection.evaluation import Summary, Word, evaluate_image, format_table
from edge.detection.postprocess import Thresholds, detect_boxes
from edge.models.manifest import ManifestError, load_manifest
from edge.models.runtime import find_runtime, load_model

PROG = "compare-with-pytorch"


def boxes(scores) -> list:
    return [b.points for b in detect_boxes(scores[..., 0], scores[..., 1], Thresholds())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=absolute, required=True, help="model folder from convert-for-device")
    parser.add_argument("--images", type=absolute, required=True, help="folder of images")
    parser.add_argument("--variant", help="one variant (default: every CPU variant)")
    parser.add_argument("--weights", type=absolute, help="the checkpoint (default: the packaged craft_mlt_25k.pth)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=absolute, metavar="OUT", help="write the results, per image too, as JSON")
    args = parser.parse_args(argv)
    try:
        manifest = load_manifest(args.model)
        frames = read_frames(args.images, "images")
        pytorch = load_pixel_model(args.weights or default_weights_path())
    except (ManifestError, FramesError, CheckpointError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    names = [args.variant] if args.variant else [v.name for v in manifest.variants if v.target == "cpu"]
    inputs = model_inputs(frames, tuple(manifest.input_size))
    truth = [[Word(poly, False) for poly in boxes(torch_scores(pytorch, pixels))] for pixels in inputs]
    runtime = find_runtime()
    results = {}
    for name in names:
        try:
            model = load_model(args.model / manifest.variant(name).file, runtime, args.threads)
        except ManifestError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 2
        results[name] = Summary([evaluate_image(frame.name, words, boxes(model(pixels)))
                                 for frame, words, pixels in zip(frames, truth, inputs, strict=True)])
    print(format_table("agreement with PyTorch fp32", results))
    if args.json:
        payload = {"mode": "agreement", "against": "pytorch-fp32",
                   "variants": {name: summary.to_dict() for name, summary in results.items()}}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
