"""``craft-edge probe``: what hardware and runtime are here, which variant would run and why."""

from __future__ import annotations

import argparse

from edge import __version__
from edge.commands.common import connect_to_broker, load_runners, model_options, parse_broker


def execute(args: argparse.Namespace) -> int:
    from edge.models.hardware import cpu_info, find_tpus
    from edge.models.runtime import find_runtime

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
    from edge.models.backends.edgetpu import compile_note, size_notes
    from edge.models.manifest import load_manifest, model_folders

    folders = model_folders(args.model)
    runners = load_runners(args.model, args.variant, args.threads, args.state_dir)
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


def add_to(commands: argparse._SubParsersAction) -> None:
    probe = commands.add_parser("probe", help="what hardware and runtime are here, which variant would run and why")
    model_options(probe, required=False)
    probe.add_argument("--variant", help="as model.prefer")
    probe.add_argument("--broker", type=parse_broker, metavar="HOST:PORT",
                       help="also check that an MQTT broker answers there (exit 1 if not)")
    probe.set_defaults(func=execute)
