"""``craft-edge``: the device command (daemon, one-shot detection, hardware probe, bench, watch)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge import __version__
from edge.config import DEFAULT_CONFIG_PATH, Config, ConfigError, MqttConfig, check_device_id, load_config
from edge.paths import absolute, is_url, video_file
from edge.tiling import CONTEXT, TILING_MODES

if TYPE_CHECKING:
    from edge.detector import Detector
    from edge.inference import Runners

PROG = "craft-edge"
EXIT_BAD_INPUT = 2
BROKER_ANSWER_SECONDS = 5.0  # a broker answers CONNECT at once; silence means it is something else

log = logging.getLogger(PROG)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


class Fatal(Exception):
    """Reported as one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


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


def source_kind(source: str) -> str:
    """What ``--source`` names: picamera2, image files (file, folder, glob) or an OpenCV capture."""
    from edge.imageio import IMAGE_SUFFIXES

    if source == "picamera2":
        return "picamera2"
    if is_url(source):
        return "opencv"  # rtsp://cam/live?channel=1: a query string is no glob
    path = Path(source)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES or any(c in source for c in "*?["):
        return "files"
    return "opencv"


def source_location(source: str, kind: str) -> str:
    """``--source`` with a relative file, folder, glob or video file made absolute; camera indices,
    devices and URLs as given."""
    if kind == "files":
        return str(absolute(source))
    video = video_file(source) if kind == "opencv" else None
    return str(video) if video is not None else source


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
            location = source_location(args.source, config.source.kind)
            if config.source.kind == "files":
                config.source.path = location
            elif config.source.kind == "opencv":
                config.source.device = location
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
def _runners(model_dir: Path, variant: str | None, threads: int, state: Path) -> Runners:
    from edge.config import ModelConfig
    from edge.inference import build_runners

    return build_runners(ModelConfig(dir=str(model_dir), prefer=variant or "auto", num_threads=threads), state)


def _detector(args: argparse.Namespace, runners: Runners) -> Detector:
    """The Detector ``--tiling``, ``--scale`` and ``--context`` ask for (detect, eval)."""
    from edge.detector import Detector

    try:
        return Detector(runners.coarse, tiling_mode=args.tiling, scale=args.scale, tile_model=runners.tile,
                        context=args.context)
    except ValueError as exc:  # e.g. a context too wide for the tile model
        raise Fatal(f"--tiling {args.tiling} --context {args.context}: {exc}") from exc


