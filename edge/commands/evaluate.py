"""``craft-edge eval``: precision, recall and H-mean on labelled images (ICDAR 2015 protocol), or the
agreement between two variants."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from edge.commands.common import (
    Fatal,
    build_detector,
    check_writable,
    load_runners,
    model_options,
    tiling_options,
    write_output,
)
from edge.config.paths import absolute
from edge.models.variants import RECOGNIZER_VARIANTS


def execute(args: argparse.Namespace) -> int:
    from edge.detection.benchmark import default_set
    from edge.detection.evaluation import (
        GroundTruthError,
        Summary,
        Word,
        evaluate_image,
        find_ground_truth,
        format_table,
        read_words,
    )
    from edge.models.manifest import load_manifest, model_folders
    from edge.sources.imageio import IMAGE_SUFFIXES, ImageError, list_images, read_rgb

    if args.json:
        check_writable(args.json, "--json")
    if args.images is None and args.gt is None:  # the benchmark, or the project's own labelled frames
        labelled = default_set(Path.cwd())
        if labelled is None:
            raise Fatal("give --images DIR (and --gt DIR): ../shared/eval-ic15train is not beside this folder")
        print(f"on {labelled.name} ({labelled.images})")
        args.images, args.gt = labelled.images, labelled.truth if args.against is None else None
    if args.images is None:
        raise Fatal("give --images DIR with --gt")
    if (args.gt is None) == (args.against is None):
        raise Fatal("give --gt DIR (labelled images) or --against VARIANT (agreement between variants)")
    if args.detections is None and args.model is None:
        raise Fatal("give --model DIR, or --detections DIR with precomputed boxes")
    try:
        images = list_images(args.images)
    except ImageError as exc:
        raise Fatal(str(exc)) from exc
    if not images:  # a mistyped folder scored 0 images and exited 0
        raise Fatal(f"--images {args.images}: no images in it ({', '.join(IMAGE_SUFFIXES)})")
    for option, folder in (("--gt", args.gt), ("--detections", args.detections)):
        if folder is not None and not folder.is_dir():
            raise Fatal(f"{option} {folder}: not a folder")
    if args.gt is not None and not any(find_ground_truth(args.gt, image.name) for image in images):
        raise Fatal(f"--gt {args.gt}: no ground truth for any of the {len(images)} images of {args.images} "
                    "(NAME.json, NAME.txt or gt_NAME.txt)")
    if args.detections is not None:
        names = ["detections"]
    elif args.all:
        names = [v.name for v in load_manifest(model_folders(args.model).coarse).variants if v.target == "cpu"]
    else:
        names = [args.variant or "fp32"]

    if args.read:
        from edge.commands import evaluate_read

        if args.gt is None:
            raise Fatal("--read needs --gt DIR (labelled images with each word's text)")
        return evaluate_read.execute(args, images, names, lambda name: build_detector(
            args, load_runners(args.model, name, args.threads, args.state_dir)))

    def boxes_of(name: str) -> Callable[[Path], list]:
        if name == "detections":
            def from_files(image: Path) -> list:
                found = find_ground_truth(args.detections, image.name)
                return [w.poly for w in read_words(found)] if found else []
            return from_files
        detector = build_detector(args, load_runners(args.model, name, args.threads, args.state_dir))
        return lambda image: [b.points for b in detector.boxes(read_rgb(image))]

    reference = boxes_of(args.against) if args.against else None
    results, skipped = {}, 0
    for name in names:
        predict = boxes_of(name)
        per_image = []
        for image in images:
            try:
                if reference is not None:
                    words = [Word(poly, False) for poly in reference(image)]
                else:
                    found = find_ground_truth(args.gt, image.name)
                    if found is None:
                        skipped += 1
                        continue
                    words = read_words(found)
                per_image.append(evaluate_image(image.name, words, predict(image)))
            except (ImageError, GroundTruthError) as exc:
                raise Fatal(str(exc)) from exc
        results[name] = Summary(per_image)
    label = f"agreement with {args.against}" if args.against else "ICDAR 2015 protocol, IoU >= 0.5"
    print(format_table(label, results))
    if skipped:
        print(f"({skipped // len(names)} images without ground truth skipped)")
    if args.json:
        report = {"mode": "agreement" if args.against else "labelled", "against": args.against,
                  "variants": {name: summary.to_dict() for name, summary in results.items()}}
        write_output(args.json, json.dumps(report, indent=2) + "\n", "--json")
    return 0


def add_to(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "eval", help="precision/recall/H-mean on labelled images (ICDAR 2015 protocol), or agreement between variants")
    model_options(evaluate, required=False)
    which = evaluate.add_mutually_exclusive_group()
    which.add_argument("--variant", help="the variant to evaluate (default: fp32)")
    which.add_argument("--all", action="store_true", help="every CPU variant in the model folder")
    which.add_argument("--detections", type=absolute, metavar="DIR",
                       help="evaluate precomputed boxes (NAME.json per image, ground-truth JSON format; with --read, "
                            "each word's 'text' is its reading) instead")
    evaluate.add_argument("--images", type=absolute,
                          help="folder of images (default: the benchmark ../shared/eval-ic15train, 200 ICDAR 2015 "
                               "photos, when it is beside this folder or the checkout; else data/smalltext)")
    evaluate.add_argument("--gt", type=absolute, help="ground truth: NAME.json, NAME.txt or gt_NAME.txt per image")
    evaluate.add_argument("--against", metavar="VARIANT",
                          help="agreement mode: treat this variant's boxes as the truth (unlabelled images)")
    evaluate.add_argument("--json", type=absolute, metavar="OUT", help="write the results, per image too, as JSON")
    evaluate.add_argument(
        "--read", action="store_true",
        help="score reading instead of finding: word accuracy on the ground-truth crops (needs --model with a "
             "recognizer) and ICDAR 2015 end to end (a box counts when it matches a cared word at IoU >= 0.5 and "
             "reads its text; words labelled with under 3 characters don't care). Texts compare after removing "
             "surrounding whitespace, then leading and trailing ASCII punctuation "
             "(!\"#$%%&'()*+,-./:;<=>?@[\\]^_`{|}~), then lower-casing. With --detections DIR, the boxes "
             "and their 'text' come from NAME.json files")
    evaluate.add_argument("--read-variant", choices=RECOGNIZER_VARIANTS,
                          help="with --read: the recognizer variant (default: automatic, as the daemon chooses)")
    tiling_options(evaluate)
    evaluate.set_defaults(func=execute)
