"""CPU backend: a converted variant on the TFLite interpreter with XNNPACK."""

from __future__ import annotations

from pathlib import Path

from edge.manifest import Variant
from edge.runtime import CraftModel, Runtime, load_model


def load_cpu(model_dir: Path, variant: Variant, runtime: Runtime, threads: int) -> CraftModel:
    return load_model(model_dir / variant.file, runtime, threads)