def cmd_detect(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from edge.imageio import ImageError, read_rgb
    from edge.payload import box_json

    runners = _runners(args.model, args.variant, args.threads, args.state_dir)
    runner = runners.coarse
    detector = _detector(args, runners)
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


# -- frame --------------------------------------------------------------------------------------
def cmd_frame(args: argparse.Namespace) -> int:
    from edge.frame_check import FrameError, check

    try:
        checked = check(load_config(args.config), args.out)
    except FrameError as exc:
        raise Fatal(str(exc), code=1) from exc
    print(f"{args.out}: {checked.description}")
    print(f"text size: {checked.verdict}")
    return 0


# -- eval ---------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
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
    from edge.manifest import load_manifest, model_folders

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
        names = [v.name for v in load_manifest(model_folders(args.model).coarse).variants if v.target == "cpu"]
    else:
        names = [args.variant or "fp32"]

    def boxes_of(name: str) -> Callable[[Path], list]:
        if name == "detections":
            def from_files(image: Path) -> list:
                found = find_ground_truth(args.detections, image.name)
                return [w.poly for w in read_words(found)] if found else []
            return from_files
        detector = _detector(args, _runners(args.model, name, args.threads, args.state_dir))
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
    if args.broker is not None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        connect_to_broker(client, args.broker)
        client.disconnect()
        client.loop_stop()
        print(f"mqtt broker: {args.broker[0]}:{args.broker[1]} answers (MQTT v5)")
    if args.model is None:
        return 0
    from edge.backends.edgetpu import compile_note, size_notes
    from edge.manifest import load_manifest, model_folders

    folders = model_folders(args.model)
    runners = _runners(args.model, args.variant, args.threads, args.state_dir)
    for name, state in runners.coarse.states.items():
        print(f"{name} state: {state}")
    if folders.shared:
        print(f"model folder: {folders.coarse} (coarse and tile model)")
    else:
        print(f"model folders: coarse {folders.coarse}, tile {folders.tile}")
    for label, runner in [("", runners.coarse)] + ([] if folders.shared else [("tile model ", runners.tile)]):
        print(f"{label}would use: {runner.choice.variant} on {runner.choice.backend}, because {runner.choice.reason}")
    tile = load_manifest(folders.tile)
    for note in [*size_notes(tile), compile_note(folders.tile, tile)]:
        if note is not None:
            print(f"edge tpu, tile model: {note}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from edge.backends.cpu import CpuBackend
    from edge.config import ModelConfig
    from edge.hardware import cpu_info
    from edge.manifest import load_manifest, model_folders
    from edge.runtime import default_threads, find_runtime
    from edge.selection import ModelSelector, measure_ms

    cpu = CpuBackend(find_runtime(), args.threads or default_threads())
    print(f"{'model':<10} {'variant':<10} {'median ms':>10}")
    folders = model_folders(args.model)
    for folder in dict.fromkeys((folders.coarse, folders.tile)):  # a folder playing both roles once
        selector = ModelSelector(folder, load_manifest(folder), ModelConfig(dir=str(folder)), cpu_info(),
                                 args.state_dir)
        size = "x".join(map(str, selector.manifest.input_size))
        for variant in selector.manifest.variants:
            if variant.target != cpu.target or not selector.verified(variant):
                continue
            model = selector.load(cpu, variant)
            print(f"{size:<10} {variant.name:<10} {measure_ms(model, runs=args.runs):>10.1f}", flush=True)
    return 0


# -- watch --------------------------------------------------------------------------------------
def watch_line(message: dict) -> str:
    """One line for one detections message: the reference for people writing a subscriber."""
    frame, model, boxes = message["frame"], message["model"], message["boxes"]
    tiling = message.get("tiling")  # schema 2
    tiles = f" {tiling['mode']} {tiling['tiles_run']} runs" if tiling and tiling["mode"] != "off" else ""
    return (f"{message['device_id']} #{frame['seq']} {frame['timestamp']} {message['source']['name']} "
            f"{frame['width']}x{frame['height']} {model['variant']}/{model['backend']}{tiles} "
            f"{message['timing_ms']['total']:.0f} ms: {len(boxes)} boxes")


def pretty_json(message: dict) -> str:
    """Indented JSON with each [x, y] point on one line."""
    return re.sub(r"\[\s+(-?[\d.]+),\s+(-?[\d.]+)\s+\]", r"[\1, \2]", json.dumps(message, indent=2))


def connect_to_broker(client: Any, broker: tuple[str, int]) -> None:
    """``edge.publisher.connect_and_wait``, its failures as one line (exit 1)."""
    from edge.publisher import BrokerUnreachable, connect_and_wait

    try:
        connect_and_wait(client, broker, BROKER_ANSWER_SECONDS)
    except BrokerUnreachable as exc:
        raise Fatal(str(exc), code=1) from exc


def watch_target(args: argparse.Namespace) -> tuple[MqttConfig, tuple[str, int], str]:
    """Settings, broker and topic for ``watch``: the daemon's config file if given, then the options.

    With ``--config`` the topic is the config's ``topic_prefix`` (or ``craft-edge/<device_id>``)
    and its user name, password and TLS settings apply; without it, ``craft-edge/<ID or +>``.
    """
    if args.config is not None:
        config = load_config(args.config)
        if args.device_id is not None:
            config.device_id = args.device_id
        broker = args.broker or (config.mqtt.host, config.mqtt.port)
        return config.mqtt, broker, f"{config.topic_prefix}/detections"
    if args.broker is None:
        raise Fatal("give --broker HOST:PORT, or --config FILE to use the daemon's MQTT settings")
    return MqttConfig(), args.broker, f"craft-edge/{args.device_id or '+'}/detections"


def cmd_watch(args: argparse.Namespace) -> int:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edge.config import mqtt_password
    from edge.publisher import apply_credentials

    settings, broker, topic = watch_target(args)
    snapshots = args.snapshots
    if args.show and snapshots is None:
        snapshots = Path(tempfile.mkdtemp(prefix="craft-edge-snapshots-"))
    topics = [topic] if snapshots is None else [topic, topic.removesuffix("/detections") + "/snapshot"]
    if snapshots is not None:
        try:
            snapshots.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Fatal(f"--snapshots {snapshots}: cannot create the folder ({exc.strerror or exc})", code=1) from exc
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        apply_credentials(client, settings, mqtt_password(settings))
    except (OSError, ValueError) as exc:  # unreadable TLS files, a password file that is not text
        raise Fatal(f"cannot set up TLS or credentials from {args.config}: {exc}", code=1) from exc
    done = threading.Event()

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, properties: object) -> None:
        for watched in topics:
            client.subscribe(watched, qos=1)
        print(f"watching {' and '.join(topics)} on {broker[0]}:{broker[1]}", file=sys.stderr, flush=True)
        if snapshots is not None:
            print(f"saving snapshots in {snapshots}", file=sys.stderr, flush=True)

    received = [0]

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if done.is_set():  # --count reached: what arrives before the disconnect is not printed
            return
        if snapshots is not None and message.topic.endswith("/snapshot"):
            from edge.snapshot import save_snapshot

            try:
                saved = save_snapshot(snapshots, message.topic, message.payload, message.properties)
            except OSError as exc:
                print(f"{PROG}: cannot save a snapshot in {snapshots}: {exc.strerror or exc}", file=sys.stderr,
                      flush=True)
                return
            if saved is not None and args.show:
                print(f"snapshot: {saved}", flush=True)
            return
        try:
            payload = json.loads(message.payload)
            print(pretty_json(payload) if args.json else watch_line(payload), flush=True)
        except (ValueError, KeyError, TypeError) as exc:
            print(f"{PROG}: ignored a malformed message on {message.topic}: {exc}", file=sys.stderr, flush=True)
            return
        received[0] += 1
        if args.count and received[0] >= args.count:
            done.set()

    client.on_connect = on_connect
    client.on_message = on_message
    connect_to_broker(client, broker)
    with contextlib.suppress(KeyboardInterrupt):
        while not done.wait(0.5):
            pass
    client.disconnect()
    client.loop_stop()
    return 0


# -- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="CRAFT text detection on a Raspberry Pi / Coral Edge TPU.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = commands.add_parser("run", help="the daemon: camera frames -> CRAFT -> boxes over MQTT")
    run.add_argument("--config", type=absolute,
                     help=f"config file (default: {DEFAULT_CONFIG_PATH}, else built-in defaults)")
    run.add_argument("--source", help="override the source: image file/folder/glob, camera index, /dev/videoN, URL, "
                                      "video file, or 'picamera2'")
    run.add_argument("--loop", action="store_true", help="loop a file source")
    run.add_argument("--model", type=absolute, help="model folder from convert-for-device (overrides model.dir)")
    run.add_argument("--variant", help="force a variant (overrides model.prefer)")
    run.add_argument("--broker", type=parse_broker, metavar="HOST:PORT", help="MQTT broker (overrides mqtt.host/port)")
    run.add_argument("--device-id", help="overrides device_id")
    run.add_argument("--max-frames", type=int, metavar="N", help="exit 0 once N frames are processed and acknowledged")
    run.set_defaults(func=cmd_run)

    def model_options(sub: argparse.ArgumentParser, required: bool) -> None:
        sub.add_argument("--model", type=absolute, required=required, help="model folder from convert-for-device")
        sub.add_argument("--threads", type=int, default=0, help="CPU threads (default: one per core)")
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

    detect = commands.add_parser("detect", help="one-shot: boxes for image files, as text or JSON lines")
    detect.add_argument("images", type=Path, nargs="+")  # read here and echoed as given
    model_options(detect, required=True)
    detect.add_argument("--variant", help="force a variant (default: best for this hardware)")
    detect.add_argument("--json", action="store_true", help='JSON lines: {"image", "boxes": [...]} in source pixels')
    detect.add_argument("--draw", type=absolute, metavar="OUT_DIR", help="write each image with its boxes drawn")
    tiling_options(detect)
    detect.set_defaults(func=cmd_detect)

    evaluate = commands.add_parser(
        "eval", help="precision/recall/H-mean on labelled images (ICDAR 2015 protocol), or agreement between variants")
    model_options(evaluate, required=False)
    which = evaluate.add_mutually_exclusive_group()
    which.add_argument("--variant", help="the variant to evaluate (default: fp32)")
    which.add_argument("--all", action="store_true", help="every CPU variant in the model folder")
    which.add_argument("--detections", type=absolute, metavar="DIR",
                       help="evaluate precomputed boxes (NAME.json per image, ground-truth JSON format) instead")
    evaluate.add_argument("--images", type=absolute, required=True, help="folder of images")
    evaluate.add_argument("--gt", type=absolute, help="ground truth: NAME.json, NAME.txt or gt_NAME.txt per image")
    evaluate.add_argument("--against", metavar="VARIANT",
                          help="agreement mode: treat this variant's boxes as the truth (unlabelled images)")
    evaluate.add_argument("--json", type=absolute, metavar="OUT", help="write the results, per image too, as JSON")
    tiling_options(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    probe = commands.add_parser("probe", help="what hardware and runtime are here, which variant would run and why")
    model_options(probe, required=False)
    probe.add_argument("--variant", help="as model.prefer")
    probe.add_argument("--broker", type=parse_broker, metavar="HOST:PORT",
                       help="also check that an MQTT broker answers there (exit 1 if not)")
    probe.set_defaults(func=cmd_probe)

    bench = commands.add_parser("bench", help="latency of each CPU variant on this device")
    model_options(bench, required=True)
    bench.add_argument("--runs", type=int, default=10)
    bench.set_defaults(func=cmd_bench)

    watch = commands.add_parser("watch", help="subscribe and print one line per detections message")
    watch.add_argument("--config", type=absolute,
                       help="the daemon's config file: its broker, TLS, user name, password and topic prefix")
    watch.add_argument("--broker", type=parse_broker, metavar="HOST:PORT", help="the broker (overrides the config)")
    watch.add_argument("--device-id", help="only this device (default: all, or the config's device)")
    watch.add_argument("--count", type=int, default=0, metavar="N", help="exit after N messages")
    watch.add_argument("--json", action="store_true", help="print each message as indented JSON")
    watch.add_argument("--snapshots", type=absolute, metavar="DIR",
                       help="also save each snapshot that arrives (mqtt.snapshot) in DIR as <device>_<seq>.jpg")
    watch.add_argument("--show", action="store_true",
                       help="also print the path of each snapshot as it arrives (saved in --snapshots DIR, "
                            "else in a new temporary folder)")
    watch.set_defaults(func=cmd_watch)

    frame = commands.add_parser(
        "frame", help="setting up a camera: one frame through the model, drawn, and whether its text is large enough")
    frame.add_argument("--config", type=absolute, required=True,
                       help="the daemon's config file: its source, model and detection settings")
    frame.add_argument("--out", type=absolute, required=True, metavar="PNG",
                       help="where to write the frame with its boxes drawn")
    frame.set_defaults(func=cmd_frame)
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
