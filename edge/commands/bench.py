"""``craft-edge bench``: median latency of each verified CPU variant on this device."""

from __future__ import annotations

import argparse

from edge.commands.common import model_options


def execute(args: argparse.Namespace) -> int:
    from edge.config.settings import ModelConfig
    from edge.models.backends.cpu import CpuBackend
    from edge.models.hardware import cpu_info
    from edge.models.manifest import load_manifest, model_folders
    from edge.models.runtime import default_threads, find_runtime
    from edge.models.selection import ModelSelector, measure_ms

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


def add_to(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="latency of each CPU variant on this device")
    model_options(bench, required=True)
    bench.add_argument("--runs", type=int, default=10)
    bench.set_defaults(func=execute)
