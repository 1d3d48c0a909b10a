"""``craft-edge``: the device command (daemon, one-shot detection, hardware probe, bench, watch)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

from edge import __version__
from edge.config import DEFAULT_CONFIG_PATH, Config, ConfigError, check_device_id, load_config

PROG = "craft-edge"
EXIT_BAD_INPUT = 2

log = logging.getLogger(PROG)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


class Fatal(Exception):
    """Reported as one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def parse_broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"broker {text!r} is not HOST:PORT")
    return host, int(port)


def source_kind(source: str) -> str:
    """What ``--source`` names: picamera2, image files (file, folder, glob) or an OpenCV capture."""
    from edge.imageio import IMAGE_SUFFIXES

    if source == "picamera2":
        return "picamera2"
    path = Path(source)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES or any(c in source for c in "*?["):
        return "files"
    return "opencv"


# -- run ----------------------------------------------------------------------------------------
def config_loader(args: argparse.Namespace) -> Callable[[], Config]:
    """Reads the config file (or built-in defaults) and applies the command-line overrides."""

    def load() -> Config:
        path = args.config or DEFAULT_CONFIG_PATH
        if args.config is None and not path.exists():
            log.info("no %s; using built-in defaults", path)
            config = Config()
        else:
            config = load_config(path)
        if args.source is not None:
            config.source.kind = source_kind(args.source)
            if config.source.kind == "files":
                config.source.path = args.source
            elif config.source.kind == "opencv":
                config.source.device = args.source
        if args.loop:
            config.source.loop = True
        if args.model is not None:
            config.model.dir = str(args.model)
        if args.variant is not None:
            config.model.prefer = args.variant
        if args.broker is not None:
            config.mqtt.host, config.mqtt.port = args.broker
        if args.device_id is not None:
            check_device_id(args.device_id, "--device-id")
            config.device_id = args.device_id
        if config.source.kind == "files" and not config.source.path:
            raise ConfigError("source.path is required for a files source (or give --source)")
        return config

    return load


def cmd_run(args: argparse.Namespace) -> int:
    from edge.daemon import Daemon

    if args.max_frames is not None and args.max_frames < 1:
        raise Fatal("--max-frames must be at least 1")
    return Daemon(config_loader(args), max_frames=args.max_frames).run()


# -- detect -------------------------------------------------------------------------------------
def _selector(model_dir: Path, prefer: str | None, threads: int, state: Path):
    from edge.config import ModelConfig
    from edge.hardware import cpu_info
    from edge.manifest import load_manifest
    from edge.runtime import find_runtime
    from edge.selection import ModelSelector

    config = ModelConfig(dir=str(model_dir), prefer=prefer or "auto")
    return ModelSelector(model_dir, load_manifest(model_dir), config, find_runtime(), cpu_info(), threads, state)


def _runner(model_dir: Path, variant: str | None, threads: int, state: Path):
    from edge.hardware import find_tpus
    from edge.inference import ModelRunner
    from edge.runtime import default_threads

    runner = ModelRunner(_selector(model_dir, variant, threads or default_threads(), state), find_tpus,
                         retry_seconds=3600)
    runner.start()
    return runner


