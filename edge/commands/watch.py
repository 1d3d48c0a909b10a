"""``craft-edge watch``: subscribe and print one line (or the JSON) per detections message; save snapshots."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
import threading
from pathlib import Path

from edge.commands.common import PROG, Fatal, connect_to_broker, parse_broker
from edge.config.paths import absolute
from edge.config.settings import MqttConfig, load_config


def watch_line(message: dict) -> str:
    """One line for one detections message: the reference for people writing a subscriber."""
    frame, model, boxes = message["frame"], message["model"], message["boxes"]
    tiling = message.get("tiling")  # schema 2
    tiles = f" {tiling['mode']} {tiling['tiles_run']} runs" if tiling and tiling["mode"] != "off" else ""
    text = message.get("text")  # schema 3: the words read, in reading order
    return (f"{message['device_id']} #{frame['seq']} {frame['timestamp']} {message['source']['name']} "
            f"{frame['width']}x{frame['height']} {model['variant']}/{model['backend']}{tiles} "
            f"{message['timing_ms']['total']:.0f} ms: {len(boxes)} boxes" + (f": {json.dumps(text)}" if text else ""))


def pretty_json(message: dict) -> str:
    """Indented JSON with each [x, y] point on one line."""
    return re.sub(r"\[\s+(-?[\d.]+),\s+(-?[\d.]+)\s+\]", r"[\1, \2]", json.dumps(message, indent=2))


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


def execute(args: argparse.Namespace) -> int:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from edge.config.settings import mqtt_password
    from edge.messaging.connection import apply_credentials

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
            from edge.messaging.snapshot import save_snapshot

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


def add_to(commands: argparse._SubParsersAction) -> None:
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
    watch.set_defaults(func=execute)
