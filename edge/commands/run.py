"""``craft-edge run``: the daemon, with the command line's overrides of its config file."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from edge.commands.common import PROG, Fatal, parse_broker
from edge.config.paths import absolute, is_url, video_file
from edge.config.settings import (
    DEFAULT_CONFIG_PATH,
    Config,
    ConfigError,
    check_device_id,
    check_mqtt_names,
    load_config,
)

log = logging.getLogger(PROG)


def source_kind(source: str) -> str:
    """What ``--source`` names: picamera2, image files (file, folder, glob) or an OpenCV capture."""
    from edge.sources.imageio import IMAGE_SUFFIXES

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
            check_mqtt_names(config.mqtt, config.client_id, "--broker")
        if args.device_id is not None:
            check_device_id(args.device_id, "--device-id")
            config.device_id = args.device_id
        if config.source.kind == "files" and not config.source.path:
            raise ConfigError("source.path is required for a files source (or give --source)")
        return config

    return load


def execute(args: argparse.Namespace) -> int:
    from edge.service.daemon import Daemon

    if args.max_frames is not None and args.max_frames < 1:
        raise Fatal("--max-frames must be at least 1")
    return Daemon(config_loader(args), max_frames=args.max_frames).run()


def add_to(commands: argparse._SubParsersAction) -> None:
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
    run.set_defaults(func=execute)