def cmd_detect(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from edge.detector import detect
    from edge.imageio import ImageError, read_rgb
    from edge.payload import box_json
    from edge.postprocess import Thresholds

    runner = _runner(args.model, args.variant, args.threads, args.state_dir)
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
        boxes = detect(runner, rgb, runner.input_hw, Thresholds())
        if args.json:
            print(json.dumps({"image": str(image), "boxes": [box_json(b) for b in boxes]}), flush=True)
        else:
            print(f"{image}: {len(boxes)} boxes ({runner.choice.variant} on {runner.choice.backend})")
        if args.draw:
            canvas = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            for box in boxes:
                cv2.polylines(canvas, [np.round(box.points).astype(np.int32)], True, (0, 255, 0), 2)
            cv2.imwrite(str(args.draw / f"{image.stem}_boxes.png"), canvas)
    return 1 if failures else 0


# -- eval ---------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from edge.detector import detect
    from edge.evaluation import (
        GroundTruthError,
        Summary,
        Word,
        evaluate_image,
        find_ground_truth,
        format_table,
        read_words,
    )
    from edge.imageio import ImageError, list_images, read_rgb
    from edge.manifest import load_manifest
    from edge.postprocess import Thresholds

    if (args.gt is None) == (args.against is None):
        raise Fatal("give --gt DIR (labelled images) or --against VARIANT (agreement between variants)")
    if args.detections is None and args.model is None:
        raise Fatal("give --model DIR, or --detections DIR with precomputed boxes")
    try:
        images = list_images(args.images)
    except ImageError as exc:
        raise Fatal(str(exc)) from exc
    if args.detections is not None:
        names = ["detections"]
    elif args.all:
        names = [v.name for v in load_manifest(args.model).variants if v.target == "cpu"]
    else:
        names = [args.variant or "fp32"]

    def boxes_of(name: str) -> Callable[[Path], list]:
        if name == "detections":
            def from_files(image: Path) -> list:
                found = find_ground_truth(args.detections, image.name)
                return [w.poly for w in read_words(found)] if found else []
            return from_files
        runner = _runner(args.model, name, args.threads, args.state_dir)
        return lambda image: [b.points for b in detect(runner, read_rgb(image), runner.input_hw, Thresholds())]

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
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


# -- probe and bench ----------------------------------------------------------------------------
def cmd_probe(args: argparse.Namespace) -> int:
    from edge.hardware import cpu_info, find_tpus
    from edge.runtime import find_runtime

    runtime = find_runtime()
    tpus = find_tpus()
    print(f"craft-edge {__version__}")
    print(f"cpu: {cpu_info().describe()}")
    print(f"runtime: {runtime.describe()}")
    print("edge tpu: " + (", ".join(f"{t.state} at {t.path}" for t in tpus) if tpus else "none found"))
    if args.model is None:
        return 0
    runner = _runner(args.model, args.variant, args.threads, args.state_dir)
    print(f"tpu state: {runner.tpu_state}")
    print(f"would use: {runner.choice.variant} on {runner.choice.backend}, because {runner.choice.reason}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from edge.runtime import default_threads
    from edge.selection import measure_ms

    selector = _selector(args.model, None, args.threads or default_threads(), args.state_dir)
    print(f"{'variant':<10} {'median ms':>10}")
    for variant in selector.manifest.variants:
        if variant.target != "cpu" or not selector.verified(variant):
            continue
        model = selector.load_variant(variant)
        print(f"{variant.name:<10} {measure_ms(model, runs=args.runs):>10.1f}", flush=True)
    return 0


# -- watch --------------------------------------------------------------------------------------
def watch_line(message: dict) -> str:
    """One line for one detections message: the reference for people writing a subscriber."""
    frame, model, boxes = message["frame"], message["model"], message["boxes"]
    return (f"{message['device_id']} #{frame['seq']} {frame['timestamp']} {message['source']['name']} "
            f"{frame['width']}x{frame['height']} {model['variant']}/{model['backend']} "
            f"{message['timing_ms']['total']:.0f} ms: {len(boxes)} boxes")


def pretty_json(message: dict) -> str:
    """Indented JSON with each [x, y] point on one line."""
    return re.sub(r"\[\s+(-?[\d.]+),\s+(-?[\d.]+)\s+\]", r"[\1, \2]", json.dumps(message, indent=2))


def cmd_watch(args: argparse.Namespace) -> int:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    topic = f"craft-edge/{args.device_id or '+'}/detections"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, properties: object) -> None:
        client.subscribe(topic, qos=1)
        print(f"watching {topic} on {args.broker[0]}:{args.broker[1]}", file=sys.stderr, flush=True)

    received = [0]

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(message.payload)
            print(pretty_json(payload) if args.json else watch_line(payload), flush=True)
        except (ValueError, KeyError, TypeError) as exc:
            print(f"{PROG}: ignored a malformed message on {message.topic}: {exc}", file=sys.stderr, flush=True)
            return
        received[0] += 1
        if args.count and received[0] >= args.count:
            client.disconnect()

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(*args.broker)
    except OSError as exc:
        raise Fatal(f"cannot connect to {args.broker[0]}:{args.broker[1]} ({exc})", code=1) from exc
    with contextlib.suppress(KeyboardInterrupt):
        client.loop_forever()
    return 0


# -- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="CRAFT text detection on a Raspberry Pi / Coral Edge TPU.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = commands.add_parser("run", help="the daemon: camera frames -> CRAFT -> boxes over MQTT")
    run.add_argument("--config", type=Path,
                     help=f"config file (default: {DEFAULT_CONFIG_PATH}, else built-in defaults)")
    run.add_argument("--source", help="override the source: image file/folder/glob, camera index, /dev/videoN, URL, "
                                      "video file, or 'picamera2'")
    run.add_argument("--loop", action="store_true", help="loop a file source")
    run.add_argument("--model", type=Path, help="model folder from convert-for-device (overrides model.dir)")
    run.add_argument("--variant", help="force a variant (overrides model.prefer)")
    run.add_argument("--broker", type=parse_broker, metavar="HOST:PORT", help="MQTT broker (overrides mqtt.host/port)")
    run.add_argument("--device-id", help="overrides device_id")
    run.add_argument("--max-frames", type=int, metavar="N", help="exit 0 once N frames are processed and acknowledged")
    run.set_defaults(func=cmd_run)

    def model_options(sub: argparse.ArgumentParser, required: bool) -> None:
        sub.add_argument("--model", type=Path, required=required, help="model folder from convert-for-device")
        sub.add_argument("--threads", type=int, default=0, help="CPU threads (default: one per core)")
        sub.add_argument("--state-dir", type=Path, default=Path.home() / ".cache" / "craft-edge",
                         help="where the model-choice cache lives")

    detect = commands.add_parser("detect", help="one-shot: boxes for image files, as text or JSON lines")
    detect.add_argument("images", type=Path, nargs="+")
    model_options(detect, required=True)
    detect.add_argument("--variant", help="force a variant (default: best for this hardware)")
    detect.add_argument("--json", action="store_true", help='JSON lines: {"image", "boxes": [...]} in source pixels')
    detect.add_argument("--draw", type=Path, metavar="OUT_DIR", help="write each image with its boxes drawn")
    detect.set_defaults(func=cmd_detect)

    evaluate = commands.add_parser(
        "eval", help="precision/recall/H-mean on labelled images (ICDAR 2015 protocol), or agreement between variants")
    model_options(evaluate, required=False)
    which = evaluate.add_mutually_exclusive_group()
    which.add_argument("--variant", help="the variant to evaluate (default: fp32)")
    which.add_argument("--all", action="store_true", help="every CPU variant in the model folder")
    which.add_argument("--detections", type=Path, metavar="DIR",
                       help="evaluate precomputed boxes (NAME.json per image, ground-truth JSON format) instead")
    evaluate.add_argument("--images", type=Path, required=True, help="folder of images")
    evaluate.add_argument("--gt", type=Path, help="ground truth: NAME.json, NAME.txt or gt_NAME.txt per image")
    evaluate.add_argument("--against", metavar="VARIANT",
                          help="agreement mode: treat this variant's boxes as the truth (unlabelled images)")
    evaluate.add_argument("--json", type=Path, metavar="OUT", help="write the results, per image too, as JSON")
    evaluate.set_defaults(func=cmd_eval)

    probe = commands.add_parser("probe", help="what hardware and runtime are here, which variant would run and why")
    model_options(probe, required=False)
    probe.add_argument("--variant", help="as model.prefer")
    probe.set_defaults(func=cmd_probe)

    bench = commands.add_parser("bench", help="latency of each CPU variant on this device")
    model_options(bench, required=True)
    bench.add_argument("--runs", type=int, default=10)
    bench.set_defaults(func=cmd_bench)

    watch = commands.add_parser("watch", help="subscribe and print one line per detections message")
    watch.add_argument("--broker", type=parse_broker, required=True, metavar="HOST:PORT")
    watch.add_argument("--device-id", help="only this device (default: all)")
    watch.add_argument("--count", type=int, default=0, metavar="N", help="exit after N messages")
    watch.add_argument("--json", action="store_true", help="print each message as indented JSON")
    watch.set_defaults(func=cmd_watch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    from edge.manifest import ManifestError
    from edge.runtime import ModelLoadError, RuntimeMissing
    from edge.selection import NoUsableModel
    from edge.statelock import StateDirBusy

    try:
        return args.func(args)
    except Fatal as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except StateDirBusy as exc:  # not a config error: exit 1, so systemd retries once the other one is gone
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, ManifestError, NoUsableModel, ModelLoadError, RuntimeMissing) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
